"""Distillation training: ``train(project_path, config)`` trains a student on the teacher
outputs stored in the project and records the run, its metrics, checkpoints and held-out
predictions there.

The package, along its seams::

    config.py      TrainConfig: the run's settings (CLI flags and wizard fields come from it)
    loop.py        train() and the loop itself: step, report, validate, checkpoint, finish
    session.py     Session: what one run holds (task, rows, model, optimizer, schedule, position)
    checkpoint.py  run folders, the checkpoint format, save / load / resume
    task.py        Task: what the loop needs to know about a kind of project; classification
    generation.py  the generation task: causal LM students on prompts and completions
    losses.py      the registered loss terms and how a run's terms combine
    data.py        the rows a run trains on, and length-bucketed batches
    runtime.py     device, mixed precision, several processes
    result.py      TrainResult: what a finished run reports
    history.py     load_metrics(): a run's stored metrics, read back (RunMetrics)

Tasks. The loop and the session never ask what kind of project they train. A ``Task``
(``task.py``) provides the rows (``load``), the teacher's local model (``teacher_path``), the
tokenizer (``choose_tokenizer``) and how rows become token ids (``encode``), the student
(``build_student``, from the student registry; ``attach`` then hands it the run's tokenizer), the
batches (``batch``, ``forward``: named tensors), the loss terms (``loss_terms``: names in
``losses.LOSSES`` with weights and options), the validation metrics (``validate``, ``valid/loss``
at least, which picks the best checkpoint by default), what a checkpoint records
(``checkpoint_meta``) and the predictions stored when a run finishes (``predict``, a generator of
events that returns ``HeldOutScores``). ``TASKS`` maps a project's task to its implementation:
``ClassificationTask`` (``task.py``) and ``GenerationTask`` (``generation.py``: prompt + completion
with labels ``-100`` on the prompt, ``ce`` on the completion tokens, ``token_kd`` against a local
``lm:`` teacher run alongside, held-out completions written with ``kdstudio.core.generate``).

Importing this package is cheap (the GUI does it at start-up); torch loads on the first call.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from kdstudio.core.errors import TrainingError
from kdstudio.core.events import CancelToken, Event
from kdstudio.core.train.checkpoint import resumable_run, run_folder
from kdstudio.core.train.config import TrainConfig
from kdstudio.core.train.history import RunMetrics, load_metrics
from kdstudio.core.train.result import TrainResult


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
    ``Progress(stage="train")`` per optimizer step, ``Metric`` events (``train/loss`` and one
    ``train/<term>`` per loss term — ``train/kd``, ``train/ce``... —, ``train/lr``,
    ``valid/accuracy``, ``valid/agreement``, ``valid/kl``, ``valid/loss``...) that are also
    written to the project, and finally ``Finished(TrainResult(...))`` with ``run``,
    ``best_step``, ``valid_accuracy``, ``valid_agreement``, ``seconds`` and more. Checkpoints go
    to ``<project file>.runs/<run id>/{best,last}/``.

    ``resume_run`` continues a cancelled or interrupted run exactly where its last checkpoint
    stopped (same data order, optimizer, scheduler and random state). ``cancel`` is checked
    every step: cancelling keeps the last checkpoint, marks the run ``cancelled`` and raises
    ``Cancelled``. A diverging loss raises ``TrainingError`` and marks the run ``failed``.
    """
    from kdstudio.core.train.loop import train as _train

    return _train(project_path, config, resume_run=resume_run, cancel=cancel)


def close_unfinished_runs(project_path: str | Path, after_run: int, status: str, message: str = "") -> None:
    """Mark runs newer than ``after_run`` that are still ``running`` as ``status`` (``cancelled``,
    ``failed``): what a caller does when a training job stops without finishing its run (a
    thread that is abandoned, a process that is killed). See ``Project.close_unfinished_runs``."""
    from kdstudio.core.store import Project

    with Project(project_path) as project:
        project.close_unfinished_runs(after_run, status, message)


__all__ = [
    "RunMetrics",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "close_unfinished_runs",
    "load_metrics",
    "resumable_run",
    "run_folder",
    "train",
]
