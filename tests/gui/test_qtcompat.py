"""The PySide6 6.12 work-around: Qt calls must not wear away the references to None and True."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

import kdstudio.gui  # noqa: F401 - applies the work-around


class _Sender(QObject):
    fired = Signal(object)


def test_a_million_qt_calls_leave_none_and_true_alive():
    sender = _Sender()
    sender.fired.connect(lambda _value: None)
    for i in range(200_000):
        sender.fired.emit(i)
        sender.setObjectName("x")
    assert sys.getrefcount(None) > 1000 and sys.getrefcount(True) > 1000
