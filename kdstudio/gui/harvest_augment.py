"""The harvest panel's "Add variants…": ask for the settings, then add variants of the train and
unlabeled texts (or remove them all) in a worker, with the panel's progress bar and failure banner."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QDialog, QMessageBox

from kdstudio.core.events import Progress
from kdstudio.gui.harvest_dialogs import AugmentDialog
from kdstudio.gui.widgets import format_duration
from kdstudio.gui.worker import Worker


class AugmentFlow:
    """Mixed into :class:`~kdstudio.gui.harvest_panel.HarvestPanel`, whose project, job host,
    progress bar, labels and running state it uses; it emits the panel's ``augment_finished``."""

    def augment(self) -> None:
        """Ask for the settings, then add variants (or remove them all) in the background."""
        counts = self.project.split_counts()
        n_variants = len(self.project.augmented_ids())
        dialog = AugmentDialog(n_variants, counts["train"] + counts["unlabeled"] - n_variants, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        if dialog.remove_requested:
            answer = QMessageBox.question(
                self, "Remove all variants?",
                f"Delete the {n_variants:,} variants and every teacher answer on them? Your own texts stay.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
            if answer == QMessageBox.StandardButton.Yes:
                self.start_augment(None)
            return
        self.start_augment(dialog.config())

    def start_augment(self, config: dict[str, Any] | None) -> bool:
        """Add variants with ``config`` (``AugmentConfig`` fields), or remove them all with None."""
        from kdstudio.core.data.augment import AugmentConfig, augment, remove_variants

        if config is None:
            worker = Worker(remove_variants, str(self.project_path), name="Removing variants", parent=self)
        else:
            worker = Worker(augment, str(self.project_path), AugmentConfig(**config), name="Adding variants",
                            parent=self)
        worker.yielded.connect(self._on_augment_event)
        worker.finished.connect(self._augment_finished)
        if not self.jobs.start(worker, self):
            return False
        self.worker = worker
        self.progress.setRange(0, 0)
        self.progress_text.setText("Adding variants…" if config is not None else "Removing variants…")
        self.failure.dismiss()
        self._set_running(True)
        return True

    def _augment_finished(self, status: str) -> None:
        worker, self.worker = self.worker, None
        self._set_running(False)
        self.progress.setRange(0, 1000)
        from kdstudio.core.data.augment import AugmentResult, RemoveVariantsResult

        result = worker.result if worker is not None else None
        if status == "finished":
            self.progress.setValue(1000)
            if isinstance(result, RemoveVariantsResult):
                self.progress_text.setText(f"Removed {result.removed:,} variants")
            elif isinstance(result, AugmentResult):
                self.progress_text.setText(f"Added {result.added:,} variants")
                self.log_line.setText(
                    f"{result.augmented_total:,} variants in the unlabeled split. Start the harvest to "
                    "have the teacher label them; the next KD run trains on them.")
        elif status == "cancelled":
            self.progress_text.setText("Cancelled · the variants added so far are kept")
        else:
            self.progress_text.setText("Failed")
            self.failure.show_failure(worker.message if worker is not None else "", "Changing the variants")
        self._settings_changed()
        self.augment_finished.emit(status)

    def _on_augment_event(self, event: object) -> None:
        if isinstance(event, Progress) and event.total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * event.fraction))
            eta = f" · {format_duration(event.eta_s)} left" if event.eta_s is not None else ""
            self.progress_text.setText(f"{event.done:,} / {event.total:,} texts · "
                                       f"{int(event.info.get('added', 0)):,} variants{eta}")
