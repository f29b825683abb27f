"""Where the app keeps its own state: QSettings for window state and recent projects, and a data
folder for the sample project. Nothing here is ever written into a project file."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSettings, QStandardPaths

from kdstudio.core import paths
from kdstudio.core.paths import APPLICATION, ORGANIZATION, ORGANIZATION_DOMAIN

SETTINGS_VERSION = 1
MAX_RECENT = 10


def init_application_names() -> None:
    """Set the names QSettings and QStandardPaths derive their locations from."""
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setOrganizationDomain(ORGANIZATION_DOMAIN)
    QCoreApplication.setApplicationName(APPLICATION)


def data_dir() -> Path:
    """The app's data folder, shared with the command line (``$KDSTUDIO_HOME`` or ``~/.kdstudio``)."""
    return paths.app_home(create=True)


def sample_project_path() -> Path:
    """Where "Open Sample Project" builds and finds the sample (``kdstudio demo`` builds the same)."""
    return paths.sample_project_path(create=True)


def generation_sample_path() -> Path:
    """Where "Generation sample" builds and finds the E2E sample: beside the classification sample,
    where ``kdstudio demo --task generation --out <that folder>`` puts it."""
    from kdstudio.core.demo_generation import PROJECT_FILE

    return sample_project_path().parent / PROJECT_FILE


def default_projects_dir() -> Path:
    """Where the wizard proposes to save new projects."""
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return Path(docs or Path.home()) / "KD Studio"


def app_settings() -> QSettings:
    """The app's QSettings; under ``$KDSTUDIO_HOME`` when set (tests and portable installs)."""
    portable = paths.portable_settings_file()
    if portable is not None:
        settings = QSettings(str(portable), QSettings.Format.IniFormat)
    else:
        settings = QSettings(ORGANIZATION, APPLICATION)
    if settings.value("version") is None:
        settings.setValue("version", SETTINGS_VERSION)
    return settings


def recent_projects() -> list[str]:
    """Recently opened project paths, newest first, skipping files that no longer exist."""
    value = app_settings().value("recent_projects", [])
    if isinstance(value, str):
        value = [value]
    return [p for p in (value or []) if Path(p).is_file()]


def add_recent_project(path: str | Path) -> None:
    path = str(Path(path).resolve())
    items = [p for p in recent_projects() if p != path]
    app_settings().setValue("recent_projects", [path, *items][:MAX_RECENT])


def clear_recent_projects() -> None:
    app_settings().setValue("recent_projects", [])
