"""The comparison of a run with its teacher, example by example: what the app's Compare tab shows and
``kdstudio compare`` exports.

:class:`CompareFilters` names the rows to look at (the viewer's filter bar, the command's flags) and
turns into the store's filter dict (``Project.compare_page``); :func:`compare_rows` reads every
matching row in order, a page at a time; :func:`prepare_compare` is the job the viewer runs before it
shows a run: it builds the store's comparison table when it is missing and reads the teacher's
rationales, off the Qt thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kdstudio.core.errors import ConfigError
from kdstudio.core.events import CancelToken, Event, Finished, JobResult, Progress
from kdstudio.core.store import SPLITS, Project

#: The sorts the store offers, in the order the viewer lists them.
SORTS = ("kl", "margin", "entropy", "confidence", "teacher_confidence", "id")
#: Rows read per query when every matching row is wanted.
CHUNK = 2000

Range = tuple[float | None, float | None]


@dataclass(frozen=True)
class CompareFilters:
    """Which rows of a comparison to look at; every field left at its default means "any".

    Label filters take a label id or a label name (or an id written as text); :meth:`store_filters`
    resolves names against the project's labels.
    """

    splits: tuple[str, ...] = field(
        default=("test",),
        metadata={"help": "splits whose rows are compared: test (held out, as in the evaluation) or "
                          "train,unlabeled (the transfer set the student learned from)"},
    )
    disagreement: bool | None = field(
        default=None,
        metadata={"help": "True: only rows where the student's label differs from the teacher's; "
                          "False: only rows where both answered and agree"},
    )
    gold: str | None = field(
        default=None, metadata={"help": "right / wrong: only rows the student got right / wrong against gold"}
    )
    gold_label: int | str | None = field(default=None, metadata={"help": "only rows of this gold class"})
    student_label: int | str | None = field(default=None, metadata={"help": "only rows the student gave this label"})
    teacher_label: int | str | None = field(default=None, metadata={"help": "only rows the teacher gave this label"})
    confidence: Range | None = field(
        default=None, metadata={"help": "(low, high): the student's top probability, inclusive; either may be None"}
    )
    kl: Range | None = field(
        default=None, metadata={"help": "(low, high): KL(teacher ‖ student), inclusive; either may be None"}
    )
    text: str | None = field(default=None, metadata={"help": "only rows whose text contains this (case-insensitive)"})

    @classmethod
    def from_store(cls, filters: Mapping[str, Any]) -> CompareFilters:
        """The typed form of a store filter dict (what the viewer's table queries with)."""
        values = {k: v for k, v in filters.items() if v is not None}
        split = values.pop("split", None)
        known = {f.name for f in fields(cls)} - {"splits"}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown comparison filters: {', '.join(sorted(unknown))}")
        if split is not None:
            values["splits"] = (split,) if isinstance(split, str) else tuple(split)
        for key in ("confidence", "kl"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def store_filters(self, label_ids: Mapping[str, int] | None = None) -> dict[str, Any]:
        """The store's filter dict (``Project.compare_page``); label names become ids."""
        unknown = [s for s in self.splits if s not in SPLITS]
        if unknown or not self.splits:
            what = f"unknown split {unknown[0]!r}" if unknown else "no split given"
            raise ConfigError(f"{what}; the splits are {', '.join(SPLITS)}")
        if self.gold is not None and self.gold not in ("right", "wrong"):
            raise ConfigError(f"the gold filter is right or wrong, not {self.gold!r}")
        out: dict[str, Any] = {"split": list(self.splits)}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "splits" or value is None:
                continue
            if f.name.endswith("_label") and isinstance(value, str):
                value = _label_id(value, label_ids or {})
            out[f.name] = value
        return out


def _label_id(name: str, label_ids: Mapping[str, int]) -> int:
    if name in label_ids:
        return label_ids[name]
    if name.isdigit() and int(name) in label_ids.values():
        return int(name)
    shown = list(label_ids)[:20]
    raise ConfigError(
        f"unknown label {name!r}; the project's labels are {', '.join(shown)}{' …' if len(label_ids) > 20 else ''}"
    )


def compare_run(project: Project, run_id: int | None) -> int:
    """The run to compare: ``run_id``, else the one the Compare tab opens on (the latest finished
    distillation run). Raises ``ConfigError`` when there is none."""
    if project.task != "classification":
        raise ConfigError("the comparison covers classification projects; this project is a generation task")
    if run_id is None:
        run_id = project.preferred_run()
        if run_id is None:
            raise ConfigError("no finished run in this project; train a student first (kdstudio train)")
    if project.run(run_id) is None:
        raise ConfigError(f"no run #{run_id} in this project")
    return run_id


def compare_teacher(project: Project, run_id: int, teacher_id: int | None = None) -> int | None:
    """The teacher to compare with: ``teacher_id``, else the run's, else the project's default."""
    if teacher_id is not None:
        if project.teacher(teacher_id) is None:
            raise ConfigError(f"no teacher {teacher_id} in this project")
        return teacher_id
    teacher_id = (project.run(run_id) or {}).get("teacher")
    return teacher_id if teacher_id is not None else project.default_teacher()


def compare_rows(
    project: Project,
    run_id: int,
    teacher_id: int | None,
    filters: Mapping[str, Any],
    *,
    sort: str = "kl",
    descending: bool = True,
    cancel: CancelToken | None = None,
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Every row that matches the store ``filters``, in the viewer's order, as ``(page, total)``
    pairs of up to :data:`CHUNK` rows."""
    cancel = cancel or CancelToken()
    total = project.compare_count(run_id, teacher_id, filters=dict(filters))
    for offset in range(0, total, CHUNK):
        cancel.check()
        page, _ = project.compare_page(
            run_id,
            teacher_id,
            filters=dict(filters),
            sort=sort,
            descending=descending,
            offset=offset,
            limit=CHUNK,
            with_total=False,
        )
        yield page, total


@dataclass(frozen=True)
class CompareData(JobResult):
    """A run ready for the viewer: the teacher it is compared with and the teacher's rationales
    (Claude and LM teachers) on the test split, by example id."""

    run: int
    teacher: int | None
    teacher_spec: str | None
    rows: int  # rows in the store's comparison table of (run, teacher)
    rationales: dict[int, str]


def prepare_compare(
    project_path: str | Path,
    run_id: int,
    teacher_id: int | None = None,
    *,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Build the store's comparison table for ``run_id`` when it is missing (a no-op when the
    evaluation built it already) and read the teacher's rationales; ``Finished(CompareData)``."""
    with Project(project_path) as project:
        yield Progress("compare", 0, 1)
        teacher_id = compare_teacher(project, run_id, teacher_id)
        rows = project.ensure_compare_rows(run_id, teacher_id)
        rationales: dict[int, str] = {}
        teacher = project.teacher(teacher_id) if teacher_id is not None else None
        if teacher is not None and teacher.get("kind") in ("claude", "lm"):
            rationales = {
                o["id"]: o["rationale"]
                for o in project.teacher_outputs(teacher_id, ["test"])
                if o.get("rationale")
            }
        yield Progress("compare", 1, 1)
    yield Finished(
        CompareData(
            run=run_id,
            teacher=teacher_id,
            teacher_spec=teacher["spec"] if teacher else None,
            rows=rows,
            rationales=rationales,
        )
    )


__all__ = [
    "SORTS",
    "CompareData",
    "CompareFilters",
    "compare_rows",
    "compare_run",
    "compare_teacher",
    "prepare_compare",
]
