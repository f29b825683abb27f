"""GUI test fixtures: an offscreen QApplication with the app's names and the light theme, and
small projects built through core (the same calls the CLI makes)."""

from __future__ import annotations

import collections
import csv
import gc
import math
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

LABELS = ("billing", "delivery", "refund")
WORDS = {
    "billing": "invoice charge payment card statement fee bill",
    "delivery": "parcel courier shipping arrive tracking late box",
    "refund": "return money back refund broken cancel order",
}


def qt_objects_in_reference_cycles() -> list[str]:
    """Collect now, on the Qt thread, and name every Qt object that only the cycle collector
    could free (it is freed here all the same)."""
    from PySide6.QtCore import QCoreApplication, QEvent
    from shiboken6 import Shiboken

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # widgets closed with deleteLater
    gc.unfreeze()  # what the window froze after its warm-up is looked at too
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = sorted(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage
                       if isinstance(o, Shiboken.Object))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    gc.collect()
    return found


@pytest.fixture(autouse=True)
def _no_qt_object_in_a_reference_cycle(qapp):
    """What a GUI test made is freed by reference counting: no Qt object may be left in a
    reference cycle.

    Python's cycle collector runs on whichever thread allocates past a threshold, in this app
    usually a job's worker thread. A widget, pixmap, timer or QThread freed there is destroyed on
    the wrong thread, and the app crashes later, with "Garbage-collecting" in the fault's traceback
    (before the cycles were removed, ``tests/gui`` without a collector of its own aborted in 2 of 9
    runs, and a run printed "QBasicTimer::start: Timers cannot be started from another thread" some
    150-190 times). Kept free of cycles, the Qt objects leave nothing for that collector, so the app
    needs no collector of its own. The automatic collector is off during each test so that what a test
    leaves is found here, on the Qt thread, and named: usually a lambda or a callback kept in an
    attribute that refers back to the widget holding it, or to its parent."""
    gc.collect()
    gc.disable()
    try:
        yield
        left = qt_objects_in_reference_cycles()
    finally:
        gc.enable()
    if left:
        counts = sorted(collections.Counter(left).items(), key=lambda kv: (not kv[0].startswith("kdstudio"), -kv[1]))
        pytest.fail(f"{len(left)} Qt objects left in reference cycles (the app's own first): "
                    + ", ".join(f"{name} ×{n}" for name, n in counts[:12]), pytrace=False)


@pytest.fixture(autouse=True)
def _gui_app(qapp, _no_qt_object_in_a_reference_cycle):
    """App names (QSettings locations) and a fixed light theme for every GUI test."""
    from kdstudio.gui.settings import init_application_names
    from kdstudio.gui.theme import ThemeManager

    init_application_names()
    ThemeManager.instance().apply("light")
    yield qapp
    from kdstudio.gui.worker import stop_all

    assert stop_all(timeout_s=10), "a worker thread did not stop"


def write_csv(path: Path, n: int = 90, seed: int = 0, *, header=("text", "label")) -> Path:
    """A small labelled CSV whose words give the label away (a student learns it in seconds)."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for i in range(n):
            lab = LABELS[i % len(LABELS)]
            words = WORDS[lab].split()
            text = " ".join(rng.choice(words) for _ in range(6)) + f" ticket {i}"
            writer.writerow([text, lab])
    return path


def make_project(folder: Path, n: int = 90, *, name: str = "shop") -> Path:
    """``kdstudio new`` + ``kdstudio import`` of a small CSV, through core."""
    from kdstudio.core.data import import_file
    from kdstudio.core.events import run_to_end
    from kdstudio.core.store import Project

    data = write_csv(folder / f"{name}-train.csv", n)
    path = folder / f"{name}.kdproj"
    Project.create(path, "classification").close()
    run_to_end(import_file(path, data))
    return path


def add_fake_run(path: Path, steps: int = 300, *, student: str = "bilstm", status: str = "finished") -> int:
    """A run with plausible stored metrics (for plots of finished runs)."""
    from kdstudio.core.store import Project

    rng = random.Random(steps)
    with Project(path) as project:
        run = project.create_run(student, None, {"student": student, "epochs": 3}, status="running")
        rows = []
        for step in range(1, steps + 1):
            epoch = 3 * step / steps
            kd = 1.2 * math.exp(-step / (steps / 4)) + 0.08 + rng.random() * 0.06
            ce = 1.0 * math.exp(-step / (steps / 5)) + 0.05 + rng.random() * 0.05
            rows += [(step, epoch, step * 0.05, "train/kd", kd), (step, epoch, step * 0.05, "train/ce", ce),
                     (step, epoch, step * 0.05, "train/loss", 0.9 * kd + 0.1 * ce),
                     (step, epoch, step * 0.05, "train/lr", 2e-3 * min(1, step / 20) * (1 - step / steps))]
            if step % (steps // 6) == 0:
                acc = 0.95 - 0.6 * math.exp(-step / (steps / 4))
                rows += [(step, epoch, step * 0.05, "valid/accuracy", acc),
                         (step, epoch, step * 0.05, "valid/agreement", min(1.0, acc + 0.02))]
        project.add_metrics(run, rows)
        project.update_run(run, status=status)
    return run


@pytest.fixture
def project_path(tmp_path) -> Path:
    return make_project(tmp_path)


@pytest.fixture
def window(qtbot, project_path):
    """The main window with the project at ``project_path`` open; its jobs stopped afterwards."""
    from kdstudio.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    assert w.open_project(project_path)
    yield w
    w.jobs.stop(timeout_s=10)
    if w.project_view is not None:
        w.project_view.close_project()
