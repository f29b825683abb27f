"""Checkpoints: where a run keeps them, what they hold, and how a run resumes from one.

A run's folder is ``<project file>.runs/<run id>/`` with ``best/`` and ``last/``. Each is a
student folder (``kdstudio.core.students.save_student``: weights, tokenizer, ``student.json``)
plus ``trainer_state.pt``, a dict with everything else ``--resume`` needs, config included::

    config      the run's stored settings (TrainConfig fields, with the lr and epochs it chose)
    loop        LoopState: step, epoch, step-group, micro-batch size, best score so far...
    optimizer   optimizer.state_dict()            scheduler   scheduler.state_dict()
    rng         torch CPU (and CUDA) RNG state at the last step boundary
    scaler      the fp16 GradScaler's state, or None
    projection  the hidden-state projection's weights, or None

A checkpoint is written to ``<which>.partial``; the previous one is renamed to ``<which>.old``,
the partial renamed into place and the ``.old`` removed. A crash at any point leaves a whole
checkpoint: killed between the two renames, ``<which>`` is missing and every reader (``resume``,
``load_student``, evaluation, export) renames ``<which>.old`` back first
(``kdstudio.core.students.recover_interrupted_save``); the next save clears stale leftovers.
Resuming rebuilds the epoch's batch order from the seed and restores all of the above, so a
resumed run ends exactly where an uninterrupted one would.

Importing this module is cheap: torch loads when a checkpoint is saved or read.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kdstudio.core.errors import ConfigError, TrainingError, disk_full
from kdstudio.core.train.config import TrainConfig

TRAINER_STATE = "trainer_state.pt"


def run_folder(project_path: str | Path, run_id: int) -> Path:
    """Where a run keeps its checkpoints: ``<project file>.runs/<run id>/`` (``best/``, ``last/``)."""
    return Path(str(Path(project_path).absolute()) + ".runs") / str(run_id)


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


def rng_state() -> dict[str, Any]:
    """torch's random state now (CPU, and every CUDA device when there is one)."""
    import torch

    return {
        "cpu": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def save_checkpoint(
    folder: Path,
    *,
    model: Any,
    tokenizer: Any,
    meta: dict[str, Any],
    config: dict[str, Any],
    loop: LoopState,
    optimizer: Any,
    scheduler: Any,
    rng: dict[str, Any],
    scaler: Any = None,
    projection: Any = None,
) -> None:
    """Write the student folder ``folder`` and its ``trainer_state.pt`` (see the module docstring)."""
    import torch

    from kdstudio.core.students import recover_interrupted_save, save_student

    recover_interrupted_save(folder)  # never clear `.old` while it is the only whole checkpoint
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        save_student(model, tokenizer, partial, meta)
        torch.save(
            {
                "config": config,
                "loop": asdict(loop),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "projection": projection.state_dict() if projection is not None else None,
            },
            partial / TRAINER_STATE,
        )
    except BaseException as exc:  # a half-written checkpoint never replaces the whole one
        shutil.rmtree(partial, ignore_errors=True)
        if disk_full(exc):
            raise TrainingError(
                f"the disk is full: the {folder.name} checkpoint could not be saved in {folder.parent} "
                f"(the previous one is kept); free some space and resume the run"
            ) from None
        raise
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    partial.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(
    folder: Path, *, optimizer: Any, scheduler: Any, scaler: Any = None, projection: Any = None
) -> LoopState:
    """Restore the optimizer, scheduler, scaler, projection and torch's RNG from ``folder``'s
    ``trainer_state.pt``; return the loop's saved position. (The weights are the student folder's.)"""
    import torch

    saved = torch.load(folder / TRAINER_STATE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    if saved.get("projection") is not None and projection is not None:
        projection.load_state_dict(saved["projection"])
    if saved.get("scaler") is not None and scaler is not None:
        scaler.load_state_dict(saved["scaler"])
    torch.set_rng_state(saved["rng"]["cpu"])
    if saved["rng"].get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
    return LoopState(**saved["loop"])


def resume_config(project: Any, run_id: int, given: TrainConfig) -> TrainConfig:
    """The stored settings of run ``run_id``, which must be unfinished and have a ``last``
    checkpoint; only the hardware settings (device, threads) come from ``given``."""
    from kdstudio.core.students import recover_interrupted_save

    run = project.run(run_id)
    if run is None:
        raise ConfigError(f"no run {run_id} in this project")
    if run["status"] == "finished":
        raise ConfigError(f"run {run_id} already finished; nothing to resume")
    recover_interrupted_save(run_folder(project.path, run_id) / "last")
    if not (run_folder(project.path, run_id) / "last" / TRAINER_STATE).is_file():
        raise ConfigError(f"run {run_id} has no checkpoint to resume from ({run_folder(project.path, run_id)} "
                          "has no last/); start a new run instead")
    # A run stored before the checkpoint metric was a setting chose by accuracy first.
    stored = TrainConfig.from_dict({"checkpoint_metric": "accuracy", **run["config"]})
    stored.device, stored.num_threads = given.device, given.num_threads  # hardware may differ
    return stored


def resumable_run(project: Any) -> int | None:
    """The newest run that stopped before its end (``cancelled``, or interrupted by a kill or crash,
    see ``Project.mark_interrupted_runs``) and kept a ``last`` checkpoint to continue from; None
    when there is none."""
    from kdstudio.core.students import recover_interrupted_save

    for run in reversed(project.runs()):
        if run["status"] == "cancelled":
            last = run_folder(project.path, run["id"]) / "last"
            recover_interrupted_save(last)
            if (last / TRAINER_STATE).is_file():
                return run["id"]
    return None


__all__ = [
    "TRAINER_STATE",
    "LoopState",
    "load_checkpoint",
    "resumable_run",
    "resume_config",
    "rng_state",
    "run_folder",
    "save_checkpoint",
]
