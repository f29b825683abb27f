"""How late a 10 ms timer fires on the Qt thread: each tick's lateness is how long the event
loop was kept from running. Shared by the responsiveness tests and the responsiveness bench."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer

INTERVAL_MS = 10


class StallProbe:
    """Records the lateness of every tick of a 10 ms timer between ``start`` and ``stop``."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(INTERVAL_MS)
        self.timer.timeout.connect(self._tick)
        self.last: float | None = None
        self.stalls: list[float] = []

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.stalls.append(max(0.0, (now - self.last) * 1000 - INTERVAL_MS))
        self.last = now

    def start(self) -> None:
        self.last = None
        self.stalls = []
        self.timer.start()

    def stop(self) -> dict[str, float]:
        """Ticks seen, and the median, 99th percentile and longest lateness in ms."""
        self.timer.stop()
        ordered = sorted(self.stalls) or [0.0]

        def pick(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        return {"ticks": len(self.stalls), "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": ordered[-1]}
