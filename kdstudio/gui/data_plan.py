"""Where every row of the wizard's data page goes: the plan part of :class:`DataPage`.

Each change of the files, the task or the columns (re)starts core's ``plan_project`` in a worker,
after a short pause, which makes the project in a temporary folder exactly as finishing the wizard
will; the page then shows its counts per file and per split, and the problems ``check_splits``
finds. A plan that comes back for choices that changed meanwhile is dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer

from kdstudio.core.events import Finished
from kdstudio.gui.worker import Worker

if TYPE_CHECKING:
    from kdstudio.core.data import CreateResult, Problem

PLAN_DELAY_MS = 250
SPLIT_ORDER = ("train", "valid", "test", "unlabeled")


def split_counts_text(splits: dict[str, int]) -> str:
    """``270 train · 30 valid`` (the splits with rows, in pipeline order)."""
    parts = [f"{splits[s]:,} {s}" for s in SPLIT_ORDER if splits.get(s)]
    return " · ".join(parts) or "no rows"


class DataPlan:
    """The data page's plan: mixed into :class:`~kdstudio.gui.data_page.DataPage`, whose files
    table, column boxes, summary and warning labels it reads and fills."""

    plan: CreateResult | None  # where the rows go, for the current choices
    plan_error: str

    def _init_plan(self) -> None:
        self.plan = None
        self.plan_error = ""
        self._plan_key: tuple | None = None
        self._plan_worker: Worker | None = None
        self._plan_timer = QTimer(self)
        self._plan_timer.setSingleShot(True)
        self._plan_timer.setInterval(PLAN_DELAY_MS)
        self._plan_timer.timeout.connect(self._start_plan)

    def _plan_inputs(self) -> tuple | None:
        """What the plan depends on, or None while it cannot be made (files still reading,
        columns not chosen)."""
        files = self.file_list()
        if not files or len(self.previews) < len(files) or self._column_problem():
            return None
        return (self.task, tuple((f["path"], self._split_of(f)) for f in files), self.text_column(),
                self.import_label_column(), round(self.valid_fraction, 4))

    @staticmethod
    def _split_of(f: dict[str, str]) -> str:
        return "auto" if f["split"].startswith("auto") else f["split"]

    def _schedule_plan(self) -> None:
        if self._plan_inputs() != self._plan_key:
            self.plan, self.plan_error, self._plan_key = None, "", None
            self._show_plan()
        self._plan_timer.start()

    def plan_pending(self) -> bool:
        """True while the counts for the current choices are not known yet."""
        return self._plan_inputs() is not None and self._plan_key != self._plan_inputs()

    def _start_plan(self) -> None:
        key = self._plan_inputs()
        if key is None or key == self._plan_key:
            return
        if self._plan_worker is not None:
            self._plan_worker.cancel()
        from kdstudio.core.data import DataFile, plan_project

        task, files, text_col, label_col, fraction = key
        worker = Worker(plan_project, task, [DataFile(p, s) for p, s in files], text_col=text_col,
                        label_col=label_col, valid_fraction=fraction, name="Counting rows", parent=self)
        worker.plan_key = key
        worker.yielded.connect(self._plan_event)
        worker.errored.connect(self._plan_error)
        self._plan_worker = worker
        self._workers = [w for w in self._workers if w.is_running]
        self._workers.append(worker.start())
        self._show_plan()

    def _plan_event(self, event: object) -> None:
        if isinstance(event, Finished):
            self._plan_ready(self.sender().plan_key, event.result, "")

    def _plan_error(self, message: str, _details: str) -> None:
        self._plan_ready(self.sender().plan_key, None, message)

    def _plan_ready(self, key: tuple, result: CreateResult | None, error: str) -> None:
        if key != self._plan_inputs():
            return  # the choices changed while it counted; a newer plan is on its way
        self.plan, self.plan_error, self._plan_key = result, error, key
        self._show_plan()
        self.plan_changed.emit()
        self.changed.emit()

    def problems(self) -> list[Problem]:
        """What would stop the planned project from training or being evaluated."""
        if self.plan is None:
            return []
        from kdstudio.core.data import check_splits

        return check_splits(self.plan, self.task)

    def _show_plan(self) -> None:
        """The counts per file in the table, the project's in the summary, problems below."""
        plan = self.plan
        by_path = {f.file: f for f in plan.files} if plan else {}
        for row in range(self.files.rowCount()):
            path = self.files.item(row, 0).data(Qt.ItemDataRole.UserRole)
            item = self.files.item(row, 2)
            if path in by_path:
                text = split_counts_text(by_path[path].splits)
            else:
                text = "counting…" if path in self.previews and not self.plan_error else "–"
            if item is not None and item.text() != text:
                item.setText(text)
        self.files.resizeColumnToContents(2)
        if self.plan_error:
            self.summary.setText("")
            self._show_problems([], self.plan_error)
            return
        if plan is None:
            self.summary.setText("Counting the rows…" if self._plan_inputs() is not None else "")
            self._show_problems([], "")
            return
        self.summary.setText(self._summary_text(plan))
        problems = self.problems()
        blocking = next((p.message for p in problems if p.blocking), "")
        self._show_problems([p.message for p in problems if not p.blocking], blocking)

    def _summary_text(self, plan: CreateResult) -> str:
        s = plan.splits
        valid = f"{s['valid']:,} valid"
        if plan.valid_carved:
            valid += f" ({plan.valid_fraction:.0%} of the training rows held out for validation, stratified, seed 0)"
        parts = [f"{s['train']:,} train", valid, f"{s['test']:,} test"]
        if s["unlabeled"]:
            parts.append(f"{s['unlabeled']:,} unlabeled (the teacher labels them)")
        text = "Where the rows go: " + " · ".join(parts) + "."
        if self.task == "classification" and plan.labels:
            shown = ", ".join(plan.labels[:8]) + (f" and {len(plan.labels) - 8} more" if len(plan.labels) > 8 else "")
            text += f" {len(plan.labels)} labels: {shown}."
        left_out = [(sum(i.duplicates for i in plan.imports), "duplicate"),
                    (sum(i.skipped_empty for i in plan.imports), "empty"),
                    (sum(i.skipped_too_long for i in plan.imports), "over-long")]
        left_out = [f"{n:,} {what}" for n, what in left_out if n]
        if left_out:
            text += f" Left out: {', '.join(left_out)} rows."
        return text

    def _show_problems(self, asks: list[str], blocking: str) -> None:
        self.warning.setText(" ".join(asks))
        self.warning.setVisible(bool(asks))
        if blocking or self._error_source == "plan":
            self._set_data_error(blocking, "plan")
