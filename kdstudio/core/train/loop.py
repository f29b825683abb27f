"""The training loop. ``train`` in ``kdstudio.core.train`` is the entry point; this module
holds the session (everything a checkpoint restores) and the loop that drives it."""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdstudio.core.errors import Cancelled, ConfigError, KDStudioError
from kdstudio.core.events import CancelToken, EtaClock, Event, Finished, Log, Metric, Progress
from kdstudio.core.store import Project, now
from kdstudio.core.students import (
    build_student,
    count_parameters,
    default_epochs,
    default_lr,
    init_embeddings_from_teacher,
    load_student,
    pad_batch,
    parse_student_spec,
    predict_probs,
    save_student,
    uses_own_tokenizer,
)
from kdstudio.core.students.tokenizer import (
    encode,
    load_tokenizer,
    pad_id,
    teacher_model_path,
    train_wordpiece,
)
from kdstudio.core.train import run_folder
from kdstudio.core.train.config import TrainConfig
from kdstudio.core.train.data import LengthBucketBatcher, Rows, load_training_data
from kdstudio.core.train.losses import distillation_loss, hidden_mse_loss, kl_per_example
from kdstudio.core.train.runtime import Runtime

TRAINER_STATE = "trainer_state.pt"


class TrainingError(KDStudioError):
    """Training cannot go on: the loss diverged, or memory ran out even at one example per batch."""


def selection_score(metrics: dict[str, float], cfg: TrainConfig) -> float:
    """Higher is better: what picks the best checkpoint and drives early stopping.

    ``auto`` is the valid loss for a KD run and gold accuracy for a hard-label run. With a few
    gold labels per class, valid accuracy moves by whole points from one evaluation to the next
    while the distillation loss on the same rows (which also sees the teacher's answer on every
    row) still falls steadily; choosing by accuracy stops a KD run on a lucky evaluation. A
    metric the valid split cannot give (no gold labels, no teacher answers) falls back to the
    next of accuracy, agreement, loss."""
    wanted = cfg.checkpoint_metric
    if wanted == "auto":
        wanted = "accuracy" if cfg.hard_labels else "loss"
    order = [wanted] + [m for m in ("accuracy", "agreement", "loss") if m != wanted]
    for name in order:
        value = metrics.get(f"valid/{name}")
        if value is not None:
            return -value if name == "loss" else value
    return 0.0


@dataclass
class LoopState:
    """The loop's position and bookkeeping; saved with every checkpoint."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch (0-based)
    group: int = 0  # next step-group of this epoch
    micro: int = 32  # rows per micro-batch (halves on out-of-memory)
    seen: int = 0  # training rows processed
    elapsed_s: float = 0.0  # training time before this session
    best_score: float | None = None
    best_step: int = 0
    best_metrics: dict[str, float] = field(default_factory=dict)
    bad_evals: int = 0
    stopped_early: bool = False


def train(
    project_path: str | Path,
    config: TrainConfig,
    *,
    resume_run: int | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Train a student (see ``kdstudio.core.train``)."""
    cancel = cancel or CancelToken()
    project = Project(project_path)
    session: Session | None = None
    try:
        session = Session(project, config, resume_run)
        for event in session.run(cancel):
            if session.rt.is_main or isinstance(event, Finished):  # one process reports
                yield event
    finally:
        if session is not None:
            session.restore_threads()
        try:
            project.close()
        except Exception:  # closed from another thread after an abandoned generator  # noqa: BLE001
            pass


class Session:
    """One training run: the data, the model and optimizer, and the loop over them."""

    def __init__(self, project: Project, config: TrainConfig, resume_run: int | None) -> None:
        self.project, self.notes = project, []
        if resume_run is not None:
            config = self._resume_config(resume_run, config)
        self.cfg = config.validate()
        self.rt = Runtime(self.cfg.device)
        self._threads = torch.get_num_threads()
        if self.rt.device.type == "cpu":
            cores = os.cpu_count() or 2
            torch.set_num_threads(
                self.cfg.num_threads or max(1, (cores // self.rt.world) - (self.rt.world == 1))
            )
        self.teacher_id = self._teacher_id()
        data = load_training_data(
            project,
            teacher_id=self.teacher_id,
            hard_labels=self.cfg.hard_labels,
            seed=self.cfg.seed,
        )
        self.train_rows, self.valid_rows, self.reviews_used = (
            data.train,
            data.valid,
            data.reviews_used,
        )
        self.notes += data.notes
        self.labels = project.labels()
        self.run_id = resume_run
        torch.manual_seed(self.cfg.seed)
        if resume_run is not None:
            model, self.tokenizer, meta = load_student(
                run_folder(project.path, resume_run) / "last"
            )
            self.tokenizer_source = meta.get("tokenizer_source", "checkpoint")
        else:
            self.tokenizer, self.tokenizer_source = self._choose_tokenizer()
            model = build_student(
                self.cfg.student,
                len(self.labels),
                self.tokenizer,
                labels=self.labels,
                teacher_path=teacher_model_path(self._teacher_spec()),
                max_length=self.cfg.max_length,
            )
            if (self.cfg.embed_init == "teacher" and self.tokenizer_source == "teacher"
                    and not uses_own_tokenizer(self.cfg.student)):
                self.notes.append(
                    init_embeddings_from_teacher(model, teacher_model_path(self._teacher_spec()))
                )
        for rows in (self.train_rows, self.valid_rows):
            rows.tokens = encode(self.tokenizer, rows.texts, self.cfg.max_length)
        self.pad = pad_id(self.tokenizer)
        self.teacher_encoder, self.projection = self._hidden_mse_parts(model)
        self.lr = self.cfg.lr or default_lr(self.cfg.student)
        self.epochs = self.cfg.epochs or default_epochs(self.cfg.student)
        model = model.to(self.rt.device).train()
        params = [p for p in model.parameters() if p.requires_grad]
        extra = list(self.projection.parameters()) if self.projection is not None else []
        optimizer = torch.optim.AdamW(
            [
                {
                    "params": [p for p in params + extra if p.ndim >= 2],
                    "weight_decay": self.cfg.weight_decay,
                },
                {"params": [p for p in params + extra if p.ndim < 2], "weight_decay": 0.0},
            ],
            lr=self.lr,
        )
        self.model, self.optimizer = self.rt.prepare(model, optimizer)
        self.params = params + extra
        self.group_size = self.cfg.batch_size * self.cfg.grad_accum * self.rt.world
        self.batcher = LengthBucketBatcher(
            self.train_rows.lengths,
            self.group_size,
            self.cfg.seed,
            world=self.rt.world,
            rank=self.rt.rank,
        )
        if len(self.batcher) == 0:
            raise ConfigError(
                f"too few training examples ({len(self.train_rows)}) for {self.rt.world} processes"
            )
        self.total_steps = self.epochs * len(self.batcher)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.state = LoopState(micro=self.cfg.batch_size)
        self.log_every = self.cfg.log_every or max(1, self.total_steps // 500)
        self._pending_rows: list[tuple] = []
        self._flushed_at = time.monotonic()
        self._sums: dict[str, float] = {}
        self._sum_n = 0
        if resume_run is not None:
            self._load_trainer_state(run_folder(project.path, resume_run) / "last")
        self.rng_at_boundary = self._rng_state()
        self.stored_config = {**self.cfg.to_dict(), "lr": self.lr, "epochs": self.epochs}
        if self.rt.is_main:
            self._open_run_record()
        self.run_id = self.rt.broadcast(self.run_id)

    # -- setup helpers ------------------------------------------------------------------------
    def _resume_config(self, run_id: int, given: TrainConfig) -> TrainConfig:
        run = self.project.run(run_id)
        if run is None:
            raise ConfigError(f"no run {run_id} in this project")
        if run["status"] == "finished":
            raise ConfigError(f"run {run_id} already finished; nothing to resume")
        if not (run_folder(self.project.path, run_id) / "last" / TRAINER_STATE).is_file():
            raise ConfigError(
                f"run {run_id} has no checkpoint to resume from; start a new run instead"
            )
        # A run stored before the checkpoint metric was a setting chose by accuracy first.
        stored = TrainConfig.from_dict({"checkpoint_metric": "accuracy", **run["config"]})
        stored.device, stored.num_threads = given.device, given.num_threads  # hardware may differ
        self.notes.append(f"resuming run {run_id} with its stored settings")
        return stored

    def _teacher_id(self) -> int | None:
        if self.cfg.teacher is not None:
            if self.project.teacher(self.cfg.teacher) is None:
                raise ConfigError(f"no teacher {self.cfg.teacher} in this project")
            return self.cfg.teacher
        return self.project.default_teacher()

    def _teacher_spec(self) -> str | None:
        teacher = self.project.teacher(self.teacher_id) if self.teacher_id is not None else None
        return teacher["spec"] if teacher else None

    def _choose_tokenizer(self) -> tuple[Any, str]:
        kind, arg = parse_student_spec(self.cfg.student)
        path = teacher_model_path(self._teacher_spec())
        if uses_own_tokenizer(self.cfg.student):
            source = arg if kind == "hf" else path
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
        if path:
            try:
                return load_tokenizer(path), "teacher"
            except (OSError, ValueError):
                self.notes.append(
                    f"the teacher's tokenizer ({path}) did not load; training a WordPiece instead"
                )
        texts = self.train_rows.texts + self.valid_rows.texts
        self.notes.append(
            f"training a WordPiece tokenizer ({self.cfg.vocab_size} pieces) on {len(texts)} texts"
        )
        return train_wordpiece(texts, self.cfg.vocab_size), "wordpiece"

    def _hidden_mse_parts(self, model: Any) -> tuple[Any, Any]:
        if self.cfg.hidden_mse <= 0:
            return None, None
        path = teacher_model_path(self._teacher_spec())
        if (
            not path
            or getattr(model, "arch", "") != "hf"
            or self.tokenizer_source not in ("teacher", "checkpoint")
        ):
            raise ConfigError(
                "--hidden-mse needs a local transformer teacher and a transformer student that "
                "uses the teacher's tokenizer (transformer-*, teacher-layers:K)"
            )
        from transformers import AutoModel

        teacher = AutoModel.from_pretrained(path).to(self.rt.device).eval().requires_grad_(False)
        torch.manual_seed(self.cfg.seed + 1)
        projection = torch.nn.Linear(model.hidden_size, teacher.config.hidden_size).to(
            self.rt.device
        )
        return teacher, projection

    def _lr_factor(self, step: int) -> float:
        warm = int(self.cfg.warmup_ratio * self.total_steps)
        if step < warm:
            return (step + 1) / (warm + 1)
        progress = (step - warm) / max(1, self.total_steps - warm)
        if self.cfg.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return max(0.0, 1.0 - progress)

    def _open_run_record(self) -> None:
        if self.run_id is None:
            self.run_id = self.project.create_run(
                self.cfg.student, self.teacher_id, self.stored_config, name=self.cfg.name
            )
        else:
            self.project.truncate_metrics(self.run_id, self.state.step)
            self.project.update_run(self.run_id, status="running", error=None, finished=None)
        run_folder(self.project.path, self.run_id).mkdir(parents=True, exist_ok=True)

    # -- the loop ---------------------------------------------------------------------------
    def run(self, cancel: CancelToken) -> Iterator[Event]:
        """Train to the end (or early stop), then predict the test split with the best checkpoint."""
        for note in self.notes:
            yield Log(note)
        self.notes.clear()
        yield Log(
            f"student {self.cfg.student}: {count_parameters(self.model):,} parameters on {self.rt.device}; "
            f"{len(self.train_rows)} training rows, {len(self.valid_rows)} valid rows, "
            f"{self.total_steps} steps"
        )
        self.clock, self.t0 = EtaClock(self.total_steps, self.state.step), time.monotonic()
        try:
            while self.state.epoch < self.epochs and not self.state.stopped_early:
                plan = self.batcher.plan(self.state.epoch)
                while self.state.group < len(plan) and not self.state.stopped_early:
                    cancel.check()
                    parts = self.train_step(plan[self.state.group], cancel)
                    self.state.group, self.state.step = self.state.group + 1, self.state.step + 1
                    self.rng_at_boundary = self._rng_state()
                    yield from self.report_step(parts)
                    if self._eval_due(end_of_epoch=self.state.group == len(plan)):
                        yield from self.evaluate_and_save()
                if not self.state.stopped_early:
                    self.state.epoch, self.state.group = self.state.epoch + 1, 0
            yield from self.finish()
        except (Cancelled, GeneratorExit, KeyboardInterrupt):  # Ctrl-C keeps the run resumable
            self.stop("cancelled")
            raise
        except BaseException as exc:
            self.stop("failed", error=str(exc) or type(exc).__name__)
            raise

    def train_step(self, group: np.ndarray, cancel: CancelToken) -> dict[str, float]:
        """One optimizer step over ``group``, in micro-batches; on out-of-memory, halve the
        micro-batch (the step still sees the whole group) and try again."""
        while True:
            try:
                return self._accumulate(group, cancel)
            except torch.OutOfMemoryError:
                self.optimizer.zero_grad(set_to_none=True)
                self.rt.empty_cache()
                if self.state.micro <= 1:
                    raise TrainingError(
                        "out of memory with one example per batch; lower --max-length or "
                        "choose a smaller student"
                    ) from None
                self.state.micro //= 2
                self.notes.append(
                    f"out of memory: micro-batch halved to {self.state.micro}, "
                    f"{-(-len(group) // self.state.micro)} accumulation steps keep the batch size"
                )

    def _accumulate(self, group: np.ndarray, cancel: CancelToken) -> dict[str, float]:
        chunks = LengthBucketBatcher.micro_batches(group, self.state.micro)
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, torch.Tensor] = {}
        for k, chunk in enumerate(chunks):
            if k:
                cancel.check()
            with self.rt.no_sync(self.model, sync=k == len(chunks) - 1):
                with self.rt.autocast():
                    parts = self.losses(self.train_rows, chunk, self.model)
                self.rt.backward(parts["loss"] * (len(chunk) / len(group)))
            for name, value in parts.items():
                totals[name] = totals.get(name, 0.0) + value.detach().float() * (
                    len(chunk) / len(group)
                )
        values = {name: float(v) for name, v in totals.items()}
        if not math.isfinite(values["loss"]):
            raise TrainingError(
                f"the loss became {values['loss']} at step {self.state.step + 1} (epoch "
                f"{self.state.epoch + 1}); lower --lr (now {self.lr:g}) or check the teacher outputs"
            )
        self.rt.clip(self.params, self.optimizer, self.cfg.grad_clip)
        self.rt.step(self.optimizer)
        self.scheduler.step()
        self.state.seen += len(group) * self.rt.world
        return values

    def losses(self, rows: Rows, index: np.ndarray, model: Any) -> dict[str, torch.Tensor]:
        """Loss parts for rows ``index``: kd, ce (and hidden_mse), combined as configured."""
        dev = self.rt.device
        input_ids, mask = (
            t.to(dev, non_blocking=True)
            for t in pad_batch([rows.tokens[i] for i in index], self.pad)
        )
        hidden = self.projection is not None and model.training
        out = (
            model(input_ids, mask, output_hidden_states=True) if hidden else model(input_ids, mask)
        )
        logits = out[0] if hidden else out
        parts = distillation_loss(
            logits,
            torch.from_numpy(rows.teacher[index]).to(dev),
            torch.from_numpy(rows.gold[index]).to(dev),
            temperature=self.cfg.temperature,
            alpha=self.cfg.alpha,
            hard_labels=self.cfg.hard_labels,
            has_teacher=torch.from_numpy(rows.has_teacher[index]).to(dev),
        )
        if hidden:
            with torch.no_grad():
                teacher_states = self.teacher_encoder(
                    input_ids=input_ids, attention_mask=mask, output_hidden_states=True
                ).hidden_states
            student_states = out[1]
            ls, lt = len(student_states) - 1, len(teacher_states) - 1
            mse = (
                sum(
                    hidden_mse_loss(
                        self.projection(student_states[i]), teacher_states[round(i * lt / ls)], mask
                    )
                    for i in range(1, ls + 1)
                )
                / ls
            )
            parts["hidden_mse"] = mse
            parts["loss"] = parts["loss"] + self.cfg.hidden_mse * mse
        return parts

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Loss parts, gold accuracy, agreement with the teacher and KL(teacher ‖ student) on valid."""
        rows, model = self.valid_rows, self.rt.unwrap(self.model)
        model.eval()
        order = np.argsort(rows.lengths, kind="stable")
        logits = torch.empty((len(rows), len(self.labels)))
        for start in range(0, len(order), self.cfg.batch_size * 2):
            idx = order[start : start + self.cfg.batch_size * 2]
            input_ids, mask = pad_batch([rows.tokens[i] for i in idx], self.pad)
            with self.rt.autocast():
                logits[torch.from_numpy(idx)] = (
                    model(input_ids.to(self.rt.device), mask.to(self.rt.device)).float().cpu()
                )
        model.train()
        teacher, gold, has = (
            torch.from_numpy(a) for a in (rows.teacher, rows.gold, rows.has_teacher)
        )
        parts = distillation_loss(
            logits,
            teacher,
            gold,
            temperature=self.cfg.temperature,
            alpha=self.cfg.alpha,
            hard_labels=self.cfg.hard_labels or not bool(has.any()),
            has_teacher=has,
        )
        out = {f"valid/{k}": float(v) for k, v in parts.items()}
        pred = logits.argmax(-1)
        if bool((gold >= 0).any()):
            out["valid/accuracy"] = float((pred[gold >= 0] == gold[gold >= 0]).float().mean())
        if bool(has.any()):
            out["valid/agreement"] = float((pred[has] == teacher[has].argmax(-1)).float().mean())
            out["valid/kl"] = float(kl_per_example(teacher[has], logits[has]).mean())
        return out

    def evaluate_and_save(self) -> Iterator[Event]:
        """Evaluate; keep the best checkpoint by the checkpoint metric (see ``selection_score``); save last."""
        metrics = self.evaluate() if len(self.valid_rows) else {}
        for name, value in metrics.items():
            yield self._metric(name, value)
        self.flush_metrics()
        score = selection_score(metrics, self.cfg)
        if metrics and (self.state.best_score is None or score > self.state.best_score):
            self.state.best_score, self.state.best_step, self.state.best_metrics = (
                score,
                self.state.step,
                metrics,
            )
            self.state.bad_evals = 0
            self.save_checkpoint("best")
        elif metrics:
            self.state.bad_evals += 1
            if self.cfg.patience and self.state.bad_evals >= self.cfg.patience:
                self.state.stopped_early = True
                yield Log(
                    f"early stop at step {self.state.step}: no better valid score in {self.cfg.patience} "
                    f"evaluations (best at step {self.state.best_step})"
                )
        self.save_checkpoint("last")

    def report_step(self, parts: dict[str, float]) -> Iterator[Event]:
        """Metric events every ``log_every`` steps (averaged), a Progress event every step."""
        for note in self.notes:
            yield Log(note, "warning")
        self.notes.clear()
        for name, value in parts.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._sum_n += 1
        if self.state.step % self.log_every == 0 or self.state.step == self.total_steps:
            for name, total in self._sums.items():
                yield self._metric(f"train/{name}", total / self._sum_n)
            yield self._metric("train/lr", self.scheduler.get_last_lr()[0])
            self._sums, self._sum_n = {}, 0
            if time.monotonic() - self._flushed_at > 1.0:
                self.flush_metrics()
        seconds = time.monotonic() - self.t0
        yield Progress(
            "train",
            self.state.step,
            self.total_steps,
            self.clock.eta(self.state.step),
            {
                "epoch": self.epoch_float(),
                "epochs": self.epochs,
                "loss": parts["loss"],
                "lr": self.scheduler.get_last_lr()[0],
                "examples_per_s": self.state.seen / max(seconds + self.state.elapsed_s, 1e-9),
            },
        )

    def finish(self) -> Iterator[Event]:
        """Final evaluation if due, last/best checkpoints, test predictions, run summary."""
        if not self.state.best_metrics and len(self.valid_rows) == 0:
            self.save_checkpoint("best")
            self.state.best_step = self.state.step
        self.save_checkpoint("last")
        self.flush_metrics()
        seconds = self.state.elapsed_s + time.monotonic() - self.t0
        result: dict[str, Any] = {
            "run": self.run_id,
            "best_step": self.state.best_step,
            "steps": self.state.step,
            "valid_accuracy": self.state.best_metrics.get("valid/accuracy"),
            "valid_agreement": self.state.best_metrics.get("valid/agreement"),
            "valid_kl": self.state.best_metrics.get("valid/kl"),
            "seconds": round(seconds, 3),
            "student": self.cfg.student,
            "params": count_parameters(self.model),
            "device": str(self.rt.device),
            "examples_per_s": round(self.state.seen / max(seconds, 1e-9), 2),
            "stopped_early": self.state.stopped_early,
            "reviews_used": self.reviews_used,
            "n_train": len(self.train_rows),
            "n_valid": len(self.valid_rows),
            "hard_labels": self.cfg.hard_labels,
            "peak_memory_mb": self.rt.peak_memory_mb(),
        }
        if self.rt.is_main:
            folder = run_folder(self.project.path, self.run_id)
            yield Log("predicting the test split with the best checkpoint")
            result.update(self.predict_test(folder / "best"))
            result["checkpoint"] = str(folder / "best")
            self.project.update_run(
                self.run_id,
                status="finished",
                best_checkpoint=str(folder / "best"),
                last_checkpoint=str(folder / "last"),
                summary=result,
            )
        yield Finished(result)

    def predict_test(self, checkpoint: Path) -> dict[str, Any]:
        """Write the best checkpoint's predictions into the project — the test split, and the
        transfer set (train, unlabeled) so the comparison viewer can show where the student parts
        from the teacher on the data it learned from, less the variants ``kdstudio augment``
        made (they are not the user's texts); return test accuracy/agreement."""
        test_ids = {r[0] for r in self.project.examples("test")}
        variants = self.project.augmented_ids()
        rows = sorted(self.project.examples("test") + self.project.examples("train")
                      + [r for r in self.project.examples("unlabeled") if r[0] not in variants])
        if not test_ids:
            return {"n_test": 0, "test_accuracy": None, "test_agreement": None}
        model, tokenizer, meta = load_student(checkpoint, device=str(self.rt.device))
        probs = predict_probs(
            model, tokenizer, [r[1] for r in rows], batch_size=128, max_length=meta["max_length"]
        )
        teacher = {}
        if self.teacher_id is not None:
            teacher = {
                o["id"]: np.asarray(o["probs"], dtype=np.float64)
                for o in self.project.teacher_outputs(self.teacher_id, ["test", "train", "unlabeled"])
                if o["probs"] is not None and len(o["probs"]) == len(self.labels)
            }
        records, hits, agree = [], [], []
        for (ex_id, _, gold), p in zip(rows, probs.astype(np.float64), strict=True):
            top = np.sort(p)[::-1]
            label = int(p.argmax())
            kl = None
            if ex_id in teacher:
                t = teacher[ex_id] / teacher[ex_id].sum()
                kl = float(
                    np.sum(
                        np.where(
                            t > 0,
                            t * (np.log(np.where(t > 0, t, 1.0)) - np.log(np.maximum(p, 1e-12))),
                            0.0,
                        )
                    )
                )
                if ex_id in test_ids:
                    agree.append(label == int(t.argmax()))
            if gold is not None and ex_id in test_ids:
                hits.append(label == gold)
            records.append(
                {
                    "example": ex_id,
                    "probs": [round(float(x), 6) for x in p],
                    "label": label,
                    "confidence": float(top[0]),
                    "margin": float(top[0] - (top[1] if len(top) > 1 else 0.0)),
                    "entropy": float(
                        -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0))
                    ),
                    "kl": kl,
                    "latency_ms": None,
                }
            )
        self.project.save_predictions(self.run_id, records)
        return {
            "n_test": len(test_ids),
            "test_accuracy": float(np.mean(hits)) if hits else None,
            "test_agreement": float(np.mean(agree)) if agree else None,
        }

    # -- checkpoints, metrics, stopping -----------------------------------------------------
    def save_checkpoint(self, which: str) -> None:
        """Write ``best`` or ``last``: the student folder plus everything ``--resume`` needs."""
        if not self.rt.is_main or self.run_id is None:
            return
        folder = run_folder(self.project.path, self.run_id) / which
        partial = folder.with_name(which + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        state = LoopState(
            **{**asdict(self.state), "elapsed_s": self.state.elapsed_s + time.monotonic() - self.t0}
        )
        meta = {
            "spec": self.cfg.student,
            "labels": self.labels,
            "max_length": self.cfg.max_length,
            "run": self.run_id,
            "step": self.state.step,
            "epoch": self.epoch_float(),
            "teacher": self.teacher_id,
            "tokenizer_source": self.tokenizer_source,
            "hard_labels": self.cfg.hard_labels,
            "temperature": self.cfg.temperature,
            "alpha": self.cfg.alpha,
            "created": now(),
            "valid": self.state.best_metrics if which == "best" else {},
        }
        save_student(self.rt.unwrap(self.model), self.tokenizer, partial, meta)
        torch.save(
            {
                "config": self.stored_config,
                "loop": asdict(state),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": self.rng_at_boundary,
                "scaler": self.rt.scaler.state_dict() if self.rt.scaler is not None else None,
                "projection": self.projection.state_dict() if self.projection is not None else None,
            },
            partial / TRAINER_STATE,
        )
        old = folder.with_name(which + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        partial.rename(folder)
        shutil.rmtree(old, ignore_errors=True)

    def _load_trainer_state(self, folder: Path) -> None:
        saved = torch.load(folder / TRAINER_STATE, map_location="cpu", weights_only=True)
        self.state = LoopState(**saved["loop"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        if saved.get("projection") is not None and self.projection is not None:
            self.projection.load_state_dict(saved["projection"])
        if saved.get("scaler") is not None and self.rt.scaler is not None:
            self.rt.scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["rng"]["cpu"])
        if saved["rng"].get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["rng"]["cuda"])

    @staticmethod
    def _rng_state() -> dict[str, Any]:
        return {
            "cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def _eval_due(self, *, end_of_epoch: bool) -> bool:
        last = self.state.step == self.total_steps
        if self.cfg.eval_every:
            return self.state.step % self.cfg.eval_every == 0 or last
        return end_of_epoch

    def epoch_float(self) -> float:
        return round(self.state.epoch + self.state.group / max(1, len(self.batcher)), 4)

    def _metric(self, name: str, value: float) -> Metric:
        wall = round(self.state.elapsed_s + time.monotonic() - self.t0, 3)
        self._pending_rows.append((self.state.step, self.epoch_float(), wall, name, float(value)))
        return Metric(
            name, float(value), self.state.step, self.epoch_float(), wall, run=self.run_id
        )

    def flush_metrics(self, project: Project | None = None) -> None:
        if self._pending_rows and self.rt.is_main and self.run_id is not None:
            (project or self.project).add_metrics(self.run_id, self._pending_rows)
        self._pending_rows, self._flushed_at = [], time.monotonic()

    def stop(self, status: str, *, error: str | None = None) -> None:
        """The stop path (cancel, failure, abandoned generator): keep the last checkpoint when the
        run was cancelled, record the status. Works from any thread (opens its own connection)."""
        if not self.rt.is_main or self.run_id is None:
            return
        with Project(self.project.path) as project:
            self.flush_metrics(project)
            if status == "cancelled" and hasattr(self, "t0"):
                self.save_checkpoint("last")
            fields: dict[str, Any] = {"status": status}
            last = run_folder(project.path, self.run_id) / "last"
            if last.is_dir():
                fields["last_checkpoint"] = str(last)
            if error:
                fields["error"] = error
            project.update_run(self.run_id, **fields)

    def restore_threads(self) -> None:
        torch.set_num_threads(self._threads)
