"""A failed job says why where the person is looking (the CLI's one line, until dismissed, with
the button that fixes it); a budget stop is not called a failure; the training panel's settings
stick with the project; runs are named; an early stop says why."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QTableWidget

from kdstudio.core.store import Project
from kdstudio.gui.failure_banner import FailureBanner, ended_words, failure_action
from kdstudio.gui.main_window import MainWindow


def cli_error(capsys, *argv: str) -> str:
    """What ``kdstudio ARGV`` prints after ``kdstudio: error:`` (the one line a person reads)."""
    from kdstudio.cli import main

    capsys.readouterr()
    assert main(list(argv)) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("kdstudio: error: ")]
    assert len(lines) == 1
    return lines[0].removeprefix("kdstudio: error: ")


def test_a_failed_training_shows_the_clis_reason_until_dismissed_and_its_button_opens_harvest(
        window, qtbot, capsys, project_path):
    expected = cli_error(capsys, "train", str(project_path), "--student", "cnn")
    assert expected.startswith("no teacher outputs in this project")
    view = window.project_view
    panel = view.training
    panel.config.update({"student": "cnn", "epochs": 1, "hard_labels": False})
    view.show_tab("training")
    ended: list[str] = []
    panel.run_finished.connect(ended.append)
    assert panel.start()
    qtbot.waitUntil(lambda: bool(ended), timeout=120_000)
    assert ended == ["failed"]
    banner = panel.failure
    assert banner.isVisible() and banner.reason.text() == expected
    assert banner.title.text() == "Training failed"
    assert panel.progress_text.text() == "Failed"
    qtbot.wait(50)
    assert banner.isVisible(), "it stays until dismissed"
    assert banner.action_button.isVisible() and banner.action_button.text() == "Harvest a teacher"
    banner.action_button.click()
    assert view.tabs.currentWidget() is view.harvest
    assert banner.isHidden()
    assert not window.statusBar().currentMessage().endswith("budget reached")


def test_dismiss_hides_the_banner_and_a_new_run_starts_without_it(qtbot):
    banner = FailureBanner()
    qtbot.addWidget(banner)
    banner.show_failure("something broke", "Training")
    assert not banner.isHidden() and banner.message == "something broke"
    assert banner.action_button.isHidden()  # no known fix, no button
    with qtbot.waitSignal(banner.dismissed):
        banner.dismiss_button.click()
    assert banner.isHidden() and banner.message == ""


@pytest.mark.parametrize(("message", "text", "target"), [
    ("no teacher outputs in this project: harvest a teacher first, or train with --hard-labels",
     "Harvest a teacher", "harvest"),
    ("teacher 2 has no outputs on train or unlabeled examples: harvest them first", "Harvest a teacher", "harvest"),
    ("no finished run in this project; train a student first (kdstudio train)", "Train a student", "training"),
    ("run #3 (cancelled) has no test predictions; a finished run with a test split has them",
     "Train a student", "training"),
    ("the project has no valid split, and a KD run never validates on gold training rows",
     "Import a validation file…", "import-valid"),
])
def test_known_failures_offer_the_action_that_fixes_them(message, text, target):
    action = failure_action(message)
    assert action is not None and (action.text, action.target) == (text, target)


def test_a_budget_stop_reads_budget_reached_not_failed(window, qtbot):
    message = "budget reached: $0.05 of $0.05 spent, 12 answers saved this run (next request)"
    assert ended_words("failed", message) == "stopped: budget reached"
    assert ended_words("failed", "boom") == "failed"

    class Ended:
        name, status = "Harvest", "failed"

    Ended.message = message
    window._job_ended(Ended(), "failed")
    shown = window.statusBar().currentMessage()
    assert shown == "Harvest stopped: budget reached" and "failed" not in shown
    banner = FailureBanner()
    qtbot.addWidget(banner)
    banner.show_failure(message, "The harvest")
    assert banner.title.text() == "Budget reached" and banner.property("kind") == "warning"


def test_training_settings_survive_closing_and_reopening_the_project(window, project_path):
    panel = window.project_view.training
    panel.set_config({**panel.config, "epochs": 7, "patience": 3, "name": "baseline"})
    assert "run name: baseline" in panel.settings_label.text()
    assert "7 epochs · patience 3" in panel.settings_label.text()
    window.close_project()
    assert window.open_project(project_path)
    panel = window.project_view.training
    assert (panel.config["epochs"], panel.config["patience"], panel.config["name"]) == (7, 3, "baseline")
    assert "run name: baseline" in panel.settings_label.text()


def test_runs_are_named_in_the_overview_and_the_run_list(qtbot, project_path):
    with Project(project_path) as project:
        project.create_run("cnn", None, {"student": "cnn"}, status="finished")
        project.create_run("cnn", None, {"student": "cnn", "hard_labels": True}, status="finished")
        project.create_run("cnn", None, {"student": "cnn"}, name="small vocab", status="failed")
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.open_project(project_path)
    view = w.project_view
    tables = [t for t in view.overview.content.findChildren(QTableWidget) if t.horizontalHeaderItem(0).text() == "Run"]
    assert len(tables) == 1
    names = [tables[0].item(r, 0).text() for r in range(tables[0].rowCount())]
    assert names == ["#3 small vocab", "#2 cnn hard labels", "#1 cnn KD"]
    runs = view.training.runs
    assert [runs.item(i).text().splitlines()[0] for i in range(runs.count())] == names
    view.close_project()


def test_an_early_stop_says_why_and_the_last_log_line_is_cleared_when_training_ends(window):
    from kdstudio.core.train import TrainResult

    panel = window.project_view.training
    reason = "stopped at epoch 15 of 40: validation loss did not improve for 3 evaluations (best at step 120)"
    fields = dict(run=1, best_step=120, steps=150, valid_accuracy=0.8125, valid_agreement=0.9, valid_kl=0.1,
                  seconds=3.0, student="cnn", params=10, device="cpu", examples_per_s=1.0, stopped_early=True,
                  stop_reason=reason, reviews_used=0, teacher_calibration=None, n_train=10, n_valid=5,
                  hard_labels=False, peak_memory_mb=None)

    class Done:
        result = TrainResult(**fields)
        message = ""

    panel.log_line.setText("predicting the test split with the best checkpoint")
    panel.worker = Done()
    panel._finished("finished")
    assert panel.progress_text.text() == "Done · valid accuracy 0.812 · stopped early"
    assert panel.log_line.text() == "S" + reason[1:]

    Done.result = TrainResult(**{**fields, "stopped_early": False, "stop_reason": None})
    panel.log_line.setText("predicting the test split with the best checkpoint")
    panel.worker = Done()
    panel._finished("finished")
    assert panel.progress_text.text() == "Done · valid accuracy 0.812"
    assert panel.log_line.text() == ""


def test_an_import_with_warnings_shows_the_clis_warning_lines_above_the_tabs(window, qtbot, capsys, tmp_path):
    """A text repeated with another label is kept with its first label and warned about: the window
    shows the lines ``kdstudio import`` prints as warnings, in a warning banner, not a failure."""
    from kdstudio.cli import main

    rows = ["text,label", "refund my card please,a", "where is my parcel,b", "refund my card please,b"]
    data = tmp_path / "conflicts.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    twin = tmp_path / "twin.kdproj"
    Project.create(twin, "classification").close()
    capsys.readouterr()
    assert main(["import", str(twin), str(data), "--split", "train"]) == 0
    printed = [line.removeprefix("warning: ") for line in capsys.readouterr().err.splitlines()
               if line.startswith("warning: ")]
    assert printed and "another label" in printed[0]

    view = window.project_view
    assert view.start_import(data, split="train")
    qtbot.waitUntil(lambda: view._import_worker is None, timeout=30_000)
    banner = view.failure
    assert banner.isVisible() and banner.property("kind") == "warning"
    assert banner.title.text() == "The import finished with 1 warning"
    assert banner.reason.text().splitlines() == printed
