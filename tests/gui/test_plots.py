"""The training plots: the learning rate is never smoothed, an exported PNG carries its title
and legend, and the wheel over an unclicked plot scrolls the page instead of zooming."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtWidgets import QApplication, QScrollArea, QVBoxLayout, QWidget

from kdstudio.gui.metric_series import smoothed
from kdstudio.gui.plots import MetricsView, plot_picture


def fill(view: MetricsView, run: int = 1) -> None:
    view.ensure_run(run, "run 1")
    for step in range(1, 201):
        lr = 0.002 * min(1.0, step / 50) * (1 - max(0, step - 50) / 200)
        view.add_metric(run, "train/lr", step, step / 100, step * 0.1, lr)
        view.add_metric(run, "train/loss", step, step / 100, step * 0.1, 1.0 / step + 0.1 * np.sin(step))


def test_the_smoothing_slider_never_bends_the_learning_rate(qtbot):
    assert not smoothed("train/lr") and not smoothed("valid/accuracy") and smoothed("train/loss")
    view = MetricsView()
    qtbot.addWidget(view)
    fill(view)
    view.set_smoothing(0.9)
    view.redraw()
    raw, line = view.cards["lr"].curves[(1, "train/lr")]
    assert max(line.getOriginalDataset()[1]) == 0.002 and not raw.isVisible()
    raw_loss, loss = view.cards["loss"].curves[(1, "train/loss")]
    assert not np.allclose(loss.getOriginalDataset()[1], raw_loss.getOriginalDataset()[1])  # the loss is smoothed


def test_an_exported_plot_has_its_title_and_legend_above_the_plot(qtbot, tmp_path):
    view = MetricsView()
    qtbot.addWidget(view)
    view.resize(1000, 700)
    fill(view)
    view.redraw()
    assert "learning rate" in view.legend_html(view.cards["lr"])
    path = view.export_png("lr", tmp_path / "lr.png", width=800)
    image = QImage(str(path))
    assert image.width() == 800
    plot_only = plot_picture(view.cards["lr"].plot, 800, "#ffffff")
    band = image.height() - plot_only.height()
    assert band > 40  # room for a title line and a legend line
    background = image.pixelColor(2, 2)
    inked = {y for y in range(band) for x in range(16, 400, 3) if image.pixelColor(x, y) != background}
    assert len(inked) > 15  # text drawn in the band: the title and the legend


def test_the_wheel_over_a_plot_scrolls_the_page_until_the_plot_is_clicked(qtbot):
    page = QWidget()
    column = QVBoxLayout(page)
    view = MetricsView()
    view.setMinimumHeight(1400)
    column.addWidget(view)
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(page)
    area.resize(900, 500)
    qtbot.addWidget(area)
    area.show()
    qtbot.waitExposed(area)
    fill(view)
    view.redraw()
    plot = view.cards["loss"].widget
    before = plot.getPlotItem().getViewBox().viewRange()

    def wheel() -> None:
        viewport = plot.viewport()
        centre = QPointF(viewport.rect().center())
        event = QWheelEvent(centre, QPointF(viewport.mapToGlobal(centre.toPoint())), QPoint(0, 0),
                            QPoint(0, -120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                            Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(viewport, event)

    wheel()
    assert area.verticalScrollBar().value() > 0  # the page scrolled
    assert plot.getPlotItem().getViewBox().viewRange() == before  # the plot did not zoom
    area.activateWindow()
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=plot.viewport().rect().center())
    qtbot.waitUntil(plot.hasFocus)
    scrolled = area.verticalScrollBar().value()
    wheel()
    assert area.verticalScrollBar().value() == scrolled  # a clicked plot takes the wheel: it zooms
    assert plot.getPlotItem().getViewBox().viewRange() != before


def test_the_run_list_shows_the_best_checkpoints_accuracy_labelled_so():
    from kdstudio.core.train import TrainResult
    from kdstudio.gui.metric_series import run_score_text

    fields = {f: 0 for f in TrainResult.__dataclass_fields__}
    summary = TrainResult(**{**fields, "valid_accuracy": 0.84, "student": "cnn", "device": "cpu"}).to_json()
    assert run_score_text(summary) == " · best valid acc 0.840"
    assert run_score_text({**summary, "valid_accuracy": 0.0}) == " · best valid acc 0.000"
    assert run_score_text({**summary, "valid_accuracy": None, "best_score": -0.42}) == ""  # never another metric
    assert run_score_text({}) == ""
