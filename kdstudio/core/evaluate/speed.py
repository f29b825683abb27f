"""Speed and size: latency at batch 1, throughput at batch 64, parameters and bytes on disk.

Both models are timed the same way, in this process, after a warm-up: a call to the
predictor takes raw texts and returns probabilities, so tokenization is included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kdstudio.core.evaluate.metrics import percentile_ms
from kdstudio.core.events import CancelToken

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack")


def time_predictor(
    predict: Callable[[list[str]], Any],
    texts: Sequence[str],
    *,
    single_calls: int = 30,
    warmup: int = 3,
    batch_size: int = 64,
    batch_repeats: int = 3,
    cancel: CancelToken | None = None,
) -> dict[str, float | None]:
    """p50/p95 latency (ms) of ``predict([text])`` over ``single_calls`` texts and throughput
    (predictions/s) of ``predict(batch of batch_size texts)``, best of ``batch_repeats``, after
    ``warmup`` single calls and one batch call. Texts are reused in turn when there are few."""
    if not texts:
        return {"latency_ms_p50": None, "latency_ms_p95": None, "throughput_per_s": None}
    texts = list(texts)
    batch = [texts[i % len(texts)] for i in range(batch_size)]
    for i in range(warmup):
        predict([texts[i % len(texts)]])
    predict(batch)
    samples = []
    for i in range(single_calls):
        if cancel is not None and i % 8 == 0:
            cancel.check()
        t0 = time.perf_counter()
        predict([texts[i % len(texts)]])
        samples.append((time.perf_counter() - t0) * 1000)
    batch_s = []
    for _ in range(batch_repeats):
        if cancel is not None:
            cancel.check()
        t0 = time.perf_counter()
        predict(batch)
        batch_s.append(time.perf_counter() - t0)
    return {
        "latency_ms_p50": percentile_ms(samples, 50),
        "latency_ms_p95": percentile_ms(samples, 95),
        "throughput_per_s": batch_size / max(min(batch_s), 1e-9),
    }


def stored_latency(latencies_ms: Sequence[float | None]) -> dict[str, float | None]:
    """p50/p95 of latencies recorded while harvesting (an API teacher), None when absent."""
    values = [float(x) for x in latencies_ms if x is not None]
    return {
        "latency_ms_p50": percentile_ms(values, 50),
        "latency_ms_p95": percentile_ms(values, 95),
        "throughput_per_s": None,
    }


def weights_size_bytes(folder: str | Path) -> int | None:
    """Bytes of model weight files under ``folder`` (tokenizers, configs and optimizer state
    are left out); None when it is not a local folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    return int(
        sum(
            p.stat().st_size
            for p in folder.rglob("*")
            if p.is_file() and p.suffix in WEIGHT_SUFFIXES and p.name != "trainer_state.pt"
        )
    )


def megabytes(n_bytes: int | None) -> float | None:
    """Bytes as MB (10⁶ bytes), rounded to 3 decimals."""
    return None if n_bytes is None else round(n_bytes / 1e6, 3)
