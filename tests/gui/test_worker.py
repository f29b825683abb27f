"""The worker helper: events arrive on the Qt thread, errors become readable messages, and
pause, resume and cancel work through the job's CancelToken."""

from __future__ import annotations

import threading
import time

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
