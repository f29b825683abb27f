"""Where KD Studio keeps its per-user settings and data (never inside a project file)."""

from __future__ import annotations

import os
from pathlib import Path


def app_home(*, create: bool = False) -> Path:
    """The per-user folder: ``$KDSTUDIO_HOME``, else ``~/.kdstudio``.

    With ``create=True`` the folder is made if missing. Tests point ``KDSTUDIO_HOME`` at a
    temporary folder so they never touch a real user's settings.
    """
    home = Path(os.environ.get("KDSTUDIO_HOME") or Path.home() / ".kdstudio").expanduser()
    if create:
        home.mkdir(parents=True, exist_ok=True)
    return home


def resources_dir() -> Path:
    """The ``resources/`` folder beside the ``kdstudio`` package (style sheets, sample data, prices)."""
    import kdstudio

    return Path(kdstudio.__file__).resolve().parent.parent / "resources"
