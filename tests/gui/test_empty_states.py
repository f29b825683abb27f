"""A new user's first steps: the welcome screen's three steps, and every empty state of an open
project (no data, no teacher answers, no run, no evaluation, no reviews) saying what to do next
and offering the button that does it. Each state is built from a real project and each button is
clicked; the tests check what the person then sees (the tab shown, the job's result)."""

from __future__ import annotations

import pytest
from fakes.tiny_models import build_toy_project, save_tiny_bert
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QDialog, QFileDialog

from gui.conftest import LABELS as SHOP_LABELS
from gui.conftest import make_project, write_csv
from kdstudio.gui.job_host import JobHost
from kdstudio.gui.main_window import MainWindow
from kdstudio.gui.project_view import ProjectView
from kdstudio.gui.welcome import STEPS

FAST = {"student": "cnn", "epochs": 1, "batch_size": 16, "num_threads": 1}


@pytest.fixture
def open_view(qtbot):
    """Open a project's screen at the default window size (closed again after the test)."""
    views: list[ProjectView] = []

    def open_(path) -> ProjectView:
        view = ProjectView(path, JobHost())
        qtbot.addWidget(view)
        view.resize(1280, 800)
        view.show()
        qtbot.waitExposed(view)
        qtbot.waitUntil(lambda: view.evaluate.data is not None, timeout=5000)
        views.append(view)
        return view

    yield open_
    for view in views:
        view.jobs.stop(timeout_s=5)
        view.close_project()


def empty_project(tmp_path):
    from kdstudio.core.store import Project

    path = tmp_path / "empty.kdproj"
    Project.create(path, "classification").close()
    return path


def current(view: ProjectView) -> str:
    return ("overview", "harvest", "training", "evaluate", "compare")[view.tabs.currentIndex()]


def shop_teacher(tmp_path):
    """A tiny local classifier over the shop project's labels (a teacher that needs no download)."""
    from transformers import AutoConfig

    folder = save_tiny_bert(tmp_path / "teacher", n_labels=len(SHOP_LABELS))
    config = AutoConfig.from_pretrained(folder)
    config.id2label = dict(enumerate(SHOP_LABELS))
    config.label2id = {v: k for k, v in config.id2label.items()}
    config.save_pretrained(folder)
    return folder


# -- the welcome screen --------------------------------------------------------------------------


def test_welcome_screen_says_the_three_steps_one_line_each_above_visible_cards(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    welcome = window.welcome
    lines = welcome.steps.lines
    assert [line.text().split("</b>")[0].removeprefix("<b>") for line in lines] == [
        "Harvest", "Train", "Compare &amp; export"]
    assert "MiniLM" in lines[0].text() and "Claude" in lines[0].text()
    assert "ONNX" in lines[2].text() and "Hugging Face" in lines[2].text()
    for line in lines:  # one line each at the default size
        assert line.height() < 2 * line.fontMetrics().lineSpacing(), line.text()
    steps_bottom = welcome.steps.mapTo(window, QPoint(0, welcome.steps.height())).y()
    for card in (welcome.new_card, welcome.open_card, welcome.sample_card):
        top = card.mapTo(window, QPoint(0, 0)).y()
        bottom = card.mapTo(window, QPoint(0, card.height())).y()
        assert card.isVisible() and steps_bottom <= top and bottom < window.statusBar().y()
    assert len(STEPS) == 3


# -- no data -------------------------------------------------------------------------------------


def test_a_project_without_data_offers_import_and_the_import_fills_it(open_view, qtbot, tmp_path, monkeypatch):
    view = open_view(empty_project(tmp_path))
    harvest, overview = view.harvest, view.overview
    assert harvest.failures_stack.currentWidget() is harvest.first_step
    assert harvest.first_step.title.text() == "No data in this project yet"
    assert harvest.first_step.action.text() == "Import data…" and harvest.first_step.action.isVisibleTo(view)
    assert not harvest.failures_title.isVisibleTo(view)
    assert overview.empty_states["data"].action.text() == "Import data…"

    asked: list[str] = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (asked.append(a[1]), ("", ""))[1])
    overview.empty_states["data"].action.click()  # the overview's button asks for a file (cancelled)
    assert asked == ["Import data"] and view.jobs.current is None

    data = write_csv(tmp_path / "tickets.csv", 60)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(data), ""))
    with qtbot.waitSignal(view.jobs.job_ended, timeout=30000) as ended:
        harvest.first_step.action.click()
    assert ended.args[1] == "finished"
    assert view.project.info()["n_examples"] == 60
    assert "data" not in view.overview.empty_states
    # the next step now: the teacher has not answered yet
    assert harvest.failures_stack.currentWidget() is harvest.first_step
    assert harvest.first_step.title.text() == "No teacher answers yet"
    assert harvest.first_step.action.text() == "Start harvest"


# -- no teacher answers --------------------------------------------------------------------------


def test_without_teacher_answers_training_leads_to_the_harvest_which_clears_it(open_view, qtbot, tmp_path):
    view = open_view(make_project(tmp_path))
    training, harvest, overview = view.training, view.harvest, view.overview
    assert current(view) == "harvest"  # a project nothing answered yet opens on the harvest

    view.show_tab("overview")
    assert overview.empty_states["teacher"].title.text() == "No teacher answers yet"
    overview.empty_states["teacher"].action.click()
    assert current(view) == "harvest"

    view.show_tab("training")
    assert training.stack.currentWidget() is training.empty
    assert training.empty.title.text() == "No teacher answers yet"
    assert training.empty.action.text() == "Harvest a teacher"
    training.empty.action.click()
    assert current(view) == "harvest"

    assert harvest.failures_stack.currentWidget() is harvest.first_step
    assert harvest.first_step.action.text() == "Start harvest"
    harvest.spec.setText(f"hf:{shop_teacher(tmp_path)}")
    assert "hf:" in harvest.first_step.text.text()  # it names the teacher it will ask
    ended: list[str] = []  # (not qtbot.waitSignal: its blocker's timer and loop stay in a reference cycle)
    harvest.harvest_finished.connect(ended.append)
    harvest.first_step.action.click()
    assert harvest.failures_stack.currentWidget() is not harvest.first_step  # answers are coming
    qtbot.waitUntil(lambda: bool(ended), timeout=120000)
    assert ended == ["finished"]
    assert harvest.done_tile.value.text() == "90"
    assert harvest.failures_stack.currentWidget() is harvest.no_failures and harvest.failures_title.isVisibleTo(view)
    # the project view refreshed the other tabs: the next step is training
    assert training.empty.title.text() == "No training runs yet"
    assert training.empty.action.text() == "Start training"
    view.show_tab("overview")
    assert "teacher" not in overview.empty_states and "run" in overview.empty_states


def test_harvest_panel_names_a_teacher_that_has_not_answered_and_asks_for_one_when_none(
        open_view, tmp_path, monkeypatch):
    from kdstudio.gui import harvest_panel

    project, _ = build_toy_project(tmp_path / "toy.kdproj")
    project.close()
    view = open_view(tmp_path / "toy.kdproj")
    harvest = view.harvest
    assert harvest.spec.text() == "fake:teacher"
    assert harvest.failures_stack.currentWidget() is harvest.no_failures
    harvest.spec.setText("embed:minilm")
    assert harvest.failures_stack.currentWidget() is harvest.first_step
    assert harvest.first_step.title.text() == "No answers from this teacher yet"
    assert "embed:minilm" in harvest.first_step.text.text()

    harvest.spec.setText("")
    assert harvest.first_step.action.text() == "Choose a teacher…"

    def choose(dialog):
        dialog.picker.set_spec("embed:minilm")
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(harvest_panel.TeacherDialog, "exec", choose)
    harvest.first_step.action.click()
    assert harvest.spec.text() == "embed:minilm"
    assert harvest.first_step.action.text() == "Start harvest"


# -- no run, no evaluation, no reviews -----------------------------------------------------------


def test_without_a_run_evaluate_compare_and_overview_lead_to_training(open_view, tmp_path):
    project, _ = build_toy_project(tmp_path / "toy.kdproj")
    project.close()
    view = open_view(tmp_path / "toy.kdproj")
    assert view.training.empty.title.text() == "No training runs yet"
    for panel in (view.evaluate, view.compare):
        view.show_tab("overview")
        assert panel.stack.currentWidget() is panel.empty
        assert panel.empty.action.text() == "Train a student" and panel.empty.action.isVisibleTo(panel)
        panel.empty.action.click()
        assert current(view) == "training"
    assert view.evaluate.empty.title.text() == "No finished run yet"
    view.show_tab("overview")
    view.overview.empty_states["run"].action.click()
    assert current(view) == "training"


def test_from_the_first_run_to_the_first_review_each_empty_state_gives_way(open_view, qtbot, tmp_path):
    from kdstudio.core.store import Project

    project, _ = build_toy_project(tmp_path / "toy.kdproj", sizes={"train": 36, "unlabeled": 12, "valid": 12,
                                                                    "test": 30})
    project.close()
    view = open_view(tmp_path / "toy.kdproj")
    training, evaluate, compare, overview = view.training, view.evaluate, view.compare, view.overview
    view.show_tab("training")
    training.config.update(FAST)

    # no run yet: the training panel's button starts one
    with qtbot.waitSignal(training.run_finished, timeout=120000) as done:
        training.empty.action.click()
        assert training.stack.currentWidget() is training.view
    assert done.args == ["finished"]
    run = view.project.latest_run()
    assert run is not None and training.runs.count() == 1

    # no evaluation yet: the dashboard offers to evaluate that run
    qtbot.waitUntil(lambda: evaluate.data is not None and evaluate.data.run == run, timeout=5000)
    assert evaluate.stack.currentWidget() is evaluate.empty
    assert evaluate.empty.title.text() == f"Run #{run} is not evaluated yet"
    assert evaluate.empty.action.text() == f"Evaluate run #{run}"
    view.show_tab("evaluate")
    with qtbot.waitSignal(evaluate.evaluated, timeout=120000):
        evaluate.empty.action.click()
    qtbot.waitUntil(lambda: evaluate.stack.currentWidget() is evaluate.page, timeout=10000)
    with Project(view.path) as p:
        assert p.evaluation(run) is not None
    qtbot.waitUntil(lambda: compare.model is not None and compare.model.run_id == run, timeout=10000)
    assert compare.stack.currentWidget() is compare.page

    # no reviews yet: the golden-set card and the overview say how, and open the Compare tab
    golden = evaluate.golden
    assert golden.compare_button.isVisibleTo(view) and "press G" in golden.state.text()
    golden.compare_button.click()
    assert current(view) == "compare"
    view.show_tab("overview")
    assert "Teacher is wrong" in overview.empty_states["review"].text.text()
    overview.empty_states["review"].action.click()
    assert current(view) == "compare"

    compare.table.selectRow(0)
    example = compare.current_row()["example"]
    with qtbot.waitSignal(compare.review_saved):
        compare.detail.golden_box.toggle()  # what G does
    with qtbot.waitSignal(compare.review_saved):
        compare.detail.exclude_box.toggle()  # what X does
    qtbot.waitUntil(lambda: evaluate.data.golden is not None and evaluate.data.golden.n_golden == 1, timeout=5000)
    assert not golden.compare_button.isVisibleTo(view)
    view.show_tab("overview")
    assert "review" not in overview.empty_states
    assert overview.reviews_summary.text() == "0 corrected · 1 left out of training · 1 golden"
    with Project(view.path) as p:
        assert p.reviews()[example]["golden"] and p.reviews()[example]["exclude"]
