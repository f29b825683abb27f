"""The training loop. ``train`` in ``kdstudio.core.train`` is the entry point; the session it
drives (data, model, optimizer, checkpoints) is ``kdstudio.core.train.session``."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdstudio.core.errors import Cancelled, TrainingError
from kdstudio.core.events import CancelToken, EtaClock, Event, Finished, Log, Progress
from kdstudio.core.store import Project
from kdstudio.core.students import count_parameters
from kdstudio.core.train.checkpoint import rng_state, run_folder
from kdstudio.core.train.config import TrainConfig
from kdstudio.core.train.data import LengthBucketBatcher
from kdstudio.core.train.losses import combined_loss
from kdstudio.core.train.result import TrainResult
from kdstudio.core.train.session import Session


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
        for event in run(session, cancel):
            if session.rt.is_main or isinstance(event, Finished):  # one process reports
                yield event
    finally:
        if session is not None:
            session.restore_threads()
            session.release()
        with contextlib.suppress(Exception):  # closed from another thread after an abandoned generator
            project.close()


def run(s: Session, cancel: CancelToken) -> Iterator[Event]:
    """Train to the end (or early stop), then predict held-out data with the best checkpoint."""
    yield from (Log(note) for note in s.notes)
    s.notes.clear()
    yield Log(
        f"student {s.cfg.student}: {count_parameters(s.model):,} parameters on {s.rt.device}; "
        f"{len(s.train_rows)} training rows, {len(s.valid_rows)} valid rows, {s.total_steps} steps"
    )
    s.clock, s.t0 = EtaClock(s.total_steps, s.state.step), time.monotonic()
    pending: dict[str, list[float]] = {}  # train metrics of the steps since the last log
    try:
        while s.state.epoch < s.epochs and not s.state.stopped_early:
            plan = s.batcher.plan(s.state.epoch)
            while s.state.group < len(plan) and not s.state.stopped_early:
                cancel.check()
                parts = train_step(s, plan[s.state.group], cancel)
                s.state.group, s.state.step = s.state.group + 1, s.state.step + 1
                s.rng_at_boundary = rng_state()
                yield from report_step(s, parts, pending)
                if eval_due(s, end_of_epoch=s.state.group == len(plan)):
                    yield from evaluate_and_save(s)
            if not s.state.stopped_early:
                s.state.epoch, s.state.group = s.state.epoch + 1, 0
        yield from finish(s)
    except (Cancelled, GeneratorExit, KeyboardInterrupt):  # Ctrl-C keeps the run resumable
        s.stop("cancelled")
        raise
    except BaseException as exc:
        s.stop("failed", error=str(exc) or type(exc).__name__)
        raise


def train_step(s: Session, group: np.ndarray, cancel: CancelToken) -> dict[str, float]:
    """One optimizer step over ``group``, in micro-batches; on out-of-memory, halve the
    micro-batch (the step still sees the whole group) and try again."""
    while True:
        try:
            return _accumulate(s, group, cancel)
        except torch.OutOfMemoryError:
            s.optimizer.zero_grad(set_to_none=True)
            s.rt.empty_cache()
            if s.state.micro <= 1:
                raise TrainingError(
                    "out of memory with one example per batch; lower --max-length or "
                    "choose a smaller student"
                ) from None
            s.state.micro //= 2
            s.notes.append(
                f"out of memory: micro-batch halved to {s.state.micro}, "
                f"{-(-len(group) // s.state.micro)} accumulation steps keep the batch size"
            )


def _accumulate(s: Session, group: np.ndarray, cancel: CancelToken) -> dict[str, float]:
    chunks = LengthBucketBatcher.micro_batches(group, s.state.micro)
    s.optimizer.zero_grad(set_to_none=True)
    terms = s.task.loss_terms()
    totals: dict[str, Any] = {}
    for k, chunk in enumerate(chunks):
        if k:
            cancel.check()
        with s.rt.no_sync(s.model, sync=k == len(chunks) - 1):
            with s.rt.autocast():
                batch = s.task.forward(s.model, s.task.batch(s.train_rows, chunk, s.rt.device))
                parts = combined_loss(terms, batch)
            s.rt.backward(parts["loss"] * (len(chunk) / len(group)))
        for name, value in parts.items():
            totals[name] = totals.get(name, 0.0) + value.detach().float() * (len(chunk) / len(group))
    values = {name: float(v) for name, v in totals.items()}
    if not math.isfinite(values["loss"]):
        raise TrainingError(
            f"the loss became {values['loss']} at step {s.state.step + 1} (epoch "
            f"{s.state.epoch + 1}); lower --lr (now {s.lr:g}) or check the teacher outputs"
        )
    s.rt.clip(s.params, s.optimizer, s.cfg.grad_clip)
    s.rt.step(s.optimizer)
    s.scheduler.step()
    s.state.seen += len(group) * s.rt.world
    return values


def selection_score(metrics: dict[str, float], cfg: TrainConfig) -> float:
    """Higher is better: what picks the best checkpoint and drives early stopping.

    ``auto`` is the valid loss for a KD run and gold accuracy for a hard-label run. With a few
    gold labels per class, valid accuracy moves by whole points from one evaluation to the next
    while the distillation loss on the same rows (which also sees the teacher's answer on every
    row) still falls steadily; choosing by accuracy stops a KD run on a lucky evaluation. A
    metric the valid split cannot give (no gold labels, no teacher answers) falls back to the
    next of accuracy, agreement, loss."""
    name = selection_metric(metrics, cfg)
    if name is None:
        return 0.0
    value = metrics[f"valid/{name}"]
    return -value if name == "loss" else value


def selection_metric(metrics: dict[str, float], cfg: TrainConfig) -> str | None:
    """The valid metric :func:`selection_score` reads (``accuracy``, ``agreement``, ``loss``);
    None when ``metrics`` has none of them."""
    wanted = cfg.checkpoint_metric
    if wanted == "auto":
        wanted = "accuracy" if cfg.hard_labels else "loss"
    order = [wanted] + [m for m in ("accuracy", "agreement", "loss") if m != wanted]
    return next((name for name in order if metrics.get(f"valid/{name}") is not None), None)


def stop_reason(s: Session) -> str | None:
    """Why the run stopped before its last epoch, in one sentence; None when it did not:
    ``stopped at epoch 15 of 40: validation loss did not improve for 3 evaluations``."""
    if not s.state.stopped_early:
        return None
    metric = selection_metric(s.state.best_metrics, s.cfg) or "score"
    return (
        f"stopped at epoch {s.state.epoch + 1} of {s.epochs}: validation {metric} did not improve for "
        f"{s.cfg.patience} evaluations (best at step {s.state.best_step})"
    )


def eval_due(s: Session, *, end_of_epoch: bool) -> bool:
    """Every ``eval_every`` steps and at the last step when set, else at each epoch's end."""
    last = s.state.step == s.total_steps
    if s.cfg.eval_every:
        return s.state.step % s.cfg.eval_every == 0 or last
    return end_of_epoch


def evaluate_and_save(s: Session) -> Iterator[Event]:
    """Validate; keep the best checkpoint by the checkpoint metric (``selection_score``); save last."""
    metrics = s.task.validate(s.rt.unwrap(s.model), s.valid_rows) if len(s.valid_rows) else {}
    for name, value in metrics.items():
        yield s.metric(name, value)
    s.flush_metrics()
    score = selection_score(metrics, s.cfg)
    if metrics and (s.state.best_score is None or score > s.state.best_score):
        s.state.best_score, s.state.best_step, s.state.best_metrics = score, s.state.step, metrics
        s.state.bad_evals = 0
        s.save("best")
    elif metrics:
        s.state.bad_evals += 1
        if s.cfg.patience and s.state.bad_evals >= s.cfg.patience:
            s.state.stopped_early = True
            yield Log(f"early stop at step {s.state.step}: {stop_reason(s)}")
    s.save("last")


def report_step(s: Session, parts: dict[str, float], pending: dict[str, list[float]]) -> Iterator[Event]:
    """Metric events every ``log_every`` steps (the mean of the ``pending`` steps), a Progress
    event every step."""
    yield from (Log(note, "warning") for note in s.notes)
    s.notes.clear()
    for name, value in parts.items():
        pending.setdefault(name, []).append(value)
    if s.state.step % s.log_every == 0 or s.state.step == s.total_steps:
        for name, values in pending.items():
            yield s.metric(f"train/{name}", sum(values) / len(values))
        yield s.metric("train/lr", s.scheduler.get_last_lr()[0])
        pending.clear()
        if time.monotonic() - s.flushed_at > 1.0:
            s.flush_metrics()
    info = {
        "epoch": s.epoch_float(),
        "epochs": s.epochs,
        "loss": parts["loss"],
        "lr": s.scheduler.get_last_lr()[0],
        "examples_per_s": s.state.seen / max(s.elapsed(), 1e-9),
    }
    yield Progress("train", s.state.step, s.total_steps, s.clock.eta(s.state.step), info)


def finish(s: Session) -> Iterator[Event]:
    """Final checkpoints, the best checkpoint's predictions on held-out data, the run summary."""
    if not s.state.best_metrics and len(s.valid_rows) == 0:
        s.save("best")
        s.state.best_step = s.state.step
    s.save("last")
    s.flush_metrics()
    seconds, best = s.elapsed(), s.state.best_metrics
    summary: dict[str, Any] = {
        "run": s.run_id,
        "best_step": s.state.best_step,
        "steps": s.state.step,
        "valid_accuracy": best.get("valid/accuracy"),
        "valid_agreement": best.get("valid/agreement"),
        "valid_kl": best.get("valid/kl"),
        "valid_loss": best.get("valid/loss"),
        "valid_perplexity": best.get("valid/perplexity"),
        "task": s.project.task,
        "kd": None if s.project.task != "generation" else "references" if s.cfg.hard_labels else s.cfg.kd,
        "seconds": round(seconds, 3),
        "student": s.cfg.student,
        "params": count_parameters(s.model),
        "device": str(s.rt.device),
        "examples_per_s": round(s.state.seen / max(seconds, 1e-9), 2),
        "stopped_early": s.state.stopped_early,
        "stop_reason": stop_reason(s),
        "reviews_used": s.reviews_used,
        "teacher_calibration": s.calibration,
        "n_train": len(s.train_rows),
        "n_valid": len(s.valid_rows),
        "hard_labels": s.cfg.hard_labels,
        "peak_memory_mb": s.rt.peak_memory_mb(),
    }
    if not s.rt.is_main:  # only the main process predicts and records the run
        yield Finished(TrainResult(**summary))
        return
    folder = run_folder(s.project.path, s.run_id)
    scores = yield from s.task.predict(
        s.project, s.run_id, folder / "best", teacher_id=s.teacher_id, device=str(s.rt.device)
    )
    held_out = {f.name: getattr(scores, f.name) for f in dataclasses.fields(scores)}
    result = TrainResult(**summary, **held_out, checkpoint=str(folder / "best"))
    s.project.update_run(
        s.run_id,
        status="finished",
        best_checkpoint=str(folder / "best"),
        last_checkpoint=str(folder / "last"),
        summary=result.to_json(),
    )
    yield Finished(result)
