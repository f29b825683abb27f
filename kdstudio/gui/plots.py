"""Live training plots with pyqtgraph.

Each (run, metric) pair is one growable series and two curves made once: the raw values,
faint, and the smoothed ones on top. Metric events only append to arrays; a timer redraws the
curves that changed a few times a second (never once per step), and pyqtgraph's peak
downsampling and clip-to-view keep 100,000 points per curve smooth.

Axis ranges follow the data in steps (with headroom) instead of on every redraw, so the axes,
whose text is the costly part to paint, are re-rendered only now and then and otherwise come
from a pixmap cache. Panning or zooming a plot stops it following; "Fit" resumes.
"""

from __future__ import annotations

import csv
import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QTextDocument
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGraphicsItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.csvsafe import formula_safe
from kdstudio.gui.icons import icon
from kdstudio.gui.metric_series import PLOTS, SHORT_NAMES, X_AXES, RunSeries, plot_for, plot_title, smoothed
from kdstudio.gui.theme import SERIES_COLORS, Theme, ThemeManager, current_theme
from kdstudio.gui.wheel_guard import guard_view_wheel
from kdstudio.gui.widgets import Card, label

#: Redraw interval: several times a second.
REDRAW_MS = 250
WIDE_LINES = False  # wide lines cost the raster engine a lot; thin ones keep redraws cheap
#: an invisible legend line: it holds the legend's height before the first series arrives (the
#: dash glyphs come from a fallback font a pixel taller than the text), so the first legend does
#: not move the plots
LEGEND_STRUT = '<span style="color:transparent">━━</span>'
DASHES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine)


def plot_picture(item: pg.PlotItem, width: int, background: str) -> QImage:
    """``item`` drawn ``width`` pixels wide (pyqtgraph's ImageExporter draws the same, but
    leaves its settings tree in reference cycles)."""
    source = item.sceneBoundingRect()
    height = max(1, round(source.height() * width / max(source.width(), 1.0)))
    image = QImage(width, height, QImage.Format.Format_ARGB32)
    image.fill(QColor(background))
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        item.scene().render(painter, QRectF(0, 0, width, height), source)
    finally:
        painter.end()
    return image


class PlotCard(Card):
    """One titled plot with PNG and CSV export buttons."""

    export_png = Signal(str)
    export_csv = Signal(str)

    def __init__(self, key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        title, ylabel, _ = PLOTS[key]
        self.layout_.setContentsMargins(12, 8, 12, 8)
        self.layout_.setSpacing(2)
        header = QHBoxLayout()
        self.title = label(title, "subheading")
        header.addWidget(self.title)
        header.addStretch(1)
        self.fit_button = self._tool("fit", "Fit the plot to the data and follow new points")
        self.fit_button.clicked.connect(self.resume_following)
        header.addWidget(self.fit_button)
        self.png_button = self._tool("export", "Save this plot as PNG…")
        self.csv_button = self._tool("data", "Save this plot's data as CSV…")
        header.addWidget(self.png_button)
        header.addWidget(self.csv_button)
        self.layout_.addLayout(header)
        self.widget = pg.PlotWidget()
        self.widget.setMinimumHeight(130)
        guard_view_wheel(self.widget)  # the wheel zooms only a clicked plot; otherwise it scrolls the page
        self.plot: pg.PlotItem = self.widget.getPlotItem()
        self.plot.setLabel("left", ylabel)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.hideButtons()
        self.box = self.plot.getViewBox()
        self.box.disableAutoRange()
        self.box.sigRangeChangedManually.connect(self._manual_range)
        self.following = True
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.plot.setMenuEnabled(True)
        # The legend is a label above the plot, not text inside the scene: text in the scene is
        # repainted with every new point under it, and that is the costly part of a redraw.
        self.legend = QLabel()
        self.legend.setObjectName("muted")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.legend.setText(LEGEND_STRUT)
        self.layout_.addWidget(self.legend)
        self.layout_.addWidget(self.widget, 1)
        self.png_button.clicked.connect(lambda: self.export_png.emit(self.key))
        self.csv_button.clicked.connect(lambda: self.export_csv.emit(self.key))
        self.curves: dict[tuple[int, str], tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self.styled: set[tuple[int, str]] = set()

    def _tool(self, name: str, tip: str) -> QToolButton:
        b = QToolButton()
        b.setIcon(icon(name))
        b.setToolTip(tip)
        b.setAutoRaise(True)
        b.setCursor(Qt.CursorShape.PointingHandCursor)
        return b

    def _manual_range(self, *_args: object) -> None:
        self.following = False

    def resume_following(self) -> None:
        self.following = True
        self.fit(self._bounds, force=True)

    _bounds: tuple[float, float, float, float] | None = None

    def fit(self, bounds: tuple[float, float, float, float] | None, *, force: bool = False,
            tight: bool = False) -> None:
        """Keep the data in view, changing the range only when the data leaves it (or takes up
        much less of it), with headroom so a growing run does not move the axes every redraw."""
        self._bounds = bounds
        if bounds is None or not (self.following or force):
            return
        x0, x1, y0, y1 = bounds
        (vx0, vx1), (vy0, vy1) = self.box.viewRange()
        xspan = max(x1 - x0, 1e-12)
        if force or tight or x1 > vx1 or x0 < vx0 or (vx1 - vx0) > 3 * xspan + 1e-9:
            self.box.setXRange(x0, x0 + xspan * (1.02 if force or tight else 1.3), padding=0)
        yspan = max(y1 - y0, abs(y1) * 1e-3, 1e-12)
        if force or tight or y1 > vy1 or y0 < vy0 or (vy1 - vy0) > 2.5 * yspan:
            low = 0.05 if force or tight else 0.12
            self.box.setYRange(y0 - low * yspan, y1 + 0.08 * yspan, padding=0)

    def apply_theme(self, theme: Theme) -> None:
        self.widget.setBackground(theme.plot_bg)
        for axis in ("left", "bottom"):
            ax = self.plot.getAxis(axis)
            ax.setPen(pg.mkPen(theme.border))
            ax.setTextPen(pg.mkPen(theme.plot_fg))
        self.png_button.setIcon(icon("export"))
        self.fit_button.setIcon(icon("fit"))
        self.csv_button.setIcon(icon("data"))

    def curve(self, run: int, metric: str) -> tuple[pg.PlotDataItem, pg.PlotDataItem]:
        key = (run, metric)
        if key not in self.curves:
            raw = self.plot.plot([], [], skipFiniteCheck=True)
            smooth = self.plot.plot([], [], skipFiniteCheck=True)
            for c in (raw, smooth):
                c.setDownsampling(auto=True, method="peak")
                c.setClipToView(True)
            raw.setZValue(-1)
            self.curves[key] = (raw, smooth)
        return self.curves[key]


class MetricsView(QWidget):
    """The training plots: loss (total, KD, CE), validation accuracy and agreement with the
    teacher, learning rate; x by step, epoch or time; a smoothing slider; several runs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs: dict[int, RunSeries] = {}
        self.axis = "step"
        self.weight = 0.6
        self._dirty: set[tuple[int, str]] = set()
        self._restyle = True
        self.redraws = 0

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("X axis"))
        self.axis_box = QComboBox()
        for key, text in X_AXES.items():
            self.axis_box.addItem(text, key)
        self.axis_box.setToolTip("Plot against optimiser steps, epochs or seconds since the run started")
        self.axis_box.currentIndexChanged.connect(lambda _i: self.set_axis(self.axis_box.currentData()))
        bar.addWidget(self.axis_box)
        bar.addSpacing(16)
        bar.addWidget(QLabel("Smoothing"))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 99)
        self.slider.setValue(int(self.weight * 100))
        self.slider.setFixedWidth(160)
        self.slider.setToolTip("Exponential moving average; the raw curve stays faint behind")
        self.slider.valueChanged.connect(lambda v: self.set_smoothing(v / 100))
        self.smooth_value = label(f"{self.weight:.2f}", "muted")
        self.smooth_value.setFixedWidth(36)
        bar.addWidget(self.slider)
        bar.addWidget(self.smooth_value)
        bar.addStretch(1)
        self.hint = label("", "muted")
        bar.addWidget(self.hint)
        layout.addLayout(bar)

        grid = QGridLayout()
        grid.setSpacing(10)
        self.cards: dict[str, PlotCard] = {}
        # a fixed two-by-two grid: training loss beside the validation losses, validation
        # fractions beside the learning rate. Nothing appears or moves when a run's first
        # evaluation arrives, since a moved plot is a full repaint of every plot.
        places = {"loss": (0, 0), "valid": (1, 0), "lr": (1, 1), "other": (0, 1)}
        for key in PLOTS:
            card = PlotCard(key)
            card.export_png.connect(self._ask_png)
            card.export_csv.connect(self._ask_csv)
            self.cards[key] = card
            grid.addWidget(card, *places[key])
        grid.setRowStretch(0, 1)
        grid.setRowStretch(1, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid, 1)

        self._turn = 0
        self._x_bounds = (0.0, 1.0)
        #: True while a run is being trained: ranges then grow with headroom instead of hugging
        self.live = False
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS // 3)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        ThemeManager.instance().theme_changed.connect(self._theme_changed)
        self._theme_changed(current_theme())

    # -- data in ------------------------------------------------------------------------------
    def ensure_run(self, run: int, label_: str | None = None) -> RunSeries:
        if run not in self.runs:
            self.runs[run] = RunSeries(run, label_ or f"run {run}")
            self._restyle = True
        elif label_:
            self.runs[run].label = label_
        return self.runs[run]

    def add_metric(self, run: int, name: str, step: float, epoch: float, wall_s: float, value: float) -> None:
        """Append one point (cheap; drawn at the next redraw tick)."""
        self.ensure_run(run).get(name).append(step, epoch, wall_s, value)
        self._dirty.add((run, name))

    def add_rows(self, run: int, rows: list[tuple]) -> None:
        """Append store rows ``(rowid, step, epoch, wall_s, name, value)``."""
        by_name: dict[str, list[tuple[float, float, float, float]]] = {}
        for _rowid, step, epoch, wall_s, name, value in rows:
            by_name.setdefault(name, []).append((step, epoch, wall_s, value))
        rs = self.ensure_run(run)
        for name, points in by_name.items():
            rs.get(name).extend(np.array(points, dtype=np.float64))
            self._dirty.add((run, name))

    def remove_run(self, run: int) -> None:
        if self.runs.pop(run, None) is None:
            return
        for card in self.cards.values():
            for key in [k for k in card.curves if k[0] == run]:
                for c in card.curves.pop(key):
                    card.plot.removeItem(c)
                card.styled.discard(key)
        self._restyle = True

    def clear(self) -> None:
        for run in list(self.runs):
            self.remove_run(run)

    def set_run_visible(self, run: int, visible: bool) -> None:
        if run in self.runs and self.runs[run].visible != visible:
            self.runs[run].visible = visible
            self._restyle = True

    def points(self, run: int, name: str) -> int:
        """How many points of ``name`` the view holds for ``run``."""
        rs = self.runs.get(run)
        return rs.series[name].n if rs and name in rs.series else 0

    # -- view settings ------------------------------------------------------------------------
    def set_axis(self, axis: str) -> None:
        if axis in X_AXES and axis != self.axis:
            self.axis = axis
            self.axis_box.setCurrentIndex(list(X_AXES).index(axis))
            for card in self.cards.values():
                card.plot.setLabel("bottom", X_AXES[axis])
            self._mark_all()
            self._x_bounds = (0.0, 1.0)
            for card in self.cards.values():
                card.following = True
                card._bounds = None
                card.box.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            self.redraw()

    def set_smoothing(self, weight: float) -> None:
        weight = max(0.0, min(0.99, weight))
        if weight != self.weight:
            self.weight = weight
            self.smooth_value.setText(f"{weight:.2f}")
            if self.slider.value() != round(weight * 100):
                self.slider.setValue(round(weight * 100))
            self._restyle = True

    def _mark_all(self) -> None:
        for rs in self.runs.values():
            for name in rs.series:
                self._dirty.add((rs.run, name))

    def _theme_changed(self, theme: Theme) -> None:
        for card in self.cards.values():
            card.apply_theme(theme)
            card.plot.setLabel("bottom", X_AXES[self.axis])
        self._restyle = True

    # -- drawing ------------------------------------------------------------------------------
    def _pens(self, rs: RunSeries, name: str, index_in_plot: int, n_visible_runs: int) -> tuple:
        theme = current_theme()
        visible_runs = [r for r in self.runs.values() if r.visible]
        if n_visible_runs <= 1:
            colour = QColor(SERIES_COLORS[index_in_plot % len(SERIES_COLORS)])
            style = Qt.PenStyle.SolidLine
        else:
            order = [r.run for r in visible_runs].index(rs.run) if rs.visible else 0
            colour = QColor(SERIES_COLORS[order % len(SERIES_COLORS)])
            style = DASHES[index_in_plot % len(DASHES)]
        faint = QColor(colour)
        faint.setAlphaF(0.22 if theme.dark else 0.25)
        return pg.mkPen(faint, width=1), pg.mkPen(colour, width=1.5 if WIDE_LINES else 1, style=style), colour

    def _tick(self) -> None:
        """Redraw the next plot with new points: one plot per tick, in turn, so each stretch of
        painting on the Qt thread is short; every plot still updates several times a second."""
        if self._restyle:
            if not self.live:
                self.redraw()
                return
            # a run that starts restyles every plot: during a run that too goes plot by plot
            self._restyle = False
            self._mark_all()
            for card in self.cards.values():
                card.styled.clear()
        if not self._dirty or not self.isVisible():
            return
        keys = list(PLOTS)
        pending = {plot_for(name) for _run, name in self._dirty}
        for i in range(1, len(keys) + 1):
            key = keys[(self._turn + i) % len(keys)]
            if key in pending:
                self._turn = keys.index(key)
                self.redraw(only=key)
                return

    def redraw(self, only: str | None = None) -> None:
        """Push changed series to their curves (all plots, or the plot ``only``)."""
        if not self._dirty and not self._restyle:
            return
        self.redraws += 1
        restyle = self._restyle
        self._restyle = False
        if restyle:
            self._mark_all()
            only = None
        n_visible = sum(r.visible for r in self.runs.values())
        if only is None:
            dirty, self._dirty = self._dirty, set()
        else:
            dirty = {d for d in self._dirty if plot_for(d[1]) == only}
            self._dirty -= dirty
        for run, name in sorted(dirty):
            rs = self.runs.get(run)
            if rs is None or name not in rs.series:
                continue
            key = plot_for(name)
            card = self.cards[key]
            raw, smooth = card.curve(run, name)
            series = rs.series[name]
            if restyle or (run, name) not in card.styled:
                names = sorted({m for r in self.runs.values() for m in r.series if plot_for(m) == key},
                               key=lambda m: (PLOTS[key][2].index(m) if m in PLOTS[key][2] else 99, m))
                faint, strong, colour = self._pens(rs, name, names.index(name), n_visible)
                raw.setPen(faint)
                smooth.setPen(strong)
                few = name.startswith("valid/")  # a few points each; symbols would cost on long series
                smooth.setSymbol("o" if few else None)
                smooth.setSymbolSize(5)
                smooth.setSymbolBrush(colour)
                smooth.setSymbolPen(None)
                card.styled.add((run, name))
                self._legend(card)
            if not rs.visible:
                raw.hide()
                smooth.hide()
                continue
            x = series.x(self.axis)
            smoothing = self.weight > 0 and smoothed(name) and series.n > 2
            if smoothing:
                raw.setData(x, series.y)
                raw.show()
                smooth.setData(x, series.smooth(self.weight))
            else:
                raw.hide()
                smooth.setData(x, series.y)
            smooth.show()
        self._fit_cards(only)
        n_points = sum(s.n for r in self.runs.values() if r.visible for s in r.series.values())
        text = f"{n_points:,} points" if n_points else ""
        if self.hint.text() != text:
            self.hint.setText(text)

    def _fit_cards(self, only: str | None = None) -> None:
        """Give each card the bounds of its visible data (cheap: min/max of arrays)."""
        bounds: dict[str, list[float]] = {}
        for rs in self.runs.values():
            if not rs.visible:
                continue
            for name, series in rs.series.items():
                if series.n == 0 or (only is not None and plot_for(name) != only):
                    continue
                x, y = series.x(self.axis), series.y
                finite = y[np.isfinite(y)]
                if finite.size == 0:
                    continue
                b = (float(x[0]), float(x[-1]), float(finite.min()), float(finite.max()))
                key = plot_for(name)
                if key in bounds:
                    o = bounds[key]
                    bounds[key] = [min(o[0], b[0]), max(o[1], b[1]), min(o[2], b[2]), max(o[3], b[3])]
                else:
                    bounds[key] = list(b)
        # one x range for every plot, so a step lines up across them
        if bounds:
            x0 = min(b[0] for b in bounds.values())
            x1 = max(b[1] for b in bounds.values())
            self._x_bounds = (min(x0, self._x_bounds[0]), max(x1, self._x_bounds[1])) if only else (x0, x1)
        for key, card in self.cards.items():
            if only is None or key == only:
                b = bounds.get(key)
                card.fit((*self._x_bounds, b[2], b[3]) if b else None, tight=not self.live)

    def _legend(self, card: PlotCard) -> None:
        card.legend.setText(self.legend_html(card) or LEGEND_STRUT)

    def legend_html(self, card: PlotCard) -> str:
        """The legend of ``card``'s visible curves: each one's line, in its colour and dash, and name."""
        multi = sum(r.visible for r in self.runs.values()) > 1
        parts = []
        for (run, name), (_raw, smooth) in sorted(card.curves.items()):
            rs = self.runs.get(run)
            if rs is None or not rs.visible:
                continue
            colour = smooth.opts["pen"].color().name()
            dash = {Qt.PenStyle.DashLine: "╌╌", Qt.PenStyle.DotLine: "┈┈"}.get(smooth.opts["pen"].style(), "━━")
            text = html.escape(SHORT_NAMES.get(name, name))
            text = f"{html.escape(rs.label)} · {text}" if multi else text
            parts.append(f'<span style="color:{colour}; font-weight:700">{dash}</span>&nbsp;{text}')
        return "&nbsp;&nbsp;&nbsp; ".join(parts)

    def set_task(self, task: str) -> None:
        """Title the plots for a project of ``task`` (a generation run plots perplexity, not fractions)."""
        for key, card in self.cards.items():
            title, ylabel = plot_title(key, task)
            card.title.setText(title)
            card.plot.setLabel("left", ylabel)

    # -- export -------------------------------------------------------------------------------
    def export_png(self, key: str, path: str | Path, width: int = 1200) -> Path:
        """Save one plot as a PNG image: its title, its legend, then the plot."""
        self.redraw()
        card = self.cards[key]
        theme = current_theme()
        plot_image = plot_picture(card.plot, width, theme.plot_bg)
        pad = 16
        title = QTextDocument()
        title.setDocumentMargin(0)
        title.setHtml(f'<div style="color:{theme.plot_fg}; font-size:20px; font-weight:700">'
                      f"{html.escape(card.title.text())}</div>")
        title.setTextWidth(width - 2 * pad)
        legend = QTextDocument()
        legend.setDocumentMargin(0)
        legend.setHtml(f'<div style="color:{theme.plot_fg}; font-size:14px">{self.legend_html(card)}</div>')
        legend.setTextWidth(width - 2 * pad)
        top = pad + round(title.size().height()) + 6 + round(legend.size().height()) + 8
        image = QImage(plot_image.width(), top + plot_image.height(), QImage.Format.Format_ARGB32)
        image.fill(QColor(theme.plot_bg))
        painter = QPainter(image)
        try:
            painter.translate(pad, pad)
            title.drawContents(painter)
            painter.translate(0, round(title.size().height()) + 6)
            legend.drawContents(painter)
            painter.resetTransform()
            painter.drawImage(0, top, plot_image)
        finally:
            painter.end()
        image.save(str(path), "PNG")
        return Path(path)

    def export_csv(self, key: str, path: str | Path) -> Path:
        """Save the data behind one plot (visible runs) as CSV: run, metric, step, epoch, wall_s, value."""
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["run", "metric", "step", "epoch", "wall_s", "value"])
            for rs in self.runs.values():
                if not rs.visible:
                    continue
                for name, series in rs.series.items():
                    if plot_for(name) != key:
                        continue
                    for step, epoch, wall_s, value in series.data[: series.n]:
                        writer.writerow([rs.run, formula_safe(name), int(step), f"{epoch:.6g}", f"{wall_s:.3f}",
                                         repr(float(value))])
        return path

    def _ask_png(self, key: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save plot as PNG", f"{key}.png", "PNG image (*.png)")
        if path:
            self.export_png(key, path)

    def _ask_csv(self, key: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save plot data as CSV", f"{key}.csv", "CSV (*.csv)")
        if path:
            self.export_csv(key, path)
