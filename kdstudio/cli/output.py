"""How the command line shows a job: progress on stderr, the result on stdout (or one JSON object)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from kdstudio.core.events import Finished, Log, Metric, Progress


class ProgressPrinter:
    """A progress bar with rate and ETA on stderr; plain periodic lines when stderr is not a terminal."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.stage: str | None = None

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        if isinstance(event, Log):
            self._clear()
            prefix = "warning: " if event.level == "warning" else ""
            print(f"{prefix}{event.message}", file=sys.stderr)
        elif isinstance(event, Progress):
            now = time.monotonic()
            final = event.total and event.done >= event.total
            if not final and now - self.last < (0.1 if self.tty else 5.0) and event.stage == self.stage:
                return
            self.last, self.stage = now, event.stage
            line = self._format(event)
            if self.tty:
                print("\r" + line.ljust(100)[:120], end="" if not final else "\n", file=sys.stderr, flush=True)
            else:
                print(line, file=sys.stderr, flush=True)

    def _clear(self) -> None:
        if self.tty and self.stage:
            print("\r" + " " * 110 + "\r", end="", file=sys.stderr)

    @staticmethod
    def _format(p: Progress) -> str:
        frac = p.fraction
        bar = "█" * int(frac * 24) + "░" * (24 - int(frac * 24))
        eta = f" ETA {_duration(p.eta_s)}" if p.eta_s is not None and p.done < p.total else ""
        extras = " ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in p.info.items() if v not in (None, "")
        )
        total = f"{p.done}/{p.total}" if p.stage not in ("import",) else f"{frac:5.1%}"
        return f"{p.stage:>8} {bar} {total}{eta} {extras}".rstrip()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


def run_job(events: Iterable[Any], *, as_json: bool, on_finish: Callable[[Any], None] | None = None) -> Any:
    """Drive a core job to its end, printing progress; return its ``Finished.result`` (a typed
    ``JobResult``, or a dict for jobs not yet typed), which ``on_finish`` also receives."""
    printer = ProgressPrinter()
    finished = Finished({})
    for event in events:
        if isinstance(event, Finished):
            finished = event
        elif not isinstance(event, Metric):
            printer(event)
    if as_json:
        print(json.dumps(finished.json(), indent=2, default=str))
    elif on_finish:
        on_finish(finished.result)
    return finished.result


# -- commands ----------------------------------------------------------------------------------
