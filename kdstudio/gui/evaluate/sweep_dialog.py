"""The size sweep's settings: which student presets to train one after another, and the epochs each gets."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from kdstudio.gui.widgets import label


class SweepDialog(QDialog):
    """Pick the student presets of a size sweep and the epochs each gets."""

    def __init__(self, presets: Sequence[str], epochs: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Size sweep")
        layout = QVBoxLayout(self)
        layout.addWidget(
            label(
                "Train these students one after another on the same harvest, then evaluate "
                "each. The Pareto plot shows which are worth keeping.",
                wrap=True,
            )
        )
        self.boxes: dict[str, QCheckBox] = {}
        for preset in presets:
            box = QCheckBox(preset)
            box.setChecked(preset in ("cnn", "bilstm", "transformer-tiny"))
            self.boxes[preset] = box
            layout.addWidget(box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Epochs each"))
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 200)
        self.epochs.setValue(epochs)
        row.addWidget(self.epochs)
        row.addStretch(1)
        layout.addLayout(row)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start sweep")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def presets(self) -> list[str]:
        return [p for p, box in self.boxes.items() if box.isChecked()]
