"""The main window: welcome screen, menus, recent projects in QSettings, opening projects,
themes, and the question before closing while a job runs."""

from __future__ import annotations

import time

import pytest
from PySide6.QtWidgets import QMessageBox

from kdstudio.core.doctor import ComputeDevice
from kdstudio.core.events import Finished, Progress
from kdstudio.gui.main_window import MainWindow
from kdstudio.gui.settings import app_settings, recent_projects
from kdstudio.gui.worker import Worker


def slow_job(*, cancel=None):
    for i in range(100_000):
        cancel.check()
        time.sleep(0.01)
        yield Progress("train", i, 100_000)


@pytest.fixture
def window(qtbot):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    yield w
    w.jobs.stop(timeout_s=5)
    if w.project_view is not None:
        w.project_view.close_project()


def test_the_window_opens_on_the_welcome_screen_with_its_menus(window):
    assert window.stack.currentWidget() is window.welcome
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus == ["File", "Run", "View", "Help"]
    file_items = [a.text().replace("&", "") for a in window.menuBar().actions()[0].menu().actions() if a.text()]
    for item in ("New Project…", "Open…", "Open Recent", "Open Sample Project", "Close Project", "Quit"):
        assert item in file_items
    help_items = [a.text().replace("&", "") for a in window.menuBar().actions()[3].menu().actions() if a.text()]
    assert "Keyboard Shortcuts" in help_items and "About KD Studio" in help_items
    assert not window.harvest_action.isEnabled()
    assert window.welcome.recent_empty.isVisibleTo(window.welcome)


def test_opening_a_project_remembers_it_in_the_settings_not_the_project(window, project_path):
    from kdstudio.core.store import Project

    assert window.open_project(project_path)
    assert window.stack.currentWidget() is window.project_view
    assert window.windowTitle().startswith("shop")
    assert recent_projects() == [str(project_path.resolve())]
    with Project(project_path) as p:
        assert "recent" not in str(p.settings())
    window.close_project()
    assert window.stack.currentWidget() is window.welcome
    assert window.welcome.recent.count() == 1


def test_a_closed_project_is_freed_without_the_cycle_collector(window, qtbot, tmp_path):
    """Every screen of a project, its plots and its workers go when Qt deletes them, by reference
    counting alone (the automatic collector is off during GUI tests): nothing of it waits for a
    collection that could run on a worker's thread."""
    import weakref

    from PySide6.QtCore import QCoreApplication, QEvent

    from gui.conftest import add_fake_run, make_project

    path = make_project(tmp_path)
    add_fake_run(path, 100)
    assert window.open_project(path)
    view = window.project_view
    for i in range(view.tabs.count()):  # builds every panel; the training panel loads the run in a worker
        view.tabs.setCurrentIndex(i)
        qtbot.wait(20)
    gone = [weakref.ref(o) for o in (view, view.training, view.training.view, view.harvest)]
    qtbot.waitUntil(lambda: not gone[1]()._loaders, timeout=10_000)
    del view
    window.close_project()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert [ref() for ref in gone] == [None] * len(gone)


def test_a_file_that_is_not_a_project_gives_a_message(window, tmp_path, monkeypatch):
    bad = tmp_path / "notes.kdproj"
    bad.write_text("hello")
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    assert not window.open_project(bad)
    assert shown and "not a KD Studio project" in shown[0]
    assert window.stack.currentWidget() is window.welcome


def test_window_geometry_and_theme_are_kept_in_qsettings(window, qtbot):
    window.resize(1111, 777)
    window.set_theme("dark")
    window._save_state()
    assert app_settings().value("theme") == "dark"
    assert app_settings().value("window/geometry") is not None
    other = MainWindow()  # restores from the settings (the offscreen screen may clamp the size)
    qtbot.addWidget(other)
    assert other.size().height() != 820  # not the default size
    assert other.restoreGeometry(app_settings().value("window/geometry"))
    window.set_theme("light")


def test_the_status_bar_shows_the_device_and_the_running_jobs_progress(window, qtbot):
    window._device_found(Finished(ComputeDevice("cuda", (("NVIDIA H200", 139.8),))))
    assert window.device_label.text() == "GPU · NVIDIA H200"
    window._device_found(Finished(ComputeDevice("cpu")))
    assert window.device_label.text() == "CPU (no GPU found)"
    worker = Worker(slow_job, name="Training")
    assert window.jobs.start(worker, window)
    qtbot.waitUntil(lambda: "Training" in window.job_label.text() and "/" in window.job_label.text(), timeout=5000)
    assert window.job_bar.isVisible()
    assert window.cancel_action.isEnabled() and not window.train_action.isEnabled()
    window.toggle_pause()
    qtbot.waitUntil(lambda: "paused" in window.job_label.text(), timeout=3000)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        window.cancel_job()
    assert not window.job_bar.isVisible()
    assert window.train_action.isEnabled() is False  # no project open


def test_closing_during_a_job_asks_first_and_keeps_running_on_no(window, qtbot, monkeypatch):
    asked = []

    def answer(result):
        def question(*args, **kwargs):
            asked.append(args[2])
            return result
        return question

    worker = Worker(slow_job, name="Training")
    window.jobs.start(worker, window)
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    window.close()
    assert asked and "Training is still running" in asked[0]
    assert window.isVisible() and worker.is_running

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    t0 = time.monotonic()
    window.close()
    assert time.monotonic() - t0 < 3.0
    assert not window.isVisible()
    qtbot.waitUntil(lambda: worker.status == "cancelled", timeout=3000)


def test_keyboard_shortcuts_dialog_lists_the_actions(window):
    window.show_shortcuts()
    table = window._shortcuts_dialog.findChild(__import__("PySide6.QtWidgets", fromlist=["QTableWidget"]).QTableWidget)
    names = {table.item(r, 0).text() for r in range(table.rowCount())}
    assert {"New Project…", "Open…", "Start Training", "Cancel Job"} <= names
    window._shortcuts_dialog.close()
