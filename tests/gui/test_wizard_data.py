"""The wizard never makes a project that cannot train: it shows how each file is read and where every
row goes (the same counts the project gets), refuses a project with no training rows, asks before one without test
rows or a Claude teacher without a key, shows errors beside their field, and a scrolled page never
changes a combo box. An empty file is never written to."""

from __future__ import annotations

import random
import sqlite3

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from kdstudio.gui.student_picker import TEACHER_LAYERS
from kdstudio.gui.wizard import ProjectWizard

#: TREC's layout: ``COARSE:fine question``, Latin-1. Question stems that give the class away.
TREC_STEMS = {
    "DESC:def": "What is the meaning of {w} ?",
    "HUM:ind": "Who invented the {w} ?",
    "LOC:city": "Where is the {w} café ?",
    "NUM:date": "When was the {w} built ?",
    "ENTY:animal": "What animal lives near the {w} ?",
    "ABBR:exp": "What does {w} stand for ?",
}
WORDS = ["river", "telescope", "bridge", "piano", "harbour", "engine", "volcano", "lantern", "orchard", "compass"]


def write_trec(path, n: int, seed: int = 0):
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        label = list(TREC_STEMS)[i % len(TREC_STEMS)]
        lines.append(f"{label} {TREC_STEMS[label].format(w=rng.choice(WORDS))} #{seed}-{i}")
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return path


def split_counts(path):
    with sqlite3.connect(path) as conn:
        counts = dict.fromkeys(("train", "valid", "test", "unlabeled"), 0)
        counts.update(conn.execute("SELECT split, COUNT(*) FROM examples GROUP BY split"))
        return counts


@pytest.fixture
def wizard(qtbot, tmp_path):
    w = ProjectWizard()
    qtbot.addWidget(w)
    w.resize(1040, 760)
    w.asked = []
    w.ask = lambda message, _go_on: w.asked.append(message) or True
    page = w.data_page
    page.name.setText("trec")
    page.folder.setText(str(tmp_path / "projects"))
    return w


def add(wizard, qtbot, path):
    page = wizard.data_page
    page.add_file(str(path))
    qtbot.waitUntil(lambda: str(path.resolve()) in page.previews, timeout=10_000)
    qtbot.waitUntil(lambda: page.plan is not None or bool(page.plan_error), timeout=20_000)
    return page


def test_the_wizard_refuses_a_project_with_no_training_rows(wizard, qtbot, tmp_path):
    page = add(wizard, qtbot, write_trec(tmp_path / "TREC.test", 60))
    assert page.plan.splits["train"] == 0 and page.plan.splits["test"] == 60
    assert "No training rows" in page.error.text() and "TREC.test" in page.error.text()  # before Next, too
    wizard.show()
    wizard.next()
    assert wizard.index == 0
    assert page.error.isVisible() and "set the split to train" in page.error.text()

    page.split_box(tmp_path / "TREC.test").setCurrentText("train")
    qtbot.waitUntil(lambda: page.plan is not None, timeout=20_000)
    assert page.plan.splits["train"] > 0 and not page.error.isVisibleTo(page)
    wizard.next()
    assert wizard.index == 1
    assert wizard.asked and wizard.asked[0].startswith("No test rows")


def test_the_wizard_refuses_a_classification_project_with_no_labels(wizard, qtbot, tmp_path):
    page = add(wizard, qtbot, write_trec(tmp_path / "questions.train", 60))
    page.label_col.setCurrentIndex(page.label_col.findData(None))
    qtbot.waitUntil(lambda: page.plan is not None and page.plan.splits["unlabeled"] == 60, timeout=20_000)
    wizard.next()
    assert wizard.index == 0 and "No labels to learn from" in page.error.text()


def test_going_on_without_test_rows_is_asked_and_going_back_stays(wizard, qtbot, tmp_path):
    add(wizard, qtbot, write_trec(tmp_path / "TREC.train", 120))
    wizard.ask = lambda message, _go_on: wizard.asked.append(message) and False
    wizard.next()
    assert wizard.index == 0 and wizard.asked[-1].startswith("No test rows")
    assert wizard.data_page.warning.text().startswith("No test rows")


def test_the_split_summary_matches_the_project_made(wizard, qtbot, tmp_path):
    """The issue's case: the training file's split set to train by hand, the test file by its name;
    the summary promised 10% for validation and the project must have it."""
    train, test = write_trec(tmp_path / "TREC.train", 300), write_trec(tmp_path / "TREC.test", 60, seed=1)
    page = add(wizard, qtbot, train)
    page.split_box(train).setCurrentText("train")
    add(wizard, qtbot, test)
    plan = page.plan
    assert plan.splits == {"train": 270, "valid": 30, "test": 60, "unlabeled": 0}
    assert "270 train · 30 valid (10% of the training rows held out for validation" in page.summary.text()
    assert "60 test" in page.summary.text() and "6 labels" in page.summary.text()
    shown = {page.files.item(r, 0).text(): page.files.item(r, 2).text() for r in range(page.files.rowCount())}
    assert shown == {"TREC.train": "270 train · 30 valid", "TREC.test": "60 test"}
    wizard.show()
    for _ in range(3):
        wizard.next()
    assert wizard.index == 3 and not wizard.asked
    with qtbot.waitSignal(wizard.project_created, timeout=30_000) as made:
        wizard.next()
    assert split_counts(made.args[0]) == plan.splits
    with sqlite3.connect(made.args[0]) as conn:
        per_file = dict(conn.execute("SELECT source || ':' || split, COUNT(*) FROM examples GROUP BY 1"))
    assert per_file == {"TREC.train:train": 270, "TREC.train:valid": 30, "TREC.test:test": 60}


def test_an_invalid_field_shows_its_error_beside_it_and_the_page_scrolls_to_it(wizard, qtbot, tmp_path):
    add(wizard, qtbot, write_trec(tmp_path / "TREC.train", 120))
    wizard.show()
    for _ in range(3):
        wizard.next()
    form = wizard.settings_page.form
    scroll = wizard.pages.currentWidget()
    form.set_values({"hidden_mse": -1.0})  # under Advanced, below the fold
    assert scroll.verticalScrollBar().value() == 0
    wizard.next()
    assert wizard.index == 3
    error = form.field_errors["hidden_mse"]
    assert "--hidden-mse must be >= 0" in error.text()
    assert error.isVisible() and form.advanced.body.isVisible()
    assert error.parentWidget() is form.widgets["hidden_mse"].parentWidget()  # beside its field
    qtbot.waitUntil(lambda: scroll.verticalScrollBar().value() > 0, timeout=3000)

    def on_screen(widget):
        top = widget.mapTo(scroll.viewport(), QPoint(0, 0)).y()
        return top >= 0 and top + widget.height() <= scroll.viewport().height()

    qtbot.waitUntil(lambda: on_screen(error) and on_screen(form.widgets["hidden_mse"]), timeout=3000)
    assert wizard.focusWidget() is form.widgets["hidden_mse"]

    form.set_values({"hidden_mse": 0.0, "temperature": "warm"})  # a value that does not parse
    wizard.next()
    assert form.field_errors["temperature"].text() == "Temperature T: 'warm' is not a number"
    assert not form.field_errors["hidden_mse"].isVisible()
    qtbot.waitUntil(lambda: on_screen(form.field_errors["temperature"]), timeout=3000)


def test_the_data_page_shows_a_name_error_beside_the_name(wizard, qtbot, tmp_path):
    add(wizard, qtbot, write_trec(tmp_path / "TREC.train", 60))
    wizard.show()
    wizard.data_page.name.setText("")
    wizard.next()
    page = wizard.data_page
    assert wizard.index == 0 and page.name_error.isVisible() and page.name_error.text() == "Give the project a name."
    assert page.name.property("invalid") is True


def wheel(widget):
    """A wheel turn (one notch down) over ``widget``."""
    event = QWheelEvent(QPointF(5, 5), QPointF(widget.mapToGlobal(QPoint(5, 5))), QPoint(0, 0), QPoint(0, -120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_the_wheel_over_an_unfocused_combo_scrolls_the_page_and_leaves_the_combo(wizard, qtbot, tmp_path):
    train = write_trec(tmp_path / "questions.label", 60)
    page = add(wizard, qtbot, train)
    wizard.show()
    wizard.activateWindow()
    wizard.data_page.name.setFocus()
    qtbot.waitUntil(lambda: wizard.data_page.name.hasFocus(), timeout=2000)
    box = page.split_box(train)
    assert box.focusPolicy() == Qt.FocusPolicy.StrongFocus
    scroll = wizard.pages.currentWidget().verticalScrollBar()
    before = scroll.value()
    for _ in range(4):
        wheel(box)
    assert box.currentText().startswith("auto")
    assert scroll.maximum() == 0 or scroll.value() > before  # the page scrolled instead
    for other in (page.label_col, page.valid_percent, wizard.settings_page.form.widgets["schedule"]):
        value = other.currentIndex() if hasattr(other, "currentIndex") else other.value()
        wheel(other)
        assert value == (other.currentIndex() if hasattr(other, "currentIndex") else other.value())
    box.setFocus()
    qtbot.waitUntil(box.hasFocus, timeout=2000)
    wheel(box)
    assert box.currentText() == "train"  # a focused box still takes the wheel


def test_a_claude_teacher_without_a_key_is_asked_about_with_where_the_key_goes(wizard, qtbot, tmp_path):
    add(wizard, qtbot, write_trec(tmp_path / "TREC.train", 60))
    add(wizard, qtbot, write_trec(tmp_path / "TREC.test", 30, seed=1))
    wizard.show()
    wizard.next()
    wizard.teacher_page.set_kind("claude")
    wizard.ask = lambda message, _go_on: wizard.asked.append(message) and False
    wizard.next()
    assert wizard.index == 1
    assert "ANTHROPIC_API_KEY" in wizard.asked[-1] and "keyring" in wizard.asked[-1]
    assert "ANTHROPIC_API_KEY" in wizard.teacher_page.error.text()
    wizard.ask = lambda message, _go_on: True
    wizard.next()
    assert wizard.index == 2


def test_teacher_layers_are_offered_only_for_a_teacher_with_layers(wizard, qtbot):
    wizard.show()
    wizard.go_to(2)
    students = wizard.student_page
    wizard.teacher_page.set_kind("hf")
    assert students.cards[TEACHER_LAYERS].isVisibleTo(students)
    students.set_choice(TEACHER_LAYERS)
    wizard.teacher_page.set_kind("claude")
    assert not students.cards[TEACHER_LAYERS].isVisibleTo(students)
    assert students.choice != TEACHER_LAYERS and students.spec()
    students._build(students.task)  # the cards are rebuilt once the presets are measured
    qtbot.wait(50)  # a card added to a layout is shown by a queued call
    assert not students.cards[TEACHER_LAYERS].isVisibleTo(students)
    wizard.teacher_page.set_kind("embed")
    assert students.cards[TEACHER_LAYERS].isVisibleTo(students)


def test_an_empty_file_opened_as_a_project_is_refused_and_not_written_to(qtbot, tmp_path, monkeypatch):
    from kdstudio.gui.main_window import MainWindow

    empty = tmp_path / "empty.kdproj"
    empty.touch()
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    window = MainWindow()
    qtbot.addWidget(window)
    assert not window.open_project(empty)
    assert shown and "empty" in shown[0]
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.kdproj"]


def test_the_wizard_does_not_write_to_an_existing_empty_file(wizard, qtbot, tmp_path):
    folder = tmp_path / "projects"
    folder.mkdir()
    (folder / "trec.kdproj").touch()
    add(wizard, qtbot, write_trec(tmp_path / "TREC.train", 60))
    wizard.next()
    assert wizard.index == 0 and "already exists" in wizard.data_page.name_error.text()
    assert (folder / "trec.kdproj").stat().st_size == 0


def test_the_preview_says_how_each_file_is_read_and_splits_its_columns_so(wizard, qtbot, tmp_path):
    labels = ("billing", "shipping")
    semi = tmp_path / "tickets.csv"  # texts with commas: read at the commas, each row would split wrong
    semi.write_text("text;label\n" + "".join(f"order {i}, late again, please help;{labels[i % 2]}\n"
                                             for i in range(40)), encoding="utf-8")
    tabbed = tmp_path / "more_test.csv"
    tabbed.write_text("text\tlabel\n" + "".join(f"parcel {i}; lost, or stolen\t{labels[i % 2]}\n"
                                              for i in range(20)), encoding="utf-8")
    page = add(wizard, qtbot, semi)
    assert page.read_as.text() == "Read as CSV, semicolon-separated, UTF-8"
    assert page.preview.columnCount() == 2
    assert [page.preview.item(0, c).text() for c in range(2)] == ["order 0, late again, please help", "billing"]
    page = add(wizard, qtbot, tabbed)
    assert page.read_as.text() == "Read as CSV, tab-separated, UTF-8"
    assert page.preview.columnCount() == 2 and page.preview.rowCount() == 20
    assert [page.preview.item(0, c).text() for c in range(2)] == ["parcel 0; lost, or stolen", "billing"]
    page.files.selectRow(0)  # back to the first file: its own line
    assert page.read_as.text() == "Read as CSV, semicolon-separated, UTF-8"
    assert page.preview.item(0, 0).text() == "order 0, late again, please help"
    page.remove_file(str(semi.resolve()))
    page.remove_file(str(tabbed.resolve()))
    assert page.read_as.text() == "" and page.preview_title.text() == ""
