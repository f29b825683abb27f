"""A form built from a config dataclass: one field per dataclass field, its ``metadata["help"]``
as the tooltip and hint, the common fields first and the rest folded away under "Advanced"."""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from kdstudio.gui.widgets import FoldSection, label, set_flag

#: Labels that read better than the field name.
NICE_NAMES = {
    "lr": "Learning rate",
    "alpha": "α (weight of the KD term)",
    "temperature": "Temperature T",
    "batch_size": "Batch size",
    "hard_labels": "Gold labels only",
    "max_length": "Max length (tokens)",
    "hidden_mse": "Hidden-state MSE weight",
    "embed_init": "Embeddings start from",
    "checkpoint_metric": "Best checkpoint by",
    "num_threads": "CPU threads",
    "grad_accum": "Gradient accumulation",
    "grad_clip": "Gradient clip",
    "eval_every": "Evaluate every (steps)",
    "log_every": "Log every (steps)",
    "name": "Run name",
}


def nice_name(name: str) -> str:
    return NICE_NAMES.get(name, name.replace("_", " ").capitalize())


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """``int | None`` → ``(int, True)``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), True
    return tp, False


class ConfigForm(QWidget):
    """Fields for ``cls`` (a dataclass). ``basic`` names the fields shown unfolded, in order;
    ``exclude`` the ones another widget owns. Emits ``changed`` on every edit."""

    changed = Signal()

    def __init__(self, cls: type, *, basic: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cls = cls
        self.defaults = cls()
        hints = typing.get_type_hints(cls)
        module = sys.modules.get(cls.__module__)
        self.fields: dict[str, dataclasses.Field] = {
            f.name: f for f in dataclasses.fields(cls) if f.name not in exclude}
        self.types = {name: _unwrap(hints[name]) for name in self.fields}
        self.choices = {name: tuple(getattr(module, name.upper() + "S", ()) or ()) for name in self.fields}
        self.widgets: dict[str, QWidget] = {}

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        basic_form = self._form([n for n in basic if n in self.fields])
        layout.addWidget(basic_form)
        rest = [n for n in self.fields if n not in basic]
        advanced = self._form(rest)
        self.advanced = FoldSection(f"Advanced ({len(rest)} more settings)", advanced)
        layout.addWidget(self.advanced)
        self.error = label("", "error", wrap=True)
        self.error.hide()
        layout.addWidget(self.error)

    def _form(self, names: list[str]) -> QWidget:
        box = QWidget()
        form = QFormLayout(box)
        form.setContentsMargins(0, 4, 0, 4)
        form.setHorizontalSpacing(18)
        form.setVerticalSpacing(10)
        for name in names:
            widget = self._widget(name)
            help_text = self.fields[name].metadata.get("help", "")
            widget.setToolTip(help_text)
            widget.setMinimumWidth(220)
            self.widgets[name] = widget
            title = label(nice_name(name))
            title.setToolTip(help_text)
            form.addRow(title, widget)
        return box

    def _widget(self, name: str) -> QWidget:
        tp, optional = self.types[name]
        default = getattr(self.defaults, name)
        help_text = self.fields[name].metadata.get("help", "")
        if self.choices[name]:
            w = QComboBox()
            for choice in self.choices[name]:
                w.addItem(str(choice), choice)
            w.setCurrentIndex(max(0, w.findData(default)))
            w.currentIndexChanged.connect(self.changed)
            return w
        if tp is bool:
            w = QCheckBox()
            w.setChecked(bool(default))
            w.toggled.connect(self.changed)
            return w
        if tp is int and not optional:
            w = QSpinBox()
            w.setRange(0, 10**9)
            w.setValue(int(default))
            w.setGroupSeparatorShown(True)
            w.valueChanged.connect(self.changed)
            return w
        w = QLineEdit()
        w.setText("" if default is None else format(default, "g") if isinstance(default, float) else str(default))
        if optional:
            hint = help_text.split("(default:", 1)[1].rstrip(")").strip() if "(default:" in help_text else "auto"
            w.setPlaceholderText(f"auto — {hint}" if hint != "auto" else "auto")
        w.textChanged.connect(self.changed)
        return w

    # -- values -------------------------------------------------------------------------------
    def _read(self, name: str) -> Any:
        tp, optional = self.types[name]
        w = self.widgets[name]
        if isinstance(w, QComboBox):
            return w.currentData()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QSpinBox):
            return w.value()
        text = w.text().strip()
        if not text:
            if optional:
                return None
            if tp is str:
                return ""
            raise ValueError(f"{nice_name(name)} is empty")
        if tp is float:
            try:
                return float(text)
            except ValueError:
                raise ValueError(f"{nice_name(name)}: '{text}' is not a number") from None
        if tp is int:
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{nice_name(name)}: '{text}' is not a whole number") from None
        return text

    def values(self) -> dict[str, Any]:
        """The entered values; raises ``ValueError`` (one line) for a field that does not parse."""
        return {name: self._read(name) for name in self.widgets}

    def set_values(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            w = self.widgets.get(name)
            if w is None:
                continue
            if isinstance(w, QComboBox):
                w.setCurrentIndex(max(0, w.findData(value)))
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, QSpinBox):
                w.setValue(int(value or 0))
            else:
                w.setText("" if value is None else format(value, "g") if isinstance(value, float) else str(value))

    def show_error(self, message: str, field_name: str | None = None) -> None:
        """Show ``message`` under the form and mark the field it is about."""
        self.error.setText(message)
        self.error.setVisible(bool(message))
        for name, w in self.widgets.items():
            bad = bool(message) and (name == field_name or f"--{name.replace('_', '-')} " in message + " ")
            set_flag(w, "invalid", bad)
            if bad and not self.advanced.body.isVisible() and not w.isVisible():
                self.advanced.toggle.setChecked(True)
