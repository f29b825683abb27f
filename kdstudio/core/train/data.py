"""What a run trains on: the rows, their targets, and length-bucketed batches.

KD rows are train and unlabeled examples with a teacher answer; the target is the teacher's
probability vector, and the gold label (when there is one) feeds the cross-entropy term.
Hard-label rows are the train examples with gold labels. A person's review wins over both, by the
store's one rule (``kdstudio.core.store.reviews``): an excluded row is left out, a corrected label
is the gold label (in validation too) and, on a transfer row, also the one-hot target.

Validation uses the project's valid split. Without one, a run holds out 10% of its training rows
only when no teacher can have been fitted on them: a ``--hard-labels`` run (its targets are the
gold labels), or a KD run whose rows carry no gold label (a teacher is fitted on gold rows: the
embedding probe, a calibrated Claude teacher, a classifier fine-tuned on the same data). A KD
run on gold training rows with no valid split is refused with a line that says how to make one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kdstudio.core.calibration import Calibration, calibrated
from kdstudio.core.errors import ConfigError

NO_LABEL = -100
NO_VALID_SPLIT = (
    "the project has no valid split, and a KD run never validates on gold training rows (its teacher may "
    "have been fitted on them): import a validation file with `kdstudio import PROJECT FILE --split valid`, "
    "or import the training file into a new project, which holds out --valid-fraction (0.1) of it"
)


@dataclass
class Rows:
    """One split as arrays: example ids, texts, gold labels (``-100`` = none), teacher
    probabilities (uniform where ``has_teacher`` is False) and, once tokenized, token ids."""

    ids: list[int]
    texts: list[str]
    gold: np.ndarray
    teacher: np.ndarray
    has_teacher: np.ndarray
    tokens: list[list[int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(t) for t in self.tokens), dtype=np.int64, count=len(self.tokens))

    def subset(self, index: np.ndarray) -> Rows:
        pick = [int(i) for i in index]
        return Rows(
            [self.ids[i] for i in pick],
            [self.texts[i] for i in pick],
            self.gold[pick],
            self.teacher[pick],
            self.has_teacher[pick],
            [self.tokens[i] for i in pick] if self.tokens else [],
        )


@dataclass
class TrainingData:
    train: Rows
    valid: Rows
    reviews_used: int
    notes: list[str]
    calibration: int | None = None  #: the version of the teacher's calibration its soft labels went through


def _rows(records: list[tuple[int, str, int | None, list[float] | None]], n_labels: int) -> Rows:
    teacher = np.full((len(records), n_labels), 1.0 / max(n_labels, 1), dtype=np.float32)
    has = np.zeros(len(records), dtype=bool)
    for i, (_, _, _, probs) in enumerate(records):
        if probs is not None:
            teacher[i] = np.asarray(probs, dtype=np.float32)
            has[i] = True
    gold = np.array([NO_LABEL if g is None else g for _, _, g, _ in records], dtype=np.int64)
    return Rows([r[0] for r in records], [r[1] for r in records], gold, teacher, has)


def load_training_data(
    project: Any, *, teacher_id: int | None, hard_labels: bool, seed: int, calibrate: bool = True
) -> TrainingData:
    """Read the rows a run trains and validates on from the project (see the module docstring)."""
    labels = project.labels()
    n_labels = len(labels)
    if project.task != "classification":
        raise ConfigError("training a student is only available for classification projects so far")
    if n_labels < 2:
        raise ConfigError("the project needs at least two labels to train a classifier")
    outputs: dict[int, list[float]] = {}
    notes: list[str] = []
    calibration = None
    if teacher_id is not None:
        if calibrate and not hard_labels:
            calibration = Calibration.from_dict(project.calibration(teacher_id))
            if calibration is not None and not calibration.applied:
                calibration = None
        outputs = {
            o["id"]: calibrated(o, calibration)
            for o in project.teacher_outputs(teacher_id, ["train", "unlabeled", "valid"])
            if o["probs"] is not None and len(o["probs"]) == n_labels
        }
        if calibration is not None:
            notes.append(f"soft labels through the teacher's {calibration.summary()}")
    used = 0
    records = []
    for split in ("train", "unlabeled"):
        reviewed = project.reviewed_examples(split)
        used += len(reviewed.excluded) + len(reviewed.corrected)
        for ex_id, text, gold in reviewed.rows:
            probs = outputs.get(ex_id)
            if ex_id in reviewed.corrected:
                probs = [float(i == gold) for i in range(n_labels)]
            if (hard_labels and gold is not None) or (not hard_labels and probs is not None):
                records.append((ex_id, text, gold, probs))
    if not records:
        if hard_labels:
            raise ConfigError(
                "no gold labels in the train split: import labelled data to train with --hard-labels"
            )
        if teacher_id is None:
            raise ConfigError(
                "no teacher outputs in this project: harvest a teacher first, or train with --hard-labels"
            )
        raise ConfigError(
            f"teacher {teacher_id} has no outputs on train or unlabeled examples: harvest them first"
        )
    train = _rows(records, n_labels)
    if not hard_labels:
        missing = sum(1 for ex_id, _, _ in project.examples("train") if ex_id not in outputs)
        if missing > 0:
            notes.append(
                f"{missing} train examples have no teacher output and are not used (harvest them to use them)"
            )

    valid_records = []
    for ex_id, text, gold in project.reviewed_examples("valid").rows:
        if gold is not None or ex_id in outputs:
            valid_records.append((ex_id, text, gold, outputs.get(ex_id)))
    if valid_records:
        valid = _rows(valid_records, n_labels)
    elif not hard_labels and bool((train.gold != NO_LABEL).any()):
        raise ConfigError(NO_VALID_SPLIT)
    elif len(train) >= 10:
        order = np.random.default_rng(seed).permutation(len(train))
        cut = max(1, len(train) // 10)
        valid, train = train.subset(np.sort(order[:cut])), train.subset(np.sort(order[cut:]))
        notes.append(f"no valid split: holding out {cut} training examples to validate on")
    else:
        valid = _rows([], n_labels)
        notes.append("no valid split and too few examples to hold some out: no early stopping")
    return TrainingData(train, valid, used, notes, calibration.version if calibration else None)


class LengthBucketBatcher:
    """Per-epoch order of optimizer-step groups, shuffled but with similar lengths together.

    An epoch shuffles the rows (seeded by ``(seed, epoch)``, so any epoch can be rebuilt to
    resume mid-way), sorts windows of 50 groups by length, cuts them into groups of
    ``group_size`` rows and shuffles the groups. Each group is then cut into micro-batches
    of similar length, so dynamic padding wastes little.
    """

    def __init__(
        self, lengths: np.ndarray, group_size: int, seed: int, *, world: int = 1, rank: int = 0
    ) -> None:
        self.lengths, self.group_size, self.seed = lengths, group_size, seed
        self.world, self.rank = world, rank
        self._len = len(self.plan(0))

    def __len__(self) -> int:
        return self._len

    def plan(self, epoch: int) -> list[np.ndarray]:
        """The groups of epoch ``epoch`` (0-based), as arrays of row indices for this rank."""
        rng = np.random.default_rng([self.seed, epoch])
        perm = rng.permutation(len(self.lengths))
        window = self.group_size * 50
        groups = []
        for start in range(0, len(perm), window):
            chunk = perm[start : start + window]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            groups += [
                chunk[i : i + self.group_size] for i in range(0, len(chunk), self.group_size)
            ]
        groups = [groups[i] for i in rng.permutation(len(groups)) if len(groups[i]) >= self.world]
        return [
            g[np.argsort(self.lengths[g], kind="stable")][self.rank :: self.world] for g in groups
        ]

    @staticmethod
    def micro_batches(group: np.ndarray, micro: int) -> list[np.ndarray]:
        return [group[i : i + micro] for i in range(0, len(group), micro)]
