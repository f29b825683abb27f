"""The Compare tab: a run's predictions beside the teacher's answers, example by example.

- ``viewer``: :class:`ComparisonViewer`, the tab itself (run picker, table, heatmap, detail pane,
  keyboard shortcuts, export);
- ``table``: :class:`CompareTableModel`, the Qt model that pages rows from the project;
- ``heatmap``: :class:`ConfusionHeatmap`, the clickable confusion matrix;
- ``detail``: :class:`DetailPane` and its :class:`ProbabilityBars`, one example and its review;
- ``filters``: :class:`FilterBar`, the filters and sort;
- ``labels``: label names in little room (cut in the middle, never two alike) for the table, the
  bars and the combo boxes;
- ``generation_viewer``, ``generation_table``, ``generation_detail``: the tab of a generation project
  (completions side by side with a word diff, lowest score first, corrected completions).

:func:`comparison_viewer` picks the one that fits the project's task.

The jobs behind it are in core: ``kdstudio.core.evaluate.compare`` (the typed filters, preparing a
run) and ``kdstudio.core.export.compare`` (CSV and JSON Lines, shared with ``kdstudio compare``); for
generation ``kdstudio.core.evaluate.compare_generation`` and ``kdstudio.core.export.compare_generation``.
"""

from pathlib import Path
from typing import Any

from kdstudio.gui.compare.detail import DetailPane, ProbabilityBars
from kdstudio.gui.compare.filters import FilterBar
from kdstudio.gui.compare.generation_viewer import GenerationComparisonViewer
from kdstudio.gui.compare.heatmap import ConfusionHeatmap
from kdstudio.gui.compare.table import COLUMNS, CompareTableModel
from kdstudio.gui.compare.viewer import ComparisonViewer


def comparison_viewer(project_path: str | Path, project: Any) -> ComparisonViewer | GenerationComparisonViewer:
    """The Compare tab for ``project``: the generation viewer for a generation task, else classification's."""
    if project.task == "generation":
        return GenerationComparisonViewer(project_path, project)
    return ComparisonViewer(project_path, project)


__all__ = [
    "COLUMNS",
    "CompareTableModel",
    "ComparisonViewer",
    "ConfusionHeatmap",
    "DetailPane",
    "FilterBar",
    "GenerationComparisonViewer",
    "ProbabilityBars",
    "comparison_viewer",
]
