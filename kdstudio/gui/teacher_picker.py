"""Choosing a teacher: a local Hugging Face classifier, an embedding model, a local language
model, or Claude with its API key, model picker, prices and a connection test."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLineEdit,
    QRadioButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.events import Finished
from kdstudio.gui.widgets import Card, button, label
from kdstudio.gui.worker import Worker

if TYPE_CHECKING:
    from kdstudio.core.teachers.claude import ClaudeModel

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


def _money(value: Any) -> str:
    try:
        return f"${float(value):.2f}"
    except (TypeError, ValueError):
        return "?"


def model_item_text(name: str, price: dict[str, Any] | None) -> str:
    """``Claude Haiku 5.5 — $1.00 in · $5.00 out / MTok`` (``price``: USD per million tokens)."""
    if price:
        return f"{name} — {_money(price.get('input'))} in · {_money(price.get('output'))} out / MTok"
    return f"{name} — price unknown"


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


class ClaudeOptions(QWidget):
    """API key (environment, keyring or typed once), model picker with prices, connection test."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.key_status = label("", "muted", wrap=True)
        layout.addWidget(self.key_status)
        key_row = QHBoxLayout()
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("Paste an API key (sk-ant-…) to save it in the system keyring")
        self.save_key = button("Save key")
        self.save_key.clicked.connect(self._save_key)
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.save_key)
        self.key_row = QWidget()
        self.key_row.setLayout(key_row)
        layout.addWidget(self.key_row)
        model_row = QHBoxLayout()
        self.model_box = QComboBox()
        self.model_box.setEditable(True)
        self.model_box.setMinimumWidth(360)
        self.model_box.currentIndexChanged.connect(self.changed)
        self.model_box.editTextChanged.connect(self.changed)
        self.refresh = button("Refresh list", tooltip="Ask the models API which models this key can use")
        self.refresh.clicked.connect(self.load_models)
        self.test = button("Test connection", tooltip="Send one tiny request with this key and model")
        self.test.clicked.connect(self.test_connection)
        model_row.addWidget(self.model_box, 1)
        model_row.addWidget(self.refresh)
        model_row.addWidget(self.test)
        layout.addLayout(model_row)
        self.result = label("", "muted", wrap=True)
        layout.addWidget(self.result)
        layout.addWidget(label("The harvest panel shows the estimated cost of a harvest before it starts, and "
                               "stops at the budget you set.", "muted", wrap=True))
        self._workers: list[Worker] = []
        self._fill_from_price_table()
        self.update_key_status()

    # -- key ----------------------------------------------------------------------------------
    def update_key_status(self) -> None:
        from kdstudio.core import secrets

        source = secrets.key_source()
        if source == "environment":
            text = f"Using the key from the {secrets.ENV_VAR} environment variable ({secrets.mask(secrets.get_api_key())})."
        elif source == "keyring":
            text = f"Using the key saved in the system keyring ({secrets.mask(secrets.get_api_key())})."
        else:
            text = "No API key yet. Paste one below, or set the ANTHROPIC_API_KEY environment variable."
        self.key_status.setText(text)
        self.key_status.setObjectName("muted" if source else "warning")
        self.key_status.setStyleSheet("")
        self.key_row.setVisible(source != "environment")
        self.test.setEnabled(source is not None)
        self.refresh.setEnabled(source is not None)

    def _save_key(self) -> None:
        from kdstudio.core import secrets
        from kdstudio.core.errors import ConfigError

        key = self.key_edit.text().strip()
        try:
            secrets.set_api_key(key)
        except ConfigError as exc:
            if key and "keyring" in str(exc):
                # No keyring here: use the key for this session only (never written to a file).
                os.environ[secrets.ENV_VAR] = key
                self.result.setText("No system keyring on this machine, so the key is used for this session "
                                    f"only. Set {secrets.ENV_VAR} in your environment to keep it.")
                self.result.setObjectName("warning")
            else:
                self.result.setText(str(exc))
                self.result.setObjectName("error")
            self._restyle(self.result)
        else:
            self.result.setText("Key saved in the system keyring.")
            self.result.setObjectName("success")
            self._restyle(self.result)
        self.key_edit.clear()
        self.update_key_status()
        if secrets.get_api_key():
            self.load_models()

    @staticmethod
    def _restyle(widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)

    # -- models -------------------------------------------------------------------------------
    def _fill_from_price_table(self) -> None:
        """Offline: the models in the price table, until the models API answers."""
        try:
            from kdstudio.core.teachers import pricing

            items = [(model_item_text(m, pricing.price(m).as_dict()), m) for m in pricing.known_models()]
        except Exception:
            items = []
        self._set_items(items)

    def set_models(self, models: list[ClaudeModel]) -> None:
        """The models the API listed, with their prices."""
        self._set_items([(model_item_text(m.display_name or m.id, m.price), m.id) for m in models])

    def _set_items(self, items: list[tuple[str, str]]) -> None:
        """Fill the model box with (text, model id) items, keeping the chosen model."""
        current = self.model()
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for text, model_id in items:
            self.model_box.addItem(text, model_id)
        index = self.model_box.findData(current) if current else -1
        self.model_box.setCurrentIndex(index if index >= 0 else 0)
        self.model_box.blockSignals(False)
        self.changed.emit()

    def load_models(self) -> None:
        from kdstudio.core.teachers.claude import list_claude_models

        self.result.setText("Asking the models API…")
        worker = Worker(list_claude_models, name="Models", parent=self)
        worker.yielded.connect(self._models_listed)
        worker.errored.connect(self._models_failed)
        self._keep(worker.start())

    def _models_listed(self, event: object) -> None:
        if isinstance(event, Finished):
            self.set_models(list(event.result.models))
            self._show_result("Model list updated.", "muted")

    def _models_failed(self, message: str, _details: str) -> None:
        self._show_result(f"Could not list models: {message}", "error")

    def test_connection(self) -> None:
        from kdstudio.core.teachers.claude import check_claude

        model = self.model()
        if not model:
            self._show_result("Choose a model first.", "error")
            return
        self._show_result(f"Testing {model}…", "muted")
        self.test.setEnabled(False)
        worker = Worker(check_claude, model, name="Connection test", parent=self)
        worker.yielded.connect(self._connection_checked)
        worker.errored.connect(self._connection_failed)
        worker.finished.connect(self._connection_test_ended)
        self._keep(worker.start())

    def _connection_checked(self, event: object) -> None:
        if isinstance(event, Finished):
            self._show_result("✓ " + (event.result.message or "Connected."), "success")

    def _connection_failed(self, message: str, _details: str) -> None:
        self._show_result(f"✗ {message}", "error")

    def _connection_test_ended(self, _status: str) -> None:
        self.test.setEnabled(True)

    def _keep(self, worker: Worker) -> None:
        """Hold the running workers (and the last ones to finish) while this widget lives."""
        self._workers = [w for w in self._workers if w.is_running] + [worker]

    def _show_result(self, text: str, kind: str) -> None:
        self.result.setText(text)
        self.result.setObjectName(kind)
        self._restyle(self.result)

    def model(self) -> str:
        data = self.model_box.currentData()
        text = self.model_box.currentText().strip()
        if data and self.model_box.itemText(self.model_box.currentIndex()) == text:
            return str(data)
        return text.split(" — ")[0].strip() if text else ""

    def set_model(self, model: str) -> None:
        index = self.model_box.findData(model)
        if index >= 0:
            self.model_box.setCurrentIndex(index)
        else:
            self.model_box.setEditText(model)


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
        if task not in TEACHER_KINDS[self.kind][2]:
            self.set_kind("claude" if task == "generation" else "embed")

    def set_kind(self, kind: str) -> None:
        self.kind = kind
        for k, card in self.cards.items():
            card.set_selected(k == kind)
        self.options.setCurrentIndex(list(TEACHER_KINDS).index(kind))
        if kind == "claude":
            self.claude.update_key_status()
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
