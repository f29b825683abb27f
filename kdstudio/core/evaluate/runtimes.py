"""Latency as users serve it: the student and a local teacher in each runtime, timed together.

The evaluation builds one predictor per (model, runtime) — raw texts in, probabilities (or the
student's logits) out, tokenization included — and times them all in one interleaved session
(:func:`~kdstudio.core.evaluate.speed.time_interleaved`):

- ``student/torch``: the student as trained (``predict_probs``);
- ``student/onnx`` and ``student/onnx_int8``: the student exported as ``kdstudio export --format onnx``
  writes it, and that file dynamically quantized to int8, served by onnxruntime on the CPU;
- ``teacher/torch``: a teacher that runs here (``predict_probs``);
- ``teacher/onnx``: the same teacher as one ONNX graph (its
  :meth:`~kdstudio.core.teachers.base.ExportableTeacher.classifier_module`: encoder, pooling and
  probe, or classifier and softmax), checked against torch on a few texts.

The files go to a temporary folder that the evaluation removes; their sizes are reported. ONNX
sessions use the thread count torch uses for the timing. A metered or recorded teacher has no ONNX
form: it keeps the latency its harvest recorded.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from kdstudio.core.evaluate.speed import RUNTIME_KEYS, megabytes

#: Runtimes of the student and of a local teacher, in the order the report lists them.
STUDENT_RUNTIMES = ("torch", "onnx", "onnx_int8")
TEACHER_RUNTIMES = ("torch", "onnx")
#: Above this max abs difference between the teacher's ONNX and torch probabilities, a warning.
TEACHER_PARITY_TOLERANCE = 1e-3
#: How many texts the teacher's parity check runs.
PARITY_TEXTS = 8

Predictor = Callable[[list[str]], Any]


def sample_ids(tokenizer: Any, texts: list[str], max_length: int) -> tuple[Any, Any]:
    """Two padded rows of token ids to trace an export on."""
    from kdstudio.core.students import pad_batch
    from kdstudio.core.students.tokenizer import encode, pad_id

    tokens = encode(tokenizer, (texts[:2] if len(texts) >= 2 else (texts or ["a short example"]) * 2), max_length)
    return pad_batch(tokens, pad_id(tokenizer))


def student_onnx(
    folder: Path, texts: list[str], workdir: Path, *, threads: int | None
) -> tuple[dict[str, Predictor], dict[str, float | None]]:
    """Export the student in ``folder`` (float, as ``kdstudio export`` does, and int8) into ``workdir``:
    ``({"onnx": predictor, "onnx_int8": predictor}, {"student_onnx_size_mb": …, "student_int8_size_mb": …})``."""
    from kdstudio.core.export.onnx import OnnxClassifier, export_classifier, file_size, quantize_int8
    from kdstudio.core.students import load_student

    model, tokenizer, meta = load_student(folder, device="cpu")
    max_length = int(meta["max_length"])
    float_path = export_classifier(model, sample_ids(tokenizer, texts, max_length), workdir / "student.onnx")
    with _quiet_logs():  # onnxruntime's advice to pre-process the model, on the root logger
        int8_path = quantize_int8(float_path, workdir / "student.int8.onnx")
    predictors = {
        "onnx": OnnxClassifier(float_path, tokenizer, max_length, threads=threads),
        "onnx_int8": OnnxClassifier(int8_path, tokenizer, max_length, threads=threads),
    }
    sizes = {
        "student_onnx_size_mb": megabytes(file_size(float_path)),
        "student_int8_size_mb": megabytes(file_size(int8_path)),
    }
    return predictors, sizes


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    before = logging.root.manager.disable
    logging.disable(max(before, logging.WARNING))
    try:
        yield
    finally:
        logging.disable(before)


def teacher_onnx(
    teacher: Any, texts: list[str], workdir: Path, *, threads: int | None
) -> tuple[Predictor, float | None, float]:
    """Export a prepared local teacher (an :class:`~kdstudio.core.teachers.base.ExportableTeacher`)
    to ``workdir`` as one ONNX graph ending in its probabilities: ``(predictor, size in MB, max abs
    difference from torch's predict_probs on a few texts)``."""
    import numpy as np

    from kdstudio.core.export.onnx import OnnxClassifier, export_classifier, file_size

    module, tokenizer, max_length = teacher.classifier_module()
    if any(p.device.type != "cpu" for p in module.parameters()):
        module = copy.deepcopy(module).cpu()  # the export traces on the CPU; the teacher stays where it is
    path = export_classifier(module, sample_ids(tokenizer, texts, max_length), workdir / "teacher.onnx",
                             output="probs")
    predictor = OnnxClassifier(path, tokenizer, max_length, threads=threads)
    check = texts[:PARITY_TEXTS] or ["a short example"]
    diff = float(np.abs(np.asarray(predictor.predict(check)) - np.asarray(teacher.predict_probs(check))).max())
    return predictor, megabytes(file_size(path)), diff


def latency_matrix(timings: Mapping[str, Mapping[str, float | None]]) -> dict[str, dict[str, Any]]:
    """``time_interleaved``'s result keyed ``"student/onnx"``… as the report's ``latency``:
    ``{"student": {runtime: R | None}, "teacher": {runtime: R | None}}``, R rounded to 4 decimals."""

    def entry(name: str) -> dict[str, float | None] | None:
        found = timings.get(name)
        if not found or found.get("batch1_ms_p50") is None:
            return None
        return {k: None if found.get(k) is None else round(float(found[k]), 4) for k in RUNTIME_KEYS}

    return {
        "student": {r: entry(f"student/{r}") for r in STUDENT_RUNTIMES},
        "teacher": {r: entry(f"teacher/{r}") for r in TEACHER_RUNTIMES},
    }


def speedups(matrix: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """Teacher batch-1 p50 / student batch-1 p50 in each runtime family; for ``onnx_int8`` the
    teacher as ONNX float (it is not quantized) against the int8 student."""

    def ratio(teacher: str, student: str) -> float | None:
        t, s = matrix["teacher"].get(teacher), matrix["student"].get(student)
        if not t or not s or not t["batch1_ms_p50"] or not s["batch1_ms_p50"]:
            return None
        return round(t["batch1_ms_p50"] / s["batch1_ms_p50"], 3)

    return {"torch": ratio("torch", "torch"), "onnx": ratio("onnx", "onnx"), "onnx_int8": ratio("onnx", "onnx_int8")}


__all__ = [
    "PARITY_TEXTS",
    "STUDENT_RUNTIMES",
    "TEACHER_PARITY_TOLERANCE",
    "TEACHER_RUNTIMES",
    "latency_matrix",
    "sample_ids",
    "speedups",
    "student_onnx",
    "teacher_onnx",
]
