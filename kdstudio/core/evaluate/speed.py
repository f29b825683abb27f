"""Speed and size: latency at batch 1, throughput at batch 64, parameters and bytes on disk.

Every model is timed the same way, in this process, after a warm-up: a call to the predictor
takes raw texts and returns probabilities, so tokenization is included. :func:`time_interleaved`
times several predictors together (student and teacher, in torch and in ONNX), in turn, so that
whatever else the machine does slows them all alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kdstudio.core.evaluate.metrics import percentile_ms
from kdstudio.core.events import CancelToken

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack")


#: The keys of one predictor's timing in :func:`time_interleaved` (the ``latency`` matrix of the
#: evaluation report): batch-1 p50/p95 (ms per call), batch-64 p50 (ms per batch) and texts/s at
#: batch 64 (from that p50).
RUNTIME_KEYS = ("batch1_ms_p50", "batch1_ms_p95", "batch64_ms_p50", "batch64_per_s")


def time_interleaved(
    predictors: Mapping[str, Callable[[list[str]], Any]],
    texts: Sequence[str],
    *,
    single_calls: int = 30,
    block: int = 10,
    batch_size: int = 64,
    batch_rounds: int = 3,
    warmup: int = 2,
    cancel: CancelToken | None = None,
) -> dict[str, dict[str, float | None]]:
    """Time every predictor (raw texts in, one row per text out) in rounds, the order rotated by
    one each round, so that noise on the machine hits them all alike.

    Single-text calls run in blocks: each round gives every predictor ``block`` calls in a row,
    the first of them untimed, as a service that runs one model keeps that model in the CPU's
    caches (a call right after another model's is a cold start, which would cost a small model
    several times its steady latency and say nothing about serving it). Before that, ``warmup``
    untimed calls of each and one untimed batch call of each; then rounds until each predictor has
    ``single_calls`` timed calls of ``predict([text])`` (text ``i`` of the ``i``-th call, reused in
    turn when there are few), then ``batch_rounds`` rounds of one ``predict(batch)`` each with
    ``batch_size`` texts. Returns, per predictor name, :data:`RUNTIME_KEYS`: p50 and p95 of the
    single calls (ms), p50 of the batch calls (ms per batch) and ``batch_size`` / that p50
    (texts/s); all None when there are no texts. ``cancel`` is checked before every call.
    """
    names = list(predictors)
    if not texts or not names:
        return {name: dict.fromkeys(RUNTIME_KEYS) for name in names}
    texts = list(texts)
    batch = [texts[i % len(texts)] for i in range(batch_size)]
    single: dict[str, list[float]] = {name: [] for name in names}
    batched: dict[str, list[float]] = {name: [] for name in names}

    def timed(name: str, call: list[str]) -> float:
        if cancel is not None:
            cancel.check()
        t0 = time.perf_counter()
        predictors[name](call)
        return (time.perf_counter() - t0) * 1000

    def order(i: int) -> list[str]:
        shift = i % len(names)
        return names[shift:] + names[:shift]

    for i in range(warmup):
        for name in order(i):
            timed(name, [texts[i % len(texts)]])
    for name in names:
        timed(name, batch)
    block = max(1, block)
    counted = 0
    for i in range(-(-max(1, single_calls) // block)):
        n = min(block, single_calls - counted)
        for name in order(i):
            timed(name, [texts[counted % len(texts)]])  # the first call after another model's: untimed
            single[name] += [timed(name, [texts[(counted + k) % len(texts)]]) for k in range(n)]
        counted += n
    for i in range(batch_rounds):
        for name in order(i):
            batched[name].append(timed(name, batch))
    out = {}
    for name in names:
        per_batch = percentile_ms(batched[name], 50)
        out[name] = {
            "batch1_ms_p50": percentile_ms(single[name], 50),
            "batch1_ms_p95": percentile_ms(single[name], 95),
            "batch64_ms_p50": per_batch,
            "batch64_per_s": batch_size / max(per_batch / 1000, 1e-9) if per_batch is not None else None,
        }
    return out


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
