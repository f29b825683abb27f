"""A form built from a config dataclass: one field per dataclass field, its ``metadata["help"]``
as the tooltip and hint, the common fields first and the rest folded away under "Advanced".

An error about a field shows right under that field, and the scroll area around the form scrolls
to it, so a bad value on a long form never looks like "nothing happened"."""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from kdstudio.gui.wheel_guard import guard_wheel
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
    "vocab": "Word pieces",
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


class FieldError(ValueError):
    """A value that does not parse; ``field`` names the dataclass field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def scroll_to(widget: QWidget) -> None:
    """Scroll every scroll area around ``widget`` so that it shows (after pending layouts)."""

    def scroll() -> None:
        # Lay out what was just shown (the error label, an opened fold) so the positions are real.
        QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        child, parent = widget, widget.parentWidget()
        while parent is not None:
            if isinstance(parent, QScrollArea) and parent.widget() is not None:
                parent.ensureWidgetVisible(child, 20, 40)
                child = parent
            parent = parent.parentWidget()

    scroll()
    QTimer.singleShot(0, widget, scroll)  # again once a just-shown error label has its height


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
        self.field_errors: dict[str, QLabel] = {}

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        basic_form = self._form([n for n in basic if n in self.fields])
        layout.addWidget(basic_form)
        rest = [n for n in self.fields if n not in basic]
        advanced = self._form(rest)
        self.advanced = FoldSection(f"Advanced ({len(rest)} more settings)", advanced)
        layout.addWidget(self.advanced)
        self.error = label("", "error", wrap=True)  # an error that is about no single field
        self.error.hide()
        layout.addWidget(self.error)
        guard_wheel(self)

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
            cell = QWidget()
            column = QVBoxLayout(cell)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(3)
            column.addWidget(widget)
            error = label("", "error", wrap=True)
            error.hide()
            column.addWidget(error)
            self.field_errors[name] = error
            form.addRow(title, cell)
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
            raise FieldError(name, f"{nice_name(name)} is empty")
        if tp is float:
            try:
                return float(text)
            except ValueError:
                raise FieldError(name, f"{nice_name(name)}: '{text}' is not a number") from None
        if tp is int:
            try:
                return int(text)
            except ValueError:
                raise FieldError(name, f"{nice_name(name)}: '{text}' is not a whole number") from None
        return text

    def values(self) -> dict[str, Any]:
        """The entered values; raises ``FieldError`` (one line) for a field that does not parse."""
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

    def field_for(self, message: str) -> str | None:
        """The field an error message is about: its CLI flag (``--batch-size must…``) or its
        label (``Temperature T: 'x' is not a number``); None when it names none."""
        padded = message + " "
        for name in self.widgets:
            if f"--{name.replace('_', '-')} " in padded or padded.startswith((f"{nice_name(name)}:",
                                                                              f"{nice_name(name)} ")):
                return name
        return None

    def show_error(self, message: str, field_name: str | None = None) -> None:
        """Show ``message`` under the field it is about (else under the form), mark that field
        and scroll to it; an empty message clears every error."""
        name = (field_name or self.field_for(message)) if message else None
        for other, w in self.widgets.items():
            set_flag(w, "invalid", other == name)
            self.field_errors[other].setText(message if other == name else "")
            self.field_errors[other].setVisible(other == name)
        self.error.setText(message if name is None else "")
        self.error.setVisible(bool(message) and name is None)
        if not message:
            return
        if name is not None and not self.advanced.body.isVisible() \
                and self.advanced.body.isAncestorOf(self.widgets[name]):
            self.advanced.toggle.setChecked(True)
        if name is None:
            scroll_to(self.error)
            return
        self.widgets[name].setFocus()
        scroll_to(self.field_errors[name].parentWidget())  # the field with its error under it

    def error_text(self) -> str:
        """The error shown now, wherever it is ('' when none)."""
        shown = [lab.text() for lab in self.field_errors.values() if lab.text()]
        return shown[0] if shown else self.error.text()
