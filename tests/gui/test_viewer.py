"""The comparison viewer: paging model, filters, sorting, the confusion-matrix click, the detail
pane, reviews, keyboard navigation and exports (offscreen, on a toy project with a stored run)."""

from __future__ import annotations

import csv
import json

import pytest
from fakes.tiny_models import LABELS, build_toy_project, make_compare_project
from PySide6.QtCore import Qt

from kdstudio.gui.compare import COLUMNS, ComparisonViewer


@pytest.fixture
def viewer(qtbot, tmp_path):
    path, run = make_compare_project(tmp_path)
    widget = ComparisonViewer(path)
    qtbot.addWidget(widget)
    widget.resize(1200, 760)
    widget.show()
    qtbot.waitUntil(lambda: widget.model is not None and widget.model.run_id == run, timeout=5000)
    yield widget
    widget.close()


def visible_examples(viewer) -> list[int]:
    model = viewer.model
    return [model.row_at(i)["example"] for i in range(model.rowCount())]


def test_viewer_opens_on_the_run_with_every_test_row_sorted_by_kl(viewer):
    model = viewer.model
    assert model.rowCount() == 40
    kls = [model.row_at(i)["kl"] for i in range(40)]
    assert kls == sorted(kls, reverse=True)
    assert "40 examples" in viewer.count_label.text()
    assert model.data(model.index(0, 1)) == model.row_at(0)["text"]


def test_disagreement_filter_keeps_only_rows_where_the_labels_differ(viewer, qtbot):
    viewer.filter_bar.disagreements.setChecked(True)
    rows = viewer.model.rows(range(viewer.model.rowCount()))
    assert len(rows) == 10  # every fourth of 40
    assert all(r["student_label"] != r["teacher_label"] for r in rows)
    assert "10 of 40" in viewer.count_label.text()


def test_gold_class_confidence_and_text_filters(viewer):
    bar = viewer.filter_bar
    bar.gold.setCurrentIndex(bar.gold.findData("wrong"))
    assert all(
        r["student_label"] != r["gold"] for r in viewer.model.rows(range(viewer.model.rowCount()))
    )
    bar.gold.setCurrentIndex(0)
    bar.klass.setCurrentIndex(bar.klass.findData(1))
    assert {r["gold"] for r in viewer.model.rows(range(viewer.model.rowCount()))} == {1}
    bar.klass.setCurrentIndex(0)
    bar.conf_low.setValue(0.6)
    bar.flush()
    rows = viewer.model.rows(range(viewer.model.rowCount()))
    assert rows and all(r["confidence"] >= 0.6 for r in rows)
    bar.conf_low.setValue(0.0)
    bar.search.setText("test 7")  # texts end in "test <i>"
    bar.flush()
    texts = [r["text"] for r in viewer.model.rows(range(viewer.model.rowCount()))]
    assert texts and all("test 7" in t for t in texts)


def test_sorting_by_margin_entropy_and_header_click(viewer):
    bar = viewer.filter_bar
    bar.sort.setCurrentIndex(bar.sort.findData("margin"))
    margins = [r["margin"] for r in viewer.model.rows(range(40))]
    assert margins == sorted(margins, reverse=True)
    bar.direction.setChecked(False)
    margins = [r["margin"] for r in viewer.model.rows(range(40))]
    assert margins == sorted(margins)
    entropy_column = next(
        i
        for i in range(viewer.model.columnCount())
        if viewer.model.headerData(i, Qt.Orientation.Horizontal) == "Entropy"
    )
    viewer.table.horizontalHeader().sectionClicked.emit(entropy_column)
    assert viewer.model.sort_key == "entropy"
    entropies = [r["entropy"] for r in viewer.model.rows(range(40))]
    assert entropies == sorted(entropies)


def test_clicking_a_confusion_cell_filters_the_table(viewer, qtbot):
    matrix = viewer.heatmap.matrix
    s, t = next((s, t) for s in range(3) for t in range(3) if s != t and matrix[s][t])
    qtbot.mouseClick(
        viewer.heatmap, Qt.MouseButton.LeftButton, pos=viewer.heatmap.cell_center(s, t)
    )
    rows = viewer.model.rows(range(viewer.model.rowCount()))
    assert len(rows) == matrix[s][t]
    assert all(r["student_label"] == s and r["teacher_label"] == t for r in rows)
    assert viewer.filter_bar.cell_chip.isVisible()
    qtbot.keyClick(viewer.table, Qt.Key.Key_Escape)
    assert viewer.model.rowCount() == 40
    viewer.against.setCurrentIndex(viewer.against.findData("gold"))
    assert viewer.heatmap.against == "gold"
    assert sum(map(sum, viewer.heatmap.matrix)) == 40


def test_detail_pane_shows_both_probability_bars_of_the_selected_example(viewer):
    from kdstudio.core.store import Project

    viewer.table.selectRow(3)
    row = viewer.model.row_at(3)
    assert viewer.detail.title.text() == f"Example #{row['example']}"
    assert row["text"] in viewer.detail.text.text()
    bars = {name: (t, s) for name, t, s in viewer.detail.bars.values()}
    with Project(viewer.project_path) as project:
        teacher = next(
            o["probs"]
            for o in project.teacher_outputs(viewer.teacher_id, ["test"])
            if o["id"] == row["example"]
        )
        student = next(
            p["probs"] for p in project.predictions(viewer.run_id) if p["example"] == row["example"]
        )
    assert set(bars) == set(LABELS)
    for i, name in enumerate(LABELS):
        assert bars[name] == pytest.approx((teacher[i], student[i]))
    # sorted by the teacher's probability
    assert [t for _n, t, _s in viewer.detail.bars.values()] == sorted(teacher, reverse=True)


def test_keyboard_moves_through_rows_and_toggles_review_flags(viewer, qtbot):
    viewer.table.setFocus()
    viewer.table.selectRow(0)
    qtbot.keyClick(viewer.table, Qt.Key.Key_Down)
    assert viewer.table.currentIndex().row() == 1
    qtbot.keyClick(viewer.table, Qt.Key.Key_J)
    assert viewer.table.currentIndex().row() == 2
    qtbot.keyClick(viewer.table, Qt.Key.Key_K)
    assert viewer.table.currentIndex().row() == 1
    example = viewer.current_row()["example"]
    qtbot.keyClick(viewer.table, Qt.Key.Key_G)
    qtbot.keyClick(viewer.table, Qt.Key.Key_X)
    review = viewer.project.reviews()[example]
    assert review["golden"] and review["exclude"]
    review_column = [c[0] for c in COLUMNS].index("review")
    assert "excluded" in viewer.model.data(viewer.model.index(1, review_column))


def test_correcting_the_teacher_stores_a_review_kept_with_other_flags(viewer):
    viewer.table.selectRow(2)
    row = viewer.current_row()
    viewer.detail.golden_box.setChecked(True)
    wrong = (row["teacher_label"] + 1) % 3
    viewer.detail.correct_combo.setCurrentIndex(wrong)
    viewer.detail.correct_button.click()
    review = viewer.project.reviews()[row["example"]]
    assert review == {"corrected_label": wrong, "corrected_completion": None, "exclude": False, "golden": True, "note": None}
    assert viewer.model.row_at(2)["corrected_label"] == wrong
    viewer.detail.clear_button.click()
    assert row["example"] not in viewer.project.reviews()


def test_a_review_changes_the_next_runs_training_data(viewer):
    """Reviews saved by the viewer are what training reads: a corrected label replaces the
    teacher's soft label with a one-hot target and an excluded row is left out."""
    from kdstudio.core.store import Project
    from kdstudio.core.train.data import load_training_data

    with Project(viewer.project_path) as project:
        train_ids = [ex for ex, _t, _g in project.examples("train")]
        before = load_training_data(
            project, teacher_id=viewer.teacher_id, hard_labels=False, seed=0
        )
    corrected, excluded = train_ids[0], train_ids[1]
    viewer.save_review(
        corrected, {"corrected_label": 2, "corrected_completion": None, "exclude": False, "golden": False, "note": None}
    )
    viewer.save_review(
        excluded, {"corrected_label": None, "corrected_completion": None, "exclude": True, "golden": False, "note": None}
    )
    with Project(viewer.project_path) as project:
        after = load_training_data(project, teacher_id=viewer.teacher_id, hard_labels=False, seed=0)
    assert before.reviews_used == 0 and after.reviews_used == 2
    assert excluded not in after.train.ids + after.valid.ids
    assert corrected in after.train.ids
    i = after.train.ids.index(corrected)
    assert after.train.teacher[i].tolist() == [0.0, 0.0, 1.0]
    assert after.train.gold[i] == 2


def test_a_review_in_the_viewer_and_one_on_the_command_line_merge_in_either_order(viewer, capsys):
    """The viewer stores only what a person changed (merged by the store, as ``kdstudio review``
    does), so a review the command line made while the viewer was open is kept."""
    from kdstudio.cli import main

    def select(row: int) -> int:
        viewer.table.selectRow(row)
        return viewer.current_row()["example"]

    first = select(0)
    viewer.detail.golden_box.toggle()  # G in the viewer, then a corrected label on the command line
    assert main(["review", str(viewer.project_path), str(first), "--label", LABELS[2]]) == 0
    second = select(1)
    assert main(["review", str(viewer.project_path), str(second), "--label", LABELS[2]]) == 0
    select(0)
    select(1)  # the viewer's cached reviews do not have the command line's yet
    viewer.detail.golden_box.toggle()
    expected = {"corrected_label": 2, "corrected_completion": None, "exclude": False, "golden": True, "note": None}
    assert viewer.project.review(first) == viewer.project.review(second) == expected
    assert viewer.reviews[second] == expected and viewer.detail.review == expected
    assert "corrected to money" in viewer.detail.review_state.text()
    capsys.readouterr()


def test_export_selection_as_csv_and_filtered_rows_as_jsonl(viewer, qtbot, tmp_path):
    viewer.table.selectRow(0)
    viewer.table.selectionModel().select(
        viewer.model.index(1, 0),
        viewer.table.selectionModel().SelectionFlag.Select
        | viewer.table.selectionModel().SelectionFlag.Rows,
    )
    out = tmp_path / "sel.csv"
    assert viewer.export(out) == 2
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["example"]) for r in rows] == visible_examples(viewer)[:2]
    assert rows[0]["teacher_label"] in LABELS and f"student_p_{LABELS[0]}" in rows[0]

    viewer.filter_bar.disagreements.setChecked(True)
    viewer.table.clearSelection()
    worker = viewer.export(tmp_path / "all.jsonl")
    qtbot.waitUntil(lambda: worker.status is not None, timeout=5000)
    lines = [
        json.loads(x) for x in (tmp_path / "all.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(lines) == 10
    assert all(x["student_label"] != x["teacher_label"] for x in lines)
    assert set(lines[0]["teacher_probabilities"]) == set(LABELS)


def test_empty_project_shows_what_to_do(qtbot, tmp_path):
    project, _ = build_toy_project(tmp_path / "empty.kdproj")
    project.close()
    widget = ComparisonViewer(tmp_path / "empty.kdproj")
    qtbot.addWidget(widget)
    assert widget.stack.currentWidget() is widget.empty
    widget.close()


def test_a_filter_nothing_passes_shows_no_matches_and_clear_filters_brings_the_rows_back(viewer):
    bar = viewer.filter_bar
    bar.disagreements.setChecked(True)
    bar.search.setText("no example says this")
    bar.flush()
    assert viewer.model.total == 0
    assert viewer.table_stack.currentWidget() is viewer.no_matches
    assert viewer.no_matches.title.text() == "No matches"
    assert "40 examples" in viewer.no_matches.text.text()
    assert viewer.no_matches.action.isVisible() and viewer.no_matches.action.text() == "Clear filters"
    assert viewer.detail.row is None and not viewer.detail.correct_button.isEnabled()
    viewer.no_matches.action.click()
    assert viewer.model.total == 40 and viewer.table_stack.currentWidget() is viewer.table
    assert bar.search.text() == "" and not bar.disagreements.isChecked()
    assert bar.split.currentData() == ("test",)  # the split and the sort are not filters to clear


def test_the_correct_label_box_starts_on_the_gold_label_else_the_teachers(viewer):
    detail = viewer.detail
    row = dict(viewer.model.row_at(0), gold=2, teacher_label=1, student_label=0)
    detail.set_row(row, LABELS, None, None)
    assert detail.correct_combo.currentIndex() == 2  # gold
    detail.set_row(dict(row, gold=None), LABELS, None, None)
    assert detail.correct_combo.currentIndex() == 1  # no gold (training data): the teacher's
    detail.set_row(row, LABELS, {"corrected_label": 0}, None)
    assert detail.correct_combo.currentIndex() == 0  # a stored correction comes first
    assert LABELS[0] in detail.correct_combo.toolTip()


def test_margin_and_entropy_columns_show_when_sorted_by_or_asked_for(viewer):
    column = {key: i for i, (key, _t, _s) in enumerate(COLUMNS)}
    assert viewer.table.isColumnHidden(column["margin"]) and viewer.table.isColumnHidden(column["entropy"])
    bar = viewer.filter_bar
    bar.sort.setCurrentIndex(bar.sort.findData("margin"))
    assert not viewer.table.isColumnHidden(column["margin"])
    assert viewer.table.horizontalHeader().sortIndicatorSection() == column["margin"]
    bar.sort.setCurrentIndex(bar.sort.findData("kl"))
    assert viewer.table.isColumnHidden(column["margin"])
    viewer.show_column("entropy")
    assert not viewer.table.isColumnHidden(column["entropy"])
