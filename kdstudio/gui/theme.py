"""Light and dark themes that follow the system, a style sheet from ``resources/style.qss``, and
the colours pyqtgraph plots use."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

MODES = ("system", "light", "dark")

#: One colour per series (metric or run); readable on both backgrounds.
SERIES_COLORS = ("#4f7cff", "#f97316", "#10b981", "#e5484d", "#a855f7", "#eab308", "#06b6d4", "#8b95a5")


@dataclass(frozen=True)
class Theme:
    """The named colours of one theme; ``style.qss`` refers to them as ``@name``."""

    name: str
    window: str
    surface: str
    surface_alt: str
    border: str
    text: str
    muted: str
    accent: str
    accent_text: str
    accent_soft: str
    danger: str
    warning: str
    success: str
    plot_bg: str
    plot_fg: str
    grid_alpha: float

    @property
    def dark(self) -> bool:
        return self.name == "dark"


LIGHT = Theme(
    name="light", window="#f4f5f7", surface="#ffffff", surface_alt="#f8f9fb", border="#dfe2e7",
    text="#1d2127", muted="#626b77", accent="#4a5de8", accent_text="#ffffff", accent_soft="#e8ebfd",
    danger="#d93036", warning="#b86e00", success="#18794e", plot_bg="#ffffff", plot_fg="#4b5563",
    grid_alpha=0.12,
)
DARK = Theme(
    name="dark", window="#17191d", surface="#202328", surface_alt="#1b1e22", border="#33373e",
    text="#e7e9ec", muted="#9aa2ad", accent="#7c8cff", accent_text="#0e1018", accent_soft="#2a2f4a",
    danger="#ff6369", warning="#f1a10d", success="#3dd68c", plot_bg="#202328", plot_fg="#aab1bb",
    grid_alpha=0.18,
)


def resources_dir() -> Path:
    """The ``resources`` folder (beside the package in a checkout, inside a frozen bundle)."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent.parent / "resources"


def system_prefers_dark() -> bool:
    """Whether the desktop asks for a dark colour scheme (Qt 6.5+), else guess from the palette."""
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme() if hasattr(hints, "colorScheme") else Qt.ColorScheme.Unknown
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def _arrow_files(theme: Theme) -> dict[str, str]:
    """Arrow images in the theme's muted colour, written once to a temp folder (style sheets
    need files)."""
    import tempfile

    folder = Path(tempfile.gettempdir()) / f"kdstudio-style-{theme.name}"
    folder.mkdir(exist_ok=True)
    out = {}
    for key, name, colour in (("arrow_up", "chevron-up", theme.muted), ("arrow_down", "chevron-down", theme.muted),
                              ("check", "check", theme.accent_text)):
        target = folder / f"{name}.svg"
        try:
            svg = (resources_dir() / "icons" / f"{name}.svg").read_text(encoding="utf-8")
            target.write_text(svg.replace("currentColor", colour).replace('stroke-width="1.8"', 'stroke-width="3"'),
                              encoding="utf-8")
        except OSError:
            pass
        out[key] = target.as_posix()
    return out


def style_sheet(theme: Theme) -> str:
    """``resources/style.qss`` with every ``@name`` replaced by the theme's colour."""
    path = resources_dir() / "style.qss"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    for key, value in _arrow_files(theme).items():
        text = text.replace("@" + key, value)
    names = sorted(Theme.__dataclass_fields__, key=len, reverse=True)
    for name in names:
        value = getattr(theme, name)
        if isinstance(value, str):
            text = text.replace("@" + name, value)
    return text


def _palette(theme: Theme) -> QPalette:
    pal = QPalette()
    role = QPalette.ColorRole
    pairs = {
        role.Window: theme.window, role.WindowText: theme.text, role.Base: theme.surface,
        role.AlternateBase: theme.surface_alt, role.Text: theme.text, role.Button: theme.surface,
        role.ButtonText: theme.text, role.Highlight: theme.accent, role.HighlightedText: theme.accent_text,
        role.ToolTipBase: theme.surface, role.ToolTipText: theme.text, role.PlaceholderText: theme.muted,
        role.Link: theme.accent, role.Mid: theme.border, role.Midlight: theme.border,
        role.Light: theme.surface, role.Dark: theme.border,
    }
    for r, colour in pairs.items():
        pal.setColor(r, QColor(colour))
    for r in (role.WindowText, role.Text, role.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, r, QColor(theme.muted))
    return pal


class ThemeManager(QObject):
    """Holds the current theme; widgets that draw their own colours listen to ``theme_changed``."""

    theme_changed = Signal(object)

    _instance: ThemeManager | None = None

    def __init__(self) -> None:
        super().__init__()
        self.mode = "system"
        self.theme: Theme = LIGHT
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._system_changed)

    @classmethod
    def instance(cls) -> ThemeManager:
        if cls._instance is None:
            cls._instance = ThemeManager()
        return cls._instance

    def _system_changed(self, *_args: object) -> None:
        if self.mode == "system":
            self.apply("system")

    def apply(self, mode: str = "system") -> Theme:
        """Apply ``system``, ``light`` or ``dark`` to the running application."""
        if mode not in MODES:
            mode = "system"
        self.mode = mode
        dark = system_prefers_dark() if mode == "system" else mode == "dark"
        self.theme = DARK if dark else LIGHT
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.setStyle("Fusion")
            app.setPalette(_palette(self.theme))
            app.setStyleSheet(style_sheet(self.theme))
        pg = sys.modules.get("pyqtgraph")  # plots read the theme when created; no import here
        if pg is not None:
            pg.setConfigOptions(background=self.theme.plot_bg, foreground=self.theme.plot_fg)
        self.theme_changed.emit(self.theme)
        return self.theme


def current_theme() -> Theme:
    return ThemeManager.instance().theme
