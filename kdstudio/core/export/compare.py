"""Export the comparison of a run with its teacher as CSV or JSON Lines: ``kdstudio compare`` and
the Compare tab's **Export…** (Ctrl+E).

A generation run exports one row per prompt, as the Compare tab's **Export…** does
(:mod:`kdstudio.core.export.compare_generation`: the prompt, the teacher's and the student's
completions, the references, the scores and the review fields), lowest score first; only the
``splits`` and ``text`` filters apply.

:func:`export_compare` writes every row that matches the filters, in the viewer's order;
:func:`write_rows` writes rows already read (the viewer's selection). Label ids become names and
probabilities are keyed by label; every CSV cell passes through :func:`~kdstudio.core.csvsafe.formula_safe`.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kdstudio.core.csvsafe import formula_safe
from kdstudio.core.errors import ConfigError
from kdstudio.core.evaluate.compare import SORTS, CompareFilters, compare_rows, compare_run, compare_teacher
from kdstudio.core.events import CancelToken, Event, Finished, JobResult, Progress

FORMATS = ("csv", "jsonl")
#: The CSV columns before the per-label probabilities (``teacher_p_<label>``, ``student_p_<label>``).
EXPORT_KEYS = (
    "example",
    "text",
    "gold",
    "teacher_label",
    "teacher_confidence",
    "student_label",
    "student_confidence",
    "kl",
    "margin",
    "entropy",
    "corrected_label",
    "note",
)


#: A generation run's CSV columns (JSON Lines: the references as a list and ``scores`` as stored
#: instead of the flattened score columns).
@dataclass(frozen=True)
class CompareExportConfig:
    """What ``kdstudio compare`` writes, and where."""

    out: str = field(metadata={"help": "file to write: .csv, or .jsonl for JSON Lines"})
    run: int | None = field(
        default=None, metadata={"help": "run id (default: the latest finished distillation run, as the Compare tab)"}
    )
    teacher: int | None = field(default=None, metadata={"help": "teacher id (default: the run's teacher)"})
    format: str | None = field(
        default=None, metadata={"help": "csv or jsonl (default: jsonl for a .jsonl or .json file, else csv)"}
    )
    filters: CompareFilters = field(default_factory=CompareFilters, metadata={"help": "which rows to write"})
    sort: str = field(default="kl", metadata={"help": "order of the rows: " + ", ".join(SORTS)})
    descending: bool = field(default=True, metadata={"help": "largest first"})


@dataclass(frozen=True)
class CompareExportResult(JobResult):
    """What ``kdstudio compare --json`` prints."""

    run: int
    teacher: int | None
    out: str
    format: str
    rows: int
    filters: dict[str, Any]  # the store's filters that chose the rows (label ids, not names)
    seconds: float


def export_format(path: str | Path, fmt: str | None = None) -> str:
    """``fmt`` when given, else guessed from the file name: jsonl for ``.jsonl``/``.json``, else csv."""
    if fmt is None:
        fmt = "jsonl" if Path(path).suffix.lower() in (".jsonl", ".json") else "csv"
    if fmt not in FORMATS:
        raise ConfigError(f"the comparison exports as csv or jsonl, not {fmt!r}")
    return fmt


def export_record(row: dict[str, Any], labels: Sequence[str]) -> dict[str, Any]:
    """One comparison row as an export record: label names instead of ids, probabilities by name."""

    def name(i: int | None) -> str | None:
        return labels[i] if i is not None and 0 <= i < len(labels) else None

    def probs(values: list[float] | None) -> dict[str, float] | None:
        return {labels[i]: round(float(p), 6) for i, p in enumerate(values)} if values else None

    return {
        "example": row["example"],
        "text": row["text"],
        "gold": name(row["gold"]),
        "teacher_label": name(row["teacher_label"]),
        "teacher_confidence": row["teacher_confidence"],
        "student_label": name(row["student_label"]),
        "student_confidence": row["confidence"],
        "kl": row["kl"],
        "margin": row["margin"],
        "entropy": row["entropy"],
        "corrected_label": name(row.get("corrected_label")),
        "note": row.get("note"),
        "teacher_probabilities": probs(row.get("teacher_probs")),
        "student_probabilities": probs(row.get("student_probs")),
    }


def write_rows(rows: Sequence[dict[str, Any]], labels: Sequence[str], path: str | Path, fmt: str) -> int:
    """Write comparison rows to ``path`` as ``csv`` or ``jsonl``; return how many. CSV has one
    ``teacher_p_<label>`` and ``student_p_<label>`` column per label, and every cell passes
    through ``formula_safe`` so a spreadsheet never runs a text as a formula."""
    fmt = export_format(path, fmt)
    path = Path(path)
    records = [export_record(r, labels) for r in rows]
    if fmt == "jsonl":
        with path.open("w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return len(records)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*EXPORT_KEYS, *(f"teacher_p_{x}" for x in labels), *(f"student_p_{x}" for x in labels)])
        for record in records:
            t = record["teacher_probabilities"] or {}
            s = record["student_probabilities"] or {}
            cells = [record[k] for k in EXPORT_KEYS] + [t.get(x) for x in labels] + [s.get(x) for x in labels]
            writer.writerow([formula_safe(c) for c in cells])
    return len(records)


def export_compare(
    project_path: str | Path, config: CompareExportConfig, *, cancel: CancelToken | None = None
) -> Iterator[Event]:
    """Write every row of the comparison that matches ``config.filters``, in the viewer's order,
    to ``config.out``; ``Progress("export")`` per chunk read, then ``Finished(CompareExportResult)``."""
    from kdstudio.core.store import Project

    t0 = time.monotonic()
    fmt = export_format(config.out, config.format)
    with Project(project_path) as project:
        generation = project.task == "generation"
    if generation:
        yield from _export_generation(project_path, config, fmt, t0)
        return
    if config.sort not in SORTS:
        raise ConfigError(f"unknown sort {config.sort!r}; choose one of: {', '.join(SORTS)}")
    rows: list[dict[str, Any]] = []
    with Project(project_path) as project:
        run_id = compare_run(project, config.run)
        teacher_id = compare_teacher(project, run_id, config.teacher)
        labels = project.labels()
        filters = config.filters.store_filters(project.label_ids())
        for page, total in compare_rows(
            project, run_id, teacher_id, filters, sort=config.sort, descending=config.descending, cancel=cancel
        ):
            rows += page
            yield Progress("export", len(rows), total)
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = write_rows(rows, labels, out, fmt)
    yield Finished(
        CompareExportResult(
            run=run_id,
            teacher=teacher_id,
            out=str(out),
            format=fmt,
            rows=n,
            filters=filters,
            seconds=round(time.monotonic() - t0, 3),
        )
    )


def _export_generation(project_path: str | Path, config: CompareExportConfig, fmt: str, t0: float) -> Iterator[Event]:
    """A generation run's rows, as the Compare tab reads and exports them
    (:mod:`kdstudio.core.evaluate.compare_generation`, :mod:`kdstudio.core.export.compare_generation`)."""
    from kdstudio.core.evaluate.compare_generation import (
        GENERATION_SORTS,
        GenerationFilters,
        load_generation_compare,
        query_generation,
    )
    from kdstudio.core.export.compare_generation import write_generation_view
    from kdstudio.core.store import Project

    filters = config.filters
    unused = [f.name for f in fields(filters) if f.name not in ("splits", "text")
              and getattr(filters, f.name) != f.default]
    if unused:
        raise ConfigError(f"a generation run's comparison filters by split and text only, not by "
                          f"{', '.join(unused)}")
    sort = "score" if config.sort == "kl" else config.sort
    if sort not in GENERATION_SORTS:
        raise ConfigError(f"a generation run sorts by {', '.join(GENERATION_SORTS)}, not {sort!r}")
    with Project(project_path) as project:
        run_id = config.run if config.run is not None else project.preferred_run()
        if run_id is None:
            raise ConfigError("no finished run in this project; train a student first (kdstudio train)")
        if project.run(run_id) is None:
            raise ConfigError(f"no run #{run_id} in this project")
        teacher_id = compare_teacher(project, run_id, config.teacher)
        yield Progress("export", 0, 1)
        reviews = project.reviews()
        data = load_generation_compare(project, run_id, teacher_id)
    page = query_generation(data, GenerationFilters(splits=tuple(filters.splits), text=filters.text), reviews,
                            sort=sort)  # lowest first: the rows most worth a look
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = write_generation_view([r for r in page.rows if r.student is not None], reviews, out, fmt)
    yield Progress("export", 1, 1)
    yield Finished(CompareExportResult(run=run_id, teacher=teacher_id, out=str(out), format=fmt, rows=n,
                                       filters={"split": list(filters.splits), "text": filters.text},
                                       seconds=round(time.monotonic() - t0, 3)))


__all__ = [
    "EXPORT_KEYS",
    "FORMATS",
    "CompareExportConfig",
    "CompareExportResult",
    "export_compare",
    "export_format",
    "export_record",
    "write_rows",
]
