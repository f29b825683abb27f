"""The new-project wizard: filled end to end it creates the same project the CLI would; going
back and forth keeps what was entered; bad input shows inline."""

from __future__ import annotations

import sqlite3

from gui.conftest import write_csv
from kdstudio.cli import main as cli
from kdstudio.gui.wizard import ProjectWizard


def examples(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT text, label, split, source, line FROM examples ORDER BY id").fetchall()


def labels(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT id, name FROM labels ORDER BY id").fetchall()


def fill_data_page(wizard, qtbot, folder, data):
    """Name, folder and one file; waits until the page knows where its rows go. Questions the
    wizard asks (no test rows) are answered "go on" and kept in ``wizard.asked``."""
    wizard.asked = []
    wizard.ask = lambda message, _go_on: wizard.asked.append(message) or True
    page = wizard.data_page
    page.name.setText("support")
    page.folder.setText(str(folder))
    page.add_file(str(data))
    qtbot.waitUntil(lambda: str(data.resolve()) in page.previews, timeout=10_000)
    qtbot.waitUntil(lambda: page.plan is not None, timeout=20_000)
    return page


def test_the_filled_wizard_creates_the_project_the_cli_would(qtbot, tmp_path):
    data = write_csv(tmp_path / "tickets.csv", 120, header=("message", "category"))
    wizard = ProjectWizard()
    qtbot.addWidget(wizard)
    wizard.show()
    page = fill_data_page(wizard, qtbot, tmp_path / "gui", data)
    assert page.text_column() == "message" and page.label_column() == "category"
    assert page.preview.rowCount() == 20 and page.preview.columnCount() == 2
    assert "held out for validation" in page.summary.text()
    wizard.next()
    assert wizard.index == 1
    assert wizard.asked and wizard.asked[0].startswith("No test rows")
    wizard.teacher_page.set_kind("embed")
    wizard.next()
    wizard.student_page.set_choice("cnn")
    wizard.next()
    assert wizard.index == 3
    wizard.settings_page.form.set_values({"epochs": 4, "temperature": 2.0})
    with qtbot.waitSignal(wizard.project_created, timeout=30_000) as blocker:
        wizard.next()
    gui_path = tmp_path / "gui" / "support.kdproj"
    assert blocker.args == [str(gui_path)]

    cli_path = tmp_path / "cli.kdproj"
    assert cli(["new", str(cli_path), "--task", "classification"]) == 0
    assert cli(["import", str(cli_path), str(data), "--text-col", "message", "--label-col", "category"]) == 0
    assert examples(gui_path) == examples(cli_path)
    assert labels(gui_path) == labels(cli_path)

    from kdstudio.core.store import Project

    with Project(gui_path) as p:
        plan = p.settings()["plan"]
    assert plan["teacher"] == "embed:minilm" and plan["student"] == "cnn"
    assert plan["train"]["epochs"] == 4 and plan["train"]["temperature"] == 2.0


def test_going_back_and_forth_keeps_what_was_entered(qtbot, tmp_path):
    data = write_csv(tmp_path / "train.csv", 60)
    wizard = ProjectWizard()
    qtbot.addWidget(wizard)
    fill_data_page(wizard, qtbot, tmp_path, data)
    wizard.next()
    wizard.teacher_page.set_spec("hf:/models/my-classifier")
    wizard.next()
    wizard.student_page.set_spec("transformer-mini")
    wizard.next()
    wizard.settings_page.form.set_values({"alpha": 0.5})
    for _ in range(3):
        wizard.back()
    assert wizard.index == 0 and wizard.data_page.name.text() == "support"
    assert wizard.data_page.preview.rowCount() == 20
    for _ in range(3):
        wizard.next()
    assert wizard.index == 3
    plan = wizard.plan()
    assert plan["teacher"] == "hf:/models/my-classifier"
    assert plan["student"] == "transformer-mini"
    assert plan["train"]["alpha"] == 0.5


def test_a_bad_data_file_is_explained_inline_not_as_a_traceback(qtbot, tmp_path):
    bad = tmp_path / "broken.csv"
    bad.write_bytes(b"\x00\x01\x02 not a table \xff\xfe")
    wizard = ProjectWizard()
    qtbot.addWidget(wizard)
    page = wizard.data_page
    page.folder.setText(str(tmp_path))
    page.add_file(str(bad))
    qtbot.waitUntil(lambda: bool(page.error.text()), timeout=10_000)
    assert "Traceback" not in page.error.text()
    assert page.files.rowCount() == 0
    wizard.next()
    assert wizard.index == 0
    assert page.error.text() == "Add a data file: drop it above or press Browse."


def test_settings_errors_show_beside_the_form(qtbot, tmp_path):
    data = write_csv(tmp_path / "train.csv", 60)
    wizard = ProjectWizard()
    qtbot.addWidget(wizard)
    fill_data_page(wizard, qtbot, tmp_path, data)
    for _ in range(3):
        wizard.next()
    wizard.settings_page.form.set_values({"temperature": -1.0})
    wizard.next()
    assert wizard.index == 3
    form = wizard.settings_page.form
    assert "temperature" in form.field_errors["temperature"].text()
    assert form.field_errors["temperature"].isVisibleTo(form) and not form.error.isVisibleTo(form)
    assert form.widgets["temperature"].property("invalid") is True


def test_the_settings_fields_come_from_the_train_config(qtbot):
    from dataclasses import fields

    from kdstudio.core.train.config import TrainConfig

    wizard = ProjectWizard()
    qtbot.addWidget(wizard)
    form = wizard.settings_page.form
    expected = {f.name for f in fields(TrainConfig)} - {"student", "teacher"}
    assert set(form.widgets) == expected
    for f in fields(TrainConfig):
        if f.name in form.widgets:
            assert form.widgets[f.name].toolTip() == f.metadata["help"]
    assert not form.advanced.body.isVisibleTo(wizard)
