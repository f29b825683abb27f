"""The new-project wizard: Task & data, Teacher, Student, Settings.

Finishing it does what ``kdstudio new`` and ``kdstudio import`` do (in a worker), and keeps
the chosen teacher, student and settings in the project as its plan, so the harvest and
training panels start from them. Going back and forth keeps everything entered.

The wizard does not let a person make a project that cannot train: the data step shows where
every row goes (:mod:`kdstudio.gui.data_page`) and refuses a project with no training rows, no
labels or no validation rows; it asks before a project with no test rows, and before a Claude
teacher with no API key. Errors show beside the field they are about, scrolled into view; combo
and spin boxes take the mouse wheel only when focused, so scrolling never changes a choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.events import Log, Progress
from kdstudio.gui.config_form import ConfigForm, FieldError, scroll_to
from kdstudio.gui.data_page import DATA_FILTER, NONE_COLUMN, SPLIT_CHOICES, DataPage, safe_name
from kdstudio.gui.student_picker import TEACHER_LAYERS, StudentPicker
from kdstudio.gui.teacher_picker import TeacherPicker
from kdstudio.gui.wheel_guard import guard_wheel
from kdstudio.gui.widgets import button, label, restyle, set_flag
from kdstudio.gui.worker import Worker

BASIC_SETTINGS = ("temperature", "alpha", "epochs", "batch_size", "lr")
#: Teacher kinds with transformer layers a ``teacher-layers:K`` student can start from.
KINDS_WITH_LAYERS = ("hf", "embed")


class SettingsPage(QWidget):
    """Training settings built from ``TrainConfig``'s fields."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from kdstudio.core.train.config import TrainConfig

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(label("Defaults suit most projects; hover a field for what it does.", "muted", wrap=True))
        self.form = ConfigForm(TrainConfig, basic=BASIC_SETTINGS, exclude=("student", "teacher"))
        layout.addWidget(self.form)
        layout.addStretch(1)

    def validate(self, student: str) -> str | None:
        from kdstudio.core.errors import ConfigError
        from kdstudio.core.train.config import TrainConfig

        try:
            TrainConfig.from_dict({**self.form.values(), "student": student}).validate()
        except FieldError as exc:
            self.form.show_error(str(exc), exc.field)
            return str(exc)
        except (ValueError, ConfigError) as exc:
            self.form.show_error(str(exc))
            return str(exc)
        self.form.show_error("")
        return None

    def config(self, student: str) -> dict[str, Any]:
        return {**self.form.values(), "student": student}


STEPS = ("Task & data", "Teacher", "Student", "Settings")


class ProjectWizard(QDialog):
    """Four steps in a sidebar; Back and Next keep every page's state."""

    project_created = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New project")
        self.resize(1040, 760)
        self.worker: Worker | None = None
        self.import_warnings: list[str] = []  # what the new project's imports noticed, shown once it opens
        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)

        sidebar = QFrame()
        sidebar.setObjectName("sidebar")
        sidebar.setFixedWidth(210)
        side = QVBoxLayout(sidebar)
        side.setContentsMargins(14, 22, 14, 16)
        side.setSpacing(4)
        side.addWidget(label("New project", "heading"))
        side.addSpacing(12)
        self.step_labels = []
        for i, name in enumerate(STEPS):
            step = label(f"{i + 1}   {name}", "step")
            self.step_labels.append(step)
            side.addWidget(step)
        side.addStretch(1)
        side.addWidget(label("Everything here can be changed later in the project.", "muted", wrap=True))
        outer.addWidget(sidebar)

        main = QVBoxLayout()
        main.setContentsMargins(28, 22, 28, 18)
        main.setSpacing(12)
        self.title = label("", "heading")
        self.subtitle = label("", "muted", wrap=True)
        main.addWidget(self.title)
        main.addWidget(self.subtitle)
        self.data_page = DataPage()
        self.teacher_page = TeacherPicker()
        self.student_page = StudentPicker()
        self.settings_page = SettingsPage()
        self.pages = QStackedWidget()
        for page in (self.data_page, self.teacher_page, self.student_page, self.settings_page):
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(page)
            self.pages.addWidget(scroll)
        main.addWidget(self.pages, 1)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = label("", "muted", wrap=True)
        main.addWidget(self.progress)
        main.addWidget(self.status)
        buttons = QHBoxLayout()
        self.cancel_button = button("Cancel")
        self.back_button = button("Back")
        self.next_button = button("Next", "primary")
        self.next_button.setDefault(True)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.next_button)
        main.addLayout(buttons)
        outer.addLayout(main, 1)

        self.cancel_button.clicked.connect(self.reject)
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.data_page.changed.connect(self._task_changed)
        self.teacher_page.changed.connect(self._offer_students)
        self.student_page.changed.connect(self._offer_students)
        self._confirmed: set[str] = set()  # what the person already agreed to go on with
        self.index = 0
        self._show(0)
        self._offer_students()
        guard_wheel(self)

    # -- navigation ---------------------------------------------------------------------------
    SUBTITLES = (
        "Name the project, pick the task and add your data. Check the preview and the column mapping.",
        "The teacher answers every example once; its answers are cached in the project and reused by every "
        "student you train.",
        "The student is the small model you will ship. Smaller is faster; larger usually agrees with the "
        "teacher more often.",
        "How the student learns from the teacher.",
    )

    def _show(self, index: int) -> None:
        self.index = index
        self.pages.setCurrentIndex(index)
        self.title.setText(STEPS[index])
        self.subtitle.setText(self.SUBTITLES[index])
        for i, step in enumerate(self.step_labels):
            set_flag(step, "current", i == index)
            set_flag(step, "done", i < index)
            step.setText(("✓  " if i < index else f"{i + 1}   ") + STEPS[i])
        self.back_button.setEnabled(index > 0)
        self.next_button.setText("Create project" if index == len(STEPS) - 1 else "Next")

    def _task_changed(self) -> None:
        self.teacher_page.set_task(self.data_page.task)
        self.student_page.set_task(self.data_page.task)

    def _offer_students(self) -> None:
        """Offer "Teacher's own layers" only for a teacher that has layers (not Claude, not an LM)."""
        has_layers = self.teacher_page.kind in KINDS_WITH_LAYERS
        card = self.student_page.cards.get(TEACHER_LAYERS)
        if card is not None:  # also a just-built card: one added to a layout is shown later unless hidden now
            card.setVisible(has_layers)
        if not has_layers and self.student_page.choice == TEACHER_LAYERS:
            first = next((n for n in self.student_page.cards if n != TEACHER_LAYERS), None)
            if first is not None:
                self.student_page.set_choice(first)

    def _page_problem(self, index: int) -> str | None:
        """What stops the wizard at step ``index`` (shown on the page), or None; asks first
        about what would make a weak project but not a broken one."""
        if index == 0:
            problem = self.data_page.validate()
            if problem:
                return problem
            for ask in (p for p in self.data_page.problems() if not p.blocking):
                if not self.ask(ask.message, "Create it anyway"):
                    return ask.message
            return None
        if index == 1:
            problem = self.teacher_page.validate()
            if problem:
                scroll_to(self.teacher_page.error)
                return problem
            return self._key_problem()
        if index == 2:
            problem = self.student_page.validate()
            if problem:
                scroll_to(self.student_page.error)
            return problem
        return self.settings_page.validate(self.student_page.spec())

    def _key_problem(self) -> str | None:
        """A Claude teacher with no API key: say where the key goes and ask before going on."""
        if self.teacher_page.kind != "claude":
            return None
        from kdstudio.core import secrets

        if secrets.get_api_key():
            return None
        message = (f"No API key for Claude: paste one above and press Save key (it goes to the system keyring), "
                   f"or set the {secrets.ENV_VAR} environment variable before starting KD Studio. The harvest "
                   "cannot start without it.")
        if self.ask(message, "Go on without a key"):
            return None
        self.teacher_page.error.setText(message)
        scroll_to(self.teacher_page.error)
        return message

    def ask(self, message: str, go_on: str) -> bool:
        """Ask once whether to go on despite ``message``; the answer is kept for this wizard."""
        if message in self._confirmed:
            return True
        box = QMessageBox(QMessageBox.Icon.Warning, "New project", message, parent=self)
        yes = box.addButton(go_on, QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Go back", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        if box.clickedButton() is yes:
            self._confirmed.add(message)
            return True
        return False

    def next(self) -> None:
        if self.worker is not None:
            return
        if self._page_problem(self.index):
            return
        if self.index < len(STEPS) - 1:
            self._show(self.index + 1)
        else:
            self.create()

    def back(self) -> None:
        if self.index > 0 and self.worker is None:
            self._show(self.index - 1)

    def go_to(self, index: int) -> None:
        self._show(index)

    # -- result -------------------------------------------------------------------------------
    def plan(self) -> dict[str, Any]:
        """The choices kept in the project for the harvest and training panels (and, for a
        generation teacher, its instructions: the project's ``instructions`` setting)."""
        plan = {"teacher": self.teacher_page.spec(), "student": self.student_page.spec(),
                "train": self.settings_page.config(self.student_page.spec())}
        instructions = self.teacher_page.instructions_text()
        if instructions:
            plan["instructions"] = instructions
        if self.teacher_page.max_tokens():
            plan["max_tokens"] = self.teacher_page.max_tokens()
        return plan

    def state(self) -> dict[str, Any]:
        return {**self.data_page.state(), "plan": self.plan()}

    def create(self) -> None:
        """Create the project and import the data in a worker; errors show inline."""
        from kdstudio.core.data import DataFile, create_project

        s = self.state()
        Path(s["path"]).parent.mkdir(parents=True, exist_ok=True)
        files = [DataFile(f["path"], f.get("split", "auto")) for f in s["files"]]
        self.worker = Worker(create_project, s["path"], s["task"], files, text_col=s["text_col"],
                             label_col=s["label_col"], valid_fraction=s["valid_fraction"], plan=s["plan"],
                             name="Creating the project", parent=self)
        self.worker.yielded.connect(self._event)
        self.worker.finished.connect(self._done)
        for w in (self.back_button, self.next_button):
            w.setEnabled(False)
        self.progress.show()
        self.progress.setRange(0, 0)
        self.status.setText("Creating the project…")
        self.status.setObjectName("muted")
        restyle(self.status)
        self.worker.start()

    def _event(self, event: object) -> None:
        if isinstance(event, Progress) and event.total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * event.fraction))
        elif isinstance(event, Log):
            self.status.setText(event.message)

    def _done(self, status: str) -> None:
        worker, self.worker = self.worker, None
        if status == "finished" and worker is not None and worker.result is not None:
            self.result_path = worker.result.path
            self.import_warnings = [w for imported in worker.result.imports for w in imported.warnings]
            if self.teacher_page.recorded_path() and self._import_recorded():
                return
            self._finish()
            return
        self._failed(worker)

    def _import_recorded(self) -> bool:
        """Import the recorded completions into the new project (``kdstudio import-completions``)."""
        from kdstudio.core.harvest.recorded import import_completions

        self.status.setText("Importing the recorded completions…")
        self.worker = Worker(import_completions, self.result_path, self.teacher_page.recorded_path(),
                             teacher=self.teacher_page.spec(), name="Importing completions", parent=self)
        self.worker.yielded.connect(self._event)
        self.worker.finished.connect(self._recorded_done)
        self.worker.start()
        return True

    def _recorded_done(self, status: str) -> None:
        worker, self.worker = self.worker, None
        if status == "finished":
            self._finish()
            return
        self._failed(worker, "The project was created; importing the recorded completions failed: ")

    def _finish(self) -> None:
        self.progress.hide()
        self.accept()
        self.project_created.emit(self.result_path)

    def _failed(self, worker: Worker | None, prefix: str = "") -> None:
        self.progress.hide()
        self.back_button.setEnabled(self.index > 0)
        self.next_button.setEnabled(True)
        message = worker.message if worker is not None else ""
        self.status.setText(prefix + (message or "Cancelled."))
        self.status.setObjectName("error")
        restyle(self.status)

    def reject(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait(5.0)
        super().reject()


__all__ = ["BASIC_SETTINGS", "DATA_FILTER", "NONE_COLUMN", "SPLIT_CHOICES", "DataPage", "ProjectWizard",
           "SettingsPage", "safe_name"]
