"""Reference cycles (and the Qt objects in them) are freed on the Qt thread, never by a worker
thread or a library's helper thread, and a finished worker needs no cycle collection at all."""

from __future__ import annotations

import gc
import io
import sys
import threading
import types
import weakref
from typing import ClassVar

import pytest
from PySide6.QtCore import QObject

from kdstudio.core.events import Finished
from kdstudio.gui import collector
from kdstudio.gui.worker import Worker


class _Tracked:
    """Part of a reference cycle; remembers the thread that finalised it."""

    freed_in: ClassVar[list[str]] = []

    def __init__(self) -> None:
        self.me = self
        self.qobject = QObject()

    def __del__(self) -> None:
        _Tracked.freed_in.append(threading.current_thread().name)


def test_cycles_are_collected_on_the_qt_thread_while_another_thread_allocates(qtbot):
    assert collector.installed() and not gc.isenabled()
    _Tracked.freed_in = []
    _Tracked()  # garbage in a cycle from now on

    kept: list[object] = []

    def allocate() -> None:  # enough new containers to cross every collection threshold
        for i in range(200_000):
            kept.append((i, [i]))
            if len(kept) > 5000:
                kept.clear()

    thread = threading.Thread(target=allocate, name="allocating")
    thread.start()
    thread.join()
    assert _Tracked.freed_in == []
    qtbot.waitUntil(lambda: bool(_Tracked.freed_in), timeout=5000)
    assert _Tracked.freed_in == [threading.main_thread().name]


def test_a_finished_worker_is_freed_without_the_cycle_collector(qtbot):
    def job(cancel=None):
        yield Finished({})

    worker = Worker(job)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    alive, runner_alive = weakref.ref(worker), weakref.ref(worker._runner)
    del worker
    assert alive() is None and runner_alive() is None


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


def _import_a_module(name: str) -> None:
    """What an import does to the collector's view: one more entry in sys.modules."""
    sys.modules[name] = types.ModuleType(name)


def test_objects_alive_after_an_import_are_frozen_and_settle_frees_frozen_cycles(qtbot):
    kept = [_Tracked()]  # a cycle that is still in use when the import happens
    _Tracked.freed_in = []
    _import_a_module("_kdstudio_test_frozen")
    try:
        qtbot.waitUntil(lambda: all(o is not kept[0] for o in gc.get_objects()), timeout=5000)
        assert gc.get_freeze_count() > 0
        kept.clear()  # garbage now, but frozen: a full collection does not look at it
        collector.collect(2)
        assert _Tracked.freed_in == []
        collector.settle()
        assert _Tracked.freed_in == [threading.main_thread().name]
        assert gc.get_freeze_count() > 0  # the survivors are frozen again
    finally:
        del sys.modules["_kdstudio_test_frozen"]


def test_closing_a_project_settles_garbage(qtbot, tmp_path, monkeypatch):
    from gui.conftest import make_project
    from kdstudio.gui.main_window import MainWindow

    calls = []
    monkeypatch.setattr(collector, "settle", lambda: calls.append(1) or 0)
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.open_project(make_project(tmp_path, 20))
    window.close_project()
    qtbot.waitUntil(lambda: calls == [1], timeout=5000)
