"""One harvest per project at a time: an OS advisory lock on a file next to the project.

Two processes harvesting one project would each compute their pending examples at the start and
both pay for them. ``harvest_lock`` takes an exclusive, non-blocking lock on
``<project file>.harvest.lock`` (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows) for any
teacher: a second harvest of the same project, in this process or another, is refused at once with
a ``ConfigError`` naming the holder's pid. The OS drops the lock when its holder ends in any way,
killed included, so a lock file left behind never blocks the next harvest. The file itself stays
(deleting it while another process may be opening it would let two holders in).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from kdstudio.core.errors import ConfigError
from kdstudio.core.oslock import try_lock, unlock


def lock_path(project_path: str | Path) -> Path:
    """The harvest lock file of the project at ``project_path``."""
    return Path(str(Path(project_path).absolute()) + ".harvest.lock")


def _holder(path: Path) -> str:
    """The pid the lock file names (its text after the first byte), or "" when not yet written."""
    try:
        with open(path, "rb") as f:
            f.seek(1)
            text = f.read(32).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


@contextlib.contextmanager
def harvest_lock(project_path: str | Path) -> Iterator[None]:
    """Hold the project's harvest lock for the ``with`` block, or raise ``ConfigError`` at once
    when another harvest holds it. Where the lock file cannot be created (a read-only folder) the
    harvest goes on unlocked: such a project cannot be written, so nothing can be paid twice."""
    path = lock_path(project_path)
    if not Path(project_path).is_file():  # no project: opening it says so, with no lock file left
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        if not try_lock(fd):
            pid = _holder(path)
            who = f"another KD Studio process (pid {pid})" if pid else "another KD Studio process"
            raise ConfigError(
                f"{who} is harvesting this project; wait for it to finish or stop it, then harvest again"
            )
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"\n{os.getpid()}\n".encode())
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 1)  # the holder is gone: no stale pid for the next refusal
                unlock(fd)
    finally:
        os.close(fd)


__all__ = ["harvest_lock", "lock_path"]
