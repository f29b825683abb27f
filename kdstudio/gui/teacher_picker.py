"""Choosing a teacher: a local Hugging Face classifier, an embedding model, a local language
model, or Claude with its API key, model picker, prices, answer size and estimated cost (the
Claude options are :mod:`kdstudio.gui.claude_options`)."""

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
    QRadioButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

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
}


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
        for i, (kind, (title, text, _tasks)) in enumerate(TEACHER_KINDS.items()):
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
        layout.addWidget(self.options)
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

    def set_task(self, task: str) -> None:
        """Show only the kinds that suit ``task``."""
        self.task = task
        for kind, card in self.cards.items():
            card.setVisible(task in TEACHER_KINDS[kind][2])
        self.claude.answer.set_context(task, self.claude.answer.labels, self.claude.model())
        if task not in TEACHER_KINDS[self.kind][2]:
            self.set_kind("claude" if task == "generation" else "embed")

    def set_kind(self, kind: str) -> None:
        self.kind = kind
        for k, card in self.cards.items():
            card.set_selected(k == kind)
        self.options.setCurrentIndex(list(TEACHER_KINDS).index(kind))
        if kind == "claude":
            self.claude.update_key_status()
        self.claude.set_active(kind == "claude")
        self._changed()

    def spec(self) -> str:
        if self.kind == "embed":
            return "embed:minilm" if self.embed_bundled.isChecked() or not self.embed_path.text() \
                else f"embed:{self.embed_path.text()}"
        if self.kind == "hf":
            return f"hf:{self.hf_path.text()}" if self.hf_path.text() else ""
        if self.kind == "lm":
            return f"lm:{self.lm_path.text()}" if self.lm_path.text() else ""
        model = self.claude.model()
        return f"claude:{model}" if model else ""

    def set_spec(self, spec: str) -> None:
        kind, _, model = spec.partition(":")
        if kind not in TEACHER_KINDS:
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
                       "or hub id.", "claude": "Choose a Claude model."}.get(self.kind, "Choose a teacher.")
            self.error.setText(message)
            return message
        self.error.setText("")
        return None


__all__ = ["TEACHER_KINDS", "ClaudeOptions", "TeacherPicker", "model_item_text"]
