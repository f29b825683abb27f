"""The worker helper: events arrive on the Qt thread, errors become readable messages, pause,
resume and cancel work through the job's CancelToken, and a worker forms no reference cycle."""

from __future__ import annotations

import io
import threading
import time
import weakref

import pytest
from PySide6.QtCore import QTimer

from kdstudio.core.errors import DataError
from kdstudio.core.events import Finished, Log, Metric, Progress
from kdstudio.gui.worker import Worker, readable_error


def counting_job(n: int, *, delay: float = 0.0, cancel=None):
    for i in range(n):
        cancel.check()
        if delay:
            time.sleep(delay)
        yield Progress("count", i + 1, n)
    yield Finished({"n": n})


def test_events_arrive_on_the_qt_thread_in_order(qtbot):
    seen: list[object] = []
    threads: set[int] = set()
    worker = Worker(counting_job, 50, name="Count")
    worker.yielded.connect(lambda e: (seen.append(e), threads.add(threading.get_ident())))
    with qtbot.waitSignal(worker.finished, timeout=5000) as blocker:
        worker.start()
    assert blocker.args == ["finished"]
    assert [e.done for e in seen if isinstance(e, Progress)] == list(range(1, 51))
    assert worker.result == {"n": 50}
    assert threads == {threading.get_ident()}


def test_a_user_error_becomes_one_readable_line(qtbot):
    def bad(cancel=None):
        yield Log("reading")
        raise DataError("column 'text' is empty", file="data.csv", line=17)

    worker = Worker(bad)
    with qtbot.waitSignal(worker.errored, timeout=5000) as blocker:
        worker.start()
    message, details = blocker.args
    assert message == "data.csv: line 17: column 'text' is empty"
    assert details == ""
    qtbot.waitUntil(lambda: worker.status == "failed")


def test_an_unexpected_exception_is_reported_not_a_dead_thread(qtbot):
    def broken(cancel=None):
        yield Log("starting")
        raise ZeroDivisionError("division by zero")

    worker = Worker(broken)
    with qtbot.waitSignal(worker.errored, timeout=5000) as blocker:
        worker.start()
    message, details = blocker.args
    assert message == "Unexpected error (ZeroDivisionError): division by zero"
    assert "Traceback" in details
    assert not worker._runner.isRunning() or worker._runner.wait(2000)


def test_readable_error_names_out_of_memory():
    try:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    except RuntimeError as exc:
        message, _ = readable_error(exc)
    assert "ran out of memory" in message


def test_cancel_stops_within_two_seconds_and_runs_the_stop_hook(qtbot):
    stopped: list[str] = []
    worker = Worker(counting_job, 10_000, delay=0.01, on_stop=lambda status, msg: stopped.append(status))
    worker.start()
    qtbot.waitUntil(lambda: worker.last_progress is not None and worker.last_progress.done > 3, timeout=5000)
    t0 = time.monotonic()
    with qtbot.waitSignal(worker.finished, timeout=3000) as blocker:
        worker.cancel()
    assert time.monotonic() - t0 < 2.0
    assert blocker.args == ["cancelled"]
    assert stopped == ["cancelled"]


def test_cancel_stops_a_job_that_never_checks_the_token(qtbot):
    closed = threading.Event()

    def careless(cancel=None):
        try:
            for i in range(10**9):
                time.sleep(0.005)
                yield Metric("train/loss", 1.0, i)
        finally:
            closed.set()

    worker = Worker(careless)
    worker.start()
    qtbot.wait(100)
    with qtbot.waitSignal(worker.finished, timeout=3000):
        worker.cancel()
    assert closed.is_set(), "the generator's cleanup ran in the worker's stop path"


def test_pause_holds_the_job_and_resume_continues(qtbot):
    worker = Worker(counting_job, 400, delay=0.005)
    worker.start()
    qtbot.waitUntil(lambda: worker.last_progress is not None, timeout=5000)
    with qtbot.waitSignal(worker.paused_changed, timeout=1000):
        worker.pause()
    qtbot.wait(200)
    held = worker.last_progress.done
    qtbot.wait(300)
    assert worker.last_progress.done - held <= 2
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        worker.resume()
    assert worker.status == "finished"


def test_a_flood_of_events_is_delivered_in_bounded_slices(qtbot):
    def flood(cancel=None):
        for i in range(60_000):
            yield Metric("train/loss", 1.0 / (i + 1), i)
        yield Finished({})

    count = [0]
    worker = Worker(flood)
    worker.yielded.connect(lambda e: count.__setitem__(0, count[0] + 1))
    with qtbot.waitSignal(worker.finished, timeout=20_000):
        worker.start()
    assert count[0] == 60_001


def test_a_finished_worker_is_freed_without_the_cycle_collector(qtbot):
    def job(cancel=None):
        yield Finished({})

    worker = Worker(job)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    alive, runner_alive = weakref.ref(worker), weakref.ref(worker._runner)
    del worker
    assert alive() is None and runner_alive() is None


def test_a_finished_worker_lets_go_of_a_slot_that_refers_to_it(qtbot):
    ended = []
    worker = Worker(counting_job, 3)
    worker.finished.connect(lambda status, w=worker: ended.append((w.name, status)))
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert ended == [("Job", "finished")]
    alive = weakref.ref(worker)
    del worker
    assert alive() is None


def test_a_worker_does_not_keep_the_widget_it_reports_to(qtbot):
    from PySide6.QtWidgets import QWidget

    widget = QWidget()
    widget.worker = Worker(counting_job, 3, parent=widget)  # a widget keeps its worker: no cycle back
    with qtbot.waitSignal(widget.worker.finished, timeout=5000):
        widget.worker.start()
    assert widget.worker.owner is widget
    gone = weakref.ref(widget)
    del widget
    assert gone() is None


def test_a_qt_object_left_in_a_reference_cycle_is_found_and_named():
    """The check every GUI test ends with (``_no_qt_object_in_a_reference_cycle``) finds what it
    looks for."""
    from gui.conftest import qt_objects_in_reference_cycles

    class Holder:
        pass

    holder = Holder()
    holder.me, holder.timer = holder, QTimer()
    del holder
    assert qt_objects_in_reference_cycles() == ["PySide6.QtCore.QTimer"]
    assert qt_objects_in_reference_cycles() == []


def test_starting_a_worker_ends_tqdms_monitor_thread(qtbot):
    tqdm = pytest.importorskip("tqdm")
    tqdm.tqdm.monitor_interval = 10  # the default, as a library's first bar leaves it
    bar = tqdm.tqdm(total=2, file=io.StringIO())
    try:
        monitor = tqdm.tqdm.monitor
        assert monitor is not None and monitor.is_alive()

        def job(cancel=None):
            yield Finished({})

        worker = Worker(job)
        with qtbot.waitSignal(worker.finished, timeout=5000):
            worker.start()
        assert tqdm.tqdm.monitor is None and not monitor.is_alive()
        assert tqdm.tqdm.monitor_interval == 0
    finally:
        bar.close()
