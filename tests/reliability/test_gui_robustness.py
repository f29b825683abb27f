"""GUI robustness, offscreen through pytest-qt: what a hurried or unlucky person does to the window.

Injected: quick start / cancel / start of a harvest (Claude through the loopback API, with latency)
and of training, several rounds, cancelled both before the job got going and mid-way; closing the
window mid-job, answering No and then Yes; reopening a project whose training run a killed process
left ``running`` (its liveness lock free); starting a second job while one runs.

Checked after each: the worker's thread ended (no thread left behind), the window is idle again and
the next start works, no run is left ``running``, ``teacher_outputs`` holds exactly one row per
example, ``PRAGMA integrity_check`` is ok, and what the person sees is one clear line.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
import torch  # noqa: F401 - up front: a first import inside a job leaves cycles that hold its worker and window
from fakes import anthropic_server
from gui.conftest import _gui_app, _no_qt_object_in_a_reference_cycle, make_project  # noqa: F401 - autouse
from PySide6.QtWidgets import QMessageBox, QTableWidget

from kdstudio.core.errors import Cancelled
from kdstudio.core.events import CancelToken, Progress
from kdstudio.core.store import INTERRUPTED, Project, is_interrupted
from kdstudio.core.store.live import hold_run, live_lock_path, run_is_live
from kdstudio.gui import worker as worker_module
from kdstudio.gui.main_window import MainWindow

fake_anthropic = anthropic_server.fake_anthropic  # the fixture: a started fake API per test
HAIKU = "claude:claude-haiku-5-5"
TRAIN = {"student": "bilstm", "epochs": 500, "batch_size": 16, "hard_labels": True, "seed": 0}
ROUNDS = 5


@pytest.fixture
def api(fake_anthropic, monkeypatch):
    """The app's Claude client pointed at the loopback API (each answer takes a little while)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
    fake_anthropic.latency_s = 0.03
    return fake_anthropic


@pytest.fixture
def answers(monkeypatch):
    """What QMessageBox.question answers (``answers.append(Yes)``) and what every box said."""
    class Answers(list):
        said: list[str]

    given = Answers()
    given.said = []

    def question(_parent, _title, text, *_a, **_k):
        given.said.append(text)
        return given.pop(0)

    def information(_parent, title, text, *_a, **_k):
        given.said.append(f"{title}: {text}")
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "question", question)
    monkeypatch.setattr(QMessageBox, "information", information)
    monkeypatch.setattr(QMessageBox, "warning", information)  # "Still stopping": seen, never a modal wait
    return given


def consistent(path) -> dict[str, int]:
    """The project file is whole; every example has at most one teacher output; no run is left
    ``running``. Returns the counts of runs by status and the number of outputs."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        doubled = conn.execute("SELECT teacher, example, COUNT(*) FROM teacher_outputs "
                               "GROUP BY teacher, example HAVING COUNT(*) > 1").fetchall()
        assert doubled == []
        statuses = dict(conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
        assert "running" not in statuses
        return {**statuses, "outputs": conn.execute("SELECT COUNT(*) FROM teacher_outputs").fetchone()[0]}
    finally:
        conn.close()


def ended_cleanly(worker) -> None:
    """The job's thread has ended and nothing of it is left running."""
    assert worker.status in ("finished", "cancelled"), worker.message
    assert worker._runner.isFinished()
    assert worker not in worker_module._ALIVE


def idle(window, panel) -> None:
    """The window and the panel show no running job and let the next one start."""
    assert window.jobs.current is None and not window.jobs.busy
    assert panel.worker is None
    assert panel.start_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert not window.cancel_action.isEnabled() and window.train_action.isEnabled()
    assert window.job_label.text() == ""


# -- (a) quick start / cancel / start ----------------------------------------------------------------
def test_a_harvest_started_and_cancelled_five_times_then_run_to_the_end_loses_nothing(window, qtbot, api,
                                                                                     project_path):
    panel = window.project_view.harvest
    panel.spec.setText(HAIKU)
    panel.concurrency.setValue(2)
    outputs = []
    for i in range(ROUNDS):
        assert panel.start(confirm_cost=False)
        worker = panel.worker
        if i % 2:  # mid-way: once some answers are in
            qtbot.waitUntil(lambda w=worker: (w.last_progress is not None and w.last_progress.done > 0)
                            or w.status is not None, timeout=30_000)
        panel.cancel()  # even-numbered rounds: at once, before the teacher answered
        qtbot.waitUntil(lambda w=worker: w.status is not None, timeout=30_000)
        ended_cleanly(worker)
        idle(window, panel)
        outputs.append(consistent(project_path)["outputs"])
    assert outputs == sorted(outputs), "a cancel never loses what was stored"
    ended = []
    panel.harvest_finished.connect(ended.append)
    assert panel.start(confirm_cost=False)
    qtbot.waitUntil(lambda: bool(ended), timeout=120_000)
    assert ended == ["finished"], window.statusBar().currentMessage()
    with Project(project_path) as p:
        harvested = sum(p.split_counts().values())
        counts = p.count_outputs(p.teachers()[0]["id"])
    assert counts["n_ok"] + counts["n_failed"] == harvested == consistent(project_path)["outputs"]
    asked = api.asked_texts()
    assert len(asked) - len(set(asked)) <= 2 * ROUNDS, "at most the requests in flight at a cancel are asked again"
    idle(window, panel)


def test_training_started_and_cancelled_three_times_then_the_next_run_finishes(window, qtbot, project_path):
    panel = window.project_view.training
    panel.config.update(TRAIN)
    for i in range(3):
        assert panel.start()
        worker = panel.worker
        if i % 2:  # mid-way: once the run has logged a metric
            qtbot.waitUntil(lambda w=worker: panel.live_run is not None or w.status is not None, timeout=120_000)
        panel.cancel()  # even-numbered rounds: at once, while the data and the student are prepared
        qtbot.waitUntil(lambda w=worker: w.status is not None, timeout=60_000)
        ended_cleanly(worker)
        assert worker.status == "cancelled"
        idle(window, panel)
        assert panel.progress_text.text() == "Cancelled · the best checkpoint so far is kept"
        consistent(project_path)
    ended = []
    panel.run_finished.connect(ended.append)
    assert panel.start({**TRAIN, "epochs": 1})
    qtbot.waitUntil(lambda: bool(ended), timeout=120_000)
    assert ended == ["finished"]
    statuses = consistent(project_path)
    assert statuses.get("finished") == 1 and statuses.get("cancelled", 0) <= 3
    idle(window, panel)


# -- (b) closing the window mid-job -------------------------------------------------------------------
def test_closing_the_window_mid_harvest_asks_and_no_keeps_it_yes_stops_it_cleanly(window, qtbot, api, answers,
                                                                                project_path):
    panel = window.project_view.harvest
    panel.spec.setText(HAIKU)
    panel.concurrency.setValue(2)
    assert panel.start(confirm_cost=False)
    worker = panel.worker
    qtbot.waitUntil(lambda: worker.last_progress is not None and worker.last_progress.done > 0, timeout=30_000)
    answers.append(QMessageBox.StandardButton.No)
    window.close()
    assert answers.said == ["Harvest is still running. Stop it and quit?\n\nEverything done so far is kept; "
                            "a harvest continues where it stopped next time."]
    assert window.isVisible() and worker.is_running and window.project_view is not None
    done = worker.last_progress.done
    qtbot.waitUntil(lambda: worker.last_progress.done > done or worker.status is not None, timeout=30_000)

    answers.append(QMessageBox.StandardButton.Yes)
    window.close()
    assert not window.isVisible()
    assert len(answers.said) == 2 and not answers  # asked once more, and nothing else was shown
    qtbot.waitUntil(lambda: worker.status is not None, timeout=10_000)
    ended_cleanly(worker)
    stored = consistent(project_path)["outputs"]
    with Project(project_path) as p:
        counts = p.count_outputs(p.teachers()[0]["id"])
    assert 0 < counts["n_ok"] + counts["n_failed"] == stored  # what was answered is kept, each once


def test_closing_the_window_mid_training_stops_the_run_cleanly_and_it_can_be_resumed(window, qtbot, answers,
                                                                                   project_path):
    from kdstudio.core.train import resumable_run, run_folder

    panel = window.project_view.training
    panel.config.update(TRAIN)
    assert panel.start()
    worker = panel.worker
    qtbot.waitUntil(lambda: panel.live_run is not None, timeout=120_000)
    answers.append(QMessageBox.StandardButton.No)
    window.close()
    assert window.isVisible() and worker.is_running
    with Project(project_path) as p:
        assert p.run(panel.live_run)["status"] == "running"
    answers.append(QMessageBox.StandardButton.Yes)
    window.close()
    assert not window.isVisible() and [s.split(".")[0] for s in answers.said] == ["Training is still running"] * 2
    qtbot.waitUntil(lambda: worker.status is not None, timeout=10_000)
    ended_cleanly(worker)
    assert worker.status == "cancelled"
    consistent(project_path)
    folder = run_folder(project_path, panel.live_run)
    with Project(project_path) as p:
        assert p.run(panel.live_run)["status"] == "cancelled"
        assert resumable_run(p) == panel.live_run  # its last checkpoint is whole
    assert not run_is_live(project_path, panel.live_run)
    assert sorted(f.name for f in folder.iterdir() if f.is_dir()) in (["best", "last"], ["last"])  # no half save


# -- (c) reopening after a kill ---------------------------------------------------------------------
def killed_mid_training(path) -> int:
    """Train a few steps, then leave the run as a killed process would: ``running`` in the project
    file, its last checkpoint on disk, its liveness lock file there but held by no one."""
    from kdstudio.core.train import TrainConfig, train

    token = CancelToken()
    steps = 0
    with pytest.raises(Cancelled):  # no ExceptionInfo kept: its frames would hold the test's window in a cycle
        for event in train(path, TrainConfig.from_dict({**TRAIN, "epochs": 2}), cancel=token):
            if isinstance(event, Progress) and event.stage == "train":
                steps += 1
                if steps == 4:
                    token.cancel()
    with Project(path) as p:
        run = p.latest_run(status=None)
        p.update_run(run, status="running", finished=None)
    live_lock_path(path, run).touch()
    return run


def test_a_run_left_running_by_a_killed_process_is_shown_interrupted_and_resume_finishes_it(qtbot, project_path):
    run = killed_mid_training(project_path)
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    assert w.open_project(project_path)
    panel = w.project_view.training
    try:
        assert w.project_view.interrupted_runs == [run]
        with Project(project_path) as p:
            assert is_interrupted(p.run(run)) and p.run(run)["status"] == "cancelled"
        assert panel.runs.item(0).text().split("\n")[1].startswith("interrupted · ")
        overview_status = [t.item(0, 2).text() for t in w.project_view.overview.findChildren(QTableWidget)
                           if t.columnCount() == 4 and t.horizontalHeaderItem(2).text() == "Status"]
        assert overview_status and set(overview_status) == {"interrupted"}  # the Overview says it the same way
        assert panel.resume_button.isVisibleTo(panel) and panel.resume_button.text() == f"Resume run #{run}"
        assert panel.log_line.text() == (f"Run #{run} was interrupted (the app stopped while it trained): "
                                         f"Resume continues run #{run} from its last checkpoint.")
        ended = []
        panel.run_finished.connect(ended.append)
        panel.resume_button.click()
        assert panel.progress_text.text() == f"Resuming run #{run} from its last checkpoint…"
        qtbot.waitUntil(lambda: bool(ended), timeout=120_000)
        assert ended == ["finished"]
        with Project(project_path) as p:
            assert [r["id"] for r in p.runs()] == [run]  # the same run continued, no new one
            assert p.run(run)["status"] == "finished" and p.run(run)["error"] is None
        assert panel.resume_button.isHidden()
        assert not run_is_live(project_path, run)  # the finished run let go of its lock
        consistent(project_path)
    finally:
        w.jobs.stop(timeout_s=10)
        w.project_view.close_project()


def test_only_runs_no_process_holds_are_marked_interrupted_and_the_cli_marks_them_too(project_path, capsys):
    from kdstudio.cli import main

    with Project(project_path) as p:
        mine, other, dead = (p.create_run("bilstm", None, {"student": "bilstm"}) for _ in range(3))
    held = hold_run(project_path, mine)  # trained in this process
    code = ("import sys, time; from kdstudio.core.store.live import hold_run; h = hold_run(sys.argv[1], int(sys.argv[2]));"
            " print('held', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(project_path), str(other)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "held"  # trained in another process
        live_lock_path(project_path, dead).parent.mkdir(parents=True, exist_ok=True)
        assert main(["info", str(project_path)]) == 0
        assert (f"run       #{dead} bilstm: cancelled (interrupted; continue it with --resume {dead})"
                in capsys.readouterr().out)
        with Project(project_path) as p:
            assert [p.run(r)["status"] for r in (mine, other, dead)] == ["running", "running", "cancelled"]
            assert p.run(dead)["error"] == INTERRUPTED
    finally:
        child.kill()
        child.wait()
        held.release()
    with Project(project_path) as p:  # both holders gone: both interrupted now
        assert p.mark_interrupted_runs() == [mine, other]


# -- (d) a second job while one runs ------------------------------------------------------------------
def test_a_second_job_started_while_one_runs_is_refused_with_one_line_and_the_first_goes_on(window, qtbot, answers,
                                                                                           project_path):
    training, harvest = window.project_view.training, window.project_view.harvest
    training.config.update(TRAIN)
    assert training.start()
    worker = training.worker
    qtbot.waitUntil(lambda: training.live_run is not None, timeout=120_000)
    assert not window.harvest_action.isEnabled() and not window.train_action.isEnabled()
    refused = "A job is running: Training is still running. Wait for it to finish or cancel it first."
    harvest.spec.setText("hf:/no/such/teacher")
    assert not harvest.start()
    assert answers.said == [refused]
    harvest.spec.setText(HAIKU)  # Claude: the cost estimate comes first, and is refused the same way
    assert not harvest.start()
    assert answers.said == [refused] * 2
    assert harvest.worker is None and harvest.start_button.isEnabled() and harvest.progress_text.text() == ""
    assert window.jobs.current is worker and worker.is_running and not worker.paused
    step = worker.last_progress.done
    qtbot.waitUntil(lambda: worker.last_progress.done > step, timeout=60_000)  # the first job goes on
    assert not training.start() and answers.said == [refused] * 3  # the same panel twice: refused the same way
    training.cancel()
    qtbot.waitUntil(lambda: worker.status is not None, timeout=60_000)
    ended_cleanly(worker)
    consistent(project_path)
