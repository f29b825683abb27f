"""A run's stored metrics, read back: what the training panel overlays for an earlier run, or
appends to a live one. Imports nothing heavy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kdstudio.core.events import CancelToken, Event, Finished, JobResult

#: One stored metric: (rowid, step, epoch, wall_s, name, value), as ``Project.metrics`` gives it.
MetricRow = tuple[int, int, float, float, str, float]


@dataclass(frozen=True)
class RunMetrics(JobResult):
    """The metrics of run ``run`` stored after row ``after_rowid``, in the order they were logged."""

    run: int
    after_rowid: int
    rows: tuple[MetricRow, ...]


def load_metrics(project_path: str | Path, run: int, after_rowid: int = 0, *,
                 cancel: CancelToken | None = None) -> Iterator[Event]:
    """Read run ``run``'s metrics (those after ``after_rowid``) in the thread that iterates:
    ``Finished(RunMetrics)``."""
    from kdstudio.core.store import Project

    with Project(project_path) as project:
        rows = tuple(tuple(r) for r in project.metrics(run, after_rowid=after_rowid))
    yield Finished(RunMetrics(run=run, after_rowid=after_rowid, rows=rows))


__all__ = ["MetricRow", "RunMetrics", "load_metrics"]
