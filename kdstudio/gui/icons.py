"""Line icons from ``resources/icons``, drawn in the current theme's text colour."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from kdstudio.gui.theme import current_theme, resources_dir


@lru_cache(maxsize=256)
def _svg(name: str) -> str:
    try:
        return (resources_dir() / "icons" / f"{name}.svg").read_text(encoding="utf-8")
    except OSError:
        return ""


def _pixmap(name: str, colour: str, size: int) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    text = _svg(name).replace("currentColor", colour)
    if text:
        renderer = QSvgRenderer(QByteArray(text.encode()))
        painter = QPainter(pixmap)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
    return pixmap


def icon(name: str, colour: str | None = None) -> QIcon:
    """The icon ``name`` in ``colour`` (the theme's text colour by default), with a muted
    disabled state."""
    theme = current_theme()
    return _icon(name, colour or theme.text, theme.muted)


@lru_cache(maxsize=256)
def _icon(name: str, colour: str, muted: str) -> QIcon:
    result = QIcon()
    for size in (16, 24, 32, 48):
        result.addPixmap(_pixmap(name, colour, size), QIcon.Mode.Normal)
        result.addPixmap(_pixmap(name, muted, size), QIcon.Mode.Disabled)
    return result


def app_icon() -> QIcon:
    result = QIcon()
    for size in (16, 32, 48, 64, 128, 256):
        result.addPixmap(_pixmap("kdstudio", "", size))
    return result
