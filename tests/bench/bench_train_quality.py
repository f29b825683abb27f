"""Distillation quality in the few-gold setting, with the offline MiniLM probe as teacher.

For each data set: a small gold subset of train (``--gold-per-class``, plus a few per class for
valid) is all the gold a user has. The ``embed:minilm`` teacher fits its probe on that subset and
labels everything else; the KD student trains on the teacher-labelled rest of train (and the gold
rows); the hard-label student trains on the gold subset only, for as many optimizer steps as the
KD run. Both are selected on the same gold valid rows and scored on the full test split.

    python tests/bench/bench_train_quality.py --datasets banking77 sst2 --students bilstm transformer-tiny

Each student trains for its default number of epochs (``--epochs`` overrides it) and picks its
best checkpoint as ``kdstudio train`` does by default.

With ``--augment N`` the transfer set also gets N variants of each of its texts
(``kdstudio augment``), labelled by the same teacher; the hard-label student has no use for them
and keeps the schedule it has without them. ``--unlabeled N`` keeps only N of the texts beyond
the gold and valid rows: a user with few texts of their own.

Prints one Markdown table row per (data set, student) and a JSON line with every figure.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DATASETS = Path(os.environ.get("KDSTUDIO_DATASETS", ROOT.parent / "shared" / "datasets"))


def read_dataset(name: str) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
    """(labels, train rows, test rows) with rows as (text, label name)."""
    if name == "banking77":

        def rows(file):
            with open(DATASETS / name / file, newline="", encoding="utf-8") as f:
                return [(r["text"], r["category"]) for r in csv.DictReader(f)]

        train, test = rows("train.csv"), rows("test.csv")
    elif name == "sst2":

        def rows(file):
            out = []
            for line in (DATASETS / name / file).read_text(encoding="utf-8").splitlines():
                label, _, text = line.partition(" ")
                out.append((text, "positive" if label == "1" else "negative"))
            return out

        train, test = rows("stsa.binary.train"), rows("stsa.binary.test")
    else:
        raise SystemExit(f"unknown data set {name}")
    return sorted({lab for _, lab in train}), train, test


def build_project(
    path: Path, name: str, gold_per_class: int, valid_per_class: int, seed: int,
    unlabeled: int | None = None,
) -> None:
    from kdstudio.core.store import Project

    labels, train, test = read_dataset(name)
    by_label = defaultdict(list)
    for row in train:
        by_label[row[1]].append(row)
    rng = random.Random(seed)
    gold, valid, rest = [], [], []
    for label in labels:
        rows = by_label[label][:]
        rng.shuffle(rows)
        gold += rows[:gold_per_class]
        valid += rows[gold_per_class : gold_per_class + valid_per_class]
        rest += rows[gold_per_class + valid_per_class :]
    if unlabeled is not None:  # the user has only this many texts beyond the gold ones
        rng.shuffle(rest)
        rest = rest[:unlabeled]
    project = Project.create(path, "classification", labels=labels)
    ids = project.label_ids()

    def record(text, label, split, keep_label=True):
        digest = hashlib.sha256(text.encode()).hexdigest()
        return (text, ids[label] if keep_label else None, None, split, name, None, digest)

    with project.transaction():
        project.insert_examples([record(t, lab, "train") for t, lab in gold])
        project.insert_examples([record(t, lab, "valid") for t, lab in valid])
        project.insert_examples([record(t, lab, "unlabeled", keep_label=False) for t, lab in rest])
        project.insert_examples([record(t, lab, "test") for t, lab in test])
    project.close()


def labels_of(path: Path) -> list[str]:
    from kdstudio.core.store import Project

    with Project(path) as project:
        return project.labels()


def teacher_accuracy(path: Path, teacher_id: int) -> float:
    from kdstudio.core.store import Project

    with Project(path) as project:
        rows = project.teacher_outputs(teacher_id, ["test"])
    return sum(r["label"] == r["gold"] for r in rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["banking77", "sst2"])
    parser.add_argument("--students", nargs="+", default=["bilstm", "transformer-tiny"])
    parser.add_argument(
        "--gold-per-class", type=int, default=0, help="0 = 10 for banking77, 100 for sst2"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="default: each student's own (as `kdstudio train`)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embed-init", default="teacher", choices=["teacher", "random"],
                        help="how from-scratch students start their embeddings (both KD and hard-label runs)")
    parser.add_argument("--unlabeled", type=int, default=None,
                        help="keep only N of the texts beyond gold and valid (default: all of train)")
    parser.add_argument("--augment", type=int, default=0,
                        help="variants per transfer-set text (kdstudio augment); 0 = none")
    parser.add_argument(
        "--work", default=None, help="folder for the projects (default: a temp folder)"
    )
    args = parser.parse_args()

    from kdstudio.core.data.augment import AugmentConfig, augment
    from kdstudio.core.events import run_to_end
    from kdstudio.core.harvest import HarvestConfig, harvest
    from kdstudio.core.students import default_epochs
    from kdstudio.core.train import TrainConfig, train

    work = Path(args.work or tempfile.mkdtemp(prefix="kd-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    report = []
    print(
        "| data set | student | gold rows | teacher acc | KD student acc | hard-label acc | retention | KD − hard |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.datasets:
        per_class = args.gold_per_class or (10 if name == "banking77" else 100)
        stem = name + (f"-unlabeled{args.unlabeled}" if args.unlabeled is not None else "")
        path = work / (f"{stem}-augment{args.augment}.kdproj" if args.augment else f"{stem}.kdproj")
        if not path.exists():
            build_project(path, name, per_class, max(3, per_class // 3), args.seed, args.unlabeled)
        variants = 0
        if args.augment:
            variants = run_to_end(augment(path, AugmentConfig(per_example=args.augment, seed=args.seed)))[
                "augmented_total"]
        t0 = time.monotonic()
        harvested = run_to_end(harvest(path, HarvestConfig(teacher="embed:minilm")))
        teacher_id = harvested.teacher
        t_acc = teacher_accuracy(path, teacher_id)
        harvest_s = time.monotonic() - t0
        for student in args.students:
            epochs = args.epochs or default_epochs(student)
            common = {
                "student": student,
                "epochs": epochs,
                "num_threads": args.threads,
                "seed": args.seed,
                "teacher": teacher_id,
                "embed_init": args.embed_init,
            }
            kd = run_to_end(train(path, TrainConfig(**common)))
            # The baseline gets as many optimizer steps as the KD run (more epochs over fewer rows),
            # evaluated and early-stopped on the same step schedule.
            own_rows = kd.n_train - variants  # the schedule the baseline has without variants
            kd_epoch_steps = -(-own_rows // 32)
            hard_epochs = max(
                epochs, round(epochs * own_rows / per_class / len(labels_of(path)))
            )
            hard_config = {**common, "epochs": hard_epochs, "eval_every": kd_epoch_steps}
            hard = run_to_end(train(path, TrainConfig(**hard_config, hard_labels=True)))
            row = {
                "dataset": name,
                "student": student,
                "gold_rows": hard.n_train,
                "kd_rows": kd.n_train,
                "variants": variants,
                "epochs": epochs,
                "teacher_accuracy": round(t_acc, 4),
                "kd_accuracy": round(kd.test_accuracy, 4),
                "hard_accuracy": round(hard.test_accuracy, 4),
                "retention": round(kd.test_accuracy / t_acc, 4),
                "kd_minus_hard_points": round(
                    100 * (kd.test_accuracy - hard.test_accuracy), 1
                ),
                "kd_seconds": kd.seconds,
                "hard_seconds": hard.seconds,
                "harvest_seconds": round(harvest_s, 1),
                "kd_examples_per_s": kd.examples_per_s,
                "params": kd.params,
            }
            report.append(row)
            print(
                f"| {name} | {student} | {row['gold_rows']} | {row['teacher_accuracy']:.3f} | "
                f"{row['kd_accuracy']:.3f} | {row['hard_accuracy']:.3f} | {row['retention']:.3f} | "
                f"{row['kd_minus_hard_points']:+.1f} |",
                flush=True,
            )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
