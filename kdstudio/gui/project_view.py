"""An open project: a header, then Overview, Harvest, Training and Evaluate tabs."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from kdstudio.gui.compare import comparison_viewer
from kdstudio.gui.evaluate import EvaluationDashboard
from kdstudio.gui.failure_banner import FailureBanner
from kdstudio.gui.harvest_panel import HarvestPanel
from kdstudio.gui.job_host import JobHost
from kdstudio.gui.settings import sample_project_path
from kdstudio.gui.training_panel import TrainingPanel, run_status_text, run_title
from kdstudio.gui.widgets import Card, EmptyState, StatTile, button, label
from kdstudio.gui.worker import Worker

TABS = ("overview", "harvest", "training", "evaluate", "compare")


def _table(headers: list[str], rows: list[list[Any]]) -> QTableWidget:
    table = QTableWidget(len(rows), len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.setAlternatingRowColors(True)
    table.setFocusPolicy(table.focusPolicy().NoFocus)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(str(value)))
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    return table


class OverviewPanel(QWidget):
    """What the project holds: examples per split, labels, teachers, runs and reviews. Where one
    of them is still missing it says what to do next and offers the button that does it."""

    tab_requested = Signal(str)
    import_requested = Signal()

    def __init__(self, project: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(20, 16, 20, 16)
        self.layout_.setSpacing(12)
        self.content: QWidget | None = None
        self.empty_states: dict[str, EmptyState] = {}
        self.reviews_summary: QLabel | None = None
        self.refresh()

    def _empty(self, key: str, title: str, text: str, action: str, on_action: Any) -> EmptyState:
        state = EmptyState(title, text, action, on_action=on_action, compact=True)
        self.empty_states[key] = state
        return state

    def _go(self, tab: str) -> Any:
        return lambda: self.tab_requested.emit(tab)

    def refresh(self) -> None:
        if self.content is not None:
            self.layout_.removeWidget(self.content)
            self.content.hide()  # until Qt deletes it, it must not show under the new one
            self.content.deleteLater()
        self.empty_states = {}
        info = self.project.info()
        content = QWidget()
        grid = QGridLayout(content)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(12)
        tiles = QHBoxLayout()
        for split in ("train", "valid", "test", "unlabeled"):
            tiles.addWidget(StatTile(f"{split} examples", f"{info['splits'].get(split, 0):,}"))
        grid.addLayout(tiles, 0, 0, 1, 2)

        labels_card = Card()
        labels_card.layout_.addWidget(label("Labels" if info["task"] == "classification" else "Task", "subheading"))
        if not info["n_examples"]:
            labels_card.layout_.addWidget(self._empty(
                "data", "No data yet",
                "Import a CSV, TSV, JSON Lines or Parquet file: a text column, and a label column where you have "
                "gold labels. The teacher answers the rest.",
                "Import data…", self.import_requested.emit))
            labels_card.layout_.addStretch(1)
        elif info["task"] == "classification" and info["labels"]:
            counts = info["label_counts"]
            rows = [[name, counts["train"].get(name, 0), counts["valid"].get(name, 0), counts["test"].get(name, 0)]
                    for name in info["labels"]]
            labels_card.layout_.addWidget(_table(["Label", "train", "valid", "test"], rows), 1)
        else:
            labels_card.layout_.addWidget(label(
                "Generation: the teacher writes a completion for each prompt." if info["task"] == "generation"
                else "No labels yet: they come from the data's label column.", "muted", wrap=True))
            labels_card.layout_.addStretch(1)
        grid.addWidget(labels_card, 1, 0, 3, 1)

        teachers_card = Card()
        teachers_card.layout_.addWidget(label("Teachers", "subheading"))
        if any(t["ok"] or t["failed"] for t in info["teachers"]):
            rows = [[t["spec"], f"{t['ok']:,}", f"{t['failed']:,}", f"${t['cost_usd']:.2f}"] for t in info["teachers"]]
            teachers_card.layout_.addWidget(_table(["Teacher", "answered", "failed", "cost"], rows), 1)
        else:
            teachers_card.layout_.addWidget(self._empty(
                "teacher", "No teacher answers yet",
                "A teacher (the offline MiniLM, a local model, or Claude) answers every example; the student "
                "learns from those answers.",
                "Harvest a teacher", self._go("harvest")))
        grid.addWidget(teachers_card, 1, 1)

        runs_card = Card()
        runs_card.layout_.addWidget(label("Runs", "subheading"))
        runs = self.project.runs()
        if runs:
            rows = [[run_title(r), r["student"], run_status_text(r), (r.get("started") or "")[:16].replace("T", " ")]
                    for r in reversed(runs)]
            runs_card.layout_.addWidget(_table(["Run", "Student", "Status", "Started"], rows), 1)
        else:
            runs_card.layout_.addWidget(self._empty(
                "run", "No runs yet",
                "Train a small student on the teacher's answers and watch its curves while it learns.",
                "Train a student", self._go("training")))
        grid.addWidget(runs_card, 2, 1)

        grid.addWidget(self._reviews_card(), 3, 1)
        grid.setRowStretch(1, 1)
        grid.setRowStretch(2, 1)
        imports = info.get("imports") or []
        if imports:
            files = ", ".join(f"{i.get('file')} ({i.get('inserted', 0):,} rows → {i.get('split')})" for i in imports)
            grid.addWidget(label(f"Imported: {files}", "muted", wrap=True), 4, 0, 1, 2)
        self.layout_.addWidget(content)
        self.content = content

    def _reviews_card(self) -> Card:
        """How many examples a person reviewed in the Compare tab, or how to review them."""
        card = Card()
        card.layout_.addWidget(label("Reviews", "subheading"))
        self.reviews_summary = None
        reviews = self.project.reviews().values()
        if not reviews:
            card.layout_.addWidget(self._empty(
                "review", "No reviews yet",
                "In the Compare tab, “Teacher is wrong” corrects an example's label, X leaves it out of training "
                "and G marks it golden. The next run learns from your reviews.",
                "Open Compare", self._go("compare")))
            return card
        corrected = sum(r["corrected_label"] is not None for r in reviews)
        excluded = sum(bool(r["exclude"]) for r in reviews)
        golden = sum(bool(r["golden"]) for r in reviews)
        row = QHBoxLayout()
        self.reviews_summary = label(
            f"{corrected:,} corrected · {excluded:,} left out of training · {golden:,} golden", "muted")
        row.addWidget(self.reviews_summary, 1)
        more = button("Open Compare", "link", tooltip="Review more examples in the Compare tab")
        more.clicked.connect(self._go("compare"))
        row.addWidget(more)
        card.layout_.addLayout(row)
        return card


class ProjectView(QWidget):
    """The screen of an open project. Holds the Qt thread's own ``Project`` (reads only)."""

    status_message = Signal(str)

    def __init__(self, path: Path, jobs: JobHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from kdstudio.core.store import Project

        self.path = Path(path)
        self.jobs = jobs
        self._import_worker: Worker | None = None
        self.project = Project(self.path)
        #: runs a killed or crashed process left "running", now marked interrupted (Training offers Resume)
        self.interrupted_runs = self.project.mark_interrupted_runs()
        meta = self.project.meta()
        self.display_name = meta["name"]
        self.is_sample = self.path.resolve() == sample_project_path().resolve()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        header = QFrame()
        header.setObjectName("projectHeader")
        head = QHBoxLayout(header)
        head.setContentsMargins(20, 14, 20, 6)
        titles = QVBoxLayout()
        titles.setSpacing(2)
        titles.addWidget(label(self.display_name, "heading", plain=True))
        self.subtitle = label("", "muted")
        titles.addWidget(self.subtitle)
        head.addLayout(titles, 1)
        layout.addWidget(header)

        if self.is_sample:
            banner = QFrame()
            banner.setObjectName("banner")
            row = QHBoxLayout(banner)
            row.setContentsMargins(14, 8, 10, 8)
            row.addWidget(label("This is the sample project: banking77 intents, distilled from the offline MiniLM "
                                "teacher into a small student. Its finished run is plotted under Training.",
                                wrap=True), 1)
            self.run_again_button = button("Run it again", "primary",
                                           tooltip="Train the same student again; the new run is overlaid")
            self.run_again_button.clicked.connect(self.run_sample_again)
            row.addWidget(self.run_again_button)
            wrap = QWidget()
            w = QVBoxLayout(wrap)
            w.setContentsMargins(20, 4, 20, 6)
            w.addWidget(banner)
            layout.addWidget(wrap)

        # a failed import (started from any tab) says why here, above the tabs
        self.failure = FailureBanner()
        self.failure.action_requested.connect(self.go)
        banner_wrap = QWidget()
        wrap_layout = QVBoxLayout(banner_wrap)
        wrap_layout.setContentsMargins(20, 4, 20, 6)
        wrap_layout.addWidget(self.failure)
        self.failure.dismissed.connect(banner_wrap.hide)
        banner_wrap.hide()
        self._failure_wrap = banner_wrap
        layout.addWidget(banner_wrap)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.overview = OverviewPanel(self.project)
        self.harvest = HarvestPanel(self.path, jobs, self.project)
        self.training = TrainingPanel(self.path, jobs, self.project)
        self.evaluate = EvaluationDashboard(self.path, jobs, self.project)
        self.compare = comparison_viewer(self.path, self.project)
        self.tabs.addTab(self.overview, "Overview")
        self.tabs.addTab(self.harvest, "Harvest")
        self.tabs.addTab(self.training, "Training")
        self.tabs.addTab(self.evaluate, "Evaluate")
        self.tabs.addTab(self.compare, "Compare")
        self.evaluate.evaluated.connect(lambda _run: self.compare.refresh())
        self.compare.review_saved.connect(self._review_saved)
        layout.addWidget(self.tabs, 1)
        self.harvest.harvest_finished.connect(lambda _s: self.refresh())
        self.training.run_finished.connect(lambda _s: self.refresh())
        # an empty state's or a failure's button that leads to another step goes through here
        for panel in (self.overview, self.training, self.evaluate, self.compare):
            panel.tab_requested.connect(self.go)
        for panel in (self.harvest, self.training, self.evaluate):
            panel.failure.action_requested.connect(self.go)
        self.overview.import_requested.connect(self.import_data)
        self.harvest.import_requested.connect(self.import_data)
        self._overview_stale = False
        self.tabs.currentChanged.connect(self._tab_changed)
        self.refresh()
        if self.is_sample or self.project.runs():
            self.tabs.setCurrentWidget(self.training)
        elif not any(t["ok"] for t in self.project.info()["teachers"]):
            self.tabs.setCurrentWidget(self.harvest)

    def refresh(self) -> None:
        info = self.project.info()
        n_labels = f" · {len(info['labels'])} labels" if info["task"] == "classification" else ""
        self.subtitle.setText(f"{info['task'].capitalize()}{n_labels} · {info['n_examples']:,} examples · "
                              f"{len(info['runs'])} runs · {self.path}")
        self.overview.refresh()
        self._overview_stale = False
        self.training.update_empty_state()
        self.evaluate.refresh()
        self.compare.refresh()

    def show_tab(self, name: str) -> None:
        """Show the tab ``name`` (one of ``TABS``)."""
        self.tabs.setCurrentIndex(TABS.index(name))

    def go(self, target: str) -> None:
        """Where a button that leads to another step goes: a tab (one of ``TABS``), ``import``
        (the import dialog) or ``import-valid`` (the same, into the valid split)."""
        if target == "import":
            self.import_data()
        elif target == "import-valid":
            self.import_data(split="valid")
        else:
            self.show_tab(target)

    def _tab_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.overview and self._overview_stale:
            self.overview.refresh()
            self._overview_stale = False

    def _review_saved(self, _example: int) -> None:
        self.evaluate.refresh()
        self._overview_stale = True  # its review counts are read again when it is shown

    def import_data(self, split: str = "auto") -> bool:
        """Ask for a data file and import it into the project in the background (``kdstudio import``),
        into ``split`` (``auto``: the file's own split column, else the project's split)."""
        from kdstudio.gui.wizard import DATA_FILTER

        title = "Import a validation file" if split == "valid" else "Import data"
        path, _ = QFileDialog.getOpenFileName(self, title, str(self.path.parent), DATA_FILTER)
        if not path:
            return False
        return self.start_import(path, split=split)

    def start_import(self, file: str | Path, *, split: str = "auto") -> bool:
        from kdstudio.core.data import import_file

        worker = Worker(import_file, str(self.path), str(file), split=split, name="Importing data", parent=self)
        worker.finished.connect(self._imported)
        if not self.jobs.start(worker, self):
            return False
        self._import_worker = worker
        self.failure.dismiss()
        self.status_message.emit(f"Importing {Path(file).name}…")
        return True

    def _imported(self, status: str) -> None:
        worker, self._import_worker = self._import_worker, None
        if status == "failed" and worker is not None:
            self.show_failure(worker.message, "The import")
        elif status == "finished" and worker is not None and worker.result is not None:
            self.status_message.emit(f"Imported {worker.result.inserted:,} examples")
            self.show_import_warnings(worker.result.warnings)
        self.harvest.refresh()
        self.training.refresh_runs()
        self.refresh()

    def show_import_warnings(self, warnings: list[str]) -> None:
        """Say above the tabs what an import noticed (the lines ``kdstudio import`` prints as warnings)."""
        if warnings:
            self._failure_wrap.show()
            n = len(warnings)
            self.failure.show_warnings(f"The import finished with {n} warning{'s' if n > 1 else ''}", warnings)

    def show_failure(self, message: str, what: str) -> None:
        """Say above the tabs why ``what`` failed, until dismissed."""
        self._failure_wrap.show()
        self.failure.show_failure(message, what)

    def run_sample_again(self) -> None:
        """Train the sample's student again with the settings of its last run."""
        self.tabs.setCurrentWidget(self.training)
        self.training.start()

    def call_panel(self, tab: str, method: str) -> None:
        panel = {"harvest": self.harvest, "training": self.training}[tab]
        self.tabs.setCurrentWidget(panel)
        getattr(panel, method)()

    def save_view_state(self, settings: QSettings) -> None:
        settings.setValue("plots/axis", self.training.view.axis)
        settings.setValue("plots/smoothing", self.training.view.weight)

    def restore_view_state(self, settings: QSettings) -> None:
        axis = settings.value("plots/axis")
        if isinstance(axis, str):
            self.training.view.set_axis(axis)
        with contextlib.suppress(TypeError, ValueError):
            self.training.view.set_smoothing(float(settings.value("plots/smoothing", self.training.view.weight)))

    def close_project(self) -> None:
        """Stop this screen's helper workers (no result may reach a closed project), then close
        the Qt thread's connection."""
        from kdstudio.gui.worker import stop_owned_by

        self.training.view.timer.stop()
        stop_owned_by(self, timeout_s=5.0)
        with contextlib.suppress(Exception):
            self.project.close()
