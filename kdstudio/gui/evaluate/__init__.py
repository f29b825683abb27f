"""The Evaluate tab: :class:`EvaluationDashboard` (``dashboard``), the cards it is built from
(``cards``: one run's numbers, reliability, cascade and golden set; ``pareto``: the runs against
each other), the plots' look (``plots``), and the size sweep's dialog (``sweep_dialog``). The data they
draw comes from core jobs (:mod:`kdstudio.core.evaluate.dashboard`)."""

from kdstudio.gui.evaluate.cards import CascadeCard, GoldenCard, MetricCard, ReliabilityCard
from kdstudio.gui.evaluate.dashboard import EvaluationDashboard
from kdstudio.gui.evaluate.pareto import ParetoCard
from kdstudio.gui.evaluate.sweep_dialog import SweepDialog

__all__ = [
    "CascadeCard",
    "EvaluationDashboard",
    "GoldenCard",
    "MetricCard",
    "ParetoCard",
    "ReliabilityCard",
    "SweepDialog",
]
