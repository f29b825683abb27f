"""What training needs to know about a kind of project, behind one small interface.

The loop and the session know nothing of labels or completions: a :class:`Task` gives them the
rows, the tokenizer, the student, the batches, the loss terms, the validation metrics and the
final predictions. ``TASKS`` maps a project's task to its implementation: classification here,
generation in ``train.generation``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from kdstudio.core.errors import ConfigError
from kdstudio.core.events import Event, Log
from kdstudio.core.predict import HeldOutScores, kl_divergence, predict_examples
from kdstudio.core.students import build_student, pad_batch, parse_student_spec, resolve_student, uses_own_tokenizer
from kdstudio.core.students.tokenizer import encode, load_tokenizer, pad_id, teacher_model_path, train_wordpiece
from kdstudio.core.train.config import TrainConfig
from kdstudio.core.train.data import Rows, TrainingData, load_training_data
from kdstudio.core.train.losses import Term, combined_loss, loss_terms
from kdstudio.core.train.runtime import Runtime


class Task(Protocol):
    """One kind of project, as training sees it."""

    #: a from-scratch student sharing the teacher's tokenizer may start from its embeddings (--embed-init)
    embeds_from_teacher: bool
    #: a student sharing the teacher's WordPiece tokenizer may keep only the pieces the project uses (--vocab)
    prunes_vocab: bool
    #: with a pruned vocabulary, each student id's id in the teacher's (set by the session), else None
    teacher_ids: Sequence[int] | None

    def load(self, project: Any, *, teacher_id: int | None) -> TrainingData:
        """The rows to train and validate on (texts; targets, as the task stores them)."""

    def teacher_path(self, teacher_spec: str | None) -> str | None:
        """The local model folder (or hub id) of the run's teacher, when this task can use it."""

    def choose_tokenizer(self, teacher_path: str | None, data: TrainingData, notes: list[str]) -> tuple[Any, str]:
        """``(tokenizer, source)`` for a new student: its own, the teacher's, or one trained on
        ``data``; lines for the run's log go to ``notes``."""

    def encode(self, rows: Any, tokenizer: Any) -> None:
        """Set ``rows.tokens`` (token id lists; their lengths bucket the batches)."""

    def checkpoint_meta(self) -> dict[str, Any]:
        """What a checkpoint's ``student.json`` records for this task beyond the common fields."""

    def build_student(self, tokenizer: Any, *, teacher_path: str | None) -> Any:
        """A fresh student of ``config.student`` for this task's outputs."""

    def attach(self, tokenizer: Any, hidden: tuple[Any, Any] | None = None) -> None:
        """Take the run's tokenizer and, for ``hidden_mse``, (frozen teacher encoder, projection)."""

    def loss_terms(self) -> Sequence[Term]:
        """The registered loss terms (``train.losses.LOSSES``) a training step sums."""

    def batch(self, rows: Rows, index: np.ndarray, device: Any) -> dict[str, Any]:
        """Rows ``index`` as named tensors on ``device`` (padded token ids and targets)."""

    def forward(self, model: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """``batch`` plus the model's outputs, named as the loss terms read them."""

    def validate(self, model: Any, rows: Rows) -> dict[str, float]:
        """``valid/*`` metrics of ``model`` on ``rows``; ``valid/loss`` at least."""

    def predict(self, project: Any, run_id: int, checkpoint: Any, *, teacher_id: int | None,
                device: str) -> Generator[Event, None, HeldOutScores]:
        """Store the saved student's predictions on held-out data, yielding ``Log`` and
        ``Progress`` events; return its test scores."""


class ClassificationTask:
    """Texts with labels: the student learns the teacher's label distribution (``kd``) and the
    gold labels (``ce``); valid reports loss parts, gold accuracy, agreement and KL."""

    embeds_from_teacher = True
    prunes_vocab = True

    def __init__(self, config: TrainConfig, labels: Sequence[str], runtime: Runtime) -> None:
        self.cfg, self.labels, self.rt = config, list(labels), runtime
        self.teacher_ids: Sequence[int] | None = None
        self._teacher_index: torch.Tensor | None = None
        self.pad = 0  # the tokenizer's pad id (see attach)
        self.hidden: tuple[Any, Any] | None = None  # (teacher encoder, projection) for hidden_mse

    def load(self, project: Any, *, teacher_id: int | None) -> TrainingData:
        return load_training_data(
            project, teacher_id=teacher_id, hard_labels=self.cfg.hard_labels, seed=self.cfg.seed,
            calibrate=not self.cfg.uncalibrated,
        )

    def teacher_path(self, teacher_spec: str | None) -> str | None:
        return teacher_model_path(teacher_spec)

    def choose_tokenizer(self, teacher_path: str | None, data: TrainingData, notes: list[str]) -> tuple[Any, str]:
        """A pretrained student's own tokenizer, else the teacher's, else a WordPiece trained here."""
        kind, arg = parse_student_spec(self.cfg.student)
        if uses_own_tokenizer(self.cfg.student):
            source = arg if kind == "hf" else teacher_path
            if not source:
                raise ConfigError(
                    "teacher-layers:K needs a local transformer teacher (hf:PATH or embed:PATH)"
                )
            try:
                return load_tokenizer(source), "student" if kind == "hf" else "teacher"
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot load the tokenizer of {source!r}: {str(exc).splitlines()[0]}"
                ) from None
        if teacher_path:
            try:
                return load_tokenizer(teacher_path), "teacher"
            except (OSError, ValueError):
                notes.append(
                    f"the teacher's tokenizer ({teacher_path}) did not load; training a WordPiece instead"
                )
        texts = data.train.texts + data.valid.texts
        notes.append(f"training a WordPiece tokenizer ({self.cfg.vocab_size} pieces) on {len(texts)} texts")
        return train_wordpiece(texts, self.cfg.vocab_size), "wordpiece"

    def encode(self, rows: Rows, tokenizer: Any) -> None:
        rows.tokens = encode(tokenizer, rows.texts, self.cfg.max_length)

    def checkpoint_meta(self) -> dict[str, Any]:
        return {}

    def build_student(self, tokenizer: Any, *, teacher_path: str | None) -> Any:
        return build_student(
            self.cfg.student,
            len(self.labels),
            tokenizer,
            labels=self.labels,
            teacher_path=teacher_path,
            max_length=self.cfg.max_length,
        )

    def attach(self, tokenizer: Any, hidden: tuple[Any, Any] | None = None) -> None:
        self.pad, self.hidden = pad_id(tokenizer), hidden

    def loss_terms(self, *, has_teacher: bool = True, hidden: bool = True) -> tuple[Term, ...]:
        cfg = self.cfg
        return loss_terms(
            hard_labels=cfg.hard_labels or not has_teacher,
            alpha=cfg.alpha,
            temperature=cfg.temperature,
            hidden_mse=cfg.hidden_mse if hidden else 0.0,
        )

    def batch(self, rows: Rows, index: np.ndarray, device: Any) -> dict[str, Any]:
        input_ids, mask = (
            t.to(device, non_blocking=True) for t in pad_batch([rows.tokens[i] for i in index], self.pad)
        )
        return {
            "input_ids": input_ids,
            "attention_mask": mask,
            "teacher_probs": torch.from_numpy(rows.teacher[index]).to(device),
            "gold": torch.from_numpy(rows.gold[index]).to(device),
            "has_teacher": torch.from_numpy(rows.has_teacher[index]).to(device),
        }

    def forward(self, model: Any, batch: dict[str, Any]) -> dict[str, Any]:
        input_ids, mask = batch["input_ids"], batch["attention_mask"]
        if self.hidden is None or not model.training:
            return {**batch, "logits": model(input_ids, mask)}
        teacher, projection = self.hidden
        logits, student_states = model(input_ids, mask, output_hidden_states=True)
        with torch.no_grad():
            teacher_states = teacher(
                input_ids=self._to_teacher_ids(input_ids), attention_mask=mask, output_hidden_states=True
            ).hidden_states
        return {
            **batch,
            "logits": logits,
            "student_states": [projection(s) for s in student_states[1:]],
            "teacher_states": teacher_states,
        }

    def _to_teacher_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The teacher's ids of a batch: the same with the teacher's vocabulary, mapped back when
        the student's vocabulary is pruned."""
        if self.teacher_ids is None:
            return input_ids
        if self._teacher_index is None or self._teacher_index.device != input_ids.device:
            self._teacher_index = torch.as_tensor(list(self.teacher_ids), dtype=torch.long, device=input_ids.device)
        return self._teacher_index[input_ids]

    @torch.no_grad()
    def validate(self, model: Any, rows: Rows) -> dict[str, float]:
        """Loss parts, gold accuracy, agreement with the teacher and KL(teacher ‖ student)."""
        model.eval()
        order = np.argsort(rows.lengths, kind="stable")
        logits = torch.empty((len(rows), len(self.labels)))
        step = self.cfg.batch_size * 2
        for start in range(0, len(order), step):
            idx = order[start : start + step]
            input_ids, mask = pad_batch([rows.tokens[i] for i in idx], self.pad)
            with self.rt.autocast():
                logits[torch.from_numpy(idx)] = (
                    model(input_ids.to(self.rt.device), mask.to(self.rt.device)).float().cpu()
                )
        model.train()
        teacher, gold, has = (
            torch.from_numpy(a) for a in (rows.teacher, rows.gold, rows.has_teacher)
        )
        terms = self.loss_terms(has_teacher=bool(has.any()), hidden=False)
        batch = {"logits": logits, "teacher_probs": teacher, "gold": gold, "has_teacher": has}
        out = {f"valid/{k}": float(v) for k, v in combined_loss(terms, batch).items()}
        pred = logits.argmax(-1)
        if bool((gold >= 0).any()):
            out["valid/accuracy"] = float((pred[gold >= 0] == gold[gold >= 0]).float().mean())
        if bool(has.any()):
            out["valid/agreement"] = float((pred[has] == teacher[has].argmax(-1)).float().mean())
            p = teacher[has].float()
            p = p / p.sum(-1, keepdim=True)
            out["valid/kl"] = float(kl_divergence(p, F.log_softmax(logits[has].float(), -1)).mean())
        return out

    def predict(self, project: Any, run_id: int, checkpoint: Any, *, teacher_id: int | None,
                device: str) -> Generator[Event, None, HeldOutScores]:
        yield Log("predicting the test split with the best checkpoint")
        return predict_examples(project, run_id, checkpoint, teacher_id=teacher_id, device=device)


def _generation_task(config: TrainConfig, labels: Sequence[str], runtime: Runtime) -> Task:
    from kdstudio.core.train.generation import GenerationTask

    return GenerationTask(config, labels, runtime)


#: A project's task → what builds its ``Task`` from ``(config, labels, runtime)``.
TASKS: dict[str, Callable[[TrainConfig, Sequence[str], Runtime], Task]] = {
    "classification": ClassificationTask,
    "generation": _generation_task,
}


def task_for(project: Any, config: TrainConfig, runtime: Runtime) -> Task:
    """The :class:`Task` of the project's kind; a ``ConfigError`` for a kind training lacks, or
    for a student that does not serve it (one line naming the students that do)."""
    task = TASKS.get(project.task)
    if task is None:
        raise ConfigError(
            f"training a student is only available for {', '.join(TASKS)} projects so far"
        )
    resolve_student(config.student, project.task)
    return task(config, project.labels(), runtime)


__all__ = ["TASKS", "ClassificationTask", "Task", "task_for"]
