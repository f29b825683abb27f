"""The screens of a generation project (offscreen): the comparison viewer (completions side by side
with a word diff, lowest score first, filters, search, a corrected completion saved as a review,
export), and the wizard, harvest, training, dashboard and welcome screens where they differ from
classification's."""

from __future__ import annotations

import csv
import dataclasses

import pytest
from fakes.generation_review_project import build_generation_project

from kdstudio.core.store import Project
from kdstudio.gui.compare import ComparisonViewer, GenerationComparisonViewer, comparison_viewer


@pytest.fixture
def generation(tmp_path):
    return build_generation_project(tmp_path, n=40)


@pytest.fixture
def viewer(qtbot, generation):
    path, run = generation
    widget = GenerationComparisonViewer(path)
    qtbot.addWidget(widget)
    widget.resize(1240, 720)
    widget.show()
    qtbot.waitUntil(lambda: widget.model is not None and widget.data.run == run, timeout=10000)
    yield widget
    widget.close()


def shown(viewer) -> list:
    return [viewer.model.row_at(i) for i in range(viewer.model.rowCount())]


def test_the_compare_tab_is_the_generation_viewer_for_a_generation_project(qtbot, generation, tmp_path):
    from fakes.tiny_models import make_compare_project

    with Project(generation[0]) as project:
        widget = comparison_viewer(generation[0], project)
        qtbot.addWidget(widget)
        assert isinstance(widget, GenerationComparisonViewer)
        widget.close()
    (tmp_path / "cls").mkdir()
    path, _run = make_compare_project(tmp_path / "cls")
    with Project(path) as project:
        widget = comparison_viewer(path, project)
        qtbot.addWidget(widget)
        assert isinstance(widget, ComparisonViewer)
        widget.close()


def test_the_viewer_opens_on_the_test_prompts_lowest_score_first(viewer):
    rows = shown(viewer)
    assert len(rows) == 10 and all(r.split == "test" for r in rows)
    assert [r.score for r in rows] == sorted(r.score for r in rows)
    model = viewer.model
    assert model.headerData(2, __import__("PySide6.QtCore").QtCore.Qt.Orientation.Horizontal) == "Score"
    assert model.data(model.index(0, 2)) == f"{rows[0].score:.2f}"
    assert model.data(model.index(0, 0)) == str(rows[0].example)
    assert "10 prompts" in viewer.count_label.text()
    assert viewer.detail.title.text() == f"Prompt #{rows[0].example}"


def test_split_search_score_and_worst_filters(viewer, qtbot):
    bar = viewer.filter_bar
    bar.split.setCurrentIndex(2)  # test + validation
    assert len(shown(viewer)) == 20
    bar.search.setText("station")
    bar.flush()
    rows = shown(viewer)
    assert rows and all("station" in r.student for r in rows)
    assert f"{len(rows)} of 20 prompts" in viewer.count_label.text()
    bar.search.setText("no prompt says this")
    bar.flush()
    assert viewer.table_stack.currentWidget() is viewer.no_matches
    viewer.no_matches.action.click()  # Clear filters
    assert len(shown(viewer)) == 20 and bar.search.text() == ""
    bar.score_low.setValue(0.9)
    bar.flush()
    assert shown(viewer) and all(r.score >= 0.9 for r in shown(viewer))
    bar.score_low.setValue(0.0)
    bar.worst.setValue(3)
    bar.flush()
    worst = shown(viewer)
    assert len(worst) == 3 and max(r.score for r in worst) < 0.5


def test_the_detail_pane_shows_a_word_diff_both_completions_every_reference_and_the_scores(viewer):
    row = viewer.current_row()
    detail = viewer.detail
    assert row.student != row.teacher
    diff = detail.diff.text()
    assert "line-through" in diff and "underline" in diff  # deletions and insertions are marked
    assert "station" in diff  # a word only the student wrote
    assert detail.teacher.text() == row.teacher and detail.student.text() == row.student
    assert detail.prompt.text() == row.prompt
    assert all(ref in detail.references.text() for ref in row.references)
    assert detail.references_fold.toggle.text().endswith("References (3)")
    assert "vs references" in detail.scores.text() and f"{row.teacher_scores['rouge_l']:.2f}" in detail.scores.text()


def test_a_corrected_completion_saved_in_the_viewer_lands_in_the_reviews(viewer, qtbot, generation):
    path, _run = generation
    row = viewer.current_row()
    detail = viewer.detail
    saved = []
    viewer.review_saved.connect(saved.append)
    detail.copy_button.click()
    assert detail.corrected.toPlainText() == row.teacher
    detail.corrected.setPlainText("Wildwood is a cheap Chinese place by the river.")
    detail.correct_button.click()
    detail.golden_box.setChecked(True)
    detail.note.setText("too short")
    detail.note.editingFinished.emit()
    assert saved == [row.example] * 3
    with Project(path) as project:
        assert project.corrected_completions() == {row.example: "Wildwood is a cheap Chinese place by the river."}
        review = project.review(row.example)
    assert review["golden"] and review["note"] == "too short"
    marks = viewer.model.data(viewer.model.index(0, 6))
    assert "✎" in marks and "★" in marks and "✉" in marks
    assert "completion corrected" in detail.review_state.text()
    viewer.filter_bar.review.setCurrentIndex(viewer.filter_bar.review.findData("corrected"))
    assert [r.example for r in shown(viewer)] == [row.example]
    detail.clear_button.click()
    with Project(path) as project:
        assert project.review(row.example) is None


def test_the_rows_shown_export_as_csv(viewer, tmp_path):
    viewer.filter_bar.worst.setValue(4)
    viewer.filter_bar.flush()
    assert viewer.export(tmp_path / "rows.csv") == 4
    with (tmp_path / "rows.csv").open(encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert [int(r["example"]) for r in table] == [r.example for r in shown(viewer)]
    assert {"prompt", "student_completion", "teacher_completion", "references", "rouge_l_teacher"} <= set(table[0])


# -- wizard, harvest, training, dashboard, welcome ---------------------------------------------------------


def write_e2e_csv(path, n: int = 40):
    from fakes.generation_review_project import describe, meaning

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["mr", "ref"])
        for i in range(n):
            prompt, slots = meaning(i)
            writer.writerow([prompt, describe(slots, i)])
    return path


def test_the_wizard_makes_a_generation_project_with_the_teachers_instructions(qtbot, tmp_path, monkeypatch):
    from kdstudio.core.teachers.claude import CLAUDE_TERMS_LINE
    from kdstudio.gui.wizard import ProjectWizard

    monkeypatch.setattr("kdstudio.core.secrets.get_api_key", lambda: "sk-test")
    data = write_e2e_csv(tmp_path / "e2e-train.csv")
    wizard = ProjectWizard()
    qtbot.addWidget(wizard)
    asked: list[str] = []  # the stand-in captures the list, not the wizard (that would be a cycle)
    wizard.ask = lambda message, _go_on: asked.append(message) or True
    wizard.show()
    page = wizard.data_page
    page.name.setText("e2e")
    page.folder.setText(str(tmp_path))
    page.set_task("generation")
    assert page.text_col_title.text() == "Prompt column"
    assert page.label_col_title.text() == "Reference completion column"
    page.add_file(str(data))
    qtbot.waitUntil(lambda: str(data.resolve()) in page.previews and page.plan is not None, timeout=10000)
    headers = [page.preview.horizontalHeaderItem(c).text() for c in range(page.preview.columnCount())]
    assert headers == ["mr → prompt", "ref → reference"]
    wizard.next()
    teacher = wizard.teacher_page
    assert [k for k, card in teacher.cards.items() if not card.isHidden()][:2] == ["claude", "lm"]
    assert teacher.kind == "claude" and teacher.terms.isVisibleTo(wizard) and teacher.terms.text() == CLAUDE_TERMS_LINE
    assert teacher.instructions_box.isVisibleTo(wizard) and teacher.claude.answer.isVisibleTo(wizard)
    teacher.instructions.setPlainText("Describe the restaurant in one sentence.")
    teacher.claude.answer.set_values(None, 96)
    teacher.set_kind("lm")
    assert not teacher.terms.isVisibleTo(wizard) and teacher.instructions_box.isVisibleTo(wizard)
    teacher.set_kind("claude")
    wizard.next()
    assert wizard.student_page.task == "generation" and "Pretrained language model" in \
        " ".join(w.text() for w in wizard.student_page.cards["pretrained"].findChildren(type(page.text_col_title)))
    wizard.student_page.pretrained_path.edit.setText("tiny-gpt")
    wizard.next()
    created = []
    wizard.project_created.connect(created.append)
    wizard.next()  # Create project
    qtbot.waitUntil(lambda: bool(created), timeout=20000)
    with Project(created[0]) as project:
        assert project.task == "generation"
        settings = project.settings()
        assert settings["instructions"] == "Describe the restaurant in one sentence."
        assert settings["plan"]["max_tokens"] == 96 and settings["plan"]["teacher"].startswith("claude:")
        assert project.references_of()  # the reference column became references


def test_the_harvest_panel_shows_a_generation_teachers_latest_completions_and_its_failures(qtbot, tmp_path):
    from kdstudio.core.store import TeacherOutput
    from kdstudio.gui.harvest_panel import HarvestPanel
    from kdstudio.gui.job_host import JobHost

    path, _run = build_generation_project(tmp_path, n=12, run=False)
    with Project(path) as project:
        teacher = project.teachers()[0]["id"]
        last = project.examples()[-1][0]
        project.save_outputs(teacher, [TeacherOutput(last, status="failed", error="cut off at max_tokens (64)")])
    project = Project(path)
    panel = HarvestPanel(path, JobHost(), project)
    qtbot.addWidget(panel)
    panel.refresh()
    shown = panel.recent.completions()
    assert len(shown) == 8 and all(text.startswith("In the ") for text in shown)  # completions, not labels
    failures = panel.failures_view.table
    assert failures.rowCount() == 1 and failures.item(0, 2).text() == "cut off at max_tokens (64)"
    panel.close()
    project.close()


def test_the_training_panel_plots_losses_and_perplexity_and_names_the_best_valid_loss(qtbot, generation):
    from kdstudio.core.events import Metric
    from kdstudio.gui.job_host import JobHost
    from kdstudio.gui.training_panel import TrainingPanel, done_score

    path, run = generation
    project = Project(path)
    panel = TrainingPanel(path, JobHost(), project)
    qtbot.addWidget(panel)
    cards = panel.view.cards
    assert cards["valid"].title.text() == "Validation perplexity" and cards["other"].title.text() == "Validation loss and next-token accuracy"
    panel.load_run(run)
    qtbot.waitUntil(lambda: run in panel.view.runs and "valid/perplexity" in panel.view.runs[run].series,
                    timeout=10000)
    for step, loss in ((10, 2.0), (20, 1.2), (30, 1.5)):
        panel.on_event(Metric("valid/perplexity", float(2.718 ** loss), step=step, run=99))
        panel.on_event(Metric("valid/loss", loss, step=step, run=99))
    assert panel.best_valid()["valid/loss"] == 1.2
    text = done_score(None, "generation", panel.best_valid())
    assert text.startswith(" · best valid loss 1.200") and "perplexity 3.32" in text
    from dataclasses import fields

    from kdstudio.core.train import TrainResult

    required = {f.name: None for f in fields(TrainResult) if f.default is dataclasses.MISSING}
    result = TrainResult(**{**required, "task": "generation", "test_rouge_l_references": 0.6512,
                            "test_rouge_l_teacher": 0.4})
    assert done_score(result, "generation", panel.best_valid()).endswith(
        " · test ROUGE-L 0.651 vs references, 0.400 vs teacher")
    panel.close()
    project.close()


def test_the_welcome_screen_offers_the_generation_sample(qtbot):
    from kdstudio.gui.welcome import WelcomeWidget

    widget = WelcomeWidget()
    qtbot.addWidget(widget)
    card = widget.generation_card
    assert card.isEnabled()
    widget.set_sample_busy(True, "building")
    assert not card.isEnabled()
    widget.set_sample_busy(False)
    assert card.isEnabled()


def test_the_dashboard_shows_a_generation_runs_cards(qtbot, tmp_path):
    report_module = pytest.importorskip("kdstudio.core.evaluate.generation_report")  # the evaluation's typed report
    from kdstudio.core.evaluate.dashboard import DashboardData, RunChoice
    from kdstudio.gui.evaluate import EvaluationDashboard

    path, run = build_generation_project(tmp_path, n=12)
    scores = {"n": 3, "rouge_l": 0.61, "chrf": 0.55, "bleu": 0.4, "exact": 0.25, "length_ratio": 0.93}
    report = report_module.GenerationReport.from_json({
        "run": run, "student": "gpt-tiny", "teacher": 1, "teacher_spec": "recorded:e2e", "n_test": 3,
        "student_vs_teacher": {**scores, "rouge_l": 0.72}, "student_vs_references": scores,
        "teacher_vs_references": {**scores, "rouge_l": 0.66}, "student_latency_ms_p50": 12.5,
        "teacher_latency_ms_p50": 420.0, "student_tokens_per_s": 950.0, "teacher_tokens_per_s": 33.0,
        "speedup": 33.6, "student_size_mb": 4.2, "student_params": 1_100_000, "device": "cpu"})
    data = DashboardData(run=run, runs=(RunChoice(run, "gpt-tiny", "gpt-tiny", True),), report=None, golden=None, points=(),
                         teacher_point=None, unevaluated=(), golden_floor=None, task="generation", generation=report,
                         quality_name=report.quality_name)
    widget = EvaluationDashboard(path)
    qtbot.addWidget(widget)
    widget.show()
    widget.show_data(data)
    cards = widget.generation_cards.cards
    assert widget.generation_cards.isVisible() and not widget.classification_cards.isVisible()
    assert cards["vs_teacher"].value.text() == "0.720" and "chrF 0.550" in cards["vs_teacher"].detail.text()
    assert cards["vs_references"].value.text() == "0.610" and "teacher 0.660" in cards["vs_references"].detail.text()
    assert "length ratio 0.93" in cards["exact"].detail.text()
    assert "teacher" in cards["latency"].detail.text() and "33.6× faster" in cards["latency"].detail.text()
    assert cards["tokens"].value.text() == "950/s" and cards["size"].value.text() == "4.2 MB"
    assert not widget.cascade.isVisible() and not widget.reliability.isVisible()
    widget.close()


def test_the_wizard_imports_recorded_completions_as_the_teacher(qtbot, tmp_path):
    pytest.importorskip("kdstudio.core.harvest.recorded")  # kdstudio import-completions
    import json

    from fakes.generation_review_project import describe, meaning

    from kdstudio.gui.wizard import ProjectWizard

    data = write_e2e_csv(tmp_path / "e2e-train.csv", 24)
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"prompt": meaning(i)[0], "completion": describe(meaning(i)[1], 2)}) + "\n"
                           for i in range(24)), encoding="utf-8")
    wizard = ProjectWizard()
    qtbot.addWidget(wizard)
    wizard.ask = lambda _message, _go_on: True  # no test rows: go on
    page = wizard.data_page
    page.name.setText("recorded")
    page.folder.setText(str(tmp_path))
    page.set_task("generation")
    page.add_file(str(data))
    qtbot.waitUntil(lambda: str(data.resolve()) in page.previews and page.plan is not None, timeout=10000)
    wizard.next()
    teacher = wizard.teacher_page
    teacher.set_kind("recorded")
    teacher.recorded_file.edit.setText(str(log))
    assert teacher.spec() == "recorded:log" and not teacher.instructions_box.isVisibleTo(wizard)
    wizard.next()
    wizard.student_page.pretrained_path.edit.setText("tiny-gpt")
    wizard.student_page.set_choice("pretrained")
    wizard.next()
    created = []
    wizard.project_created.connect(created.append)
    wizard.next()
    qtbot.waitUntil(lambda: bool(created), timeout=20000)
    with Project(created[0]) as project:
        teacher_id = next(t["id"] for t in project.teachers() if t["spec"] == "recorded:log")
        assert project.count_outputs(teacher_id)["n_ok"] == 24
