"""Choosing a teacher: a local Hugging Face classifier, an embedding model, a local language
model, or Claude with its API key, model picker, prices, answer size and estimated cost (the
Claude options are :mod:`kdstudio.gui.claude_options`); for a generation project also the
completions a teacher already wrote (``recorded:NAME``, imported with ``kdstudio import-completions``),
and the instructions (the system prompt) the teacher is given."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QRadioButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.teachers.claude import CLAUDE_TERMS_LINE
from kdstudio.gui.claude_options import ClaudeOptions, model_item_text
from kdstudio.gui.widgets import Card, button, label

if TYPE_CHECKING:
    from kdstudio.core.harvest import HarvestConfig

#: kind → (title, one-line explanation, tasks it suits)
TEACHER_KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "embed": ("Embedding model", "Sentence embeddings: zero-shot from label names, or a probe fitted on your "
              "gold labels. The bundled MiniLM runs offline.", ("classification",)),
    "hf": ("Hugging Face classifier", "A fine-tuned sequence classifier: a local folder or a hub id.",
           ("classification",)),
    "claude": ("Claude", "Anthropic's models through the API: label probabilities, rationales or "
               "completions. Needs an API key; costs money.", ("classification", "generation")),
    "lm": ("Local language model", "A causal LM: completions for generation, label log-likelihoods "
           "for classification.", ("classification", "generation")),
    "recorded": ("Recorded completions", "Completions a teacher already wrote (a production log, "
                 "distillation_train.jsonl), imported once as its answers: nothing is paid twice.",
                 ("generation",)),
}
#: what the recorded-completions file may be
RECORDED_FILTER = "Completions (*.jsonl *.json *.csv *.tsv *.parquet);;All files (*)"


def recorded_available() -> bool:
    """Whether this KD Studio can import recorded completions (``kdstudio import-completions``)."""
    import importlib.util

    return importlib.util.find_spec("kdstudio.core.harvest.recorded") is not None


class FileField(QWidget):
    """A line edit for a file, with a Browse button."""

    changed = Signal()

    def __init__(self, placeholder: str, file_filter: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.file_filter = file_filter
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.textChanged.connect(self.changed)
        browse = button("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose the recorded completions", "", self.file_filter)
        if path:
            self.edit.setText(path)

    def text(self) -> str:
        return self.edit.text().strip()


class PathField(QWidget):
    """A line edit for a local folder or a hub id, with a Browse button for folders."""

    changed = Signal()

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.textChanged.connect(self.changed)
        browse = button("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder")
        if folder:
            self.edit.setText(folder)

    def text(self) -> str:
        return self.edit.text().strip()


class TeacherPicker(QWidget):
    """Cards for the teacher kinds and the options of the chosen one; ``spec()`` gives the
    teacher spec the CLI takes (``embed:minilm``, ``hf:./model``, ``claude:MODEL``...)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task = "classification"
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)
        grid = QGridLayout()
        grid.setSpacing(10)
        self.cards: dict[str, Card] = {}
        self.kinds = [k for k in TEACHER_KINDS if k != "recorded" or recorded_available()]
        for i, kind in enumerate(self.kinds):
            title, text, _tasks = TEACHER_KINDS[kind]
            card = Card(clickable=True)
            card.layout_.addWidget(label(title, "subheading"))
            card.layout_.addWidget(label(text, "muted", wrap=True))
            card.clicked.connect(lambda k=kind: self.set_kind(k))
            grid.addWidget(card, i // 2, i % 2)
            self.cards[kind] = card
        layout.addLayout(grid)

        self.options = QStackedWidget()
        # embed
        embed = QWidget()
        e = QVBoxLayout(embed)
        e.setContentsMargins(0, 0, 0, 0)
        self.embed_bundled = QRadioButton("Bundled MiniLM (all-MiniLM-L6-v2, offline, no download)")
        self.embed_other = QRadioButton("Another embedding model:")
        self.embed_bundled.setChecked(True)
        self.embed_path = PathField("folder or hub id, e.g. sentence-transformers/all-mpnet-base-v2")
        for w in (self.embed_bundled, self.embed_other, self.embed_path):
            e.addWidget(w)
        e.addStretch(1)
        self.embed_bundled.toggled.connect(self._changed)
        self.embed_path.changed.connect(lambda: (self.embed_other.setChecked(True), self._changed()))
        self.options.addWidget(embed)
        # hf
        self.hf_path = PathField("folder with config.json, or a hub id like distilbert-base-uncased-finetuned-sst-2-english")
        self.hf_path.changed.connect(self._changed)
        self.options.addWidget(self._wrap(self.hf_path, "Model"))
        # claude
        self.claude = ClaudeOptions()
        self.claude.changed.connect(self._changed)
        self.options.addWidget(self.claude)
        # lm
        self.lm_path = PathField("folder or hub id of a causal language model, e.g. Qwen/Qwen2.5-0.5B-Instruct")
        self.lm_path.changed.connect(self._changed)
        self.options.addWidget(self._wrap(self.lm_path, "Model"))
        # recorded completions
        recorded = QWidget()
        r = QVBoxLayout(recorded)
        r.setContentsMargins(0, 0, 0, 0)
        r.addWidget(label("Recorded completions file", "subheading"))
        self.recorded_file = FileField("JSONL, CSV or Parquet with prompt and completion columns, or chat lines "
                                       "(messages)", RECORDED_FILTER)
        self.recorded_file.changed.connect(self._recorded_file_changed)
        r.addWidget(self.recorded_file)
        r.addWidget(label("Teacher name", "subheading"))
        self.recorded_name = QLineEdit()
        self.recorded_name.setPlaceholderText("e.g. claude-prod-log: the teacher is recorded:NAME")
        self.recorded_name.textChanged.connect(self._changed)
        r.addWidget(self.recorded_name)
        r.addWidget(label("Prompts are matched to the project's by their text; the import runs when the project "
                          "is created (kdstudio import-completions).", "muted", wrap=True))
        r.addStretch(1)
        if "recorded" in self.kinds:
            self.options.addWidget(recorded)
        # Anthropic's terms, in one line right under the choice, where it is read before the key and the model
        self.terms = label(CLAUDE_TERMS_LINE, "warning", wrap=True)
        self.terms.setToolTip(CLAUDE_TERMS_LINE)
        layout.addWidget(self.terms)
        layout.addWidget(self.options)
        # the instructions (system prompt) a generation teacher is given
        self.instructions_box = QWidget()
        ib = QVBoxLayout(self.instructions_box)
        ib.setContentsMargins(0, 0, 0, 0)
        ib.addWidget(label("Instructions (system prompt)", "subheading"))
        self.instructions = QPlainTextEdit()
        self.instructions.setPlaceholderText("What the teacher is asked to do with each prompt, e.g. “Write a "
                                             "one-sentence restaurant description from these attributes.”")
        self.instructions.setFixedHeight(self.instructions.fontMetrics().lineSpacing() * 3 + 16)
        self.instructions.setToolTip("Kept with the project and given to the teacher with every prompt")
        ib.addWidget(self.instructions)
        layout.addWidget(self.instructions_box)
        self.error = label("", "error", wrap=True)
        layout.addWidget(self.error)
        layout.addStretch(1)
        self.kind = "embed"
        self.set_kind("embed")

    @staticmethod
    def _wrap(widget: QWidget, title: str) -> QWidget:
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(label(title, "subheading"))
        v.addWidget(widget)
        v.addStretch(1)
        return box

    def _changed(self) -> None:
        self.error.setText("")
        self.changed.emit()

    def _recorded_file_changed(self) -> None:
        if self.recorded_file.text() and not self.recorded_name.text().strip():
            from kdstudio.gui.data_page import safe_name

            self.recorded_name.setText(safe_name(Path(self.recorded_file.text()).stem)[:64])
        self._changed()

    def set_task(self, task: str) -> None:
        """Show only the kinds that suit ``task``."""
        self.task = task
        for kind, card in self.cards.items():
            card.setVisible(task in TEACHER_KINDS[kind][2])
        self.claude.answer.set_context(task, self.claude.answer.labels, self.claude.model())
        if task not in TEACHER_KINDS[self.kind][2]:
            self.set_kind("claude" if task == "generation" else "embed")
        self._show_generation_parts()

    def set_kind(self, kind: str) -> None:
        self.kind = kind
        for k, card in self.cards.items():
            card.set_selected(k == kind)
        self.options.setCurrentIndex(self.kinds.index(kind))
        if kind == "claude":
            self.claude.update_key_status()
        self.claude.set_active(kind == "claude")
        self._show_generation_parts()
        self._changed()

    def _show_generation_parts(self) -> None:
        """The instructions for a generation teacher that is asked (Claude, a local LM); the line on
        Anthropic's terms when Claude teaches a generation student."""
        generation = self.task == "generation"
        self.instructions_box.setVisible(generation and self.kind in ("claude", "lm"))
        self.claude.answer.setVisible(generation)  # a completion's max_tokens (labels per answer: classification)
        self.terms.setVisible(generation and self.kind == "claude")

    def instructions_text(self) -> str:
        """The instructions a generation teacher is given ("" when none or not a generation project)."""
        if self.task != "generation" or self.kind not in ("claude", "lm"):
            return ""
        return self.instructions.toPlainText().strip()

    def max_tokens(self) -> int | None:
        """Claude's completion limit for a generation project (None: auto, or not Claude)."""
        if self.task != "generation" or self.kind != "claude":
            return None
        return self.claude.answer.max_tokens()

    def recorded_path(self) -> str | None:
        """The recorded-completions file to import when the project is created (recorded teacher only)."""
        return self.recorded_file.text() or None if self.kind == "recorded" else None

    def spec(self) -> str:
        if self.kind == "embed":
            return "embed:minilm" if self.embed_bundled.isChecked() or not self.embed_path.text() \
                else f"embed:{self.embed_path.text()}"
        if self.kind == "hf":
            return f"hf:{self.hf_path.text()}" if self.hf_path.text() else ""
        if self.kind == "lm":
            return f"lm:{self.lm_path.text()}" if self.lm_path.text() else ""
        if self.kind == "recorded":
            name = self.recorded_name.text().strip()
            return f"recorded:{name}" if name else ""
        model = self.claude.model()
        return f"claude:{model}" if model else ""

    def set_spec(self, spec: str) -> None:
        kind, _, model = spec.partition(":")
        if kind not in self.kinds:
            return
        self.set_kind(kind)
        if kind == "embed":
            if model == "minilm":
                self.embed_bundled.setChecked(True)
            else:
                self.embed_path.edit.setText(model)
                self.embed_other.setChecked(True)
        elif kind == "hf":
            self.hf_path.edit.setText(model)
        elif kind == "lm":
            self.lm_path.edit.setText(model)
        elif kind == "recorded":
            self.recorded_name.setText(model)
        else:
            self.claude.set_model(model)

    def set_project(self, project_path: str | Path, labels: list[str],
                    base_config: Callable[[], HarvestConfig]) -> None:
        """The project the teacher is for: Claude's answer options know its labels, and its
        estimate prices the harvest ``base_config()`` describes with the chosen model."""
        self.claude.set_project(project_path, self.task, labels, base_config)

    def answer_options(self) -> tuple[int | None, int | None]:
        """Claude's (top_k, max_tokens) as HarvestConfig takes them (None: auto)."""
        return self.claude.answer.top_k(), self.claude.answer.max_tokens()

    def set_answer_options(self, top_k: int | None, max_tokens: int | None) -> None:
        self.claude.answer.set_values(top_k, max_tokens)

    def validate(self) -> str | None:
        """A message when the choice is incomplete, else None (shown inline)."""
        spec = self.spec()
        if not spec:
            message = {"hf": "Give the classifier's folder or hub id.", "lm": "Give the language model's folder "
                       "or hub id.", "claude": "Choose a Claude model.",
                       "recorded": "Name the recorded teacher."}.get(self.kind, "Choose a teacher.")
            self.error.setText(message)
            return message
        if self.kind == "recorded":
            problem = self._recorded_problem()
            if problem:
                self.error.setText(problem)
                return problem
        self.error.setText("")
        return None


    def _recorded_problem(self) -> str | None:
        from kdstudio.core.errors import ConfigError
        from kdstudio.core.teachers.recorded import check_name

        try:
            check_name(self.recorded_name.text().strip())
        except ConfigError as exc:
            return str(exc)
        file = self.recorded_file.text()
        if not file:
            return "Choose the file of recorded completions."
        if not Path(file).is_file():
            return f"{file}: no such file"
        return None


__all__ = ["RECORDED_FILTER", "TEACHER_KINDS", "ClaudeOptions", "TeacherPicker", "model_item_text", "recorded_available"]
