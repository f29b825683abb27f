"""Errors a user can cause. The CLI prints them as one line (exit 2); the GUI shows a dialog."""

from __future__ import annotations

import errno


class KDStudioError(Exception):
    """Base class of the errors KD Studio reports to a person without a traceback."""

    exit_code = 2


class DataError(KDStudioError):
    """A data file cannot be read or does not fit the project.

    The message names the file, the line (when there is one) and the problem.
    """

    def __init__(self, problem: str, *, file: str | None = None, line: int | None = None):
        self.problem, self.file, self.line = problem, file, line
        where = ""
        if file is not None:
            where = f"{file}: " if line is None else f"{file}: line {line}: "
        super().__init__(where + problem)


class ProjectError(KDStudioError):
    """The project file is missing, not a KD Studio project, or from a newer version."""


class ConfigError(KDStudioError):
    """A setting, teacher spec or student spec is not valid."""


class TeacherError(KDStudioError):
    """A teacher cannot be loaded or answered in a way that stops the harvest."""


class BudgetExceeded(KDStudioError):
    """The next request would take spending past the budget the user set."""


class Cancelled(KDStudioError):
    """The job was cancelled by the user; everything done so far is kept."""

    exit_code = 130


class TrainingError(KDStudioError):
    """Training cannot go on: the loss diverged, or memory ran out even at one example per batch."""


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is the operating system saying the disk (or the user's quota) is full; torch
    wraps it in a RuntimeError naming the errno, so the chain is searched too."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False
