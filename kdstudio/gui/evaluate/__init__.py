"""The Evaluate tab: :class:`EvaluationDashboard` (``dashboard``), the cards it is built from
(``cards``: one run's numbers, reliability, cascade and golden set; ``pareto``: the runs against
each other), the plots' look (``plots``), and its dialogs: the size sweep (``sweep_dialog``) and
the export of a run's student (``export_dialog``). The data they draw comes from core jobs
(:mod:`kdstudio.core.evaluate.dashboard`, :mod:`kdstudio.core.export`)."""

from kdstudio.gui.evaluate.cards import CascadeCard, GoldenCard, MetricCard, ReliabilityCard
from kdstudio.gui.evaluate.dashboard import EvaluationDashboard
from kdstudio.gui.evaluate.export_dialog import ExportDialog
from kdstudio.gui.evaluate.pareto import ParetoCard
from kdstudio.gui.evaluate.sweep_dialog import SweepDialog

__all__ = [
    "CascadeCard",
    "EvaluationDashboard",
    "ExportDialog",
    "GoldenCard",
    "MetricCard",
    "ParetoCard",
    "ReliabilityCard",
    "SweepDialog",
]
