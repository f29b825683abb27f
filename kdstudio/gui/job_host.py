"""The job host: at most one long job (import, harvest, training, sample) at a time per window,
its progress in the status bar, and the question before closing while it runs."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from kdstudio.core.events import Progress
from kdstudio.gui.widgets import format_duration
from kdstudio.gui.worker import Worker


def progress_text(name: str, progress: Progress | None, paused: bool = False) -> str:
    """``Training 120/900 · 05:12 left`` (or ``· paused``)."""
    if progress is None or not progress.total:
        return f"{name} · starting…" if not paused else f"{name} · paused"
    text = f"{name} {progress.done:,}/{progress.total:,}"
    if paused:
        return text + " · paused"
    if progress.eta_s is not None:
        text += f" · {format_duration(progress.eta_s)} left"
    return text


class JobHost(QObject):
    """Starts workers one at a time and tells the window about them."""

    job_started = Signal(object)
    job_progress = Signal(object)
    job_ended = Signal(object, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.current: Worker | None = None

    @property
    def busy(self) -> bool:
        return self.current is not None and self.current.is_running

    def start(self, worker: Worker, parent: QWidget | None = None) -> bool:
        """Start ``worker`` unless another job runs (then say so and return False)."""
        if self.busy:
            QMessageBox.information(
                parent, "A job is running",
                f"{self.current.name} is still running. Wait for it to finish or cancel it first.")
            return False
        self.current = worker
        worker.yielded.connect(self._on_event)
        worker.finished.connect(self._on_finished)
        worker.paused_changed.connect(self._on_paused)
        worker.start()
        self.job_started.emit(worker)
        return True

    def _on_event(self, event: object) -> None:
        if isinstance(event, Progress) and self.current is not None:
            self.job_progress.emit(self.current)

    def _on_paused(self, _paused: bool) -> None:
        self.job_progress.emit(self.sender())

    def _on_finished(self, status: str) -> None:
        # The worker that ended: a slot that ran before this one may have started the next job.
        worker = self.sender()
        if self.current is worker:
            self.current = None
        self.job_ended.emit(worker, status)

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Cancel the running job and wait for it to stop (on quit); True when it stopped."""
        worker = self.current
        if worker is None or not worker.is_running:
            return True
        worker.cancel()
        deadline = time.monotonic() + timeout_s
        stopped = worker.wait(max(0.1, deadline - time.monotonic()))
        return stopped
