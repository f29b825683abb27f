"""The one worker helper: run a ``kdstudio.core`` job generator in a QThread.

In the spirit of superqt's ``thread_worker``: the generator runs in its own QThread and the
Qt thread receives its events as ``yielded(event)`` signals, then ``finished(status)`` with
``"finished"``, ``"cancelled"`` or ``"failed"``. Failures also emit ``errored(message, details)``
with a one-line message a person can read (the traceback, when there is one, is in ``details``).

Events travel through a queue that a timer on the Qt thread drains a few dozen times a second,
a bounded slice at a time, so a job that yields thousands of metrics a second cannot flood the
event loop. Pause, resume and cancel go through the job's :class:`CancelToken`; the worker also
checks the token between events, so even a job that never checks stops at its next yield.

Usage::

    worker = Worker(train, project_path, config, name="Training")
    worker.yielded.connect(panel.on_event)
    worker.start()
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import sys
import threading
import time
import traceback
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal

from kdstudio.core.errors import Cancelled, KDStudioError
from kdstudio.core.events import CancelToken, Finished, JobResult, Progress

#: How often the Qt thread picks up events, and the most time one pick-up may take.
POLL_MS = 30
SLICE_S = 0.012
#: The Qt thread ticks a heartbeat this often; when it is late by more than ``STARVED_S`` the
#: worker waits (up to ``BACK_OFF_S`` per event) so the Qt thread gets the interpreter and a core.
BEAT_MS = 10
#: How much lower the scheduling priority of a CPU-heavy job's thread is (Linux nice increment).
NICE = int(os.environ.get("KDSTUDIO_WORKER_NICE", "5"))
STARVED_S = 0.02
BACK_OFF_S = 0.1

_ALIVE: set[Worker] = set()


def stop_all(timeout_s: float = 5.0) -> bool:
    """Cancel every running worker and wait for their threads (at quit, and between tests)."""
    deadline = time.monotonic() + timeout_s
    for worker in list(_ALIVE):
        worker.token.cancel()
    stopped = True
    for worker in list(_ALIVE):
        left = max(0.0, deadline - time.monotonic())
        stopped = worker._runner.wait(int(left * 1000)) and stopped
    return stopped


atexit.register(stop_all)


def stop_owned_by(widget: QObject, timeout_s: float = 5.0) -> bool:
    """Cancel the workers started for ``widget`` or anything inside it, disconnect them (so no
    result arrives at a closed screen) and wait for their threads."""
    deadline = time.monotonic() + timeout_s
    mine = []
    for worker in list(_ALIVE):
        owner = worker.owner
        while owner is not None and owner is not widget:
            try:
                owner = owner.parent()
            except RuntimeError:  # already deleted
                owner = None
        if owner is widget:
            worker._owner_gone()
            mine.append(worker)
    return all(w._runner.wait(int(max(0.0, deadline - time.monotonic()) * 1000)) for w in mine)


def readable_error(exc: BaseException) -> tuple[str, str]:
    """A one-line message for a person and the details (traceback) for a bug report."""
    if isinstance(exc, KDStudioError):
        return str(exc) or type(exc).__name__, ""
    if isinstance(exc, MemoryError):
        return "Out of memory: try a smaller batch size or a smaller student.", traceback.format_exc()
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    message = f"Unexpected error ({type(exc).__name__})" + (f": {text}" if text else "")
    if "CUDA out of memory" in str(exc) or "OutOfMemoryError" in type(exc).__name__:
        message = "The GPU ran out of memory: try a smaller batch size or a smaller student."
    return message, "".join(traceback.format_exception(exc))


def run_below_the_gui() -> None:
    """Run this thread (and the threads it starts, which inherit it) at a lower scheduling
    priority than the window's, so a CPU-heavy job never keeps the Qt thread from a core (call in
    the worker). Linux: a thread id names one thread, so only the worker is niced.

    Still needed: without it the 99th-percentile stall of the Qt thread during a training run
    roughly doubles, past the 50 ms goal, on a 2-core machine (``tests/bench/
    bench_gui_responsiveness.py``: 41-56 ms against 19-24 ms). How many threads torch uses is
    the job's own business (:mod:`kdstudio.core.threads`)."""
    if NICE and hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


def quiet_tqdm(*, load: bool = True) -> None:
    """Switch tqdm's monitor thread off: no new one for later bars, and the one an earlier bar
    started (its ``monitor_interval`` defaults to 10 s) ends now. With ``load=False`` only an
    already imported tqdm is touched (cheap, for the Qt thread)."""
    module = sys.modules.get("tqdm")
    if module is None:
        if not load:
            return
        try:
            import tqdm as module
        except ImportError:  # pragma: no cover - tqdm comes with transformers
            return
    cls = module.tqdm
    cls.monitor_interval = 0
    monitor = getattr(cls, "monitor", None)
    if monitor is not None:
        with contextlib.suppress(Exception):
            monitor.exit()  # wakes it and joins it
        cls.monitor = None


class _Runner(QThread):
    """Runs the generator and pushes (kind, payload) items onto the queue.

    It refers to its worker only while running: a Worker and its _Runner must not form a
    reference cycle, or they (two QObjects, two QTimers and a QThread) would only ever be
    freed by the cyclic garbage collector, whenever and wherever it happens to run."""

    def __init__(self) -> None:
        super().__init__()
        self.worker: Worker | None = None

    def run(self) -> None:
        w, self.worker = self.worker, None
        if w is not None:
            self._run(w)
        # a frame kept after the run (something that records stacks) must not pin a Qt object
        del w, self

    @staticmethod
    def _run(w: Worker) -> None:
        queue = w._queue
        status, message, details = "finished", "", ""
        gen: Iterator[Any] | None = None
        try:
            quiet_tqdm()
            if w.limit_threads:
                run_below_the_gui()
            gen = w.func(*w.args, **w.kwargs)
            for event in gen:
                queue.append(("event", event))
                w.token.check()  # blocks while paused, raises once cancelled
                w.let_the_gui_breathe()
            if w.token.cancelled:
                status = "cancelled"
        except Cancelled:
            status = "cancelled"
        except BaseException as exc:
            status = "cancelled" if w.token.cancelled and isinstance(exc, KDStudioError) else "failed"
            message, details = readable_error(exc)
        finally:
            if gen is not None and hasattr(gen, "close"):
                try:
                    gen.close()  # runs the job's cleanup here, in its own thread, right now
                except BaseException as exc:
                    if status == "finished":
                        status = "failed"
                        message, details = readable_error(exc)
        if status != "finished" and w.on_stop is not None:
            try:
                w.on_stop(status, message)
            except BaseException:
                details += "\n(stop hook failed)\n" + traceback.format_exc()
        queue.append(("end", (status, message, details)))
        del w, gen, queue  # as in run(): the frame, if something keeps it, holds no Qt object


class Worker(QObject):
    """Runs ``func(*args, cancel=token, **kwargs)`` — a generator of events — in a QThread.

    ``on_stop(status, message)`` runs in the worker thread when the job ends cancelled or failed, after
    the generator was closed: the place to mark a run cancelled in the project. With
    ``limit_threads`` the job's threads run at a lower priority than the window's (a CPU-heavy job:
    training, a harvest; see :func:`run_below_the_gui`). ``parent`` is the
    widget the job reports to: when it is destroyed the job is cancelled and its signals are
    disconnected (the worker itself is never a Qt child, so its thread is never destroyed while
    running).
    """

    started = Signal()
    yielded = Signal(object)
    errored = Signal(str, str)
    finished = Signal(str)
    paused_changed = Signal(bool)

    def __init__(
        self,
        func: Callable[..., Iterator[Any]],
        *args: Any,
        name: str = "Job",
        on_stop: Callable[[str, str], None] | None = None,
        limit_threads: bool = False,
        pass_cancel: bool = True,
        parent: QObject | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()  # never a Qt child: a running thread must outlive its widgets
        self.func, self.args, self.kwargs = func, args, kwargs
        self.name = name
        self.on_stop = on_stop
        self.limit_threads = limit_threads
        self.token = CancelToken()
        if pass_cancel:
            self.kwargs["cancel"] = self.token
        self.status: str | None = None
        self.message = ""
        #: The job's ``Finished.result``, None until it arrives: a typed :class:`JobResult` (the
        #: jobs not yet moved to one, ``evaluate`` and ``demo``, still pass a plain dict).
        self.result: JobResult | dict[str, Any] | None = None
        self.last_progress: Progress | None = None
        self.started_at: float | None = None
        self._queue: collections.deque = collections.deque()
        self._runner = _Runner()
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._drain)
        self._lock = threading.Lock()
        self._beat = time.monotonic()
        self._beat_timer = QTimer(self)
        self._beat_timer.setInterval(BEAT_MS)
        self._beat_timer.timeout.connect(self._heartbeat)
        # Held weakly: a widget that keeps its worker (``self.worker``) must not form a reference
        # cycle with it, or both would wait for the cycle collector to be freed.
        self._owner = weakref.ref(parent) if parent is not None else None
        if parent is not None:
            parent.destroyed.connect(self._owner_gone)

    @property
    def owner(self) -> QObject | None:
        """The widget the job reports to; None without one, or once it is gone."""
        return self._owner() if self._owner is not None else None

    def _owner_gone(self, *_args: object) -> None:
        """The widget that started the job is gone: stop telling it anything, stop the job."""
        self._let_go_of_slots()
        self.cancel()

    def _let_go_of_slots(self) -> None:
        """Disconnect every slot. A slot that refers to this worker (a lambda with ``w=worker``)
        is kept by the worker's own connection: disconnected, the worker can be freed."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "failed to disconnect": nothing was connected
            for signal in (self.yielded, self.errored, self.finished, self.paused_changed, self.started):
                with contextlib.suppress(RuntimeError, TypeError):
                    signal.disconnect()
    def _heartbeat(self) -> None:
        self._beat = time.monotonic()

    def let_the_gui_breathe(self) -> None:
        """Called in the worker between events: wait while the Qt thread looks starved.

        Python runs one thread at a time, and a busy job thread can keep the Qt thread waiting
        for the interpreter (or a core, on a small machine). A late heartbeat means the Qt thread
        has work to do; sleeping a little lets it catch up, so the window never freezes."""
        waited = 0.0
        while time.monotonic() - self._beat > STARVED_S and waited < BACK_OFF_S and not self.token.cancelled:
            time.sleep(0.002)
            waited += 0.002

    # -- control ------------------------------------------------------------------------------
    def start(self) -> Worker:
        quiet_tqdm(load=False)
        _ALIVE.add(self)
        self.started_at = time.monotonic()
        self._beat = time.monotonic()
        self._runner.worker = self
        self._runner.start()
        self._timer.start()
        self._beat_timer.start()
        self.started.emit()
        return self

    def pause(self) -> None:
        if self.is_running and not self.token.paused:
            self.token.pause()
            self.paused_changed.emit(True)

    def resume(self) -> None:
        if self.token.paused:
            self.token.resume()
            self.paused_changed.emit(False)

    def toggle_pause(self) -> None:
        self.resume() if self.token.paused else self.pause()

    def cancel(self) -> None:
        """Ask the job to stop; it does at its next check or yield, keeping what was done."""
        was_paused = self.token.paused
        self.token.cancel()
        if was_paused:
            self.paused_changed.emit(False)

    @property
    def paused(self) -> bool:
        return self.token.paused

    @property
    def is_running(self) -> bool:
        return self.status is None and self.started_at is not None

    def wait(self, timeout_s: float = 5.0) -> bool:
        """Block until the thread ends (``True``) or ``timeout_s`` passes, then deliver what is
        queued. Only for shutdown and tests: it blocks the Qt thread."""
        done = self._runner.wait(int(timeout_s * 1000))
        self._drain(unbounded=True)
        return done

    # -- delivery on the Qt thread ------------------------------------------------------------
    def _drain(self, unbounded: bool = False) -> None:
        if not self._lock.acquire(blocking=False):
            return  # re-entered from a slot that spun the event loop
        try:
            deadline = time.monotonic() + SLICE_S
            queue = self._queue
            while queue:
                if not unbounded and time.monotonic() > deadline:
                    return
                kind, payload = queue.popleft()
                if kind == "event":
                    if isinstance(payload, Progress):
                        self.last_progress = payload
                    elif isinstance(payload, Finished):
                        self.result = payload.result
                    self.yielded.emit(payload)
                else:
                    self._end(*payload)
                    return
        finally:
            self._lock.release()

    def _end(self, status: str, message: str, details: str) -> None:
        self._timer.stop()
        self._beat_timer.stop()
        self._runner.wait()
        self.status, self.message = status, message
        if status == "failed":
            self.errored.emit(message, details)
        self.finished.emit(status)
        self._let_go_of_slots()  # nothing more is emitted
        _ALIVE.discard(self)
