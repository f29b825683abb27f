"""Export the rows of a generation comparison the Compare tab shows (its **Export…**, Ctrl+E) as CSV or
JSON Lines: prompt, the student's and the teacher's completions, every reference, the scores and
the person's review. Every CSV cell passes through :func:`~kdstudio.core.export.csv_safe`."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kdstudio.core.evaluate.compare_generation import GenerationRow
from kdstudio.core.export import csv_safe
from kdstudio.core.export.compare import export_format

#: The CSV's columns before the scores (``teacher_<metric>``, ``references_<metric>``).
GENERATION_EXPORT_KEYS = (
    "example",
    "split",
    "score",
    "prompt",
    "student",
    "teacher",
    "corrected_completion",
    "references",
    "confidence",
    "latency_ms",
    "exclude",
    "golden",
    "note",
)
#: Separates the references in one CSV cell (JSON Lines keeps them as a list).
REFERENCE_SEPARATOR = "\n---\n"


def generation_record(row: GenerationRow, review: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One row as an export record."""
    review = review or {}
    return {
        "example": row.example,
        "split": row.split,
        "score": row.score,
        "prompt": row.prompt,
        "student": row.student,
        "teacher": row.teacher,
        "corrected_completion": review.get("corrected_completion"),
        "references": list(row.references),
        "confidence": row.confidence,
        "latency_ms": row.latency_ms,
        "exclude": bool(review.get("exclude")),
        "golden": bool(review.get("golden")),
        "note": review.get("note"),
        "scores": {"teacher": dict(row.teacher_scores), "references": dict(row.reference_scores)},
    }


def write_generation_rows(
    rows: Sequence[GenerationRow],
    reviews: Mapping[int, Mapping[str, Any]] | None,
    path: str | Path,
    fmt: str | None = None,
) -> int:
    """Write ``rows`` (with their ``reviews``) to ``path`` as ``csv`` or ``jsonl``; return how many."""
    fmt = export_format(path, fmt)
    reviews = reviews or {}
    records = [generation_record(r, reviews.get(r.example)) for r in rows]
    path = Path(path)
    if fmt == "jsonl":
        with path.open("w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return len(records)
    metrics = sorted({m for r in rows for m in (*r.teacher_scores, *r.reference_scores)})
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*GENERATION_EXPORT_KEYS, *(f"teacher_{m}" for m in metrics),
                         *(f"references_{m}" for m in metrics)])
        for record in records:
            cells = [REFERENCE_SEPARATOR.join(record[k]) if k == "references" else record[k]
                     for k in GENERATION_EXPORT_KEYS]
            cells += [record["scores"]["teacher"].get(m) for m in metrics]
            cells += [record["scores"]["references"].get(m) for m in metrics]
            writer.writerow([csv_safe(c) for c in cells])
    return len(records)


__all__ = ["GENERATION_EXPORT_KEYS", "REFERENCE_SEPARATOR", "generation_record", "write_generation_rows"]
