"""The new-project wizard: Task & data, Teacher, Student, Settings.

Finishing it does what ``kdstudio new`` and ``kdstudio import`` do (in a worker), and keeps
the chosen teacher, student and settings in the project as its plan, so the harvest and
training panels start from them. Going back and forth keeps everything entered.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QProgressBar,
    QScrollArea,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.events import Finished, Log, Progress
from kdstudio.gui.config_form import ConfigForm
from kdstudio.gui.settings import default_projects_dir
from kdstudio.gui.student_picker import StudentPicker
from kdstudio.gui.teacher_picker import TeacherPicker
from kdstudio.gui.widgets import Card, DropZone, button, label, set_flag
from kdstudio.gui.worker import Worker

if TYPE_CHECKING:
    from kdstudio.core.data import Preview

SPLIT_CHOICES = ("auto", "train", "valid", "test", "unlabeled")
BASIC_SETTINGS = ("temperature", "alpha", "epochs", "batch_size", "lr")
NONE_COLUMN = "(none)"
DATA_FILTER = "Data files (*.csv *.tsv *.txt *.jsonl *.json *.parquet *.label);;All files (*)"


def safe_name(text: str) -> str:
    """A file-name-safe project name."""
    return re.sub(r"[^\w\-. ]+", "_", text).strip(" .") or "project"


class DataPage(QWidget):
    """Project name and place, the task, the data files with a preview and the column mapping."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.previews: dict[str, Preview] = {}
        self._workers: list[Worker] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)

        form = QFormLayout()
        form.setHorizontalSpacing(18)
        self.name = QLineEdit("my-project")
        self.name.textChanged.connect(self._update_path_hint)
        form.addRow(label("Name"), self.name)
        place = QHBoxLayout()
        self.folder = QLineEdit(str(default_projects_dir()))
        self.folder.textChanged.connect(self._update_path_hint)
        choose = button("Choose…")
        choose.clicked.connect(self._choose_folder)
        place.addWidget(self.folder, 1)
        place.addWidget(choose)
        form.addRow(label("Folder"), place)
        self.path_hint = label("", "muted")
        form.addRow("", self.path_hint)
        layout.addLayout(form)

        layout.addWidget(label("Task", "subheading"))
        tasks = QHBoxLayout()
        self.task_cards: dict[str, Card] = {}
        for task, title, text in (
            ("classification", "Classification", "Give each text one of a set of labels (spam / ham, topic, intent…)."),
            ("generation", "Generation", "Write a completion for each prompt (summaries, answers, rewrites…)."),
        ):
            card = Card(clickable=True)
            card.layout_.addWidget(label(title, "subheading"))
            card.layout_.addWidget(label(text, "muted", wrap=True))
            card.clicked.connect(lambda t=task: self.set_task(t))
            tasks.addWidget(card)
            self.task_cards[task] = card
        layout.addLayout(tasks)

        layout.addWidget(label("Data", "subheading"))
        self.drop = DropZone("Drop a data file here")
        self.drop.file_chosen.connect(self.add_file)
        self.drop.browse_requested.connect(self._browse)
        layout.addWidget(self.drop)
        self.files = QTableWidget(0, 3)
        self.files.setHorizontalHeaderLabels(["File", "Split", ""])
        self.files.verticalHeader().hide()
        self.files.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.files.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.files.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.files.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.files.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.files.itemSelectionChanged.connect(self._show_selected_preview)
        self.files.verticalHeader().setDefaultSectionSize(34)
        self.files.hide()
        layout.addWidget(self.files)

        mapping = QHBoxLayout()
        self.text_col = QComboBox()
        self.text_col.setToolTip("The column with the input text")
        self.label_col = QComboBox()
        self.label_col.setToolTip("The column with the gold label (or, for generation, the reference completion)")
        self.valid_fraction = QDoubleSpinBox()
        self.valid_fraction.setRange(0.0, 0.5)
        self.valid_fraction.setSingleStep(0.05)
        self.valid_fraction.setValue(0.1)
        self.valid_fraction.setToolTip("Share of labelled training rows held out for validation when the data has "
                                       "no validation file")
        self.label_col_title = label("Label column")
        for title, w in ((label("Text column"), self.text_col), (self.label_col_title, self.label_col),
                         (label("Hold out for validation"), self.valid_fraction)):
            mapping.addWidget(title)
            mapping.addWidget(w, 1)
            mapping.addSpacing(8)
        self.mapping = QWidget()
        self.mapping.setLayout(mapping)
        self.mapping.hide()
        layout.addWidget(self.mapping)
        for w in (self.text_col, self.label_col):
            w.currentIndexChanged.connect(self._mapping_changed)
        self.valid_fraction.valueChanged.connect(self._mapping_changed)

        self.preview_title = label("", "muted")
        layout.addWidget(self.preview_title)
        self.preview = QTableWidget(0, 0)
        self.preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview.setAlternatingRowColors(True)
        self.preview.verticalHeader().setDefaultSectionSize(26)
        self.preview.setMinimumHeight(170)
        self.preview.hide()
        layout.addWidget(self.preview, 1)
        self.summary = label("", "muted", wrap=True)
        layout.addWidget(self.summary)
        self.error = label("", "error", wrap=True)
        layout.addWidget(self.error)
        layout.addStretch(0)
        self.task = "classification"
        self.set_task("classification")
        self._update_path_hint()

    # -- basics -------------------------------------------------------------------------------
    def project_path(self) -> Path:
        return Path(self.folder.text().strip()).expanduser() / f"{safe_name(self.name.text().strip())}.kdproj"

    def _update_path_hint(self) -> None:
        self.path_hint.setText(f"Saved as {self.project_path()}")
        self.changed.emit()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Where to save the project", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def set_task(self, task: str) -> None:
        self.task = task
        for t, card in self.task_cards.items():
            card.set_selected(t == task)
        self.label_col_title.setText("Reference column" if task == "generation" else "Label column")
        self._update_summary()
        self.changed.emit()

    # -- files --------------------------------------------------------------------------------
    def _browse(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Choose data files", str(Path.home()), DATA_FILTER)
        for path in paths:
            self.add_file(path)

    def file_list(self) -> list[dict[str, str]]:
        out = []
        for row in range(self.files.rowCount()):
            item = self.files.item(row, 0)
            box = self.files.cellWidget(row, 1)
            out.append({"path": item.data(Qt.ItemDataRole.UserRole), "split": box.currentText()})
        return out

    def add_file(self, path: str) -> None:
        """Add a data file and preview it in a worker; errors show inline."""
        path = str(Path(path).resolve())
        if any(f["path"] == path for f in self.file_list()):
            return
        row = self.files.rowCount()
        self.files.insertRow(row)
        item = QTableWidgetItem(Path(path).name)
        item.setData(Qt.ItemDataRole.UserRole, path)
        item.setToolTip(path)
        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
        self.files.setItem(row, 0, item)
        split = QComboBox()
        split.addItems(SPLIT_CHOICES)
        split.setMinimumWidth(150)
        split.setToolTip("auto: from the file name (…test… → test, …dev/valid… → valid, else train)")
        split.currentIndexChanged.connect(self._update_summary)
        self.files.setCellWidget(row, 1, split)
        remove = button("Remove", "link")
        remove.clicked.connect(lambda _c=False, p=path: self.remove_file(p))
        self.files.setCellWidget(row, 2, remove)
        self._fit_files_table()
        self.files.selectRow(row)
        self.drop.hint.hide()  # compact once there is a file: room for the preview
        self.drop.text.setText("Drop another file here (a test or validation split), or")
        self.error.setText("")
        self.preview_title.setText(f"Reading {Path(path).name}…")
        from kdstudio.core.data import preview_job

        worker = Worker(preview_job, path, task=self.task, name="Preview", parent=self)
        worker.yielded.connect(lambda e, p=path: isinstance(e, Finished) and self._preview_ready(p, e.result))
        worker.errored.connect(lambda msg, _d, p=path: self._preview_failed(p, msg))
        self._workers.append(worker.start())
        self.changed.emit()

    def remove_file(self, path: str) -> None:
        for row in range(self.files.rowCount()):
            if self.files.item(row, 0).data(Qt.ItemDataRole.UserRole) == path:
                self.files.removeRow(row)
                break
        self.previews.pop(path, None)
        self._fit_files_table()
        if not self.previews:
            self.preview.hide()
            self.mapping.hide()
            self.preview_title.setText("")
        self._show_selected_preview()
        self._update_summary()
        self.changed.emit()

    def _fit_files_table(self) -> None:
        rows = self.files.rowCount()
        self.files.setVisible(rows > 0)
        self.files.setFixedHeight(self.files.horizontalHeader().height() + 34 * min(rows, 4) + 4)

    def _preview_failed(self, path: str, message: str) -> None:
        self.remove_file(path)
        self.error.setText(message)
        self.preview_title.setText("")

    def _preview_ready(self, path: str, result: Preview) -> None:
        self.previews[path] = result
        first = next(iter(self.previews.values()))
        if first is result:
            self._fill_mapping(result)
        self._set_row_split_hint(path, result.auto_split)
        self._show_preview(result)
        self.mapping.show()
        self._update_summary()
        self.changed.emit()

    def _set_row_split_hint(self, path: str, auto: str) -> None:
        for row in range(self.files.rowCount()):
            if self.files.item(row, 0).data(Qt.ItemDataRole.UserRole) == path:
                self.files.cellWidget(row, 1).setItemText(0, f"auto ({auto})")

    def _fill_mapping(self, result: Preview) -> None:
        columns = list(result.columns)
        for box, guess, allow_none in ((self.text_col, result.text_col, False),
                                       (self.label_col, result.label_col, True)):
            box.blockSignals(True)
            box.clear()
            if allow_none:
                box.addItem(NONE_COLUMN, None)
            for c in columns:
                box.addItem(c, c)
            index = box.findData(guess) if guess else (0 if allow_none else -1)
            box.setCurrentIndex(index if index >= 0 else 0)
            box.blockSignals(False)

    def _show_selected_preview(self) -> None:
        rows = self.files.selectionModel().selectedRows() if self.files.selectionModel() else []
        if rows:
            path = self.files.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)
            if path in self.previews:
                self._show_preview(self.previews[path])

    def _show_preview(self, result: Preview) -> None:
        columns = list(result.columns)
        rows = result.rows
        self.preview.clear()
        self.preview.setColumnCount(len(columns))
        self.preview.setRowCount(len(rows))
        self.preview.setHorizontalHeaderLabels(columns)
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                text = str(value)
                item = QTableWidgetItem(text if len(text) < 200 else text[:200] + "…")
                item.setToolTip(text[:1000])
                self.preview.setItem(r, c, item)
        header = self.preview.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.preview.resizeColumnsToContents()
        for c in range(len(columns)):
            self.preview.setColumnWidth(c, min(self.preview.columnWidth(c), 420))
        header.setStretchLastSection(True)
        self.preview.show()
        name = Path(result.path).name
        self.preview_title.setText(f"First {len(rows)} rows of {name} · {result.format} · {result.encoding}")

    def _mapping_changed(self) -> None:
        self._update_summary()
        self.changed.emit()

    def text_column(self) -> str | None:
        return self.text_col.currentData()

    def label_column(self) -> str | None:
        return self.label_col.currentData()

    def _update_summary(self) -> None:
        """Where each file's rows will go, in words."""
        files = self.file_list()
        if not files:
            self.summary.setText("")
            return
        parts = []
        splits = set()
        for f in files:
            auto = self.previews[f["path"]].auto_split if f["path"] in self.previews else "train"
            split = auto if f["split"].startswith("auto") else f["split"]
            splits.add(split)
            parts.append(f"{Path(f['path']).name} → {split}")
        text = "Splits: " + "; ".join(parts) + "."
        if "train" in splits and "valid" not in splits and self.valid_fraction.value() > 0:
            text += (f" {self.valid_fraction.value():.0%} of the labelled training rows are held out for "
                     "validation (stratified, seed 0).")
        if self.task == "classification":
            if self.label_column() is None:
                text += " Without a label column the rows are unlabeled: the teacher labels them."
            elif any(f["split"].startswith("auto") for f in files):
                text += " Rows with an empty label go to unlabeled."
        if "test" not in splits:
            text += " No test file: add one to compare teacher and student on held-out data."
        self.summary.setText(text)

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> str | None:
        message = self._problem()
        self.error.setText(message or "")
        set_flag(self.name, "invalid", bool(message) and "name" in (message or "").lower())
        return message

    def _problem(self) -> str | None:
        if not self.name.text().strip():
            return "Give the project a name."
        folder = Path(self.folder.text().strip()).expanduser()
        if not self.folder.text().strip():
            return "Choose a folder for the project."
        if folder.exists() and not folder.is_dir():
            return f"{folder} is a file, not a folder."
        if self.project_path().exists():
            return f"{self.project_path().name} already exists in that folder: choose another name."
        files = self.file_list()
        if not files:
            return "Add a data file: drop it above or press Browse."
        if len(self.previews) < len(files):
            return "Still reading the data file…"
        if not self.text_column():
            return "Choose the text column."
        if self.text_column() == self.label_column():
            return "The text and label columns must differ."
        for f in files:
            columns = self.previews[f["path"]].columns
            for col in (self.text_column(), self.label_column()):
                if col and col not in columns:
                    return f"{Path(f['path']).name} has no column '{col}' (it has: {', '.join(columns)})."
        return None

    def state(self) -> dict[str, Any]:
        return {"path": str(self.project_path()), "task": self.task, "files": [
            {"path": f["path"], "split": "auto" if f["split"].startswith("auto") else f["split"]}
            for f in self.file_list()], "text_col": self.text_column(), "label_col": self.label_column(),
            "valid_fraction": round(self.valid_fraction.value(), 4)}


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
        self.index = 0
        self._show(0)

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

    def _page_problem(self, index: int) -> str | None:
        if index == 0:
            return self.data_page.validate()
        if index == 1:
            return self.teacher_page.validate()
        if index == 2:
            return self.student_page.validate()
        return self.settings_page.validate(self.student_page.spec())

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
        """The choices kept in the project for the harvest and training panels."""
        return {"teacher": self.teacher_page.spec(), "student": self.student_page.spec(),
                "train": self.settings_page.config(self.student_page.spec())}

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
        self.worker.start()

    def _event(self, event: object) -> None:
        if isinstance(event, Progress) and event.total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * event.fraction))
        elif isinstance(event, Log):
            self.status.setText(event.message)

    def _done(self, status: str) -> None:
        worker, self.worker = self.worker, None
        self.progress.hide()
        self.back_button.setEnabled(self.index > 0)
        self.next_button.setEnabled(True)
        if status == "finished" and worker is not None and worker.result is not None:
            self.result_path = worker.result.path
            self.accept()
            self.project_created.emit(self.result_path)
            return
        message = worker.message if worker is not None else ""
        self.status.setText(message or "Cancelled.")
        self.status.setObjectName("error")
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    def reject(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait(5.0)
        super().reject()
