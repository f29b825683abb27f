"""Exporting a run's student from the Evaluate tab: the dialog runs the same job as ``kdstudio
export`` in a worker and shows the folder, the model file and its size and the ONNX parity check,
or the job's one-line error (offscreen, on a toy project with a one-epoch CNN)."""

from __future__ import annotations

import shutil

import pytest
from fakes.tiny_models import build_toy_project

from kdstudio.core.export import ExportResult
from kdstudio.gui.evaluate import EvaluationDashboard, ExportDialog
from kdstudio.gui.job_host import JobHost

FAST = {"epochs": 1, "batch_size": 16, "num_threads": 1}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A toy project with one trained, evaluated CNN run."""
    from kdstudio.core.evaluate import evaluate
    from kdstudio.core.events import run_to_end
    from kdstudio.core.train import TrainConfig, train

    path = tmp_path_factory.mktemp("export") / "toy.kdproj"
    build_toy_project(path)[0].close()
    run = run_to_end(train(path, TrainConfig(student="cnn", **FAST))).run
    run_to_end(evaluate(path, run, speed=False))
    return path, run


@pytest.fixture
def project(evaluated, tmp_path):
    """A private copy of the evaluated project (an export writes beside it by default)."""
    source, run = evaluated
    path = tmp_path / source.name
    shutil.copy(source, path)
    shutil.copytree(str(source) + ".runs", str(path) + ".runs")
    return path, run


def run_export(qtbot, dialog: ExportDialog) -> None:
    worker = dialog.start()
    assert worker is not None
    qtbot.waitUntil(lambda: worker.status is not None, timeout=120000)
    qtbot.waitUntil(lambda: not dialog.progress_row.isVisible(), timeout=5000)


def test_export_button_opens_the_dialog_and_an_onnx_export_shows_file_size_and_parity(qtbot, project, tmp_path):
    path, run = project
    dash = EvaluationDashboard(path, JobHost())
    qtbot.addWidget(dash)
    dash.resize(1280, 800)
    dash.show()
    qtbot.waitUntil(lambda: dash.data is not None and dash.stack.currentWidget() is dash.page, timeout=5000)
    dash.export_button.click()
    dialog = dash.export_dialog
    assert dialog is not None and dialog.isVisible() and dialog.run_id == run
    assert dialog.fmt == "onnx" and dialog.folder.text() == str(path.parent / f"toy-run{run}-onnx")
    dialog.format.setCurrentIndex(dialog.format.findData("hf"))
    assert dialog.folder.text().endswith(f"toy-run{run}-hf")  # a default folder follows the format
    dialog.format.setCurrentIndex(dialog.format.findData("onnx"))
    out = tmp_path / "student-onnx"
    dialog.folder.setText(str(out))
    with qtbot.waitSignal(dialog.exported, timeout=120000) as exported:
        dialog.export_button.click()
    qtbot.waitUntil(lambda: dialog.done_card.isVisible(), timeout=5000)
    result = exported.args[0]
    assert isinstance(result, ExportResult) and result is dialog.result and result.format == "onnx"
    assert (out / "model.onnx").is_file() and (out / "README.md").is_file()
    size_mb = (out / "model.onnx").stat().st_size / 1e6
    text = dialog.summary.text()
    assert str(out) in text and "model.onnx" in text and f"{size_mb:,.1f} MB" in text
    assert f"on {result.checked_examples:,} project texts" in dialog.parity.text()
    assert f"{result.max_abs_diff:.1e}" in dialog.parity.text()
    assert not dialog.error.isVisible() and dialog.export_button.isEnabled()


def test_a_failed_export_shows_the_jobs_one_line_error(qtbot, project, tmp_path):
    path, run = project
    dialog = ExportDialog(path, run, "cnn")
    qtbot.addWidget(dialog)
    dialog.show()
    hf = dialog.format.findData("hf")  # a CNN is not a transformers model: ONNX only
    assert not dialog.format.model().item(hf).isEnabled() and "ONNX only" in dialog.format_help.text()
    foreign = tmp_path / "not-empty"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    dialog.folder.setText(str(foreign))
    run_export(qtbot, dialog)
    assert dialog.worker.status == "failed" and dialog.result is None
    assert dialog.error.isVisible() and "the folder is not empty" in dialog.error.text()
    assert "\n" not in dialog.error.text() and not dialog.done_card.isVisible()
    assert dialog.export_button.isEnabled()
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]  # refused before anything was written


def test_the_int8_box_follows_the_format_and_the_finished_export_shows_its_size_and_agreement(qtbot, project, tmp_path):
    path, run = project
    dialog = ExportDialog(path, run, "cnn")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.fmt == "onnx" and dialog.int8.isEnabled() and not dialog.int8.isChecked()
    dialog.int8.setChecked(True)
    dialog.format.setCurrentIndex(dialog.format.findData("hf"))
    assert not dialog.int8.isEnabled() and not dialog.int8.isChecked() and not dialog.wants_int8
    dialog.format.setCurrentIndex(dialog.format.findData("onnx"))
    dialog.int8.setChecked(True)
    assert dialog.wants_int8
    out = tmp_path / "student-int8"
    dialog.folder.setText(str(out))
    with qtbot.waitSignal(dialog.exported, timeout=120000) as exported:
        dialog.export_button.click()
    qtbot.waitUntil(lambda: dialog.done_card.isVisible(), timeout=5000)
    result = exported.args[0]
    assert result.int8_bytes == (out / "model_int8.onnx").stat().st_size and result.int8_agreement >= 0.995
    text = dialog.int8_line.text()
    assert dialog.int8_line.isVisible() and text.startswith("int8: model_int8.onnx")
    assert f"top-1 agreement with float {result.int8_agreement:.2%} on {result.int8_checked_examples:,} test texts" in text
    assert "model.onnx" in dialog.summary.text() and dialog.int8.isEnabled()
