"""Export a run's student from the app: the format, the folder and (ONNX) whether to add an int8
model, then the same job as ``kdstudio export`` (:func:`kdstudio.core.export.export`) in a worker,
with its progress, and what it wrote — the folder, the model file and its size, the ONNX parity
check, the int8 model's size and agreement — or the one-line error."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.events import Finished, Log, Progress
from kdstudio.core.export import (
    FORMAT_HELP,
    FORMATS,
    INT8_MIN_AGREEMENT,
    ONNX_TOLERANCE,
    ExportResult,
    int8_summary,
    run_formats,
)
from kdstudio.gui.widgets import Card, ElidedLabel, button, label
from kdstudio.gui.worker import Worker

#: The format offered first: every student exports to ONNX.
DEFAULT_FORMAT = "onnx"
FORMAT_NAMES = {"onnx": "ONNX", "hf": "Hugging Face folder"}


def default_folder(project_path: Path, run_id: int, fmt: str) -> Path:
    """``<project folder>/<project name>-run<N>-<format>``, beside the project file."""
    return project_path.parent / f"{project_path.stem}-run{run_id}-{fmt}"


def megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:,.1f} MB" if n_bytes >= 100_000 else f"{n_bytes / 1e3:,.0f} kB"


class ExportDialog(QDialog):
    """Export run ``run_id`` of the project at ``project_path``. ``exported(result)`` is emitted
    with the :class:`~kdstudio.core.export.ExportResult` when the job finishes."""

    exported = Signal(object)

    def __init__(
        self, project_path: str | Path, run_id: int, title: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.project_path = Path(project_path)
        self.run_id = run_id
        self.worker: Worker | None = None
        self.result: ExportResult | None = None
        self.setWindowTitle(f"Export run #{run_id}")
        self.setMinimumWidth(680)
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(label(f"Export run #{run_id}" + (f" · {title}" if title else ""), "subheading"))
        layout.addWidget(label(
            "The student with its tokenizer, a model card (README.md) and the teacher's answers "
            "(teacher_outputs.jsonl), the same as kdstudio export writes. A run that is not evaluated "
            "yet is evaluated first, for the model card.", "muted", wrap=True))

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.allowed = run_formats(self.project_path, run_id)
        self.format = QComboBox()
        for i, fmt in enumerate(sorted(FORMATS, key=lambda f: f != DEFAULT_FORMAT)):
            self.format.addItem(FORMAT_NAMES.get(fmt, fmt), fmt)
            self.format.setItemData(i, FORMAT_HELP.get(fmt, ""), Qt.ItemDataRole.ToolTipRole)
            if fmt not in self.allowed:
                self.format.model().item(i).setEnabled(False)
        self.format.currentIndexChanged.connect(self._format_changed)
        self.format_help = label("", "muted", wrap=True)
        column = QVBoxLayout()
        column.setSpacing(2)
        column.addWidget(self.format, 0, Qt.AlignmentFlag.AlignLeft)
        column.addWidget(self.format_help)
        form.addRow("Format", column)
        row = QHBoxLayout()
        self.folder = QLineEdit(str(default_folder(self.project_path, run_id, self.fmt)))
        self.folder.setToolTip("A new or empty folder; an earlier export in it is replaced")
        self.choose_button = button("Choose…")
        self.choose_button.clicked.connect(self.choose_folder)
        row.addWidget(self.folder, 1)
        row.addWidget(self.choose_button)
        form.addRow("Folder", row)
        self.int8 = QCheckBox("Also write an int8 (quantized) model")
        self.int8.setToolTip(
            "model_int8.onnx beside model.onnx: the weights as 8-bit integers, about 4x smaller and faster on a "
            f"CPU; kept only if its top label matches the float model's on at least {INT8_MIN_AGREEMENT:.1%} of "
            "the test texts (kdstudio export --int8)")
        form.addRow("", self.int8)
        layout.addLayout(form)

        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setFixedWidth(180)
        self.status = ElidedLabel("", "muted")
        progress_row.addWidget(self.progress)
        progress_row.addWidget(self.status, 1)
        self.progress_row = QWidget()
        self.progress_row.setLayout(progress_row)
        progress_row.setContentsMargins(0, 0, 0, 0)
        self.progress_row.hide()
        layout.addWidget(self.progress_row)

        self.done_card = Card()
        self.summary = label("", wrap=True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.parity = label("", "muted", wrap=True)
        self.int8_line = label("", "muted", wrap=True)
        self.int8_line.hide()
        self.open_button = button("Open folder", "link", tooltip="Show the exported folder")
        self.open_button.clicked.connect(self.open_folder)
        for w in (self.summary, self.parity, self.int8_line):
            self.done_card.layout_.addWidget(w)
        self.done_card.layout_.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.done_card.hide()
        layout.addWidget(self.done_card)
        self.error = label("", "error", wrap=True)
        self.error.hide()
        layout.addWidget(self.error)
        layout.addStretch(1)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.setProperty("role", "primary")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._show_format_help()

    @property
    def fmt(self) -> str:
        return str(self.format.currentData())

    def _format_changed(self, *_args: object) -> None:
        """Follow the format in the folder's name while it is still a default one."""
        defaults = {str(default_folder(self.project_path, self.run_id, f)) for f in FORMATS}
        if self.folder.text() in defaults:
            self.folder.setText(str(default_folder(self.project_path, self.run_id, self.fmt)))
        self._show_format_help()

    def _show_format_help(self) -> None:
        lines = [FORMAT_HELP.get(self.fmt, "")]
        if set(FORMATS) - set(self.allowed):
            lines.append("This run's student is not a transformers model, so it exports to ONNX only.")
        self.format_help.setText(". ".join(line for line in lines if line))
        onnx = self.fmt == "onnx" and "onnx" in self.allowed
        self.int8.setEnabled(onnx)
        if not onnx:
            self.int8.setChecked(False)

    @property
    def wants_int8(self) -> bool:
        """Whether the export adds model_int8.onnx (the box is ticked and the format is ONNX)."""
        return self.int8.isChecked() and self.int8.isEnabled() and self.fmt == "onnx"

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to folder", str(Path(self.folder.text()).parent))
        if folder:
            self.folder.setText(folder)

    # -- the job ---------------------------------------------------------------------------------
    def start(self) -> Worker | None:
        """Run ``kdstudio export`` for this run in a worker; None while one already runs."""
        from kdstudio.core.export import export

        if self.worker is not None and self.worker.is_running:
            return None
        out = self.folder.text().strip()
        if not out:
            self._show_error("Choose a folder to export to.")
            return None
        int8 = self.wants_int8  # read before the busy state greys the box out
        self.result = None
        self.done_card.hide()
        self.error.hide()
        self.progress.setValue(0)
        self.status.setText("Starting…")
        self.progress_row.show()
        self._set_busy(True)
        worker = Worker(export, str(self.project_path), self.run_id, self.fmt, str(Path(out).expanduser()),
                        int8=int8, name=f"Exporting run #{self.run_id}", parent=self,
                        limit_threads=True)
        worker.yielded.connect(self._event)
        worker.finished.connect(lambda status, w=worker: self._finished(w, status))
        self.worker = worker.start()
        return worker

    def _set_busy(self, busy: bool) -> None:
        for w in (self.format, self.folder, self.choose_button, self.export_button):
            w.setEnabled(not busy)
        self.int8.setEnabled(not busy and self.fmt == "onnx" and "onnx" in self.allowed)
        close = self.buttons.button(QDialogButtonBox.StandardButton.Close)
        close.setText("Cancel" if busy else "Close")

    def _event(self, event: object) -> None:
        if isinstance(event, Progress) and event.total:
            self.progress.setValue(int(1000 * event.fraction))
        elif isinstance(event, Log):
            self.status.setText(event.message)
        elif isinstance(event, Finished):
            self.progress.setValue(1000)

    def _finished(self, worker: Worker, status: str) -> None:
        self._set_busy(False)
        self.progress_row.hide()
        if status == "finished" and isinstance(worker.result, ExportResult):
            self.result = worker.result
            self._show_result(worker.result)
            self.exported.emit(worker.result)
        elif status == "cancelled":
            self._show_error("Export cancelled.")
        else:
            self._show_error(worker.message or "The export failed.")

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()
        self._fit_height()

    def _show_result(self, result: ExportResult) -> None:
        out = Path(result.out)
        sizes = {f: (out / f).stat().st_size for f in result.files if (out / f).is_file()}
        models = {f: n for f, n in sizes.items() if f in ("model.onnx", "model.safetensors")} or sizes
        model = max(models, key=models.get) if models else None
        total = sum(sizes.values())
        name = "ONNX" if result.format == "onnx" else "Hugging Face folder"
        self.summary.setText(
            f"<b>✓ Exported run #{result.run}</b> as {name} to <code>{out}</code>"
            f"<br>{len(result.files)} files, {megabytes(total)} in all"
            + (f" · model <code>{model}</code> {megabytes(sizes[model])}" if model else "")
            + f" · {result.seconds:.1f} s"
        )
        if result.max_abs_diff is not None:
            self.parity.setText(
                f"Parity check: the ONNX model matches the student on {result.checked_examples:,} project "
                f"texts (largest logit difference {result.max_abs_diff:.1e}, allowed {ONNX_TOLERANCE:.0e})."
            )
        else:
            self.parity.setText('Load it with transformers.pipeline("text-classification", model=FOLDER); '
                                "the model card in the folder shows how.")
        line = int8_summary(result)
        self.int8_line.setText(f"{line}." if line else "")
        self.int8_line.setVisible(bool(line))
        self.done_card.show()
        self._fit_height()

    def _fit_height(self) -> None:
        """Grow or shrink to the height the wrapped texts need at the current width."""
        height = self.layout().totalHeightForWidth(self.width())
        self.resize(self.width(), max(height, self.minimumSizeHint().height()))

    def open_folder(self) -> None:
        if self.result is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.result.out))

    # -- closing ---------------------------------------------------------------------------------
    def reject(self) -> None:
        """Close, or while the export runs, cancel it (it stops at its next check) and stay open
        to say so."""
        if self.worker is not None and self.worker.is_running:
            self.worker.cancel()
            self.status.setText("Cancelling…")
            return
        super().reject()
