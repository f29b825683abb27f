"""Choosing a student: preset cards with parameter count, size on disk and relative speed, or
a pretrained checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QSpinBox, QVBoxLayout, QWidget

from kdstudio.core.events import Finished
from kdstudio.gui.teacher_picker import PathField
from kdstudio.gui.widgets import Card, label
from kdstudio.gui.worker import Worker

if TYPE_CHECKING:
    from kdstudio.core.students import StudentFigure

#: Filled once per session by :func:`kdstudio.core.students.measure_students` (in a worker): each
#: preset's parameters, size and the time of one batch, for an 8,000-piece vocabulary and two
#: labels (when the picker knows no project), for orientation only.
PRESET_FIGURES: dict[str, StudentFigure] = {}
#: The same, measured for a project (:func:`kdstudio.core.student_sizes.measure_for_project`):
#: the vocabulary and labels of a run on it, so the counts are the run's. Keyed by the project
#: and the settings that choose the vocabulary.
PROJECT_FIGURES: dict[tuple, dict[str, StudentFigure]] = {}
#: What the figures were measured for, by the same keys (None: the stand-in vocabulary).
FIGURES_BASIS: dict[tuple, str] = {}
#: The settings of a training run that change a preset's parameter count.
SIZE_SETTINGS = ("teacher", "vocab", "vocab_size", "max_length", "hard_labels", "uncalibrated", "seed")
PRETRAINED = "pretrained"
TEACHER_LAYERS = "teacher-layers"


def preset_names(task: str) -> list[str]:
    """The from-scratch students core offers for ``task``."""
    from kdstudio.core.students import students_for

    return [info.name for info in students_for(task) if ":" not in info.name]


def describe(name: str) -> str:
    from kdstudio.core.students import STUDENTS

    for info in STUDENTS.values():
        if info.name == name or info.name.split(":")[0] == name:
            return info.description
    return ""


def fastest_preset(figures: dict[str, StudentFigure], names: list[str]) -> str | None:
    """The one fastest of ``names`` that has figures; a tie goes to the one listed first."""
    known = [(figures[n].latency_ms, i, n) for i, n in enumerate(names) if n in figures]
    return min(known)[2] if known else None


def relative_speed(ms: float, fastest: float, is_fastest: bool) -> str:
    """``fastest`` for the one fastest preset, else how many times its time the others take."""
    if is_fastest:
        return "fastest"
    ratio = ms / fastest if fastest > 0 else 1.0
    return f"{ratio:.1f}× the fastest" if ratio < 9.95 else f"{ratio:.0f}× the fastest"


def speed_bar(ms: float, fastest: float) -> str:
    """Five dots, more for faster students (relative to the fastest preset)."""
    ratio = fastest / ms
    filled = max(1, min(5, round(5 * ratio ** 0.5)))
    return "●" * filled + "○" * (5 - filled)


def format_mb(size_mb: float) -> str:
    """A size on disk as a card shows it: ``16.4 MB``, ``120 MB``."""
    return f"{size_mb:.1f} MB" if size_mb < 100 else f"{size_mb:.0f} MB"


def basis_text(result: Any) -> str:
    """What the cards' parameter counts were measured for, in words (a ``StudentFigures``)."""
    labels = f"{result.labels} labels"
    if result.tokenizer == "pruned":
        return (f"Sizes for this project: the {result.vocabulary:,} of the teacher's {result.teacher_vocabulary:,} "
                f"word pieces that its texts use, {labels}.")
    if result.tokenizer == "teacher":
        return f"Sizes for this project: the teacher's vocabulary of {result.vocabulary:,} pieces, {labels}."
    if result.tokenizer == "wordpiece":
        return f"Sizes for this project: a WordPiece vocabulary of {result.vocabulary:,} pieces, {labels}."
    return (f"Sizes for a vocabulary of {result.vocabulary:,} pieces and {labels}; a run's own count, which "
            "depends on its tokenizer, is in its log.")


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
        self.basis = label("", "muted", wrap=True)
        layout.addWidget(self.basis)
        self.error = label("", "error", wrap=True)
        layout.addWidget(self.error)
        layout.addStretch(1)
        self._measuring = None
        self._measuring_key: tuple = ()
        self.project_path: str | None = None
        self.size_settings: dict[str, Any] = {}
        self._build("classification")

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.measure()

    def set_project(self, path: str | Path, config: dict[str, Any] | None = None) -> None:
        """Measure the presets as a run on the project at ``path`` with the training settings
        ``config`` builds them (its teacher's tokenizer or a WordPiece, its labels), so the
        cards' parameter counts and sizes are the run's."""
        self.project_path = str(path)
        self.size_settings = {k: v for k, v in (config or {}).items() if k in SIZE_SETTINGS and v is not None}
        self._build(self.task)
        if self.isVisible():
            self.measure()

    def figures_key(self) -> tuple:
        """The key of the figures that fit this picker's project and settings."""
        if self.project_path is None:
            return ()
        return (self.project_path, *sorted(self.size_settings.items()))

    def figures(self) -> dict[str, StudentFigure]:
        return PRESET_FIGURES if self.project_path is None else PROJECT_FIGURES.setdefault(self.figures_key(), {})

    def measure(self) -> None:
        """Measure the presets once per session (per project and settings), in a worker (it loads torch)."""
        missing = [n for n in preset_names(self.task) if n not in self.figures()]
        if not missing or self._measuring is not None:
            return
        key = self.figures_key()
        if self.project_path is None:
            from kdstudio.core.students import measure_students

            worker = Worker(measure_students, missing, name="Measuring students", parent=self, limit_threads=True)
        else:
            from kdstudio.core.student_sizes import measure_for_project
            from kdstudio.core.train.config import TrainConfig

            worker = Worker(measure_for_project, missing, self.project_path, TrainConfig.from_dict(self.size_settings),
                            name="Measuring students", parent=self, limit_threads=True)
        self._measuring_key = key  # a bound method, not a lambda over self: no reference cycle
        worker.yielded.connect(self._measured)
        worker.finished.connect(self._measuring_ended)
        self._measuring = worker.start()

    def _measured(self, event: object) -> None:
        if isinstance(event, Finished):
            key = self._measuring_key
            result = event.result
            target = PRESET_FIGURES if not key else PROJECT_FIGURES.setdefault(key, {})
            target.update({f.name: f for f in result.students})
            FIGURES_BASIS[key] = basis_text(result)
            self._build(self.task)

    def _measuring_ended(self, _status: str) -> None:
        self._measuring = None
        if self.isVisible() and any(n not in self.figures() for n in preset_names(self.task)):
            self.measure()  # the project or settings changed while measuring

    def _build(self, task: str) -> None:
        for keep in (self.pretrained_path, self.layers):  # they outlive the cards that hold them
            keep.setParent(self)
            keep.hide()
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None and item.widget() not in (self.pretrained_path, self.layers):
                item.widget().hide()  # not drawn again while it waits to be deleted
                item.widget().deleteLater()
        self.cards = {}
        presets = preset_names(task)
        figures = self.figures()
        fastest_name = fastest_preset(figures, presets)
        fastest = figures[fastest_name].latency_ms if fastest_name else 1.0
        for i, name in enumerate(presets):
            card = Card(clickable=True)
            head = QHBoxLayout()
            head.addWidget(label(name, "subheading"))
            head.addStretch(1)
            figure = figures.get(name)
            if figure is not None:
                head.addWidget(label(f"{figure.params / 1e6:.1f}M params", "badge"))
            card.layout_.addLayout(head)
            card.layout_.addWidget(label(describe(name), "muted", wrap=True))
            if figure is not None:
                ms = figure.latency_ms
                relative = relative_speed(ms, fastest, name == fastest_name)
                card.layout_.addWidget(label(
                    f"≈ {format_mb(figure.size_mb)} · speed {speed_bar(ms, fastest)}  ({relative})", "muted"))
            else:
                card.layout_.addWidget(label("measuring size and speed…", "muted"))
            card.clicked.connect(lambda n=name: self.set_choice(n))
            self.grid.addWidget(card, i // 2, i % 2)
            self.cards[name] = card
        self.basis.setText(FIGURES_BASIS.get(self.figures_key(), "") if figures else "")
        row = (len(presets) + 1) // 2
        pre = Card(clickable=True)
        if task == "generation":
            pre.layout_.addWidget(label("Pretrained language model", "subheading"))
            pre.layout_.addWidget(label("Start from a pretrained causal LM (GPT-2, SmolLM, Qwen…) and fine-tune it "
                                        "on the teacher's completions: usually the best student, and the slowest.",
                                        "muted", wrap=True))
            self.pretrained_path.edit.setPlaceholderText("folder or hub id of a causal language model, e.g. "
                                                         "HuggingFaceTB/SmolLM2-135M")
        else:
            pre.layout_.addWidget(label("Pretrained checkpoint", "subheading"))
            pre.layout_.addWidget(label("Start from a pretrained model (DistilBERT, MiniLM…) with a new head: usually "
                                        "the most accurate student, and the slowest.", "muted", wrap=True))
            self.pretrained_path.edit.setPlaceholderText("folder or hub id of a pretrained classifier, e.g. "
                                                         "distilbert-base-uncased")
        pre.layout_.addWidget(self.pretrained_path)
        self.pretrained_path.show()
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
            self.layers.show()
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
        from kdstudio.core.students import parse_student_spec

        try:
            parse_student_spec(self.spec())
        except Exception as exc:
            self.error.setText(str(exc))
            return str(exc)
        self.error.setText("")
        return None
