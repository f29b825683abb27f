"""The jobs the GUI runs in its worker: thin generators over ``kdstudio.core`` functions.

Each takes paths and plain values, opens its own ``Project`` in the thread it runs in, and
imports the heavy parts of core only when it starts, so the window never waits for torch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdstudio.core.errors import DataError
from kdstudio.core.events import CancelToken, Event, Finished, Log

if TYPE_CHECKING:
    from kdstudio.core.harvest import HarvestConfig


def preview_file(path: str, *, task: str = "classification", cancel: CancelToken | None = None) -> Iterator[Event]:
    """The first rows of a data file and its guessed columns (``Finished.result``)."""
    from kdstudio.core.data import preview

    try:
        result = preview(path, n=20, task=task)
    except TypeError:  # a core without the task keyword
        result = preview(path, n=20)
    result["path"] = path
    try:
        from kdstudio.core.data.importer import auto_split

        result["auto_split"] = auto_split(Path(path))
    except ImportError:  # pragma: no cover
        result["auto_split"] = "train"
    yield Finished(result)


def create_project(
    path: str,
    task: str,
    files: Sequence[dict[str, Any]],
    *,
    text_col: str | None,
    label_col: str | None,
    valid_fraction: float = 0.1,
    plan: dict[str, Any] | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """What ``kdstudio new PATH --task T`` then ``kdstudio import PATH FILE ...`` per file do,
    plus the wizard's choices of teacher, student and settings kept as the project's plan.
    A failed import removes the half-made project, so the person can fix the file and retry."""
    from kdstudio.core.data import import_file
    from kdstudio.core.store import Project

    target = Path(path)
    Project.create(target, task).close()
    results = []
    try:
        for item in files:
            yield Log(f"importing {Path(item['path']).name}")
            for event in import_file(target, item["path"], text_col=text_col, label_col=label_col,
                                     split=item.get("split", "auto"), valid_fraction=valid_fraction,
                                     cancel=cancel):
                if isinstance(event, Finished):
                    results.append(event.result)
                else:
                    yield event
        if plan:
            with Project(target) as project:
                project.update_settings(plan=plan)
        with Project(target) as project:
            info = project.info()
    except BaseException:
        for suffix in ("", "-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        raise
    if not info["n_examples"]:
        raise DataError("no rows were imported")
    yield Finished({"path": str(target), "imports": results, "splits": info["splits"], "labels": info["labels"]})


def import_more(project_path: str, file: str, *, text_col: str | None = None, label_col: str | None = None,
                split: str = "auto", cancel: CancelToken | None = None) -> Iterator[Event]:
    """``kdstudio import``: one more file into an open project."""
    from kdstudio.core.data import import_file

    yield from import_file(project_path, file, text_col=text_col, label_col=label_col, split=split, cancel=cancel)


def harvest_job(project_path: str, config: HarvestConfig, *, cancel: CancelToken | None = None) -> Iterator[Event]:
    """``kdstudio harvest``."""
    from kdstudio.core.harvest import harvest

    yield from harvest(project_path, config, cancel=cancel)


def augment_job(project_path: str, config: dict[str, Any], *, cancel: CancelToken | None = None) -> Iterator[Event]:
    """``kdstudio augment`` with an ``AugmentConfig``'s fields."""
    from kdstudio.core.data.augment import AugmentConfig, augment

    yield from augment(project_path, AugmentConfig(**config), cancel=cancel)


def remove_variants_job(project_path: str, *, cancel: CancelToken | None = None) -> Iterator[Event]:
    """``kdstudio augment --remove``."""
    from kdstudio.core.data.augment import remove_augmented

    yield Finished({"removed": remove_augmented(project_path)})


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
    """The worker's stop path for training: runs this job started that are still marked
    running become ``cancelled`` (or ``failed``), even if the job's own cleanup has not run."""
    from kdstudio.core.store import Project

    with Project(project_path) as project:
        for run in project.runs():
            if run["id"] > after_run and run["status"] in ("running", "queued"):
                fields: dict[str, Any] = {"status": "cancelled" if status == "cancelled" else "failed"}
                if status != "cancelled" and message:
                    fields["error"] = message
                project.update_run(run["id"], **fields)
