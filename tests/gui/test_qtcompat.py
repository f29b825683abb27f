"""The PySide6 6.12 work-around: emitting signals must not wear away the reference to True."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

import kdstudio.gui  # noqa: F401 - applies the work-around


class _Sender(QObject):
    fired = Signal(object)


def test_emitting_keeps_the_reference_count_of_true():
    sender = _Sender()
    sender.fired.connect(lambda _value: None)
    before = sys.getrefcount(True)
    for i in range(1000):
        sender.fired.emit(i)
    assert sys.getrefcount(True) >= before
