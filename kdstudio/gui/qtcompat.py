"""Work-arounds for bugs in the installed Qt bindings, applied when ``kdstudio.gui`` is imported.

PySide6 6.12.0 on Python < 3.12 returns ``None`` from every void method, and ``True`` from
``SignalInstance.emit()``, without taking a reference to it (on 3.12+ these objects are
immortal, so the wheels skip the reference). Each call therefore wears the reference count of
``None`` or ``True`` down by one until Python aborts with "none_dealloc: deallocating None".

The probe below detects the loss by making a few calls; only then the reference counts of
``None``, ``True`` and ``False`` are raised by 2**40, which is what Python 3.12 does for them
(immortal objects): a trillion lost references later they are still alive. These three objects
are never freed anyway, so nothing else changes. On a fixed PySide6 nothing is touched.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

PATCHED = False
_BOOST = 1 << 40


class _Probe(QObject):
    ping = Signal()


def _loses_references() -> bool:
    if sys.version_info >= (3, 12):  # immortal there: a lost reference is harmless
        return False
    probe = _Probe()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(16):
        probe.setObjectName("probe")
        probe.ping.emit()
    return none_before - sys.getrefcount(None) >= 16 or true_before - sys.getrefcount(True) >= 16


def apply() -> bool:
    """Make ``None``, ``True`` and ``False`` effectively immortal when the bug is present."""
    global PATCHED
    if PATCHED or not _loses_references():
        return PATCHED
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _BOOST
    PATCHED = True
    return True


apply()
