"""Choosing a student: preset cards with parameter count, size on disk and relative speed, or
a pretrained checkpoint."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QSpinBox, QVBoxLayout, QWidget

from kdstudio.gui.teacher_picker import PathField
from kdstudio.gui.widgets import Card, label

#: Measured for the card text: parameters and fp32 size with an 8,000-piece vocabulary and two
#: labels, and the time of one batch of 32 × 64 tokens on one CPU core. Only for orientation;
#: the training log reports the real count for the project's vocabulary and labels.
PRESET_FIGURES: dict[str, tuple[float, float]] = {
    "cnn": (1.22e6, 32.0),
    "transformer-tiny": (1.50e6, 70.0),
    "bilstm": (1.62e6, 93.0),
    "transformer-mini": (5.41e6, 335.0),
    "transformer-small": (17.2e6, 700.0),
}
PRETRAINED = "pretrained"
TEACHER_LAYERS = "teacher-layers"


def preset_names(task: str) -> list[str]:
    """The from-scratch students core offers for ``task``."""
    try:
        from kdstudio.core.students import STUDENTS
    except ImportError:  # pragma: no cover
        return list(PRESET_FIGURES)
    names = [info.name for info in STUDENTS.values() if ":" not in info.name]
    if task == "generation":
        return [n for n in names if n.startswith("gpt")]
    return [n for n in names if not n.startswith("gpt")]


def describe(name: str) -> str:
    try:
        from kdstudio.core.students import STUDENTS
    except ImportError:  # pragma: no cover
        return ""
    for info in STUDENTS.values():
        if info.name == name or info.name.split(":")[0] == name:
            return info.description
    return ""


def speed_bar(ms: float, fastest: float) -> str:
    """Five dots, more for faster students (relative to the fastest preset)."""
    ratio = fastest / ms
    filled = max(1, min(5, round(5 * ratio ** 0.5)))
    return "●" * filled + "○" * (5 - filled)


class StudentPicker(QWidget):
    """``spec()`` gives the student spec the CLI takes (``bilstm``, ``hf:PATH``...)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task = "classification"
        self.choice = "bilstm"
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)
        self.grid = QGridLayout()
        self.grid.setSpacing(10)
        layout.addLayout(self.grid)
        self.cards: dict[str, Card] = {}
        self.pretrained_path = PathField("folder or hub id of a pretrained classifier, e.g. distilbert-base-uncased")
        self.pretrained_path.changed.connect(lambda: self.set_choice(PRETRAINED))
        self.layers = QSpinBox()
        self.layers.setRange(1, 48)
        self.layers.setValue(3)
        self.layers.setToolTip("How many of the teacher's layers to keep (every other one)")
        self.layers.valueChanged.connect(lambda _v: self.set_choice(TEACHER_LAYERS))
        self.error = label("", "error", wrap=True)
        layout.addWidget(self.error)
        layout.addStretch(1)
        self._build("classification")

    def _build(self, task: str) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None and item.widget() not in (self.pretrained_path, self.layers):
                item.widget().deleteLater()
        self.cards = {}
        presets = preset_names(task)
        known = [PRESET_FIGURES[n][1] for n in presets if n in PRESET_FIGURES]
        fastest = min(known) if known else 1.0
        for i, name in enumerate(presets):
            card = Card(clickable=True)
            head = QHBoxLayout()
            head.addWidget(label(name, "subheading"))
            head.addStretch(1)
            if name in PRESET_FIGURES:
                params, ms = PRESET_FIGURES[name]
                badge = label(f"{params / 1e6:.1f}M params", "badge")
                head.addWidget(badge)
            card.layout_.addLayout(head)
            card.layout_.addWidget(label(describe(name), "muted", wrap=True))
            if name in PRESET_FIGURES:
                params, ms = PRESET_FIGURES[name]
                card.layout_.addWidget(label(
                    f"≈ {params * 4 / 1e6:.0f} MB · speed {speed_bar(ms, fastest)}  ({ms / fastest:.0f}× the "
                    "fastest)" if ms > fastest * 1.05 else f"≈ {params * 4 / 1e6:.0f} MB · speed "
                    f"{speed_bar(ms, fastest)}  (fastest)", "muted"))
            card.clicked.connect(lambda n=name: self.set_choice(n))
            self.grid.addWidget(card, i // 2, i % 2)
            self.cards[name] = card
        row = (len(presets) + 1) // 2
        pre = Card(clickable=True)
        pre.layout_.addWidget(label("Pretrained checkpoint", "subheading"))
        pre.layout_.addWidget(label("Start from a pretrained model (DistilBERT, MiniLM…) with a new head: usually "
                                    "the most accurate student, and the slowest.", "muted", wrap=True))
        pre.layout_.addWidget(self.pretrained_path)
        pre.clicked.connect(lambda: self.set_choice(PRETRAINED))
        self.grid.addWidget(pre, row, 0)
        self.cards[PRETRAINED] = pre
        if task == "classification":
            tl = Card(clickable=True)
            tl.layout_.addWidget(label("Teacher's own layers", "subheading"))
            tl.layout_.addWidget(label("Keep every other layer of a local transformer teacher (DistilBERT-style "
                                       "initialisation).", "muted", wrap=True))
            row_w = QHBoxLayout()
            row_w.addWidget(label("Layers to keep"))
            row_w.addWidget(self.layers)
            row_w.addStretch(1)
            tl.layout_.addLayout(row_w)
            tl.clicked.connect(lambda: self.set_choice(TEACHER_LAYERS))
            self.grid.addWidget(tl, row, 1)
            self.cards[TEACHER_LAYERS] = tl
        if self.choice not in self.cards:
            self.choice = presets[0] if presets else PRETRAINED
        self.set_choice(self.choice)

    def set_task(self, task: str) -> None:
        if task != self.task:
            self.task = task
            self._build(task)

    def set_choice(self, choice: str) -> None:
        self.choice = choice
        for name, card in self.cards.items():
            card.set_selected(name == choice)
        self.error.setText("")
        self.changed.emit()

    def spec(self) -> str:
        if self.choice == PRETRAINED:
            return f"hf:{self.pretrained_path.text()}" if self.pretrained_path.text() else ""
        if self.choice == TEACHER_LAYERS:
            return f"teacher-layers:{self.layers.value()}"
        return self.choice

    def set_spec(self, spec: str) -> None:
        kind, _, arg = spec.partition(":")
        if kind == "hf":
            self.pretrained_path.edit.setText(arg)
            self.set_choice(PRETRAINED)
        elif kind == TEACHER_LAYERS and arg.isdigit():
            self.layers.setValue(int(arg))
            self.set_choice(TEACHER_LAYERS)
        elif spec in self.cards:
            self.set_choice(spec)

    def validate(self) -> str | None:
        if not self.spec():
            self.error.setText("Give the pretrained checkpoint's folder or hub id.")
            return self.error.text()
        try:
            from kdstudio.core.students import parse_student_spec

            parse_student_spec(self.spec())
        except ImportError:  # pragma: no cover
            pass
        except Exception as exc:  # noqa: BLE001 - ConfigError, shown inline
            self.error.setText(str(exc))
            return str(exc)
        self.error.setText("")
        return None
