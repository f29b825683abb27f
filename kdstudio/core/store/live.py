"""Which training runs are alive: an OS advisory lock held by the process that trains a run.

A run is stored as ``running`` while it trains. When its process is killed (or crashes) the row
stays ``running`` for good; nothing in the project says the run stopped. ``hold_run`` takes an
exclusive lock on ``<project file>.runs/<run id>/live.lock`` for as long as the run trains
(``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows); the OS drops it when the holder ends in
any way, killed included. ``run_is_live`` asks whether someone, in this process or another, still
holds it: a ``running`` run whose lock is free was interrupted (``Project.mark_interrupted_runs``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from kdstudio.core.oslock import try_lock, unlock

LOCK_NAME = "live.lock"


def live_lock_path(project_path: str | Path, run_id: int) -> Path:
    """The liveness lock of run ``run_id`` (in the run's folder, next to its checkpoints)."""
    return Path(str(Path(project_path).absolute()) + ".runs") / str(run_id) / LOCK_NAME


class RunHold:
    """The lock of one training run, held until ``release()`` (or the process ends)."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                unlock(fd)
            os.close(fd)

    def __del__(self) -> None:  # a run whose session failed half-way: the fd is not kept open
        self.release()


def hold_run(project_path: str | Path, run_id: int) -> RunHold:
    """Mark run ``run_id`` as alive in this process until the hold is released. Where the lock
    cannot be taken (a read-only folder) the run simply goes unmarked."""
    path = live_lock_path(project_path, run_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return RunHold(None)
    if not try_lock(fd):
        os.close(fd)
        return RunHold(None)
    return RunHold(fd)


def run_is_live(project_path: str | Path, run_id: int) -> bool:
    """True when a process (this one included) holds run ``run_id``'s lock, or when that cannot be
    told (the lock file exists but cannot be opened): only a free lock means the run is dead."""
    path = live_lock_path(project_path, run_id)
    if not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return True
    try:
        if not try_lock(fd):
            return True
        unlock(fd)
        return False
    finally:
        os.close(fd)


__all__ = ["RunHold", "hold_run", "live_lock_path", "run_is_live"]
