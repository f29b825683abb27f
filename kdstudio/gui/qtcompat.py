"""Work-arounds for bugs in the installed Qt bindings, applied when ``kdstudio.gui`` is imported.

PySide6 6.12.0 on Python < 3.12: ``SignalInstance.emit()`` returns ``True`` without taking a
reference to it, so every emit (ours, pyqtgraph's, Qt's own Python-side ones) drops the
reference count of ``True`` by one until Python aborts with "bool_dealloc: deallocating True".
The probe below detects the bug by emitting a few times; only then ``emit`` is wrapped to give
the reference back. On a fixed PySide6 the probe sees no loss and nothing is patched.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance

PATCHED = False


class _Probe(QObject):
    ping = Signal()


def _emit_loses_a_reference_to_true() -> bool:
    if sys.version_info >= (3, 12):  # True is immortal there; the lost reference is harmless
        return False
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(16):
        probe.ping.emit()
    return before - sys.getrefcount(True) >= 16


def apply() -> bool:
    """Patch ``SignalInstance.emit`` when the bug is present; True when patched."""
    global PATCHED
    if PATCHED or not _emit_loses_a_reference_to_true():
        return PATCHED
    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.py_object]
    incref.restype = None
    original = SignalInstance.emit
    for _ in range(16):  # the probe's own losses
        incref(True)

    def emit(self: SignalInstance, *args: object) -> object:
        result = original(self, *args)
        if result is True:
            incref(True)
        return result

    emit.__doc__ = original.__doc__
    SignalInstance.emit = emit
    PATCHED = True
    return True


apply()
