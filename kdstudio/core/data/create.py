"""A new project with its data in one job: what ``kdstudio new`` then ``kdstudio import`` per file do,
plus the wizard's plan (teacher, student, settings). A failed import removes the half-made project,
so the person can fix the file and try again."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdstudio.core.data.importer import ImportResult, import_file
from kdstudio.core.errors import DataError
from kdstudio.core.events import CancelToken, Event, Finished, JobResult, Log
from kdstudio.core.store import Project


@dataclass(frozen=True)
class DataFile:
    """One file to import and the split its rows go to (``auto``: see :func:`import_file`)."""

    path: str
    split: str = "auto"


@dataclass(frozen=True)
class CreateResult(JobResult):
    path: str
    imports: list[ImportResult]
    splits: dict[str, int]
    labels: list[str]


def create_project(
    path: str | Path,
    task: str,
    files: Sequence[DataFile],
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    valid_fraction: float = 0.1,
    plan: dict[str, Any] | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Create the project at ``path``, import ``files`` in order, keep ``plan`` in its settings."""
    target = Path(path)
    Project.create(target, task).close()
    results: list[ImportResult] = []
    try:
        for item in files:
            yield Log(f"importing {Path(item.path).name}")
            for event in import_file(target, item.path, text_col=text_col, label_col=label_col, split=item.split,
                                     valid_fraction=valid_fraction, cancel=cancel):
                if isinstance(event, Finished):
                    results.append(event.result)
                else:
                    yield event
        with Project(target) as project:
            if plan:
                project.update_settings(plan=plan)
            info = project.info()
        if not info["n_examples"]:
            raise DataError("no rows were imported")
    except BaseException:
        for suffix in ("", "-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        raise
    yield Finished(CreateResult(path=str(target), imports=results, splits=info["splits"], labels=info["labels"]))
