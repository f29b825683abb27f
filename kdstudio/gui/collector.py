"""Python's cyclic garbage collector, run on the Qt thread only.

CPython starts a collection on whichever thread happens to allocate when a threshold is
crossed: in this app usually a worker thread (a job allocates far more than the window does) or
a library's helper thread (tqdm's monitor). A collection frees every unreachable reference
cycle, and a cycle that holds a Qt wrapper (a widget whose lambda slot refers to it, pyqtgraph
items, a pixmap, a pen) then destroys its C++ object on that thread. Qt objects must be
destroyed in the thread they live in (widgets and pixmaps in the GUI thread only), and shiboken
releases the interpreter lock while the C++ destructor runs, in the middle of the collection,
so the Qt thread keeps running on the same objects meanwhile. The damage shows up later, as a
crash at a random place with "Garbage-collecting" in the fault's traceback.

:func:`install` switches the automatic collector off and runs it from a timer on the Qt thread
instead, one generation at a time with the interpreter's own thresholds (pyqtgraph's
``GarbageCollector`` does the same for the same reason). Reference counting still frees
everything outside a cycle at once, on any thread; only cycles wait for the next tick. A full
collection (100 ms and more once torch is loaded) comes as rarely as the interpreter's own
would, and takes at most ``FULL_SHARE`` of the Qt thread's time.

A full collection walks every container object in the interpreter, and once torch and
transformers are imported that is some 400,000 of them: 100-400 ms during which the window
cannot paint. Nearly all of them are modules, functions and classes that live as long as the
process. So whenever modules were imported since its last look, the collector moves everything
alive into the interpreter's permanent generation (``gc.freeze``) after collecting the young
generations; a full collection then walks only what the app made since. A cycle that was frozen
and later becomes garbage waits for :func:`settle`, which the app calls when a project closes
(and which runs at shutdown): it unfreezes, collects everything and freezes the survivors again.
"""

from __future__ import annotations

import gc
import sys
import time

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

#: How often the Qt thread looks at the allocation counts: often while something allocates
#: (a worker can fill the young generation fast, and collecting it all at once would stall the
#: window), rarely while the app is idle.
BUSY_MS = 20
IDLE_MS = 200
IDLE_AFTER_MS = 1000
#: The largest share of the Qt thread's time that full collections may take.
FULL_SHARE = 0.02

_collector: Collector | None = None


class Collector(QObject):
    """Collects on a timer in the Qt thread what the automatic collector would have."""

    def __init__(self) -> None:
        super().__init__()  # no parent: uninstall() decides when it goes
        self.thresholds = gc.get_threshold()
        self.was_enabled = gc.isenabled()
        self._full_s = 0.0
        self._modules = 0  # len(sys.modules) when the collector last froze; 0: not yet
        # As CPython does, a full collection waits until the objects that survived the young
        # generations since the last one are a quarter of those it found alive then (the first
        # tick freezes what is alive at start, so nothing is counted yet).
        self._long_lived, self._pending = 0, 0
        self._last_full = time.monotonic()
        self._timer = QTimer(self)
        self._timer.setInterval(IDLE_MS)
        self._timer.timeout.connect(self.tick)
        self._quiet_ticks = 0

    def _set_interval(self, ms: int) -> None:
        if self._timer.interval() != ms:
            self._timer.setInterval(ms)

    def start(self) -> None:
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        if self.was_enabled:
            gc.enable()

    def tick(self) -> None:
        """Collect the generations whose thresholds were crossed since the last tick."""
        if gc.isenabled():  # a library switched it back on: off again, this timer collects
            gc.disable()
        if len(sys.modules) != self._modules:
            self.freeze()
        t0, t1, t2 = self.thresholds
        c0, c1, c2 = gc.get_count()
        if t0 <= 0 or c0 <= t0:
            self._quiet_ticks += 1
            if self._quiet_ticks * self._timer.interval() >= IDLE_AFTER_MS:
                self._set_interval(IDLE_MS)
            return
        self._quiet_ticks = 0
        self._set_interval(BUSY_MS)
        spaced = time.monotonic() - self._last_full >= self._full_s / FULL_SHARE
        if c2 > t2 and self._pending > self._long_lived // 4 and spaced:
            self.collect(2)
        elif c1 > t1:
            young = len(gc.get_objects(0)) + len(gc.get_objects(1))
            self._pending += max(0, young - gc.collect(1))
        else:
            gc.collect(0)

    def freeze(self) -> None:
        """Collect the young generations, then move everything alive out of the collector's
        sight: full collections skip it from now on (see the module notes)."""
        self._modules = len(sys.modules)
        gc.collect(1)
        gc.freeze()
        self._long_lived, self._pending = 0, 0

    def settle(self) -> int:
        """Collect everything, frozen objects too, then freeze what survives (one long stall:
        call it when the user has just closed something, not while a job runs)."""
        gc.unfreeze()
        found = self.collect(2)
        self.freeze()
        return found

    def collect(self, generation: int = 2) -> int:
        """Collect now (in the calling thread, which must be the Qt thread)."""
        if generation < 2:
            return gc.collect(generation)
        t = time.monotonic()
        found = gc.collect()
        self._last_full = time.monotonic()
        self._full_s = self._last_full - t
        self._long_lived, self._pending = len(gc.get_objects(2)), 0
        return found


def install() -> bool:
    """Move cyclic garbage collection to the Qt thread (idempotent). Needs a Q(Core)Application
    and must be called in its thread; returns whether the collector runs."""
    global _collector
    if _collector is not None:
        return True
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        return False
    _collector = Collector()
    _collector.start()
    return True


def uninstall() -> None:
    """Give collection back to the interpreter (collecting what is pending, here, first)."""
    global _collector
    collector, _collector = _collector, None
    if collector is not None:
        gc.unfreeze()
        collector.collect()
        collector.stop()


def installed() -> bool:
    return _collector is not None


def settle() -> int:
    """Free every garbage cycle, also those among frozen objects (on the Qt thread; see
    :meth:`Collector.settle`). Without the collector installed: a plain full collection."""
    if _collector is not None:
        return _collector.settle()
    return gc.collect()


def collect(generation: int = 2) -> int:
    """Collect now, in the calling thread (the Qt thread): for tests and shutdown."""
    if _collector is not None:
        return _collector.collect(generation)
    return gc.collect(generation)
