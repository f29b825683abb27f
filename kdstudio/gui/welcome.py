"""The welcome screen: new project, open, the sample projects (classification, and generation when
core can build it), and recent projects."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from kdstudio.gui.icons import app_icon, icon
from kdstudio.gui.settings import recent_projects
from kdstudio.gui.widgets import Card, button, label


class ActionCard(Card):
    """A large clickable card: icon, title, one line of explanation."""

    def __init__(self, icon_name: str, title: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, clickable=True)
        self.icon_name = icon_name
        row = QHBoxLayout()
        row.setSpacing(14)
        self.icon = QLabel()
        self.icon.setFixedSize(28, 28)
        self.icon.setPixmap(icon(icon_name).pixmap(28, 28))
        row.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        text_col = QVBoxLayout()
        text_col.setSpacing(2)
        text_col.addWidget(label(title, "subheading"))
        self.text = label(text, "muted", wrap=True)
        text_col.addWidget(self.text)
        row.addLayout(text_col, 1)
        self.layout_.addLayout(row)

    def refresh_icon(self) -> None:
        self.icon.setPixmap(icon(self.icon_name).pixmap(28, 28))


#: The three steps of a project, one line each: (name, what happens).
STEPS = (
    ("Harvest", "a teacher (the offline MiniLM, a local model, or Claude) labels your data."),
    ("Train", "a small student learns from the teacher's answers while you watch."),
    ("Compare & export", "see where they disagree, then export the student (ONNX or Hugging Face)."),
)


class StepsBlock(QWidget):
    """How it works: the three steps, numbered, one line each."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(label("How it works", "subheading"))
        self.lines: list[QLabel] = []
        for number, (name, text) in enumerate(STEPS, start=1):
            row = QHBoxLayout()
            row.setSpacing(8)
            badge = label(str(number), "badge")
            badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
            badge.setFixedSize(20, 20)
            badge.setStyleSheet("padding: 0px; border-radius: 10px;")
            row.addWidget(badge, 0, Qt.AlignmentFlag.AlignTop)
            line = label(f"<b>{html.escape(name)}</b> — {html.escape(text)}", wrap=True)
            line.setTextFormat(Qt.TextFormat.RichText)
            row.addWidget(line, 1)
            layout.addLayout(row)
            self.lines.append(line)


class WelcomeWidget(QWidget):
    """What a person sees first. Emits what they chose; the main window acts on it."""

    new_requested = Signal()
    open_requested = Signal()
    sample_requested = Signal()
    generation_sample_requested = Signal()
    recent_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # in a small window the page scrolls instead of squeezing its text into the cards
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        page = QWidget()
        scroll.setWidget(page)
        box.addWidget(scroll)
        outer = QHBoxLayout(page)
        outer.setContentsMargins(56, 48, 56, 40)
        outer.setSpacing(48)

        left = QVBoxLayout()
        left.setSpacing(10)
        brand = QHBoxLayout()
        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(48, 48))
        brand.addWidget(logo)
        brand.addSpacing(6)
        brand.addWidget(label("KD Studio", "title"))
        brand.addStretch(1)
        left.addLayout(brand)
        left.addWidget(label("Turn a large, slow teacher into a small, fast student on your own machine.",
                             "muted", wrap=True))
        left.addSpacing(14)
        self.steps = StepsBlock()
        left.addWidget(self.steps)
        left.addSpacing(18)
        self.new_card = ActionCard("new", "New project…", "Pick a task and a data file, a teacher and a student.")
        self.open_card = ActionCard("open", "Open project…", "Open a .kdproj file you made before.")
        self.sample_card = ActionCard(
            "sample", "Open sample project",
            "Bank customer messages in 77 intents, a MiniLM teacher and a small student, with a finished run "
            "to explore. Works offline.")
        self.generation_card = ActionCard(
            "sample", "Generation sample (E2E restaurants)",
            "Restaurant attributes → a one-sentence description: recorded completions as the teacher, a small "
            "GPT-style student, with a finished run. Works offline.")
        for card in (self.new_card, self.open_card, self.sample_card, self.generation_card):
            card.setMaximumWidth(520)
            left.addWidget(card)
        self.new_card.clicked.connect(self.new_requested)
        self.open_card.clicked.connect(self.open_requested)
        self.sample_card.clicked.connect(self.sample_requested)
        self.generation_card.clicked.connect(self.generation_sample_requested)
        self.sample_progress = QProgressBar()
        self.sample_progress.setMaximumWidth(520)
        self.sample_progress.setTextVisible(False)
        self.sample_progress.hide()
        self.sample_status = label("", "muted", wrap=True)
        self.sample_status.setMaximumWidth(520)
        self.sample_status.hide()
        left.addWidget(self.sample_progress)
        left.addWidget(self.sample_status)
        left.addStretch(1)
        self.device_label = label("Compute: detecting…", "muted")
        left.addWidget(self.device_label)
        outer.addLayout(left, 5)

        right = QVBoxLayout()
        right.setSpacing(8)
        right.addWidget(label("Recent projects", "heading"))
        self.recent = QListWidget()
        self.recent.setObjectName("recentList")
        self.recent.setMinimumWidth(320)
        self.recent.itemActivated.connect(lambda item: self.recent_chosen.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.recent.itemClicked.connect(lambda item: self.recent_chosen.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.recent_empty = label(
            "Projects you open appear here. Start with the sample project to see a finished run.", "muted",
            wrap=True)
        right.addWidget(self.recent, 1)
        right.addWidget(self.recent_empty)
        right.addStretch(0)
        self.shortcuts_hint = button("Keyboard shortcuts", "link")
        right.addWidget(self.shortcuts_hint, 0, Qt.AlignmentFlag.AlignLeft)
        outer.addLayout(right, 3)
        self.refresh()

    def refresh(self) -> None:
        """Reload the recent-projects list from the settings."""
        self.recent.clear()
        items = recent_projects()
        for path in items:
            p = Path(path)
            item = QListWidgetItem(icon("data"), f"{p.stem}\n{p.parent}")
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(path)
            self.recent.addItem(item)
        self.recent.setVisible(bool(items))
        self.recent_empty.setVisible(not items)
        for card in (self.new_card, self.open_card, self.sample_card, self.generation_card):
            card.refresh_icon()

    def set_sample_busy(self, busy: bool, text: str = "", fraction: float | None = None) -> None:
        """Show progress while the sample project is being built (first time only)."""
        self.sample_card.setEnabled(not busy)
        self.generation_card.setEnabled(not busy)
        self.sample_progress.setVisible(busy)
        self.sample_status.setVisible(bool(text))
        self.sample_status.setText(text)
        if fraction is None:
            self.sample_progress.setRange(0, 0)
        else:
            self.sample_progress.setRange(0, 1000)
            self.sample_progress.setValue(int(fraction * 1000))
