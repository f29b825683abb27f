"""Export the rows of a generation comparison the Compare tab shows (its **Export…**, Ctrl+E) as CSV or
JSON Lines, with every filter the viewer applied (split, search, score range, worst N, review marks).

The records and the CSV columns are those of ``kdstudio compare`` on a generation run (one row per
prompt: the prompt, the teacher's and the student's completions, every reference, the scores and the
person's review), so a file exported from the app and one from the command line read the same.
Every CSV cell passes through :func:`~kdstudio.core.csvsafe.formula_safe`."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kdstudio.core.csvsafe import formula_safe
from kdstudio.core.evaluate.compare_generation import GenerationRow
from kdstudio.core.export.compare import export_format

#: The CSV's columns (JSON Lines: the references as a list and ``scores`` as stored instead of the
#: flattened score columns), as ``kdstudio compare`` writes a generation run.
VIEW_EXPORT_KEYS = (
    "example",
    "split",
    "prompt",
    "teacher_completion",
    "student_completion",
    "references",
    "score",
    "rouge_l_teacher",
    "chrf_teacher",
    "rouge_l_references",
    "chrf_references",
    "exact_references",
    "length_ratio_references",
    "confidence",
    "latency_ms",
    "corrected_completion",
    "exclude",
    "golden",
    "note",
)
#: How a CSV cell joins a prompt's references.
REFERENCE_SEPARATOR = " ||| "


def view_record(row: GenerationRow, review: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One row as an export record (the JSON Lines line)."""
    review = review or {}
    scores: dict[str, dict[str, float]] = {}
    if row.teacher_scores:
        scores["teacher"] = dict(row.teacher_scores)
    if row.reference_scores:
        scores["references"] = dict(row.reference_scores)
    return {
        "example": row.example, "split": row.split, "prompt": row.prompt, "teacher_completion": row.teacher,
        "student_completion": row.student, "references": list(row.references), "scores": scores or None,
        "score": row.score, "confidence": row.confidence, "latency_ms": row.latency_ms,
        "corrected_completion": review.get("corrected_completion"), "exclude": bool(review.get("exclude")),
        "golden": bool(review.get("golden")), "note": review.get("note"),
    }


def write_generation_view(
    rows: Sequence[GenerationRow],
    reviews: Mapping[int, Mapping[str, Any]] | None,
    path: str | Path,
    fmt: str | None = None,
) -> int:
    """Write ``rows`` (with their ``reviews``), in their order, to ``path`` as ``csv`` or ``jsonl``;
    return how many."""
    fmt = export_format(path, fmt)
    reviews = reviews or {}
    records = [view_record(r, reviews.get(r.example)) for r in rows]
    path = Path(path)
    if fmt == "jsonl":
        with path.open("w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return len(records)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(VIEW_EXPORT_KEYS)
        for record in records:
            scores = record["scores"] or {}
            flat = {f"{metric}_{part}": (scores.get(part) or {}).get(metric)
                    for part in ("teacher", "references") for metric in ("rouge_l", "chrf", "exact", "length_ratio")}
            cells = {**record, **flat, "references": REFERENCE_SEPARATOR.join(record["references"])}
            writer.writerow([formula_safe(cells.get(k)) for k in VIEW_EXPORT_KEYS])
    return len(records)


__all__ = ["REFERENCE_SEPARATOR", "VIEW_EXPORT_KEYS", "view_record", "write_generation_view"]
