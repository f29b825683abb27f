"""Exclusive, non-blocking OS advisory locks on an open file, the same on every platform.

``fcntl.flock`` on POSIX, ``msvcrt.locking`` of the file's first byte on Windows. The OS drops a
lock when its holder ends in any way, killed included, so a lock file left behind never blocks
anyone. Used by the harvest lock (one harvest per project) and the training runs' liveness locks.
"""

from __future__ import annotations

import os
import sys


def try_lock(fd: int) -> bool:
    """Take the lock on ``fd`` if nobody holds it; False at once if someone does."""
    if sys.platform == "win32":  # pragma: no cover - tested on POSIX
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # the first byte; a holder may write after it
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock(fd: int) -> None:
    """Release a lock taken with :func:`try_lock`."""
    if sys.platform == "win32":  # pragma: no cover - tested on POSIX
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
