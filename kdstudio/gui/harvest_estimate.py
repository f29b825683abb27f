"""What a harvest would cost, where a person chooses what to pay for: the dry run's figures in
words, a view of them, the job that keeps them current while the settings change, and the budget
field.

:class:`LiveEstimate` runs the harvest's dry run (``HarvestConfig.dry_run``: nothing is asked, the
prompt is measured with the free ``count_tokens``) in a worker a moment after the last change, so
the cost beside the model and the answer options follows them. :func:`estimate_headline`,
:func:`estimate_details` and :func:`estimate_text` read the typed :class:`HarvestEstimate`; every
amount goes through :func:`kdstudio.core.teachers.pricing.usd`, which never rounds a non-zero
amount to $0.00.
"""

from __future__ import annotations

import dataclasses
import inspect
import weakref
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QLocale, QObject, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QDoubleValidator, QResizeEvent
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from kdstudio.core.harvest import HarvestConfig, HarvestEstimate, HarvestResult
from kdstudio.core.teachers.pricing import usd
from kdstudio.gui.widgets import format_count, format_duration, label, restyle
from kdstudio.gui.worker import Worker

#: How long the settings must stay unchanged before the estimate is asked again.
DEBOUNCE_MS = 600


class WrappedLabel(QLabel):
    """A word-wrapped label that is never given less height than its text needs at its width
    (a layout short of room squeezes a plain wrapped label and cuts its last lines off)."""

    def __init__(self, text: str = "", kind: str | None = None, parent: QWidget | None = None, *,
                 hide_when_empty: bool = False) -> None:
        super().__init__(text, parent)
        if kind:
            self.setObjectName(kind)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hide_when_empty = hide_when_empty
        if hide_when_empty and not text:
            self.hide()

    def setText(self, text: str) -> None:
        super().setText(text)
        if self.hide_when_empty:
            self.setVisible(bool(text))
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        # measured here: QLabel.heightForWidth never answers less than the minimum height set before
        needed = 0
        if self.text() and self.width() > 0:
            self.ensurePolished()
            m = self.contentsMargins()
            pad = 2 * self.margin()
            width = max(1, self.width() - m.left() - m.right() - pad)
            text = self.fontMetrics().boundingRect(QRect(0, 0, width, 1_000_000), Qt.TextFlag.TextWordWrap,
                                                   self.text())
            needed = text.height() + m.top() + m.bottom() + pad
        if needed != self.minimumHeight():
            self.setMinimumHeight(needed)


def estimate_headline(result: HarvestEstimate) -> str:
    """``≈ $0.21 for 3,083 examples (≈ $0.000068 per example)``."""
    if not result.n:
        return "Nothing to ask: every example of the chosen splits has an answer from this teacher."
    if not (result.cost_usd or result.input_tokens):
        return f"{result.n:,} examples to ask; the teacher runs on this computer and costs nothing."
    per = result.cost_per_example if result.cost_per_example is not None else result.cost_usd / result.n
    text = f"≈ {usd(result.cost_usd)} for {result.n:,} examples (≈ {usd(per)} per example)"
    if result.batch:
        text += " at the Batch API price"
    if result.estimated_seconds is not None:
        text += f", about {format_duration(result.estimated_seconds)}"
    return text


def estimate_details(result: HarvestEstimate) -> str:
    """The tokens behind the figure: in (and the prompt cache's share), out, per answer, the
    limit, and how they were counted."""
    if not result.n or not (result.cost_usd or result.input_tokens):
        return ""
    tokens_in = f"In: {format_count(result.input_tokens)} tokens"
    if result.cache_write_tokens:
        tokens_in += f" + {format_count(result.cache_write_tokens)} cache writes"
    if result.cache_read_tokens:
        tokens_in += f" + {format_count(result.cache_read_tokens)} cache reads"
    tokens_out = f"Out: {format_count(result.output_tokens)} tokens"
    if result.output_tokens_per_answer:
        tokens_out += f" (~{result.output_tokens_per_answer:,} per answer"
        tokens_out += f", max_tokens {result.max_tokens:,})" if result.max_tokens else ")"
    parts = [tokens_in, tokens_out]
    if result.requests and result.requests != result.n:
        parts.append(f"{result.requests:,} requests")
    how = "count_tokens" if result.counted_with == "count_tokens" else "characters"
    parts.append(f"counted with {how} on {result.sampled:,} examples"
                 + (f", prices of {result.prices_updated}" if result.prices_updated else ""))
    return " · ".join(parts)


def estimate_assumptions(result: HarvestEstimate) -> str:
    """What the figures assume (answer length, caching), from the estimate's notes."""
    return ("Assumes " + "; ".join(result.notes) + ".") if result.notes and result.n else ""


def budget_text(result: HarvestEstimate, budget: float | None) -> str:
    """What the budget means for this estimate."""
    if budget is None or not result.n or not result.cost_usd:
        return ""
    if budget >= result.cost_usd:
        return f"Budget {usd(budget)}: the harvest stops before spending more."
    share = budget / result.cost_usd
    return (f"Budget {usd(budget)} covers about {share:.0%} of it: the harvest stops at the budget after "
            f"about {int(result.n * share):,} examples, keeping their answers.")


def estimate_text(result: HarvestEstimate, budget: float | None) -> str:
    """A dry run's result in sentences (the confirmation before a paid harvest)."""
    if not result.n:
        return "Nothing to ask: every example of the chosen splits has an answer from this teacher."
    parts = [f"{result.n:,} examples to ask the teacher about"
             + (f" in {result.requests:,} requests." if result.requests and result.requests != result.n else ".")]
    if result.cost_usd or result.input_tokens:
        parts.append(f"Estimated cost: {usd(result.cost_usd)} (about {format_count(result.input_tokens)} "
                     f"input and {format_count(result.output_tokens)} output tokens"
                     + (", Batch API price)." if result.batch else ")."))
        if result.cost_per_example is not None:
            parts.append(f"About {usd(result.cost_per_example)} per example.")
        if result.cache_write_tokens or result.cache_read_tokens:
            parts.append(f"Prompt cache: {format_count(result.cache_write_tokens)} tokens written, "
                         f"{format_count(result.cache_read_tokens)} read.")
        if result.notes:
            parts.append(estimate_assumptions(result))
    else:
        parts.append("The teacher runs on this computer: it costs nothing.")
    if result.estimated_seconds is not None:
        parts.append(f"About {format_duration(result.estimated_seconds)}, judged from its earlier answers.")
    if budget is not None:
        short = result.cost_usd > budget
        parts.append(budget_text(result, budget) if short else
                     f"Budget: {usd(budget)}; the harvest stops before going over it.")
    return " ".join(parts)


class EstimateView(QWidget):
    """The estimate where the teacher is chosen: the headline, the tokens behind it, what it
    assumes and, unless ``compact``, what the budget means."""

    def __init__(self, parent: QWidget | None = None, *, compact: bool = False, title: str = "") -> None:
        super().__init__(parent)
        self.compact = compact
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        if title:
            layout.addWidget(label(title, "subheading"))
        self.headline = WrappedLabel()
        self.details = WrappedLabel("", "muted")
        self.assumptions = WrappedLabel("", "muted")
        for w in (self.headline, self.details, self.assumptions):
            layout.addWidget(w)
        if not compact:
            layout.addStretch(1)
        self.result: HarvestEstimate | None = None

    def show_message(self, text: str, kind: str | None = "muted") -> None:
        """A line in place of the figures (waiting, no project yet, an error)."""
        self.result = None
        self._set(self.headline, text, kind)
        self.details.setText("")
        self.assumptions.setText("")
        self.details.hide()
        self.assumptions.hide()

    def show_estimate(self, result: HarvestEstimate, budget: float | None = None) -> None:
        self.result = result
        self._set(self.headline, estimate_headline(result), None)
        self.details.setText(estimate_details(result))
        shown = (estimate_assumptions(result), "" if self.compact else budget_text(result, budget))
        extra = " ".join(t for t in shown if t)
        self.assumptions.setText(extra)
        self.details.setVisible(bool(self.details.text()))
        self.assumptions.setVisible(bool(extra))

    def text(self) -> str:
        return " ".join(w.text() for w in (self.headline, self.details, self.assumptions) if w.text())

    @staticmethod
    def _set(widget: QWidget, text: str, kind: str | None) -> None:
        widget.setText(text)
        if widget.objectName() != (kind or ""):
            widget.setObjectName(kind or "")
            restyle(widget)


class LiveEstimate(QObject):
    """Runs the harvest's dry run for ``config()`` (None: nothing to estimate) in a worker,
    ``DEBOUNCE_MS`` after the last :meth:`schedule`; one at a time, the newest settings last."""

    started = Signal()
    estimated = Signal(object)  # HarvestEstimate
    failed = Signal(str)

    def __init__(self, project_path: str | Path, config: Callable[[], HarvestConfig | None],
                 parent: QObject | None = None, *, delay_ms: int = DEBOUNCE_MS) -> None:
        super().__init__(parent)
        self.project_path = str(project_path)
        # a bound method (the owner's ``config``) is held weakly: its widget owns this object, and
        # a strong reference back would keep both in a reference cycle
        self._config: Callable[[], Callable[[], HarvestConfig | None] | None] = (
            weakref.WeakMethod(config) if inspect.ismethod(config) else (lambda: config))
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self._run)
        self.worker: Worker | None = None
        self._again = False
        self._asked: HarvestConfig | None = None
        #: the settings of the last estimate emitted (None before the first)
        self.estimated_for: HarvestConfig | None = None

    @property
    def busy(self) -> bool:
        return self._timer.isActive() or (self.worker is not None and self.worker.is_running)

    def schedule(self) -> None:
        """Ask again once the settings have stopped changing."""
        self.estimated_for = None
        self._timer.start()

    def is_current(self, config: HarvestConfig) -> bool:
        """Whether the last estimate was made for ``config`` and nothing changed since."""
        return not self.busy and self.estimated_for == dataclasses.replace(config, dry_run=True)

    def stop(self) -> None:
        self._timer.stop()
        self._again = False
        if self.worker is not None and self.worker.is_running:
            self.worker.cancel()

    def _run(self) -> None:
        from kdstudio.core.harvest import harvest

        if self.worker is not None and self.worker.is_running:
            self._again = True
            return
        config_of = self._config()
        config = config_of() if config_of is not None else None
        if config is None:
            return
        self._asked = dataclasses.replace(config, dry_run=True)
        worker = Worker(harvest, self.project_path, self._asked, name="Cost estimate", parent=self)
        worker.finished.connect(self._done)
        self.worker = worker.start()
        self.started.emit()

    def _done(self, status: str) -> None:
        worker = self.worker
        if self._again:
            self._again = False
            self._run()
            return
        if worker is None:
            return
        if status == "finished" and isinstance(worker.result, HarvestEstimate):
            self.estimated_for = self._asked
            self.estimated.emit(worker.result)
        elif status == "failed":
            self.failed.emit(worker.message)


class BudgetField(QWidget):
    """A budget in dollars with an explicit "No limit": an amount is never read as "unlimited"
    because it rounds to zero, and amounts under a cent keep their digits. ``value()`` is None
    for no limit, else the amount (0 allowed: spend nothing); ``is_valid()`` is False while the
    field holds no amount and "No limit" is off."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        self.no_limit = QCheckBox("No limit")
        self.no_limit.setChecked(True)
        self.no_limit.setToolTip("Untick to stop the harvest before spending more than the amount beside it")
        self.amount = QLineEdit()
        self.amount.setPlaceholderText("e.g. 5 or 0.05")
        self.amount.setToolTip("US dollars this teacher may spend in the project, earlier harvests included; "
                               "the harvest stops before going over it")
        validator = QDoubleValidator(0.0, 1e9, 8, self.amount)
        validator.setNotation(QDoubleValidator.Notation.StandardNotation)
        validator.setLocale(QLocale.c())  # a point for the decimals, whatever the system's locale
        self.amount.setValidator(validator)
        self.amount.setMaximumWidth(110)
        self.amount.setEnabled(False)
        row.addWidget(self.no_limit)
        row.addWidget(label("$", "muted"))
        row.addWidget(self.amount)
        self.no_limit.toggled.connect(self._toggled)
        self.amount.textChanged.connect(self.changed)

    def _toggled(self, no_limit: bool) -> None:
        self.amount.setEnabled(not no_limit)
        if not no_limit:
            self.amount.setFocus()
        self.changed.emit()

    def value(self) -> float | None:
        """None for no limit (or while no amount is typed), else the amount in dollars."""
        if self.no_limit.isChecked():
            return None
        try:
            return max(0.0, float(self.amount.text().strip().replace(",", ".")))
        except ValueError:
            return None

    def is_valid(self) -> bool:
        return self.no_limit.isChecked() or self.value() is not None

    def setValue(self, value: float | None) -> None:
        """None (or a negative amount) for no limit, else the amount."""
        if value is None or value < 0:
            self.no_limit.setChecked(True)
            return
        self.amount.setText(f"{value:.8f}".rstrip("0").rstrip(".") or "0")
        self.no_limit.setChecked(False)


def summary_text(result: HarvestResult) -> str:
    """The end of a harvest in one line: the same line as the harvest's log."""
    return result.summary()
