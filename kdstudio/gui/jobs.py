"""The jobs the GUI runs in its worker: thin generators over ``kdstudio.core`` functions.

Each takes paths and plain values, opens its own ``Project`` in the thread it runs in, and
imports the heavy parts of core only when it starts, so the window never waits for torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kdstudio.core.events import CancelToken, Event, Finished

if TYPE_CHECKING:
    from kdstudio.core.harvest import HarvestConfig


def harvest_job(project_path: str, config: HarvestConfig, *, cancel: CancelToken | None = None) -> Iterator[Event]:
    """``kdstudio harvest``."""
    from kdstudio.core.harvest import harvest

    yield from harvest(project_path, config, cancel=cancel)


def train_job(project_path: str, config: dict[str, Any], *, resume_run: int | None = None,
              cancel: CancelToken | None = None) -> Iterator[Event]:
    """``kdstudio train`` with a config dict (a ``TrainConfig``'s fields)."""
    from kdstudio.core.train import train
    from kdstudio.core.train.config import TrainConfig

    yield from train(project_path, TrainConfig.from_dict(config).validate(), resume_run=resume_run, cancel=cancel)


def load_metrics(project_path: str, run_id: int, after_rowid: int = 0, *,
                 cancel: CancelToken | None = None) -> Iterator[Event]:
    """A run's stored metrics, off the Qt thread: ``Finished({"run", "rows"})``."""
    from kdstudio.core.store import Project

    with Project(project_path) as project:
        rows = project.metrics(run_id, after_rowid=after_rowid)
    yield Finished({"run": run_id, "rows": rows})


def list_claude_models(*, cancel: CancelToken | None = None) -> Iterator[Event]:
    """The models the key can use, with prices (needs the network)."""
    from kdstudio.core.teachers.claude import list_models

    yield Finished({"models": list_models()})


def test_claude(model: str, *, cancel: CancelToken | None = None) -> Iterator[Event]:
    """One tiny request to check the key and the model."""
    from kdstudio.core.teachers.claude import test_connection

    yield Finished({"message": test_connection(model)})


def mark_unfinished_runs(project_path: str, after_run: int, status: str, message: str = "") -> None:
    """The worker's stop path for training (see ``kdstudio.core.train.close_unfinished_runs``)."""
    from kdstudio.core.train import close_unfinished_runs

    close_unfinished_runs(project_path, after_run, status, message)
