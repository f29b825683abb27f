"""How many CPU threads torch may use, and the one place that sets it.

Training, evaluation timing and measuring students use all cores but one, so that a window in
the same process keeps a core; a local teacher's CPU streams split the threads they find. Each
job sets the count itself, here (the GUI's worker only lowers its thread's priority); torch
loads on the first call.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def cpu_threads(requested: int = 0, *, processes: int = 1) -> int:
    """``requested`` when given, else this process's share of the cores, less one core for the
    GUI when it is the only process (at least 1)."""
    if requested:
        return requested
    cores = os.cpu_count() or 2
    return max(1, cores // processes - (processes == 1))


def set_torch_threads(requested: int = 0, *, processes: int = 1) -> int:
    """Set torch's intra-op threads to :func:`cpu_threads`; return the count it had before."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(cpu_threads(requested, processes=processes))
    return before


@contextmanager
def torch_threads(requested: int = 0, *, processes: int = 1, cpu: bool = True) -> Iterator[int]:
    """Within the block torch uses :func:`cpu_threads` (only when ``cpu``; a GPU job keeps the
    count); yields the count in use and restores the previous one afterwards."""
    import torch

    before = set_torch_threads(requested, processes=processes) if cpu else torch.get_num_threads()
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


__all__ = ["cpu_threads", "set_torch_threads", "torch_threads"]
