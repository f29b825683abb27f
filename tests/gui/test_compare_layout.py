"""The Compare tab's layout in the main window at its default size (1280×800), with banking77's
77 long label names: the review controls stay in view (also after a confusion-cell click and
after dragging the splitters to their ends), label names are cut so that different labels never
look alike and show whole as tooltips, and the View menu opens the tab."""

from __future__ import annotations

import pytest
from fakes.tiny_models import banking77_labels, make_long_label_compare_project
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QFontMetrics, QMouseEvent
from PySide6.QtWidgets import QApplication, QSplitter, QStyleOptionViewItem, QWidget

from kdstudio.gui.compare.labels import ELLIPSIS, distinct_elisions
from kdstudio.gui.compare.table import COLUMNS, LABEL_COLUMNS
from kdstudio.gui.main_window import MainWindow
from kdstudio.gui.settings import sample_project_path


@pytest.fixture
def window(qtbot):
    """The main window at 1280×800 on a banking77-like project, opened as the sample project
    (so the sample's banner takes its room too), showing the Compare tab."""
    path, run = make_long_label_compare_project(sample_project_path())
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    assert w.open_project(path)
    assert w.project_view.is_sample
    compare = w.project_view.compare
    w.project_view.tabs.setCurrentWidget(compare)
    qtbot.waitUntil(lambda: compare.model is not None and compare.model.run_id == run, timeout=10000)
    compare.table.selectRow(1)
    qtbot.wait(50)
    yield w
    w.jobs.stop(timeout_s=5)
    if w.project_view is not None:
        w.project_view.close_project()


def area(widget: QWidget) -> QRect:
    """``widget``'s rectangle in its window's coordinates."""
    return QRect(widget.mapTo(widget.window(), QPoint(0, 0)), widget.size())


def fully_in_view(widget: QWidget) -> bool:
    """Shown, and inside every widget it sits in (no scroll area or splitter cuts it off)."""
    if not widget.isVisible() or widget.width() <= 0 or widget.height() <= 0:
        return False
    rect, parent = area(widget), widget.parentWidget()
    while parent is not None:
        if not area(parent).contains(rect):
            return False
        parent = parent.parentWidget()
    return True


def assert_review_in_view(compare) -> None:
    window = compare.window()
    assert (window.width(), window.height()) == (1280, 800)
    for control in compare.detail.review_controls():
        assert fully_in_view(control), control
        assert control.width() >= control.minimumSizeHint().width(), control
    button = compare.detail.correct_button
    assert button.width() >= button.sizeHint().width()  # "Teacher is wrong → use this label", whole
    page = compare.page  # the tab scrolls only below its smallest size, never at 1280×800
    assert not page.horizontalScrollBar().isVisible() and not page.verticalScrollBar().isVisible()
    for widget in (compare.table, compare.heatmap, compare.filter_bar, compare.detail):
        assert fully_in_view(widget), widget
    # the example's text and label names wrap inside their pane; none is cut at the right
    info = compare.detail.scroll.widget()
    assert info.minimumSizeHint().width() <= compare.detail.scroll.viewport().width()


def longest_off_diagonal_cell(compare) -> tuple[int, int]:
    matrix = compare.heatmap.matrix
    cells = [
        (s, t) for s in range(len(matrix)) for t in range(len(matrix)) if s != t and matrix[s][t]
    ]
    return max(cells, key=lambda st: len(compare.labels[st[0]]) + len(compare.labels[st[1]]))


def test_compare_tab_at_1280x800_has_its_review_controls_inside_the_viewport(window, qtbot):
    compare = window.project_view.compare
    assert len(compare.labels) == 77
    assert_review_in_view(compare)
    left_width = compare.split.widget(0).width()

    s, t = longest_off_diagonal_cell(compare)
    compare.heatmap.cell_clicked.emit(s, t)  # what a click on that cell sends
    qtbot.wait(50)
    assert compare.filter_bar.cell_chip.isVisible()
    assert compare.model.total >= 1 and compare.detail.row is not None
    assert_review_in_view(compare)
    assert compare.split.widget(0).width() == left_width  # the chip did not widen the left pane
    chip = compare.filter_bar.cell_chip
    assert fully_in_view(chip)
    assert compare.labels[s] in chip.toolTip() and compare.labels[t] in chip.toolTip()


def drag(qtbot, handle: QWidget, offset: QPoint) -> None:
    start = handle.rect().center()
    qtbot.mousePress(handle, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(handle, start + offset)
    qtbot.mouseRelease(handle, Qt.MouseButton.LeftButton, pos=start + offset)
    qtbot.wait(20)


@pytest.mark.parametrize("far", [-3000, 3000])
def test_dragging_a_splitter_to_its_end_collapses_no_pane(window, qtbot, far):
    compare = window.project_view.compare
    splitters: list[tuple[QSplitter, QPoint]] = [
        (compare.split, QPoint(far, 0)),
        (compare.side_split, QPoint(0, far)),
    ]
    for splitter, offset in splitters:
        assert not splitter.childrenCollapsible()
        drag(qtbot, splitter.handle(1), offset)
        # the handle went as far as it goes: the pane it moved into is at its smallest size
        squeezed = splitter.widget(0 if far < 0 else 1)
        smallest = squeezed.minimumSizeHint()
        if splitter is compare.split:
            assert squeezed.width() == smallest.width()
        else:
            assert squeezed.height() == smallest.height()
        for i in range(splitter.count()):
            pane = splitter.widget(i)
            assert not splitter.isCollapsible(i)
            assert pane.isVisible()
            size = pane.width() if splitter is compare.split else pane.height()
            minimum = pane.minimumSizeHint()
            assert size >= (minimum.width() if splitter is compare.split else minimum.height()) > 0
        assert splitter.sizes()[0] != 0 and splitter.sizes()[1] != 0
    assert_review_in_view(compare)


def test_elided_labels_differ_for_different_labels_and_tooltips_hold_the_whole_label(window):
    compare = window.project_view.compare
    model, table = compare.model, compare.table
    shown: dict[str, set[str]] = {}
    for column, (key, _title, _sort) in enumerate(COLUMNS):
        if key not in LABEL_COLUMNS:
            continue
        delegate = table.itemDelegateForColumn(column)
        for row in range(model.rowCount()):
            index = model.index(row, column)
            option = QStyleOptionViewItem()
            option.rect = table.visualRect(index)
            option.widget = table
            option.font = table.font()
            delegate.initStyleOption(option, index)
            full = model.data(index, Qt.ItemDataRole.ToolTipRole)
            assert full in compare.labels
            assert table.fontMetrics().horizontalAdvance(option.text) <= option.rect.width()
            shown.setdefault(option.text, set()).add(full)
    assert any(ELLIPSIS in text for text in shown)  # banking77's names do not fit whole
    assert all(len(names) == 1 for names in shown.values()), shown

    # the detail pane's probability bars: cut names that read as one label only, whole on hover
    bars = compare.detail.bars
    assert bars.items
    for row, (name, *_values) in enumerate(bars.items):
        text = bars.shown_name(row).removeprefix("★ ")
        if ELLIPSIS in text:
            head, _, tail = text.partition(ELLIPSIS)
            assert [n for n in compare.labels if n.startswith(head) and n.endswith(tail)] == [name]
        else:
            assert text == name
        at = QPointF(10, 24 + 26 * row + 8)  # the pointer over the row (scrolled into view or not)
        QApplication.sendEvent(
            bars,
            QMouseEvent(
                QEvent.Type.MouseMove,
                at,
                bars.mapToGlobal(at),
                Qt.MouseButton.NoButton,
                Qt.MouseButton.NoButton,
                Qt.KeyboardModifier.NoModifier,
            ),
        )
        assert bars.toolTip().splitlines()[0].removesuffix(" (gold)") == name


@pytest.mark.parametrize("width", [70, 90, 118, 150, 200])
def test_label_names_cut_in_the_middle_never_read_as_another_label(qapp, width):
    names = banking77_labels()
    shown = distinct_elisions(names, QFontMetrics(QApplication.font()), width)
    assert len(set(shown)) == len(names)
    for name, text in zip(names, shown, strict=True):
        assert QFontMetrics(QApplication.font()).horizontalAdvance(text) <= width
        if ELLIPSIS not in text:
            assert text == name
            continue
        head, _, tail = text.partition(ELLIPSIS)
        assert name.startswith(head) and name.endswith(tail)
        others = [o for o in names if o != name and o.startswith(head) and o.endswith(tail)]
        assert not others, (text, others)
    # e.g. the two top-up charges keep what tells them apart
    assert shown[names.index("top_up_by_card_charge")] != shown[
        names.index("top_up_by_bank_transfer_charge")
    ]


def test_the_view_menu_opens_the_compare_tab(window):
    view_menu = next(
        a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "View"
    )
    items = {a.text().replace("&", ""): a for a in view_menu.actions() if a.text()}
    compare = items["Compare"]
    assert compare.shortcut().toString() == "Ctrl+5"
    window.project_view.show_tab("overview")
    compare.trigger()
    assert window.project_view.tabs.currentWidget() is window.project_view.compare
