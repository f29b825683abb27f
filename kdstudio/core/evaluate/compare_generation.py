"""The comparison of a generation run with its teacher, prompt by prompt: what the Compare tab shows
for a generation project.

:func:`prepare_generation_compare` is the job the viewer runs before it shows a run: it reads every
prompt the run has a completion for (valid and test), the teacher's completion, every reference and
the stored scores into one :class:`GenerationCompareData`, off the Qt thread. A generation run has a
few thousand held-out prompts at most (E2E: about 1,300 meaning representations), so the filters,
the search and the sort (:func:`query_generation`) run over those rows in memory, in milliseconds,
with the reviews passed in (they change while the viewer is open; the rows do not).
:func:`word_diff` is the word-level difference the detail pane draws.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdstudio.core.errors import ConfigError
from kdstudio.core.evaluate.compare import compare_teacher
from kdstudio.core.events import CancelToken, Event, Finished, JobResult, Progress
from kdstudio.core.store import Project

#: The splits a generation run has completions for, in the order the viewer lists them.
GENERATION_SPLITS = ("test", "valid")
#: The sorts the viewer offers: the score (lowest first by default), the id, the student's mean
#: token log-probability, the time one completion took.
GENERATION_SORTS = ("score", "id", "confidence", "latency_ms")
#: The review marks a row can be filtered by.
REVIEW_MARKS = ("reviewed", "unreviewed", "corrected", "golden", "excluded")

Range = tuple[float | None, float | None]


@dataclass(frozen=True)
class GenerationRow:
    """One prompt of a generation run: what the student wrote beside what the teacher wrote."""

    example: int
    split: str
    prompt: str
    student: str | None  #: the student's completion (None: the run has none for this prompt)
    teacher: str | None  #: the teacher's completion as harvested (None: the teacher has no answer)
    references: tuple[str, ...]  #: every reference of the prompt, in import order
    score: float | None  #: the viewer's sort key: ROUGE-L vs the teacher, else vs the references
    teacher_scores: dict[str, float]  #: the student's completion scored against the teacher's
    reference_scores: dict[str, float]  #: ... and against the references
    confidence: float | None  #: the student's mean token log-probability
    latency_ms: float | None  #: the time the student took for this completion

    def matches(self, needle: str, corrected: str | None = None) -> bool:
        """Whether ``needle`` (lower case) is in the prompt, a completion, a reference or ``corrected``."""
        texts = (self.prompt, self.student, self.teacher, corrected, *self.references)
        return any(needle in t.lower() for t in texts if t)


@dataclass(frozen=True)
class GenerationFilters:
    """Which rows of a generation comparison to look at; every field left at its default means "any"."""

    splits: tuple[str, ...] = field(default=("test",), metadata={"help": "splits whose rows are compared: test, valid"})
    text: str | None = field(
        default=None,
        metadata={"help": "only rows whose prompt, completions or references contain this (case-insensitive)"},
    )
    score: Range | None = field(default=None, metadata={"help": "(low, high): the row's score, inclusive"})
    worst: int | None = field(default=None, metadata={"help": "only the N lowest-scored rows that pass the rest"})
    review: str | None = field(default=None, metadata={"help": "only rows with this mark: " + ", ".join(REVIEW_MARKS)})

    def validate(self) -> None:
        unknown = [s for s in self.splits if s not in GENERATION_SPLITS]
        if unknown or not self.splits:
            what = f"unknown split {unknown[0]!r}" if unknown else "no split given"
            raise ConfigError(f"{what}; a generation run is compared on {', '.join(GENERATION_SPLITS)}")
        if self.review is not None and self.review not in REVIEW_MARKS:
            raise ConfigError(f"the review filter is one of {', '.join(REVIEW_MARKS)}, not {self.review!r}")
        if self.worst is not None and self.worst < 1:
            raise ConfigError(f"worst N takes a positive count, not {self.worst}")


@dataclass(frozen=True)
class GenerationCompareData(JobResult):
    """A generation run ready for the viewer: every prompt it has a completion for."""

    run: int
    teacher: int | None
    teacher_spec: str | None
    rows: tuple[GenerationRow, ...]  #: in example order


@dataclass(frozen=True)
class GenerationPage:
    """The rows that pass the filters, in the viewer's order, with how many the splits hold in all."""

    rows: list[GenerationRow]
    total: int  #: rows of the chosen splits before the other filters
    mean_score: float | None  #: of the rows shown (None: none is scored)


@dataclass(frozen=True)
class GenerationCounts:
    """What a run's comparison holds in the chosen splits."""

    rows: int
    scored: int
    mean_score: float | None
    reviewed: int
    corrected: int
    golden: int
    excluded: int


def generation_run(project: Project, run_id: int | None) -> int:
    """The generation run to compare: ``run_id``, else the latest finished run. Raises ``ConfigError``."""
    if project.task != "generation":
        raise ConfigError("this project is a classification task; its comparison is `kdstudio compare`")
    if run_id is None:
        run_id = project.preferred_run()
        if run_id is None:
            raise ConfigError("no finished run in this project; train a student first (kdstudio train)")
    if project.run(run_id) is None:
        raise ConfigError(f"no run #{run_id} in this project")
    return run_id


def load_generation_compare(project: Project, run_id: int, teacher_id: int | None = None) -> GenerationCompareData:
    """Every prompt run ``run_id`` has a completion for, beside ``teacher_id``'s (default: the run's
    teacher, else the project's) completion and every reference."""
    teacher_id = compare_teacher(project, run_id, teacher_id)
    teacher = project.teacher(teacher_id) if teacher_id is not None else None
    rows: list[GenerationRow] = []
    for split in GENERATION_SPLITS:
        predictions = project.predictions(run_id, split)
        if not predictions:
            continue
        prompts = {ex: text for ex, text, _label in project.examples(split)}
        answers = {o["id"]: o["completion"] for o in project.teacher_outputs(teacher_id, [split])} if teacher else {}
        references = project.references_of(split=split)
        for p in predictions:
            ex = p["example"]
            scores = p.get("scores") or {}
            rows.append(GenerationRow(
                example=ex,
                split=split,
                prompt=prompts.get(ex, ""),
                student=p.get("completion"),
                teacher=answers.get(ex),
                references=tuple(references.get(ex, ())),
                score=p.get("score"),
                teacher_scores=dict(scores.get("teacher") or {}),
                reference_scores=dict(scores.get("references") or {}),
                confidence=p.get("confidence"),
                latency_ms=p.get("latency_ms"),
            ))
    rows.sort(key=lambda r: r.example)
    return GenerationCompareData(run=run_id, teacher=teacher_id, teacher_spec=teacher["spec"] if teacher else None,
                                 rows=tuple(rows))


def prepare_generation_compare(
    project_path: str | Path,
    run_id: int | None = None,
    teacher_id: int | None = None,
    *,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Read generation run ``run_id`` (default: the latest finished) for the viewer;
    ``Finished(GenerationCompareData)``."""
    with Project(project_path) as project:
        yield Progress("compare", 0, 1)
        run_id = generation_run(project, run_id)
        data = load_generation_compare(project, run_id, teacher_id)
        yield Progress("compare", 1, 1)
    yield Finished(data)


def review_mark(review: Mapping[str, Any] | None, mark: str) -> bool:
    """Whether a stored review (``Project.reviews()``'s values) carries ``mark`` (one of :data:`REVIEW_MARKS`)."""
    if mark == "unreviewed":
        return not review
    if not review:
        return False
    return {"reviewed": True, "corrected": bool(review.get("corrected_completion")),
            "golden": bool(review.get("golden")), "excluded": bool(review.get("exclude"))}[mark]


def _sort_key(sort: str) -> Any:
    if sort == "id":
        return lambda r: r.example
    attr = {"score": "score", "confidence": "confidence", "latency_ms": "latency_ms"}[sort]
    return lambda r: getattr(r, attr)


def query_generation(
    data: GenerationCompareData,
    filters: GenerationFilters,
    reviews: Mapping[int, Mapping[str, Any]] | None = None,
    *,
    sort: str = "score",
    descending: bool = False,
) -> GenerationPage:
    """The rows of ``data`` that pass ``filters`` (``reviews``: ``Project.reviews()``), sorted by
    ``sort`` (one of :data:`GENERATION_SORTS`; ascending: lowest score first). Rows without the sort
    value come last either way; ties go by example id. ``worst`` keeps the N lowest-scored rows."""
    filters.validate()
    if sort not in GENERATION_SORTS:
        raise ConfigError(f"unknown sort {sort!r}; choose one of {', '.join(GENERATION_SORTS)}")
    reviews = reviews or {}
    in_splits = [r for r in data.rows if r.split in filters.splits]
    rows = in_splits
    if filters.text and filters.text.strip():
        needle = filters.text.strip().lower()
        rows = [r for r in rows if r.matches(needle, (reviews.get(r.example) or {}).get("corrected_completion"))]
    if filters.review is not None:
        rows = [r for r in rows if review_mark(reviews.get(r.example), filters.review)]
    if filters.score is not None:
        low, high = filters.score
        rows = [r for r in rows if r.score is not None and (low is None or r.score >= low)
                and (high is None or r.score <= high)]
    if filters.worst is not None:
        rows = sorted((r for r in rows if r.score is not None), key=lambda r: (r.score, r.example))[: filters.worst]
    key = _sort_key(sort)
    present = sorted((r for r in rows if key(r) is not None), key=lambda r: (key(r), r.example))
    if descending:
        present.sort(key=key, reverse=True)  # stable: ties stay in id order
    missing = sorted((r for r in rows if key(r) is None), key=lambda r: r.example)
    scores = [r.score for r in rows if r.score is not None]
    return GenerationPage(rows=present + missing, total=len(in_splits),
                          mean_score=sum(scores) / len(scores) if scores else None)


def generation_counts(
    data: GenerationCompareData,
    reviews: Mapping[int, Mapping[str, Any]] | None = None,
    splits: Sequence[str] = ("test",),
) -> GenerationCounts:
    """How many rows the splits hold, how many are scored (and their mean) and reviewed."""
    reviews = reviews or {}
    rows = [r for r in data.rows if r.split in splits]
    scores = [r.score for r in rows if r.score is not None]

    def count(mark: str) -> int:
        return sum(review_mark(reviews.get(r.example), mark) for r in rows)

    mean = sum(scores) / len(scores) if scores else None
    return GenerationCounts(rows=len(rows), scored=len(scores), mean_score=mean,
                            reviewed=count("reviewed"), corrected=count("corrected"), golden=count("golden"),
                            excluded=count("excluded"))


_WORD = re.compile(r"\S+")


def word_diff(student: str | None, teacher: str | None) -> list[tuple[str, str]]:
    """The student's completion against the teacher's, word by word: ``(op, text)`` pieces in
    reading order, ``op`` one of ``equal`` (both wrote it), ``delete`` (the teacher wrote it, the
    student did not) and ``insert`` (the student wrote it, the teacher did not). A replaced run of
    words is its deletion then its insertion. Words are split at white space (difflib's
    SequenceMatcher over the word lists, no junk heuristic)."""
    a = _WORD.findall(teacher or "")
    b = _WORD.findall(student or "")
    out: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(("equal", " ".join(a[i1:i2])))
            continue
        if op in ("delete", "replace"):
            out.append(("delete", " ".join(a[i1:i2])))
        if op in ("insert", "replace"):
            out.append(("insert", " ".join(b[j1:j2])))
    return out


def excerpt(text: str | None, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


__all__ = [
    "GENERATION_SORTS",
    "GENERATION_SPLITS",
    "REVIEW_MARKS",
    "GenerationCompareData",
    "GenerationCounts",
    "GenerationFilters",
    "GenerationPage",
    "GenerationRow",
    "excerpt",
    "generation_counts",
    "generation_run",
    "load_generation_compare",
    "prepare_generation_compare",
    "query_generation",
    "review_mark",
    "word_diff",
]
