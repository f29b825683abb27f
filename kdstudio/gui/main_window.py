"""The main window: menus, toolbar, status bar, the welcome screen and the open project."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QVBoxLayout,
)

from kdstudio import __version__
from kdstudio.core.events import Finished, Log, Progress
from kdstudio.gui.failure_banner import ended_words
from kdstudio.gui.icons import icon
from kdstudio.gui.job_host import JobHost, progress_text
from kdstudio.gui.settings import (
    add_recent_project,
    app_settings,
    clear_recent_projects,
    generation_sample_path,
    recent_projects,
    sample_project_path,
)
from kdstudio.gui.theme import ThemeManager
from kdstudio.gui.welcome import WelcomeWidget
from kdstudio.gui.worker import Worker

if TYPE_CHECKING:
    from kdstudio.gui.project_view import ProjectView


#: Loaded in the background once the window is up, so that starting a job later does not stall
#: the window while Python imports them (an import holds the interpreter for long stretches).
#: ``torch._dynamo`` comes with the first optimizer step, ``accelerate`` with training's runtime,
#: the fast tokenizers' module with the first tokenizer: together some 200,000 objects.
WARM_UP_MODULES = ("transformers", "kdstudio.core.train.loop", "kdstudio.core.harvest", "kdstudio.core.teachers.embed",
                   "torch._dynamo", "accelerate", "transformers.tokenization_utils_fast")


class MainWindow(QMainWindow):
    """The application window. One project at a time; one job at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("KD Studio")
        self.setMinimumSize(980, 640)
        self.resize(1280, 820)
        self.jobs = JobHost(self)
        self.project_view: ProjectView | None = None
        self.project_path: Path | None = None
        self.device_text = "detecting…"
        self._device_worker: Worker | None = None
        self._warm_up_worker: Worker | None = None
        self._sample_worker: Worker | None = None
        self._sample_path: Path | None = None  # the sample being built
        self._job_shown_at, self._shown_paused = 0.0, False

        self.stack = QStackedWidget()
        self.welcome = WelcomeWidget()
        self.stack.addWidget(self.welcome)
        self.setCentralWidget(self.stack)
        self.welcome.new_requested.connect(self.new_project)
        self.welcome.open_requested.connect(self.open_dialog)
        self.welcome.sample_requested.connect(self.open_sample)
        self.welcome.generation_sample_requested.connect(self.open_generation_sample)
        self.welcome.recent_chosen.connect(self.open_project)
        self.welcome.shortcuts_hint.clicked.connect(self.show_shortcuts)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self.jobs.job_started.connect(self._job_changed)
        self.jobs.job_progress.connect(self._job_changed)
        self.jobs.job_ended.connect(self._job_ended)
        ThemeManager.instance().theme_changed.connect(self._refresh_icons)
        self._restore_state()
        self._update_actions()

    # -- construction -------------------------------------------------------------------------
    def _action(self, text: str, slot, shortcut=None, icon_name: str | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut:
            keys = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(k) for k in keys])
        if icon_name:
            action.setIcon(icon(icon_name))
            action.setProperty("icon_name", icon_name)
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        a = self._action
        std = QKeySequence.StandardKey
        self.new_action = a("&New Project…", self.new_project, std.New, "new", "Create a project with the wizard")
        self.open_action = a("&Open…", self.open_dialog, std.Open, "open", "Open a .kdproj project file")
        self.sample_action = a("Open &Sample Project", self.open_sample, None, "sample",
                               "Open the offline sample project with a finished run")
        self.close_action = a("&Close Project", self.close_project, std.Close, None, "Back to the welcome screen")
        self.quit_action = a("&Quit", self.close, std.Quit)
        self.harvest_action = a("Start &Harvest", lambda: self._panel_call("harvest", "start"), "Ctrl+H",
                                "harvest", "Ask the teacher about every example")
        self.train_action = a("Start &Training", lambda: self._panel_call("training", "start"), "Ctrl+T",
                              "train", "Train a student on the teacher's answers")
        self.retry_action = a("&Retry Failed", lambda: self._panel_call("harvest", "retry_failed"), None, "retry",
                              "Ask the teacher again about the examples that failed")
        self.pause_action = a("&Pause", self.toggle_pause, "Ctrl+Shift+P", "pause", "Pause or resume the running job")
        self.cancel_action = a("&Cancel Job", self.cancel_job, "Ctrl+.", "stop",
                               "Stop the running job; what was done is kept")
        self.tab_actions = []
        for i, name in enumerate(("Overview", "Harvest", "Training", "Evaluate", "Compare")):
            self.tab_actions.append(a(f"&{name}", lambda _c=False, i=i: self._show_tab(i), f"Ctrl+{i + 1}"))
        self.shortcuts_action = a("&Keyboard Shortcuts", self.show_shortcuts, ["Ctrl+/", "F1"])
        self.about_action = a("&About KD Studio", self.show_about)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.new_action)
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addAction(self.sample_action)
        file_menu.addSeparator()
        file_menu.addAction(self.close_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        run_menu = bar.addMenu("&Run")
        for action in (self.harvest_action, self.retry_action, self.train_action):
            run_menu.addAction(action)
        run_menu.addSeparator()
        run_menu.addAction(self.pause_action)
        run_menu.addAction(self.cancel_action)
        view_menu = bar.addMenu("&View")
        for action in self.tab_actions:
            view_menu.addAction(action)
        view_menu.addSeparator()
        theme_menu = view_menu.addMenu("&Theme")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for mode, text in (("system", "Follow &System"), ("light", "&Light"), ("dark", "&Dark")):
            action = QAction(text, self, checkable=True)
            action.triggered.connect(lambda _c=False, m=mode: self.set_theme(m))
            group.addAction(action)
            theme_menu.addAction(action)
            self.theme_actions[mode] = action
        self.theme_actions.get(ThemeManager.instance().mode, self.theme_actions["system"]).setChecked(True)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.shortcuts_action)
        help_menu.addSeparator()
        help_menu.addAction(self.about_action)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main")
        bar.setObjectName("mainToolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.new_action, self.open_action):
            bar.addAction(action)
        bar.addSeparator()
        for action in (self.harvest_action, self.train_action, self.pause_action, self.cancel_action):
            bar.addAction(action)
        self.addToolBar(bar)
        self.toolbar = bar

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.job_label = QLabel("")
        self.job_label.setMinimumWidth(260)
        self.job_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.job_bar = QProgressBar()
        self.job_bar.setFixedWidth(160)
        self.job_bar.setRange(0, 1000)
        self.job_bar.setTextVisible(False)
        self.job_bar.hide()
        self.device_label = QLabel("Compute: detecting…")
        self.device_label.setToolTip("The device training uses")
        status.addPermanentWidget(self.job_label)
        status.addPermanentWidget(self.job_bar)
        status.addPermanentWidget(self.device_label)

    def _refresh_icons(self, *_theme: object) -> None:
        for action in self.findChildren(QAction):
            name = action.property("icon_name")
            if name:
                action.setIcon(icon(name))
        self.welcome.refresh()

    # -- state --------------------------------------------------------------------------------
    def _restore_state(self) -> None:
        settings = app_settings()
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(QByteArray(geometry))
        state = settings.value("window/state")
        if isinstance(state, QByteArray | bytes):
            self.restoreState(QByteArray(state))

    def _save_state(self) -> None:
        settings = app_settings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        if self.project_view is not None:
            self.project_view.save_view_state(settings)
        settings.sync()

    def start_background_tasks(self) -> None:
        """Work that may wait until the window is up: finding the compute device."""
        QTimer.singleShot(400, self._detect_device)

    def _detect_device(self) -> None:
        from kdstudio.core.doctor import detect_device

        worker = Worker(detect_device, name="Device", parent=self)
        worker.yielded.connect(self._device_found)
        worker.finished.connect(self._device_detected)
        self._device_worker = worker.start()

    def _device_found(self, event: object) -> None:
        if isinstance(event, Finished):
            self.set_device_text(event.result.summary)

    def _device_detected(self, _status: str) -> None:
        """Say CPU when the detection failed; then load what the jobs need, in the background."""
        from kdstudio.core.doctor import import_modules

        if self.device_text == "detecting…":
            self.set_device_text("CPU")
        worker = Worker(import_modules, WARM_UP_MODULES, name="Loading", parent=self)
        worker.finished.connect(self._warmed_up)
        self._warm_up_worker = worker.start()

    def _warmed_up(self, _status: str) -> None:
        """Move everything alive now (the modules, the window) out of the cycle collector's sight
        for good (``gc.freeze``): a full collection holds the interpreter wherever it runs, and
        with torch and transformers loaded it would walk some 450,000 objects (120-300 ms) instead
        of what the app makes from now on. Without it the window's longest stall during the first
        training run and harvest grows from 40-80 ms to 200-340 ms
        (``tests/bench/bench_gui_responsiveness.py``)."""
        gc.collect(1)
        gc.freeze()

    def set_device_text(self, text: str) -> None:
        self.device_text = text
        self.device_label.setText(text)
        self.welcome.device_label.setText(f"Compute: {text}")

    # -- projects -----------------------------------------------------------------------------
    def new_project(self) -> None:
        from kdstudio.gui.wizard import ProjectWizard

        wizard = ProjectWizard(self)
        wizard.project_created.connect(self._project_created)
        wizard.open()
        self._wizard = wizard

    def _project_created(self, path: str) -> None:
        """Open the project the wizard made, with what its imports noticed above the tabs."""
        warnings = list(self._wizard.import_warnings)  # the wizard that sent this
        if self.open_project(path) and self.project_view is not None:
            self.project_view.show_import_warnings(warnings)

    def open_dialog(self) -> None:
        start = str(Path(recent_projects()[0]).parent) if recent_projects() else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open project", start, "KD Studio projects (*.kdproj)")
        if path:
            self.open_project(path)

    def open_project(self, path: str | Path) -> bool:
        """Show ``path`` (a .kdproj file); a message explains when it cannot be opened."""
        from kdstudio.core.errors import KDStudioError
        from kdstudio.gui.project_view import ProjectView

        path = Path(path)
        if self.jobs.busy:
            QMessageBox.information(self, "A job is running", "Wait for the running job to finish or cancel it "
                                    "before opening another project.")
            return False
        try:
            view = ProjectView(path, self.jobs, self)
        except (KDStudioError, OSError) as exc:
            QMessageBox.warning(self, "Cannot open project", str(exc))
            return False
        self._discard_project_view()
        self.project_view = view
        self.project_path = path
        view.restore_view_state(app_settings())
        self.stack.addWidget(view)
        self.stack.setCurrentWidget(view)
        view.status_message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        self.setWindowTitle(f"{view.display_name} — KD Studio")
        add_recent_project(path)
        self.welcome.refresh()
        self._update_actions()
        return True

    def _discard_project_view(self) -> None:
        if self.project_view is not None:
            self.project_view.save_view_state(app_settings())
            self.stack.removeWidget(self.project_view)
            self.project_view.close_project()
            self.project_view.deleteLater()
            self.project_view = None
            self.project_path = None

    def close_project(self) -> None:
        if self.project_view is None:
            return
        if self.jobs.busy and not self._confirm_stop("close the project"):
            return
        self._discard_project_view()
        self.stack.setCurrentWidget(self.welcome)
        self.setWindowTitle("KD Studio")
        self.welcome.refresh()
        self._update_actions()

    def open_sample(self) -> None:
        """Open the sample project, building it first (offline, in a worker) when missing or
        unfinished (the build continues where it stopped)."""
        self._open_sample(sample_project_path())

    def open_generation_sample(self) -> None:
        """Open the generation sample (E2E restaurants), building it first like the other sample
        (``kdstudio.core.demo_generation.demo_generation``, as ``kdstudio demo --task generation``)."""
        self._open_sample(generation_sample_path(), task="generation")

    def _open_sample(self, path: Path, *, task: str = "classification") -> None:
        from kdstudio.core.demo import demo, sample_is_ready
        from kdstudio.core.demo_generation import demo_generation

        if sample_is_ready(path):
            self.open_project(path)
            return
        self._sample_path = path
        worker = Worker(demo_generation if task == "generation" else demo, str(path.parent),
                        name="Preparing the sample project", parent=self, limit_threads=True)
        worker.yielded.connect(self._sample_event)
        worker.finished.connect(self._sample_done)
        self._sample_text, self._sample_fraction = "Preparing the sample project (first time only)…", None
        if self.jobs.start(worker, self):
            self._sample_worker = worker
            self.welcome.set_sample_busy(True, self._sample_text)

    def _sample_event(self, event: object) -> None:
        if isinstance(event, Progress) and event.total:
            self._sample_fraction = event.fraction
            self.welcome.set_sample_busy(True, self._sample_text, event.fraction)
        elif isinstance(event, Log):
            self._sample_text = f"Preparing the sample project (first time only): {event.message}"
            self.welcome.set_sample_busy(True, self._sample_text, self._sample_fraction)

    def _sample_done(self, status: str) -> None:
        from kdstudio.core.demo import sample_is_ready

        worker, self._sample_worker = self._sample_worker, None
        self.welcome.set_sample_busy(False)
        path = self._sample_path or sample_project_path()
        if status == "finished" and sample_is_ready(path):
            self.open_project(path)
        elif status == "failed":
            message = worker.message if worker is not None else ""
            QMessageBox.warning(self, "Sample project", f"The sample project could not be built.\n\n{message}")

    def _recent_triggered(self, path: str) -> None:
        self.open_project(path)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = recent_projects()
        for path in items:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _c=False, p=path: self._recent_triggered(p))
        if not items:
            empty = self.recent_menu.addAction("No recent projects")
            empty.setEnabled(False)
        self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("Clear List")
        clear.setEnabled(bool(items))
        clear.triggered.connect(lambda: (clear_recent_projects(), self.welcome.refresh()))

    # -- jobs ---------------------------------------------------------------------------------
    def _panel_call(self, tab: str, method: str) -> None:
        if self.project_view is not None:
            self.project_view.call_panel(tab, method)

    def toggle_pause(self) -> None:
        if self.jobs.current is not None:
            self.jobs.current.toggle_pause()

    def cancel_job(self) -> None:
        if self.jobs.current is not None and self.jobs.current.is_running:
            self.jobs.current.cancel()
            self.job_label.setText(f"{self.jobs.current.name} · stopping…")

    def _job_changed(self, worker: Worker) -> None:
        now = time.monotonic()
        if worker.paused == self._shown_paused and now - self._job_shown_at < 0.25:
            return  # the status bar changes a few times a second, not once per step
        self._job_shown_at, self._shown_paused = now, worker.paused
        self.job_bar.show()
        p = worker.last_progress
        if p is not None and p.total:
            self.job_bar.setRange(0, 1000)
            self.job_bar.setValue(int(1000 * p.fraction))
        else:
            self.job_bar.setRange(0, 0)
        self.job_label.setText(progress_text(worker.name, p, worker.paused))
        if self.pause_action.text() != ("&Resume" if worker.paused else "&Pause"):
            self.pause_action.setText("&Resume" if worker.paused else "&Pause")
            self.pause_action.setIcon(icon("train" if worker.paused else "pause"))
        self._update_actions()

    def _job_ended(self, worker: Worker, status: str) -> None:
        self._job_shown_at, self._shown_paused = 0.0, False
        self.job_bar.hide()
        self.job_label.setText("")
        self.pause_action.setText("&Pause")
        self.pause_action.setIcon(icon("pause"))
        self.statusBar().showMessage(f"{worker.name} {ended_words(status, worker.message)}", 8000)
        self._update_actions()

    def _update_actions(self) -> None:
        has_project = self.project_view is not None
        busy = self.jobs.busy
        self.close_action.setEnabled(has_project)
        for action in (self.harvest_action, self.train_action, self.retry_action):
            action.setEnabled(has_project and not busy)
        self.pause_action.setEnabled(busy)
        self.cancel_action.setEnabled(busy)
        for action in self.tab_actions:
            action.setEnabled(has_project)

    def _show_tab(self, index: int) -> None:
        if self.project_view is not None:
            self.project_view.tabs.setCurrentIndex(index)

    # -- theme, help --------------------------------------------------------------------------
    def set_theme(self, mode: str) -> None:
        ThemeManager.instance().apply(mode)
        app_settings().setValue("theme", mode)
        self.theme_actions[mode].setChecked(True)

    def show_shortcuts(self) -> None:
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        layout = QVBoxLayout(dialog)
        rows = [(a.text().replace("&", ""), ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText)
                                                      for s in a.shortcuts()))
                for a in self.actions() if a.shortcuts()]
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        for i, (name, keys) in enumerate(rows):
            table.setItem(i, 0, QTableWidgetItem(name))
            table.setItem(i, 1, QTableWidgetItem(keys))
        table.horizontalHeader().setStretchLastSection(True)
        table.resizeColumnToContents(0)
        table.setMinimumSize(420, 380)
        layout.addWidget(table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        dialog.open()
        self._shortcuts_dialog = dialog

    def show_about(self) -> None:
        QMessageBox.about(
            self, "About KD Studio",
            f"<h3>KD Studio {__version__}</h3><p>Knowledge distillation on your own workstation: a large "
            "teacher's answers train a small, fast student.</p>"
            f"<p>Compute: {self.device_text}<br>Qt {self._qt_version()}</p><p>Apache License 2.0</p>")

    @staticmethod
    def _qt_version() -> str:
        from PySide6 import __version__ as pyside

        return pyside

    # -- closing ------------------------------------------------------------------------------
    def _confirm_stop(self, what: str) -> bool:
        """Ask before stopping a running job; True when the person agrees (and it was stopped)."""
        worker = self.jobs.current
        if worker is None or not worker.is_running:
            return True
        answer = QMessageBox.question(
            self, "Stop the running job?",
            f"{worker.name} is still running. Stop it and {what}?\n\nEverything done so far is kept; "
            "a harvest continues where it stopped next time.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self.job_label.setText(f"{worker.name} · stopping…")
        QApplication.processEvents()
        if not self.jobs.stop(timeout_s=5.0):
            QMessageBox.warning(self, "Still stopping", f"{worker.name} did not stop within 5 seconds; "
                                "it will stop at its next step.")
        return True

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._confirm_stop("quit"):
            event.ignore()
            return
        self._save_state()
        if self.project_view is not None:
            self.project_view.close_project()
        event.accept()


