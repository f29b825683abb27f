"""GUI test fixtures: an offscreen QApplication with the app's names and the light theme, and
small projects built through core (the same calls the CLI makes)."""

from __future__ import annotations

import csv
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


@pytest.fixture(autouse=True, scope="package")
def _collect_on_the_qt_thread(qapp):
    """As the app does at start: cyclic garbage (and the Qt objects in it) is collected on the
    Qt thread only, never by a worker or a library's thread; the interpreter's own collector
    is back on after the GUI tests."""
    from kdstudio.gui import collector

    collector.install()
    yield
    collector.uninstall()


@pytest.fixture(autouse=True)
def _gui_app(qapp, _collect_on_the_qt_thread):
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
