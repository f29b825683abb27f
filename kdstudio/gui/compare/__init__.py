"""The Compare tab: a run's predictions beside the teacher's answers, example by example.

- ``viewer``: :class:`ComparisonViewer`, the tab itself (run picker, table, heatmap, detail pane,
  keyboard shortcuts, export);
- ``table``: :class:`CompareTableModel`, the Qt model that pages rows from the project;
- ``heatmap``: :class:`ConfusionHeatmap`, the clickable confusion matrix;
- ``detail``: :class:`DetailPane` and its :class:`ProbabilityBars`, one example and its review;
- ``filters``: :class:`FilterBar`, the filters and sort;
- ``labels``: label names in little room (cut in the middle, never two alike) for the table, the
  bars and the combo boxes.

The jobs behind it are in core: ``kdstudio.core.evaluate.compare`` (the typed filters, preparing a
run) and ``kdstudio.core.export.compare`` (CSV and JSON Lines, shared with ``kdstudio compare``).
"""

from kdstudio.gui.compare.detail import DetailPane, ProbabilityBars
from kdstudio.gui.compare.filters import FilterBar
from kdstudio.gui.compare.heatmap import ConfusionHeatmap
from kdstudio.gui.compare.table import COLUMNS, CompareTableModel
from kdstudio.gui.compare.viewer import ComparisonViewer

__all__ = [
    "COLUMNS",
    "CompareTableModel",
    "ComparisonViewer",
    "ConfusionHeatmap",
    "DetailPane",
    "FilterBar",
    "ProbabilityBars",
]
