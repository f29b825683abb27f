"""The latency matrix of one evaluation: the student in torch, ONNX and ONNX int8 and the teacher in
torch and ONNX, each at batch 1 (p50, p95) and batch 64 (ms per batch, texts/s), the speed-up
over the teacher in the same runtime and the ONNX file sizes — the ``latency``, ``speedups`` and
``*_onnx_size_mb`` keys of ``kdstudio eval --json``."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from kdstudio.core.evaluate import RUNTIME_ROWS
from kdstudio.core.evaluate.result import EvalReport, RuntimeLatency
from kdstudio.gui.widgets import Card, label

#: (caption, side, runtime), in the order of the rows: the text report's, captioned for a table.
ROWS = tuple((f"{side.capitalize()} · {caption.split(' ', 1)[1]}", side, runtime)
             for caption, side, runtime in RUNTIME_ROWS)
COLUMNS = ("batch 1 p50", "batch 1 p95", "batch 64", "texts/s", "speed-up", "file")


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} ms" if value < 10 else f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def _cells(t: RuntimeLatency | None) -> list[str]:
    if t is None:
        return ["–"] * 4
    rate = "–" if t.batch64_per_s is None else f"{t.batch64_per_s:,.0f}"
    return [_ms(t.batch1_ms_p50), _ms(t.batch1_ms_p95), _ms(t.batch64_ms_p50), rate]


class LatencyCard(Card):
    """A compact table: one row per model and runtime, tokenization included, timed interleaved."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_.setSpacing(4)
        self.title = label("Latency by runtime", "subheading")
        self.layout_.addWidget(self.title)
        self.note = label("", "muted", wrap=True)
        self.layout_.addWidget(self.note)
        grid = QGridLayout()
        grid.setHorizontalSpacing(18)
        grid.setVerticalSpacing(3)
        for col, caption in enumerate(COLUMNS, start=1):
            grid.addWidget(self._cell(caption, "muted"), 0, col)
        self.cells: dict[tuple[str, str], list[QLabel]] = {}
        for row, (caption, side, runtime) in enumerate(ROWS, start=1):
            grid.addWidget(label(caption), row, 0)
            self.cells[side, runtime] = [self._cell("–") for _ in COLUMNS]
            for col, cell in enumerate(self.cells[side, runtime], start=1):
                grid.addWidget(cell, row, col)
        grid.setColumnMinimumWidth(0, 170)
        grid.setColumnStretch(len(COLUMNS) + 1, 1)  # the table keeps to the left, its columns close
        self.table = QWidget()
        self.table.setLayout(grid)
        self.layout_.addWidget(self.table)

    @staticmethod
    def _cell(text: str, kind: str | None = None) -> QLabel:
        cell = label(text, kind)
        cell.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return cell

    def text_of(self, side: str, runtime: str) -> list[str]:
        """The row's cells as shown (for tests and the tooltip)."""
        return [cell.text() for cell in self.cells[side, runtime]]

    def set_report(self, r: EvalReport) -> None:
        m = r.latency
        self.table.setVisible(m is not None)
        if m is None:
            self.note.setText(
                "Not measured in each runtime: this evaluation predates it or skipped the timing. "
                "“Evaluate again” times the student and the teacher in torch and ONNX."
            )
            return
        s = r.speedups
        speedups = {("student", "torch"): s.torch, ("student", "onnx"): s.onnx,
                    ("student", "onnx_int8"): s.onnx_int8} if s is not None else {}
        sizes = {("student", "torch"): r.student_size_mb, ("student", "onnx"): r.student_onnx_size_mb,
                 ("student", "onnx_int8"): r.student_int8_size_mb, ("teacher", "onnx"): r.teacher_onnx_size_mb,
                 ("teacher", "torch"): r.teacher_size_mb}
        for _, side, runtime in ROWS:
            timing = getattr(getattr(m, side), runtime)
            if side == "teacher" and runtime == "torch" and timing is None and r.teacher_timing == "recorded":
                cells = [_ms(r.teacher_latency_ms_p50), _ms(r.teacher_latency_ms_p95), "–", "–"]
            else:
                cells = _cells(timing)
            x = speedups.get((side, runtime))
            if (side, runtime) == ("student", "torch") and x is None:
                x = r.speedup  # against a teacher's recorded latency
            size = sizes.get((side, runtime))
            cells += ["–" if x is None else f"{x:,.1f}×", "–" if size is None else f"{size:,.1f} MB"]
            for cell, text in zip(self.cells[side, runtime], cells, strict=True):
                cell.setText(text)
        teacher = ("the teacher's latency is the one its harvest recorded (an API has no ONNX form) · "
                   if r.teacher_timing == "recorded" else "")
        self.note.setText(
            f"Tokenization included, every runtime timed in turn in one session on {r.device or '?'} "
            "(ONNX: onnxruntime on the CPU) · speed-up: the teacher in the same runtime ÷ the student "
            f"(int8: vs the teacher's ONNX float) · {teacher}file: weights on disk"
        )
