"""Distillation training: ``train(project_path, config)`` trains a student on the teacher
outputs stored in the project and records the run, its metrics, checkpoints and test
predictions there.

Importing this package is cheap (the GUI does it at start-up); torch loads on the first call.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from kdstudio.core.events import CancelToken, Event
from kdstudio.core.train.config import TrainConfig


def train(
    project_path: str | Path,
    config: TrainConfig,
    *,
    resume_run: int | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Train ``config.student`` on the project's teacher outputs (or gold labels with
    ``config.hard_labels``), yielding events.

    Opens its own ``Project(project_path)`` (safe in a worker thread). Yields ``Log`` lines, a
    ``Progress(stage="train")`` per optimizer step, ``Metric`` events (``train/loss``,
    ``train/kd``, ``train/ce``, ``train/lr``, ``valid/accuracy``, ``valid/agreement``,
    ``valid/kl``, ``valid/loss``...) that are also written to the project, and finally
    ``Finished(result)`` with ``run``, ``best_step``, ``valid_accuracy``, ``valid_agreement``,
    ``seconds`` and more. Checkpoints go to ``<project file>.runs/<run id>/{best,last}/``.

    ``resume_run`` continues a cancelled or interrupted run exactly where its last checkpoint
    stopped (same data order, optimizer, scheduler and random state). ``cancel`` is checked
    every step: cancelling keeps the last checkpoint, marks the run ``cancelled`` and raises
    ``Cancelled``. A diverging loss raises ``TrainingError`` and marks the run ``failed``.
    """
    from kdstudio.core.train.loop import train as _train

    return _train(project_path, config, resume_run=resume_run, cancel=cancel)


def run_folder(project_path: str | Path, run_id: int) -> Path:
    """Where a run keeps its checkpoints: ``<project file>.runs/<run id>/`` (``best/``, ``last/``)."""
    return Path(str(Path(project_path).absolute()) + ".runs") / str(run_id)


def __getattr__(name: str):
    if name == "TrainingError":
        from kdstudio.core.train.loop import TrainingError

        return TrainingError
    raise AttributeError(name)


__all__ = ["TrainConfig", "TrainingError", "run_folder", "train"]
