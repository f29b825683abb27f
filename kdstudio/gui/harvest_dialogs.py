"""The harvest panel's dialogs: the teacher (the wizard's teacher step on its own, with the
project's labels and an estimate for its rows) and the settings of ``kdstudio augment``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from kdstudio.gui.teacher_picker import TeacherPicker
from kdstudio.gui.widgets import label

if TYPE_CHECKING:
    from kdstudio.core.harvest import HarvestConfig


class AugmentDialog(QDialog):
    """The settings of ``kdstudio augment``, and a way to take the variants out again."""

    def __init__(self, n_variants: int, n_texts: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add variants of the texts")
        self.remove_requested = False
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(label(
            "A distilled student learns from whatever the teacher labels. Variants of your train and unlabeled "
            "texts — a few words masked or swapped for other words of the project, sometimes only a short run of "
            "words kept — give it more of the teacher's answers to learn from (after Tang et al. 2019). Valid and "
            "test are never changed. Harvest the teacher afterwards: the variants are in the unlabeled split.",
            "muted", wrap=True))
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        self.per_example = QSpinBox()
        self.per_example.setRange(1, 100)
        self.per_example.setValue(4)
        self.per_example.setToolTip("How many variants each text gets (duplicates are dropped)")
        form.addRow("Variants per text", self.per_example)
        self.p_mask = self._chance(0.10, "Chance each word becomes [MASK]")
        form.addRow("Mask a word", self.p_mask)
        self.p_replace = self._chance(0.10, "Chance each word is replaced by another word seen in the project")
        form.addRow("Replace a word", self.p_replace)
        self.p_ngram = self._chance(0.25, "Chance a variant keeps only 1 to 5 consecutive words")
        form.addRow("Keep only a few words", self.p_ngram)
        layout.addLayout(form)
        self.n_texts, self.n_variants = n_texts, n_variants
        self.status = label("", "muted", wrap=True)
        self.per_example.valueChanged.connect(self._update_status)
        self._update_status()
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.add_button = buttons.addButton("Add variants", QDialogButtonBox.ButtonRole.AcceptRole)
        self.add_button.setProperty("role", "primary")
        self.remove_button = buttons.addButton("Remove all variants", QDialogButtonBox.ButtonRole.DestructiveRole)
        self.remove_button.setEnabled(n_variants > 0)
        self.remove_button.clicked.connect(self._remove)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _update_status(self) -> None:
        most = self.n_texts * self.per_example.value()
        already = (f"The project has {self.n_variants:,} variants already; texts that have some are skipped."
                   if self.n_variants else "The project has no variants yet.")
        self.status.setText(f"{self.n_texts:,} texts can be varied (up to {most:,} variants). {already}")

    @staticmethod
    def _chance(value: float, tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(0.0, 1.0)
        box.setSingleStep(0.05)
        box.setDecimals(2)
        box.setValue(value)
        box.setToolTip(tip)
        return box

    def _remove(self) -> None:
        self.remove_requested = True
        self.accept()

    def config(self) -> dict[str, Any]:
        """``AugmentConfig`` fields."""
        return {"per_example": self.per_example.value(), "p_mask": self.p_mask.value(),
                "p_replace": self.p_replace.value(), "p_ngram": self.p_ngram.value()}


class TeacherDialog(QDialog):
    """The wizard's teacher step, on its own. With ``project_path``, ``labels`` and
    ``base_config`` (the harvest the panel describes), Claude's answer options know the label set
    and its estimate prices the project's pending rows."""

    def __init__(self, task: str, spec: str, parent: QWidget | None = None, *,
                 project_path: str | Path | None = None, labels: list[str] | None = None,
                 base_config: Callable[[], HarvestConfig] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a teacher")
        self.resize(900, 720)
        layout = QVBoxLayout(self)
        self.picker = TeacherPicker()
        self.picker.set_task(task)
        if project_path is not None and base_config is not None:
            self.picker.set_project(project_path, list(labels or []), base_config)
        if spec:
            self.picker.set_spec(spec)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.picker)
        layout.addWidget(scroll, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.finished.connect(self._closed)

    def _closed(self, _code: int) -> None:
        self.picker.claude.set_active(False)

    def _accept(self) -> None:
        if self.picker.validate() is None:
            self.accept()


__all__ = ["AugmentDialog", "TeacherDialog"]
