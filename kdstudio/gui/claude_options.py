"""The Claude teacher's options: where the API key comes from (and a field to give another), the
model picker with prices, the answer's size (labels per answer, max tokens) and, where the
project's rows are known, the estimated cost of the whole harvest beside the choice.

The picker starts from the price table, cheapest first, with the model the README recommends
selected (:data:`~kdstudio.core.teachers.pricing.RECOMMENDED_MODEL`); "Refresh list" asks the
models API and, unless a person chose a model the API still offers, selects the cheapest one it
lists that has a price.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLineEdit, QSpinBox, QVBoxLayout, QWidget

from kdstudio.core.events import Finished
from kdstudio.core.teachers.pricing import usd
from kdstudio.gui.harvest_estimate import EstimateView, LiveEstimate, WrappedLabel
from kdstudio.gui.widgets import button, label, restyle
from kdstudio.gui.worker import Worker

if TYPE_CHECKING:
    from kdstudio.core.harvest import HarvestConfig, HarvestEstimate
    from kdstudio.core.teachers.claude import ClaudeModel

NO_PROJECT_ESTIMATE = ("Estimated after import: the Harvest tab prices the whole harvest for the project's rows "
                       "(tokens in and out, cost per example, what it assumes) before anything is sent. Labels "
                       "per answer and max tokens are set there too.")


def _money(value: Any) -> str:
    try:
        return usd(float(value))
    except (TypeError, ValueError):
        return "?"


def model_item_text(name: str, price: dict[str, Any] | None) -> str:
    """``Claude Haiku 5.5 — $0.10 in · $0.50 out / MTok`` (``price``: USD per million tokens)."""
    if price:
        return f"{name} — {_money(price.get('input'))} in · {_money(price.get('output'))} out / MTok"
    return f"{name} — price unknown"


def key_status() -> tuple[str, str]:
    """Where the key comes from, in words, and the label style (``muted`` or ``warning``)."""
    from kdstudio.core import secrets

    source, key = secrets.key_source(), secrets.get_api_key()
    env, keyring = secrets.ENV_VAR, f"the system keyring (service {secrets.SERVICE})"
    if source == "session":
        if secrets.saved_in_keyring(key):
            return (f"Using the key you typed ({secrets.mask(key)}), also saved in {keyring}; at the next start "
                    f"{env} in the environment comes first.", "muted")
        return (f"Using the key you typed ({secrets.mask(key)}) until KD Studio closes: it is not saved, as this "
                f"machine has no system keyring. To keep a key, set {env} in your environment.", "warning")
    if source == "environment":
        return (f"Using the key from the {env} environment variable ({secrets.mask(key)}). A key pasted "
                "below replaces it until KD Studio closes.", "muted")
    if source == "keyring":
        return (f"Using the key saved in {keyring} ({secrets.mask(key)}). Paste another below to replace it.",
                "muted")
    return (f"No API key yet. Paste one below (kept in {keyring}, or for this session only where there is "
            f"none), or set {env} in your environment before starting KD Studio.", "warning")


class AnswerOptions(QWidget):
    """How big one answer is: labels per answer (classification) and ``max_tokens``, each "auto"
    (what the teacher derives from the label set and the schema) or set by hand."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task, self.labels, self.model = "classification", [], ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        row = QHBoxLayout()
        row.setSpacing(8)
        self.k_title = label("Labels per answer", "muted")
        self.k_mode = QComboBox()
        self.k_mode.setToolTip("How many labels each answer names with a probability (the rest share what "
                               "they leave). More labels: longer answers, more output tokens to pay for")
        self.k = QSpinBox()
        self.k.setRange(1, 10_000)
        self.k.setToolTip("Each answer names this many of the most likely labels")
        self.tokens_mode = QComboBox()
        self.tokens_mode.setToolTip("The output token limit of one answer; a longer answer is cut off and "
                                    "fails (and is billed)")
        self.tokens = QSpinBox()
        self.tokens.setRange(1, 128_000)
        self.tokens.setSingleStep(64)
        self.tokens_title = label("Max tokens", "muted")
        for w in (self.k_title, self.k_mode, self.k):
            row.addWidget(w)
        row.addSpacing(12)
        for w in (self.tokens_title, self.tokens_mode, self.tokens):
            row.addWidget(w)
        row.addStretch(1)
        layout.addLayout(row)
        self.hint = WrappedLabel("", "muted")
        layout.addWidget(self.hint)
        for signal in (self.k_mode.currentIndexChanged, self.k.valueChanged, self.tokens_mode.currentIndexChanged,
                       self.tokens.valueChanged):
            signal.connect(self._changed)
        self._fill()

    def set_context(self, task: str, labels: list[str], model: str) -> None:
        """The project's task and labels and the chosen model: what "auto" stands for."""
        if (task, list(labels), model) != (self.task, self.labels, self.model):
            self.task, self.labels, self.model = task, list(labels), model
            self._fill()

    def _shape(self, top_k: int | None) -> Any:
        from kdstudio.core.teachers.claude import answer_shape

        try:
            return answer_shape(self.task, self.labels, self.model, top_k=top_k)
        except Exception:  # fewer than two labels, unknown task: no answer to size yet
            return None

    def _fill(self) -> None:
        """The combo boxes' texts for the current labels and model, keeping the choices."""
        top_k, max_tokens = self.top_k(), self.max_tokens()
        classification = self.task == "classification"
        n = len(self.labels)
        auto = self._shape(None)
        for w in (self.k_title, self.k_mode, self.k):
            w.setVisible(classification)
        blocked = [w.blockSignals(True) for w in (self.k_mode, self.k, self.tokens_mode, self.tokens)]
        self.k_mode.clear()
        if auto is not None and classification:
            self.k_mode.addItem(f"auto ({'all' if auto.full else auto.top_k} of {n})", None)
            self.k_mode.addItem(f"all {n}", 0)
            self.k.setRange(1, max(1, n - 1))
        else:
            self.k_mode.addItem("auto (all up to 10 labels, else 5)", None)
            self.k_mode.addItem("all labels", 0)
        self.k_mode.addItem("the K most likely", "k")
        self.tokens_mode.clear()
        self.tokens_mode.addItem(f"auto ({auto.max_tokens:,})" if auto is not None else "auto (from the schema)",
                                 None)
        self.tokens_mode.addItem("custom", "custom")
        for w, was in zip((self.k_mode, self.k, self.tokens_mode, self.tokens), blocked, strict=True):
            w.blockSignals(was)
        self.set_values(top_k, max_tokens)

    def _changed(self) -> None:
        self.k.setVisible(self.task == "classification" and self.k_mode.currentData() == "k")
        custom = self.tokens_mode.currentData() == "custom"
        self.tokens.setVisible(custom)
        if custom and self.tokens.value() <= 1:
            shape = self._shape(self.top_k())
            self.tokens.setValue(shape.max_tokens if shape is not None else 512)
        self._update_hint()
        self.changed.emit()

    def _update_hint(self) -> None:
        shape = self._shape(self.top_k())
        if shape is None:
            self.hint.setText("")
            return
        limit = self.max_tokens() or shape.max_tokens
        if self.task != "classification":
            what = "Each completion may be up to"
        elif shape.full:
            what = f"Each answer gives all {shape.labels} labels' probabilities and a one-line rationale, up to"
        else:
            what = (f"Each answer names the {shape.top_k} most likely of {shape.labels} labels (the others share "
                    "what they leave) and a one-line rationale, up to")
        self.hint.setText(f"{what} {limit:,} output tokens. A longer answer is cut off and fails; Retry failed "
                          "asks it again with twice the limit.")

    def top_k(self) -> int | None:
        """HarvestConfig.top_k: None for auto, 0 for every label, else K."""
        data = self.k_mode.currentData() if self.task == "classification" else None
        if data == "k":
            return self.k.value()
        return data if isinstance(data, int) else None

    def max_tokens(self) -> int | None:
        """HarvestConfig.max_tokens: None for auto, else the limit."""
        return self.tokens.value() if self.tokens_mode.currentData() == "custom" else None

    def set_values(self, top_k: int | None, max_tokens: int | None) -> None:
        if top_k is None:
            self.k_mode.setCurrentIndex(0)
        elif top_k == 0 or (self.labels and top_k >= len(self.labels)):
            self.k_mode.setCurrentIndex(1)
        else:
            self.k.setValue(top_k)
            self.k_mode.setCurrentIndex(2)
        if max_tokens:
            self.tokens.setValue(max_tokens)
        self.tokens_mode.setCurrentIndex(1 if max_tokens else 0)
        self._changed()


class ClaudeOptions(QWidget):
    """API key (typed in the app, the environment or the keyring), model picker with prices,
    connection test, answer size and the estimated cost of the harvest."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.key_status = label("", "muted", wrap=True)
        layout.addWidget(self.key_status)
        key_row = QHBoxLayout()
        key_row.setContentsMargins(0, 0, 0, 0)
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("Paste an API key (sk-ant-…)")
        self.key_edit.returnPressed.connect(self._save_key)
        self.save_key = button("Use key", tooltip="Keep the key in the system keyring (service kdstudio); where "
                                                  "there is none, use it until KD Studio closes")
        self.save_key.clicked.connect(self._save_key)
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.save_key)
        self.key_row = QWidget()
        self.key_row.setLayout(key_row)
        layout.addWidget(self.key_row)
        self.key_result = label("", "muted", wrap=True)  # what became of the key typed
        self.key_result.hide()
        layout.addWidget(self.key_result)
        model_row = QHBoxLayout()
        self.model_box = QComboBox()
        self.model_box.setEditable(True)
        self.model_box.setMinimumWidth(360)
        self.model_box.currentIndexChanged.connect(self._model_changed)
        self.model_box.editTextChanged.connect(self._model_changed)
        self.model_box.activated.connect(self._chosen_by_hand)
        self.model_box.lineEdit().textEdited.connect(self._chosen_by_hand)
        self.refresh = button("Refresh list", tooltip="Ask the models API which models this key can use")
        self.refresh.clicked.connect(self.load_models)
        self.test = button("Test connection", tooltip="Send one tiny request with this key and model")
        self.test.clicked.connect(self.test_connection)
        model_row.addWidget(self.model_box, 1)
        model_row.addWidget(self.refresh)
        model_row.addWidget(self.test)
        layout.addLayout(model_row)
        self.result = label("", "muted", wrap=True)
        self.result.hide()
        layout.addWidget(self.result)
        self.answer = AnswerOptions()
        self.answer.changed.connect(self._answer_changed)
        self.answer.hide()
        layout.addWidget(self.answer)
        layout.addSpacing(4)
        self.estimate = EstimateView(compact=True, title="Estimated cost")
        self.estimate.show_message(NO_PROJECT_ESTIMATE)
        layout.addWidget(self.estimate)
        layout.addStretch(1)
        self._workers: list[Worker] = []
        self._chosen = False  # a person picked the model (kept when the list is refreshed)
        self._live: LiveEstimate | None = None
        self._base_config: Callable[[], HarvestConfig] | None = None
        self.active = True  # estimates run only while Claude is the chosen teacher
        self._fill_from_price_table()
        self.update_key_status()

    # -- the project the estimate is for ---------------------------------------------------------
    def set_project(self, project_path: str | Path, task: str, labels: list[str],
                    base_config: Callable[[], HarvestConfig]) -> None:
        """Estimate the harvest of this project: ``base_config()`` gives the splits, limit and the
        harvest's other settings; the model and the answer options come from here."""
        self._base_config = base_config
        self.answer.set_context(task, labels, self.model())
        self.answer.show()
        if self._live is None:
            self._live = LiveEstimate(project_path, self.config, self)
            self._live.started.connect(self._estimating)  # bound slots: a lambda over self is a cycle
            self._live.estimated.connect(self._estimated)
            self._live.failed.connect(self._not_estimated)
        self._estimate_again()

    def _estimating(self) -> None:
        self.estimate.show_message("Estimating the cost…")

    def _not_estimated(self, message: str) -> None:
        self.estimate.show_message(f"No estimate: {message}", "error")

    def set_active(self, active: bool) -> None:
        """Claude is (or is no longer) the chosen teacher: estimate now, or stop estimating."""
        self.active = active
        if active:
            self._estimate_again()
        elif self._live is not None:
            self._live.stop()

    def config(self) -> HarvestConfig | None:
        """The harvest these options describe (None without a project or a model)."""
        model = self.model()
        if self._base_config is None or not model:
            return None
        return dataclasses.replace(self._base_config(), teacher=f"claude:{model}", top_k=self.answer.top_k(),
                                   max_tokens=self.answer.max_tokens())

    def _estimated(self, result: HarvestEstimate) -> None:
        self.estimate.show_estimate(result)

    def _model_changed(self, *_args: object) -> None:
        self.answer.set_context(self.answer.task, self.answer.labels, self.model())
        self._estimate_again()
        self.changed.emit()

    def _answer_changed(self) -> None:
        self._estimate_again()
        self.changed.emit()

    def _estimate_again(self) -> None:
        if self._live is not None and self.active:
            self._live.schedule()

    def _chosen_by_hand(self, *_args: object) -> None:
        self._chosen = True

    # -- key ----------------------------------------------------------------------------------
    def update_key_status(self) -> None:
        from kdstudio.core import secrets

        text, kind = key_status()
        self.key_status.setText(text)
        self.key_status.setObjectName(kind)
        restyle(self.key_status)
        has_key = secrets.key_source() is not None
        self.test.setEnabled(has_key)
        self.refresh.setEnabled(has_key)

    def _save_key(self) -> None:
        """Keep the typed key in the keyring, or for this session where there is none; either
        way the key typed here is the one used from now on."""
        import os

        from kdstudio.core import secrets
        from kdstudio.core.errors import ConfigError

        key = self.key_edit.text().strip()
        try:
            secrets.set_api_key(key)
        except ConfigError as exc:
            if not key or "keyring" not in str(exc):
                self._show_key_result(str(exc), "error")
                return
            secrets.use_for_session(key)  # never written to a file
            self._show_key_result("No system keyring on this machine, so the key is used until KD Studio closes and "
                              f"is not saved. To keep it, set {secrets.ENV_VAR} in your environment.", "warning")
        else:
            if os.environ.get(secrets.ENV_VAR, "").strip():
                secrets.use_for_session(key)  # else the environment variable would hide it
                self._show_key_result(f"Key saved in the system keyring (service {secrets.SERVICE}). {secrets.ENV_VAR} "
                                  "is set in the environment too and comes first at the next start; this session "
                                  "uses the key you typed.", "success")
            else:
                secrets.forget_session_key()
                self._show_key_result(f"Key saved in the system keyring (service {secrets.SERVICE}).", "success")
        self.key_edit.clear()
        self.update_key_status()
        self._estimate_again()
        self.load_models()

    # -- models -------------------------------------------------------------------------------
    def _fill_from_price_table(self) -> None:
        """Offline: the models in the price table, cheapest first, until the models API answers."""
        try:
            from kdstudio.core.teachers import pricing

            models = pricing.models_by_price()
            items = [(model_item_text(m, pricing.price(m).as_dict()), m) for m in models]
            default = pricing.RECOMMENDED_MODEL if pricing.RECOMMENDED_MODEL in models else None
        except Exception:
            items, default = [], None
        self._set_items(items, default)

    def set_models(self, models: list[ClaudeModel]) -> None:
        """The models the API listed, cheapest first, with their prices: the chosen one stays
        when the API offers it, else the cheapest with a known price is selected."""
        from kdstudio.core.teachers.pricing import price_order

        ordered = sorted(models, key=lambda m: price_order(m.price))
        offered = {m.id for m in models}
        cheapest = next((m.id for m in ordered if m.price is not None), None)
        keep = self._chosen and self.model() in offered
        self._set_items([(model_item_text(m.display_name or m.id, m.price), m.id) for m in ordered],
                        None if keep else cheapest)

    def _set_items(self, items: list[tuple[str, str]], select: str | None = None) -> None:
        """Fill the model box with (text, model id) items and select ``select`` (default: the
        model chosen before, else the first)."""
        current = select or self.model()
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for text, model_id in items:
            self.model_box.addItem(text, model_id)
        index = self.model_box.findData(current) if current else -1
        if index >= 0 or not current:
            self.model_box.setCurrentIndex(max(0, index))
        else:
            self.model_box.setEditText(current)  # a model the list does not hold, typed by a person
        self.model_box.blockSignals(False)
        self._model_changed()

    def load_models(self) -> None:
        from kdstudio.core.teachers.claude import list_claude_models

        self._show_result("Asking the models API…", "muted")
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

    def _show_key_result(self, text: str, kind: str) -> None:
        self.key_result.setVisible(bool(text))
        self.key_result.setText(text)
        self.key_result.setObjectName(kind)
        restyle(self.key_result)

    def _show_result(self, text: str, kind: str) -> None:
        self.result.setVisible(bool(text))
        self.result.setText(text)
        self.result.setObjectName(kind)
        restyle(self.result)

    def model(self) -> str:
        data = self.model_box.currentData()
        text = self.model_box.currentText().strip()
        if data and self.model_box.itemText(self.model_box.currentIndex()) == text:
            return str(data)
        return text.split(" — ")[0].strip() if text else ""

    def set_model(self, model: str) -> None:
        """Choose ``model`` (a person's choice: a refreshed list keeps it when the API offers it)."""
        self._chosen = True
        index = self.model_box.findData(model)
        if index >= 0:
            self.model_box.setCurrentIndex(index)
        else:
            self.model_box.setEditText(model)


__all__ = ["NO_PROJECT_ESTIMATE", "AnswerOptions", "ClaudeOptions", "key_status", "model_item_text"]
