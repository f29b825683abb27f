"""The wizard's first step: project name and place, the task, the data files with a preview, the
column mapping, and where every row will go.

Where the rows go is not guessed: each change starts core's ``plan_project`` in a worker, which
makes the project in a temporary folder exactly as finishing the wizard will, and the page shows
its counts per file and per split, and the problems ``check_splits`` finds (no training rows, no
labels, no validation or test rows); that part is :mod:`kdstudio.gui.data_plan`. An error shows
beside what it is about.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.events import Finished
from kdstudio.gui.config_form import scroll_to
from kdstudio.gui.data_plan import DataPlan
from kdstudio.gui.settings import default_projects_dir
from kdstudio.gui.wheel_guard import guard_wheel
from kdstudio.gui.widgets import Card, DropZone, button, label, restyle, set_flag
from kdstudio.gui.worker import Worker

if TYPE_CHECKING:
    from kdstudio.core.data import Preview

SPLIT_CHOICES = ("auto", "train", "valid", "test", "unlabeled")
NONE_COLUMN = "(none)"
DATA_FILTER = "Data files (*.csv *.tsv *.txt *.jsonl *.json *.parquet *.label);;All files (*)"


#: how the read-as line names each format
FORMAT_NAMES = {"csv": "CSV", "tsv": "TSV", "jsonl": "JSON Lines", "json": "JSON", "parquet": "Parquet",
                "label-tab": "tab-separated label and text", "label-space": "space-separated label and text",
                "trec": "TREC questions"}


def read_as_text(result: Preview) -> str:
    """How the file is read, as ``kdstudio import`` says it: ``Read as CSV, semicolon-separated, UTF-8``."""
    from kdstudio.core.data.readers import delimiter_name

    parts = [FORMAT_NAMES.get(result.format, result.format)]
    if result.delimiter is not None:
        parts.append(f"{delimiter_name(result.delimiter)}-separated")
    if result.format != "parquet":
        encoding = result.encoding
        parts.append(encoding.upper() if encoding.lower().startswith("utf") else encoding)
    return "Read as " + ", ".join(parts)


def safe_name(text: str) -> str:
    """A file-name-safe project name."""
    return re.sub(r"[^\w\-. ]+", "_", text).strip(" .") or "project"


class DataPage(DataPlan, QWidget):
    """Project name and place, the task, the data files with a preview and the column mapping."""

    changed = Signal()
    plan_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.previews: dict[str, Preview] = {}
        self._init_plan()
        self._workers: list[Worker] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)

        form = QFormLayout()
        form.setHorizontalSpacing(18)
        form.setVerticalSpacing(8)
        self.name = QLineEdit("my-project")
        self.name.textChanged.connect(self._update_path_hint)
        self.name_error = label("", "error", wrap=True)
        self.name_error.hide()
        form.addRow(label("Name"), self._cell(self.name, self.name_error))
        place = QHBoxLayout()
        place.setContentsMargins(0, 0, 0, 0)
        self.folder = QLineEdit(str(default_projects_dir()))
        self.folder.textChanged.connect(self._update_path_hint)
        choose = button("Choose…")
        choose.clicked.connect(self._choose_folder)
        place.addWidget(self.folder, 1)
        place.addWidget(choose)
        self.path_hint = label("", "muted", wrap=True)  # where the file goes, or what is wrong with the folder
        form.addRow(label("Folder"), self._cell(place, self.path_hint))
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
            card.setProperty("task", task)
            card.clicked.connect(self._task_card_clicked)  # a bound slot: no lambda over self (a cycle)
            tasks.addWidget(card)
            self.task_cards[task] = card
        layout.addLayout(tasks)

        layout.addWidget(label("Data", "subheading"))
        self.drop = DropZone("Drop a data file here")
        self.drop.file_chosen.connect(self.add_file)
        self.drop.browse_requested.connect(self._browse)
        layout.addWidget(self.drop)
        self.files = QTableWidget(0, 4)
        self.files.setHorizontalHeaderLabels(["File", "Split", "Its rows go to", ""])
        self.files.verticalHeader().hide()
        header = self.files.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.files.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.files.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.files.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.files.itemSelectionChanged.connect(self._show_selected_preview)
        self.files.verticalHeader().setDefaultSectionSize(34)
        self.files.hide()
        layout.addWidget(self.files)

        mapping = QHBoxLayout()
        self.text_col = QComboBox()
        self.text_col.setToolTip("The column with the input text")
        self.label_col = QComboBox()
        self.label_col.setToolTip("The column with the gold label (or, for generation, the reference completion)")
        self.valid_percent = QSpinBox()
        self.valid_percent.setRange(0, 50)
        self.valid_percent.setSingleStep(5)
        self.valid_percent.setValue(10)
        self.valid_percent.setSuffix(" %")
        self.valid_percent.setToolTip("Share of the training rows held out for validation (stratified, seed 0) "
                                      "when no file goes to valid")
        self.label_col_title = label("Label column")
        self.text_col_title = label("Text column")
        for title, w in ((self.text_col_title, self.text_col), (self.label_col_title, self.label_col),
                         (label("Hold out for validation"), self.valid_percent)):
            mapping.addWidget(title)
            mapping.addWidget(w, 1)
            mapping.addSpacing(8)
        self.mapping = QWidget()
        self.mapping.setLayout(mapping)
        self.mapping.hide()
        layout.addWidget(self.mapping)
        for w in (self.text_col, self.label_col):
            w.currentIndexChanged.connect(self._mapping_changed)
        self.valid_percent.valueChanged.connect(self._mapping_changed)

        self.summary = label("", "muted", wrap=True)  # where the rows go, for the whole project
        layout.addWidget(self.summary)
        self.warning = label("", "warning", wrap=True)  # what the person is asked about on Next
        self.warning.hide()
        layout.addWidget(self.warning)
        self.error = label("", "error", wrap=True)  # what stops the wizard here
        self.error.hide()
        self._error_source = ""
        layout.addWidget(self.error)

        title = QHBoxLayout()
        self.preview_title = label("", "muted")
        self.read_as = label("", "muted", plain=True)  # how the file shown is read: format, delimiter, encoding
        title.addWidget(self.preview_title)
        title.addStretch(1)
        title.addWidget(self.read_as)
        layout.addLayout(title)
        self.preview = QTableWidget(0, 0)
        self.preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview.setAlternatingRowColors(True)
        self.preview.verticalHeader().setDefaultSectionSize(26)
        self.preview.setMinimumHeight(170)
        self.preview.hide()
        layout.addWidget(self.preview, 1)
        layout.addStretch(0)
        guard_wheel(self)
        self.task = "classification"
        self.set_task("classification")
        self._update_path_hint()

    @staticmethod
    def _cell(field: QWidget | QHBoxLayout, note: QWidget) -> QWidget:
        """A form field with the line under it that explains it (a hint or an error)."""
        cell = QWidget()
        column = QVBoxLayout(cell)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(3)
        if isinstance(field, QWidget):
            column.addWidget(field)
        else:
            column.addLayout(field)
        column.addWidget(note)
        return cell

    # -- basics -------------------------------------------------------------------------------
    def project_path(self) -> Path:
        return Path(self.folder.text().strip()).expanduser() / f"{safe_name(self.name.text().strip())}.kdproj"

    def _update_path_hint(self) -> None:
        self.path_hint.setText(f"Saved as {self.project_path()}")
        self.path_hint.setObjectName("muted")
        restyle(self.path_hint)
        self.name_error.hide()
        set_flag(self.name, "invalid", False)
        set_flag(self.folder, "invalid", False)
        self.changed.emit()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Where to save the project", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def set_task(self, task: str) -> None:
        self.task = task
        for t, card in self.task_cards.items():
            card.set_selected(t == task)
        generation = task == "generation"
        self.text_col_title.setText("Prompt column" if generation else "Text column")
        self.label_col_title.setText("Reference completion column" if generation else "Label column")
        self.text_col.setToolTip("The column with the prompt the teacher completes" if generation
                                 else "The column with the input text")
        self.label_col.setToolTip("The column with a reference completion (optional; a prompt repeated with "
                                  "another completion gets one more reference)" if generation
                                  else "The column with the gold label")
        self._mark_preview_columns()
        self._schedule_plan()
        self.changed.emit()

    @property
    def valid_fraction(self) -> float:
        return self.valid_percent.value() / 100

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

    def split_box(self, path: str) -> QComboBox | None:
        """The Split box of the file at ``path``."""
        row = self._row_of(str(Path(path).resolve()))
        return self.files.cellWidget(row, 1) if row is not None else None

    def _row_of(self, path: str) -> int | None:
        for row in range(self.files.rowCount()):
            if self.files.item(row, 0).data(Qt.ItemDataRole.UserRole) == path:
                return row
        return None

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
        self.files.setItem(row, 0, item)
        split = QComboBox()
        split.addItems(SPLIT_CHOICES)
        split.setMinimumWidth(150)
        split.setToolTip("auto: from the file name (…test… → test, …dev/valid… → valid, else train; rows "
                         "without a label → unlabeled)")
        split.currentIndexChanged.connect(self._mapping_changed)
        guard_wheel(split)
        self.files.setCellWidget(row, 1, split)
        self.files.setItem(row, 2, QTableWidgetItem("reading…"))
        remove = button("Remove", "link")
        remove.setProperty("path", path)
        remove.clicked.connect(self._remove_clicked)
        self.files.setCellWidget(row, 3, remove)
        self._fit_files_table()
        self.files.selectRow(row)
        self.drop.hint.hide()  # compact once there is a file: room for the counts and the preview
        self.drop.layout().setContentsMargins(20, 8, 20, 8)
        self.drop.text.setText("Drop another file here (a test or validation split), or")
        self._set_data_error("", "page")
        self.preview_title.setText(f"Reading {Path(path).name}…")
        self.read_as.setText("")
        from kdstudio.core.data import preview_job

        worker = Worker(preview_job, path, task=self.task, name="Preview", parent=self)
        worker.setProperty("path", path)
        worker.yielded.connect(self._preview_event)
        worker.errored.connect(self._preview_error)
        self._workers.append(worker.start())
        self._schedule_plan()
        self.changed.emit()

    def remove_file(self, path: str) -> None:
        row = self._row_of(path)
        if row is not None:
            self.files.removeRow(row)
        self.previews.pop(path, None)
        self._fit_files_table()
        if not self.previews:
            self.preview.hide()
            self.mapping.hide()
            self.preview_title.setText("")
            self.read_as.setText("")
        self._show_selected_preview()
        self._schedule_plan()
        self.changed.emit()

    def _fit_files_table(self) -> None:
        rows = self.files.rowCount()
        self.files.setVisible(rows > 0)
        self.files.setFixedHeight(self.files.horizontalHeader().height() + 34 * min(rows, 4) + 4)

    def _preview_failed(self, path: str, message: str) -> None:
        self.remove_file(path)
        self._set_data_error(message, "page")
        self.preview_title.setText("")
        self.read_as.setText("")

    def _preview_ready(self, path: str, result: Preview) -> None:
        self.previews[path] = result
        first = next(iter(self.previews.values()))
        if first is result:
            self._fill_mapping(result)
        row = self._row_of(path)
        if row is not None:
            self.files.cellWidget(row, 1).setItemText(0, f"auto ({result.auto_split})")
        self._show_preview(result)
        self.mapping.show()
        self._schedule_plan()
        self.changed.emit()

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
        self._mark_preview_columns()
        self.preview.show()
        name = Path(result.path).name
        self.preview_title.setText(f"First {len(rows)} rows of {name}")
        self.read_as.setText(read_as_text(result))

    def _mark_preview_columns(self) -> None:
        """The preview's headers say which column is the text (prompt) and which the label (reference)."""
        if not hasattr(self, "preview"):
            return
        roles = {self.text_column(): "prompt" if self.task == "generation" else "text",
                 self.label_column(): "reference" if self.task == "generation" else "label"}
        for c in range(self.preview.columnCount()):
            item = self.preview.horizontalHeaderItem(c)
            if item is None:
                continue
            name = item.data(Qt.ItemDataRole.UserRole) or item.text()
            item.setData(Qt.ItemDataRole.UserRole, name)
            role = roles.get(name)
            item.setText(f"{name} → {role}" if role else name)

    def _mapping_changed(self) -> None:
        self._mark_preview_columns()
        self._schedule_plan()
        self.changed.emit()

    def text_column(self) -> str | None:
        return self.text_col.currentData()

    def label_column(self) -> str | None:
        return self.label_col.currentData()

    def import_label_column(self) -> str:
        """The label column as the import takes it: "(none)" is ``NO_LABEL_COLUMN``, not a guess."""
        from kdstudio.core.data.importer import NO_LABEL_COLUMN

        return self.label_column() or NO_LABEL_COLUMN

    # Slots bound to this page, told apart by what their sender carries: a lambda over ``self``
    # connected to a child's signal would keep the page in a reference cycle.
    def _task_card_clicked(self) -> None:
        self.set_task(self.sender().property("task"))

    def _remove_clicked(self) -> None:
        self.remove_file(self.sender().property("path"))

    def _preview_event(self, event: object) -> None:
        if isinstance(event, Finished):
            self._preview_ready(self.sender().property("path"), event.result)

    def _preview_error(self, message: str, _details: str) -> None:
        self._preview_failed(self.sender().property("path"), message)

    def _set_data_error(self, message: str, source: str) -> None:
        """Show ``message`` under the files; ``source`` is "plan" (it goes when the counts change)
        or "page" (it stays until the files change)."""
        self.error.setText(message)
        self.error.setVisible(bool(message))
        self._error_source = source if message else ""

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> str | None:
        """The first thing that stops the wizard here, shown beside what it is about and
        scrolled to; None when the page is complete."""
        message, anchor = self._problem()
        self.name_error.setText(message if anchor is self.name else "")
        self.name_error.setVisible(anchor is self.name)
        set_flag(self.name, "invalid", anchor is self.name)
        set_flag(self.folder, "invalid", anchor is self.folder)
        if anchor is self.folder:
            self.path_hint.setText(message or "")
            self.path_hint.setObjectName("error")
            restyle(self.path_hint)
        if anchor is self.error:
            live = self.plan_error or next((p.message for p in self.problems() if p.blocking), "")
            self._set_data_error(message or "", "plan" if message == live else "page")
        if message and anchor is not None:
            scroll_to(self.path_hint if anchor is self.folder else anchor)
        return message

    def _problem(self) -> tuple[str | None, QWidget | None]:
        if not self.name.text().strip():
            return "Give the project a name.", self.name
        folder = Path(self.folder.text().strip()).expanduser()
        if not self.folder.text().strip():
            return "Choose a folder for the project.", self.folder
        if folder.exists() and not folder.is_dir():
            return f"{folder} is a file, not a folder.", self.folder
        if self.project_path().exists():
            return f"{self.project_path().name} already exists in that folder: choose another name.", self.name
        files = self.file_list()
        if not files:
            return "Add a data file: drop it above or press Browse.", self.error
        if len(self.previews) < len(files):
            return "Still reading the data file…", self.error
        column = self._column_problem()
        if column:
            return column, self.error
        if self.plan_error:
            return self.plan_error, self.error
        if self.plan is None:
            return "Still counting where the rows go…", self.error
        blocking = next((p.message for p in self.problems() if p.blocking), None)
        if blocking:
            return blocking, self.error
        return None, None

    def _column_problem(self) -> str | None:
        if not self.text_column():
            return "Choose the text column."
        if self.text_column() == self.label_column():
            return "The text and label columns must differ."
        for f in self.file_list():
            if f["path"] not in self.previews:
                continue
            columns = self.previews[f["path"]].columns
            for col in (self.text_column(), self.label_column()):
                if col and col not in columns:
                    return f"{Path(f['path']).name} has no column '{col}' (it has: {', '.join(columns)})."
        return None

    def state(self) -> dict[str, Any]:
        return {"path": str(self.project_path()), "task": self.task, "files": [
            {"path": f["path"], "split": self._split_of(f)} for f in self.file_list()],
            "text_col": self.text_column(), "label_col": self.import_label_column(),
            "valid_fraction": round(self.valid_fraction, 4)}
