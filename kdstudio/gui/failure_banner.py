"""The failure banner: why a job failed, in the words the CLI uses, where the person is looking.

Every panel that runs jobs keeps one above its content. ``show_failure(message)`` shows the
job's one-line message exactly as ``kdstudio`` prints it after ``kdstudio: error:`` (the
worker's ``message``), a Dismiss button, and, for the failures with a known fix, a button that
does it ("Harvest a teacher" leads to the Harvest tab). It stays until dismissed or until the
next job of that panel starts; a budget stop is shown as "Budget reached", never as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QVBoxLayout, QWidget

from kdstudio.gui.widgets import button, label, restyle

#: How a budget stop's message starts (``BudgetExceeded`` from the harvest job).
BUDGET_REACHED = "budget reached"


@dataclass(frozen=True)
class FailureAction:
    """The button that fixes a failure: its text, and where it leads (a tab of the project
    view: ``harvest``, ``training``..., or ``import`` / ``import-valid`` for the import dialog)."""

    text: str
    target: str


#: Known failures (a piece of the core's message) and the action that fixes each, first match wins.
KNOWN_FAILURES: tuple[tuple[str, FailureAction], ...] = (
    ("no teacher outputs", FailureAction("Harvest a teacher", "harvest")),
    ("has no outputs on train or unlabeled", FailureAction("Harvest a teacher", "harvest")),
    ("no finished run", FailureAction("Train a student", "training")),
    ("has no test predictions", FailureAction("Train a student", "training")),
    ("has no saved student", FailureAction("Train a student", "training")),
    ("has no valid split", FailureAction("Import a validation file…", "import-valid")),
    ("no gold labels in the train split", FailureAction("Import data…", "import")),
    ("at least two labels", FailureAction("Import data…", "import")),
)


def failure_action(message: str) -> FailureAction | None:
    """The action that fixes the failure ``message`` describes, None when there is none known."""
    return next((action for piece, action in KNOWN_FAILURES if piece in message), None)


def is_budget_stop(message: str) -> bool:
    """True when a job stopped because the spending budget was reached (not a failure)."""
    return message.startswith(BUDGET_REACHED)


def ended_words(status: str, message: str = "") -> str:
    """How a job's end reads after its name: ``finished``, ``failed``, ``stopped: budget reached``."""
    if status == "failed" and is_budget_stop(message):
        return "stopped: budget reached"
    return {"finished": "finished", "cancelled": "cancelled — what was done is kept"}.get(status, status)


class FailureBanner(QFrame):
    """One failure: a title, the job's one-line reason, an optional action, and Dismiss.

    ``action_requested(target)`` asks the project view to go where the action leads."""

    action_requested = Signal(str)
    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("failureBanner")
        self.setProperty("kind", "error")
        row = QHBoxLayout(self)
        row.setContentsMargins(14, 8, 10, 8)
        row.setSpacing(10)
        texts = QVBoxLayout()
        texts.setSpacing(2)
        self.title = label("", "subheading")
        self.reason = label("", wrap=True, plain=True)  # messages quote file names, labels and texts
        self.reason.setObjectName("failureReason")
        texts.addWidget(self.title)
        texts.addWidget(self.reason)
        row.addLayout(texts, 1)
        self.action_button = button("", "primary")
        self.action_button.clicked.connect(self._act)
        self.action_button.hide()
        row.addWidget(self.action_button)
        self.dismiss_button = button("Dismiss", tooltip="Hide this message")
        self.dismiss_button.clicked.connect(self.dismiss)
        row.addWidget(self.dismiss_button)
        self._target = ""
        self.hide()

    @property
    def message(self) -> str:
        """The reason shown, empty when the banner is hidden."""
        return self.reason.text() if not self.isHidden() else ""

    def show_failure(self, message: str, what: str = "The job", *, action: FailureAction | None = None) -> None:
        """Show why ``what`` failed; the action defaults to the known fix of ``message``."""
        budget = is_budget_stop(message)
        self.title.setText("Budget reached" if budget else f"{what} failed")
        self.reason.setText(message or "No reason was given.")
        kind = "warning" if budget else "error"
        if self.property("kind") != kind:
            self.setProperty("kind", kind)
            restyle(self)
            restyle(self.title)  # its colour follows the banner's kind
        action = action if action is not None else failure_action(message)
        self._target = action.target if action is not None else ""
        self.action_button.setText(action.text if action is not None else "")
        self.action_button.setVisible(action is not None)
        self.show()

    def show_warnings(self, title: str, messages: list[str]) -> None:
        """Show what a job that succeeded noticed (an import's warnings), one per line, until dismissed."""
        self.title.setText(title)
        self.reason.setText("\n".join(messages))
        if self.property("kind") != "warning":
            self.setProperty("kind", "warning")
            restyle(self)
            restyle(self.title)
        self._target = ""
        self.action_button.hide()
        self.show()

    def _act(self) -> None:
        target = self._target
        self.dismiss()
        if target:
            self.action_requested.emit(target)

    def dismiss(self) -> None:
        """Hide the banner (the next failure shows it again)."""
        if not self.isHidden():
            self.hide()
            self.dismissed.emit()


__all__ = ["BUDGET_REACHED", "FailureAction", "FailureBanner", "ended_words", "failure_action", "is_budget_stop"]
