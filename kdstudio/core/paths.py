"""Where KD Studio keeps its per-user settings and data (never inside a project file)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The names Qt derives the desktop app's native settings location from (set by the GUI at start).
ORGANIZATION = "KD Studio"
ORGANIZATION_DOMAIN = "kdstudio.dev"
APPLICATION = "KD Studio"


def app_home(*, create: bool = False) -> Path:
    """The per-user folder: ``$KDSTUDIO_HOME``, else ``~/.kdstudio``.

    With ``create=True`` the folder is made if missing. Tests point ``KDSTUDIO_HOME`` at a
    temporary folder so they never touch a real user's settings.
    """
    home = Path(os.environ.get("KDSTUDIO_HOME") or Path.home() / ".kdstudio").expanduser()
    if create:
        home.mkdir(parents=True, exist_ok=True)
    return home


def sample_project_path(*, create: bool = False) -> Path:
    """Where "Open Sample Project" builds and finds the sample (``kdstudio demo`` builds the same).

    With ``create=True`` the per-user folder (:func:`app_home`) is made if missing.
    """
    return app_home(create=create) / "sample" / "sample.kdproj"


def portable_settings_file() -> Path | None:
    """``$KDSTUDIO_HOME/settings.ini`` when ``$KDSTUDIO_HOME`` is set (tests, portable installs), else None.

    None means the desktop app keeps its settings in Qt's native per-user store instead.
    """
    home = os.environ.get("KDSTUDIO_HOME")
    return Path(home) / "settings.ini" if home else None


def settings_file() -> Path | None:
    """The file the desktop app keeps its settings in (window layout, recent projects).

    :func:`portable_settings_file` when ``$KDSTUDIO_HOME`` is set; otherwise Qt's native file,
    ``$XDG_CONFIG_HOME/KD Studio/KD Studio.conf`` (``~/.config`` by default) on Linux and other
    Unix systems. None on macOS and Windows, where the system keeps them (the user's preferences,
    the registry under ``HKEY_CURRENT_USER\\Software\\KD Studio``).
    """
    portable = portable_settings_file()
    if portable is not None:
        return portable
    if sys.platform == "darwin" or sys.platform == "win32":
        return None
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / ORGANIZATION / f"{APPLICATION}.conf"


def resources_dir() -> Path:
    """The ``resources/`` folder (style sheets, icons, sample data, prices).

    Beside the ``kdstudio`` package in a checkout or an editable install; in a PyInstaller bundle
    (``sys.frozen``), in the bundle's data folder ``sys._MEIPASS`` (``_internal/`` beside the
    executable in a one-folder build), where packaging/kdstudio.spec puts it.
    """
    bundle = getattr(sys, "_MEIPASS", None) if getattr(sys, "frozen", False) else None
    if bundle:
        return Path(bundle) / "resources"
    import kdstudio

    return Path(kdstudio.__file__).resolve().parent.parent / "resources"
