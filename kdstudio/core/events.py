"""Typed events that every long job yields, and the token that cancels or pauses it.

A job is a generator: ``for event in harvest(project, config, cancel=token): ...``.
The CLI turns events into progress bars and JSON; the GUI turns them into Qt signals.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kdstudio.core.errors import Cancelled


@dataclass
class Progress:
    """``done`` of ``total`` units of ``stage`` are finished; ``info`` carries stage extras
    (failed count, tokens, cost so far...)."""

    stage: str
    done: int
    total: int
    eta_s: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass
class Metric:
    """A scalar logged during training or evaluation."""

    name: str
    value: float
    step: int
    epoch: float = 0.0
    wall_s: float = 0.0
    run: int | None = None


@dataclass
class Log:
    message: str
    level: str = "info"


@dataclass(frozen=True)
class JobResult:
    """Base of every job's typed result: a frozen dataclass whose fields are the job's ``--json`` keys.

    The GUI and tests read attributes (``result.student_accuracy``), so a renamed field fails loudly
    instead of silently showing nothing; :meth:`to_json` is what the CLI prints.
    """

    def to_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value: Any) -> Any:
    """JSON-ready form of a result field (nested results, dataclasses, tuples)."""
    if isinstance(value, JobResult):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass
class Finished:
    """The last event of a job; ``result`` is its typed result (``result.to_json()`` is what
    ``--json`` prints). Jobs not yet moved to a typed result still pass a plain dict."""

    result: Any

    def json(self) -> dict[str, Any]:
        return self.result.to_json() if isinstance(self.result, JobResult) else dict(self.result)


Event = Progress | Metric | Log | Finished


class CancelToken:
    """Shared between the thread that runs a job and the one that may stop it.

    Jobs call :meth:`check` at least once per batch; it raises :class:`Cancelled`
    after :meth:`cancel` and blocks while paused.
    """

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def check(self) -> None:
        while not self._running.wait(0.1):
            pass
        if self._cancelled.is_set():
            raise Cancelled("cancelled")


class EtaClock:
    """Estimates time remaining from the average rate since the job (re)started."""

    def __init__(self, total: int, already_done: int = 0) -> None:
        self.total, self.start_done = total, already_done
        self.t0 = time.monotonic()

    def eta(self, done: int) -> float | None:
        elapsed = time.monotonic() - self.t0
        progressed = done - self.start_done
        if progressed <= 0 or elapsed <= 0:
            return None
        return max(0.0, (self.total - done) * elapsed / progressed)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0


def run_to_end(events) -> Any:
    """Drain a job generator and return its ``Finished.result`` (for tests and scripts)."""
    result: Any = {}
    for event in events:
        if isinstance(event, Finished):
            result = event.result
    return result
