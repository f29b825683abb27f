"""The dashboard's plots: one look for every pyqtgraph plot on the Evaluate tab (fixed view, no
menu, themed axes), the student's and the teacher's colours, and the number formats the cards use."""

from __future__ import annotations

import pyqtgraph as pg

from kdstudio.gui.theme import SERIES_COLORS, Theme, current_theme
from kdstudio.gui.wheel_guard import guard_view_wheel

STUDENT_COLOR, TEACHER_COLOR = SERIES_COLORS[1], SERIES_COLORS[0]
LINE_COLOR = SERIES_COLORS[2]  # the cascade curve and the Pareto frontier


def plot_widget(title_x: str, title_y: str) -> pg.PlotWidget:
    """A plot with axis titles that the mouse does not pan or zoom, in the current theme."""
    widget = pg.PlotWidget()
    widget.setMinimumHeight(220)
    plot = widget.getPlotItem()
    plot.setLabel("bottom", title_x)
    plot.setLabel("left", title_y)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    plot.getViewBox().setMouseEnabled(False, False)
    for axis in ("left", "bottom"):
        plot.getAxis(axis).enableAutoSIPrefix(False)
    theme_plot(widget, current_theme())
    guard_view_wheel(widget)  # the page scrolls under the pointer
    return widget


def theme_plot(widget: pg.PlotWidget, theme: Theme) -> None:
    """Background, axes and grid of ``widget`` in ``theme``'s colours."""
    widget.setBackground(theme.plot_bg)
    plot = widget.getPlotItem()
    for axis in ("left", "bottom"):
        ax = plot.getAxis(axis)
        ax.setPen(pg.mkPen(theme.border))
        ax.setTextPen(pg.mkPen(theme.plot_fg))
    plot.showGrid(x=True, y=True, alpha=theme.grid_alpha)


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def money(value: float | None) -> str:
    if value is None:
        return "–"
    return f"${value:,.0f}" if value >= 100 else f"${value:,.2f}"


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} ms" if value < 10 else f"{value:,.0f} ms"
