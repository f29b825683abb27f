"""The int8 twin of an exported ONNX classifier, and the check that it still predicts like the float one.

:func:`write_int8` quantizes ``model.onnx`` into ``model_int8.onnx`` with onnxruntime's dynamic
quantization, then runs both files on every text it is given (the project's test split), tokenized
with the student's own saved tokenizer as a user's service would, and counts on how many the top
label is the same. It tries the operator sets of :data:`~kdstudio.core.export.onnx.INT8_OP_SETS` in
order — everything onnxruntime quantizes (one scale per weight, then one per output channel), then
matrix products and embeddings only — and keeps the
first whose agreement reaches :data:`INT8_MIN_AGREEMENT`; when none does, the export fails in one
line that names the best agreement reached.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from kdstudio.core.errors import ConfigError
from kdstudio.core.events import CancelToken, Event, Log

INT8_MIN_AGREEMENT = 0.995  #: top-1 agreement with the float model an int8 export must reach


class Int8CheckFailed(ConfigError):
    """No way of quantizing kept the float model's top label on enough texts."""


INT8_FILE = "model_int8.onnx"
FLOAT_FILE = "model.onnx"
BATCH = 64


def int8_batches(tokenizer: Any, texts: Sequence[str], max_length: int, *, batch_size: int = BATCH) -> list[Any]:
    """``texts`` tokenized with ``tokenizer`` (:func:`~kdstudio.core.students.tokenizer.encode`),
    sorted by length and padded in batches of ``batch_size``: a list of ``(input_ids, attention_mask)``."""
    from kdstudio.core.students import pad_batch
    from kdstudio.core.students.tokenizer import encode, pad_id

    tokens = sorted(encode(tokenizer, list(texts), max_length), key=len)
    pad = pad_id(tokenizer)
    return [pad_batch(tokens[i : i + batch_size], pad) for i in range(0, len(tokens), batch_size)]


def write_int8(
    out: Path,
    folder: Path,
    meta: dict[str, Any],
    texts: Sequence[str],
    *,
    cancel: CancelToken | None = None,
) -> Generator[Event, None, dict[str, Any]]:
    """Write ``out/model_int8.onnx`` beside ``out/model.onnx`` and check it on ``texts`` with the
    tokenizer of the student in ``folder``. Yields ``Log`` events; returns the ``int8_*`` fields of
    :class:`~kdstudio.core.export.ExportResult`. Raises ``ConfigError`` when no operator set reaches
    :data:`INT8_MIN_AGREEMENT` (the int8 file is then removed)."""
    from kdstudio.core.export.onnx import INT8_OP_SETS, compare_outputs, file_size, quantize_int8, session
    from kdstudio.core.students.tokenizer import load_tokenizer

    cancel = cancel or CancelToken()
    batches = int8_batches(load_tokenizer(folder / "tokenizer"), texts, meta["max_length"])
    reference = session(out / FLOAT_FILE)
    target = out / INT8_FILE
    best: tuple[float, str] | None = None
    for name, op_types, per_channel in INT8_OP_SETS:
        cancel.check()
        quantize_int8(out / FLOAT_FILE, target, op_types, per_channel=per_channel)
        agreement, max_diff, rows = compare_outputs(reference, session(target), batches)
        if agreement >= INT8_MIN_AGREEMENT:
            yield Log(f"int8 ({name} operators): top-1 agreement with the float model {agreement:.2%} "
                      f"on {rows:,} texts, {file_size(target) / 1e6:.2f} MB")
            return {"int8_agreement": round(agreement, 6), "int8_checked_examples": rows,
                    "int8_max_abs_diff": max_diff, "int8_ops": name, "int8_bytes": file_size(target)}
        yield Log(f"int8 ({name} operators) agrees with the float model on only {agreement:.2%} of {rows:,} texts "
                  f"(needs {INT8_MIN_AGREEMENT:.1%})" + ("; trying the next way" if name != INT8_OP_SETS[-1][0]
                                                          else ""), "warning")
        if best is None or agreement > best[0]:
            best = (agreement, name)
    target.unlink(missing_ok=True)
    assert best is not None
    raise Int8CheckFailed(
        f"the int8 model agrees with the float one on at most {best[0]:.2%} of {len(texts):,} texts "
        f"({best[1]} operators quantized; {INT8_MIN_AGREEMENT:.1%} needed), so no int8 model was written; "
        "export without --int8"
    )


def int8_summary(result: Any) -> str | None:
    """One line on an export's int8 model, as the CLI and the app show it, or None without one:
    ``int8: model_int8.onnx 0.74 MB (float 2.9 MB, 3.9x smaller), top-1 agreement with float 99.87%
    on 3,080 test texts``."""
    if result.int8_bytes is None or result.int8_agreement is None:
        return None
    where = "test texts" if result.int8_texts == "test" else "project texts"
    ratio = f", {result.onnx_bytes / result.int8_bytes:.1f}x smaller" if result.onnx_bytes and result.int8_bytes else ""
    float_mb = f"float {_mb(result.onnx_bytes)}" if result.onnx_bytes else "float size unknown"
    return (f"int8: {INT8_FILE} {_mb(result.int8_bytes)} ({float_mb}{ratio}), top-1 agreement with float "
            f"{result.int8_agreement:.2%} on {result.int8_checked_examples:,} {where}"
            + (f" (quantized: {result.int8_ops})" if result.int8_ops and result.int8_ops != "all" else ""))


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.2f} MB" if n_bytes < 1e7 else f"{n_bytes / 1e6:.1f} MB"


__all__ = [
    "FLOAT_FILE", "INT8_FILE", "INT8_MIN_AGREEMENT", "Int8CheckFailed", "int8_batches", "int8_summary", "write_int8",
]
