"""What a harvest finishes with: :class:`HarvestResult`, or :class:`HarvestEstimate` for a dry run.

The fields are the keys ``kdstudio harvest --json`` prints, in that order; the GUI and the demo
read the attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from kdstudio.core.events import JobResult
from kdstudio.core.teachers.base import TeacherEstimate
from kdstudio.core.teachers.pricing import usd


@dataclass(frozen=True, kw_only=True)
class HarvestResult(JobResult):
    """A finished harvest. ``n_*``, tokens and ``cost_usd`` count this run's answers;
    ``answered_total``, ``failed_total`` and ``cost_usd_total`` all of the teacher's stored
    answers in the harvested splits, earlier runs included."""

    teacher: int  #: the teacher's id in the project
    spec: str
    fingerprint: str
    n_ok: int
    n_failed: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    answered_total: int
    failed_total: int
    cost_usd_total: float
    seconds: float
    #: a teacher with verbalized distributions: its calibration on the gold training rows (the
    #: fields of ``kdstudio.core.calibration.Calibration``), None when there are too few
    calibration: dict[str, Any] | None = None
    #: answers of this run that failed because they were cut off at the output limit (a partial
    #: completion is never training data), and the highest limit they hit
    n_cut_off: int = 0
    max_tokens_hit: int | None = None
    #: pending examples the teacher gave no answer at all (a ``recorded:`` teacher has none for them)
    n_unanswered: int = 0

    @property
    def answered_before(self) -> int:
        """Answers in the harvested splits that earlier runs had stored (not asked again)."""
        return max(0, self.answered_total - self.n_ok)

    def summary(self) -> str:
        """The end of the harvest in one line, for a log. Its counts are examples, as stored:
        ``n_ok`` plus the answers from before make ``answered_total``, the count the project
        shows for the teacher's answers in these splits."""
        parts = [f"{self.n_ok:,} answered", f"{self.n_failed:,} failed"]
        if self.answered_before:
            parts.append(f"{self.answered_before:,} answered before")
        if self.cost_usd:
            parts.append(f"{usd(self.cost_usd)} spent")
        if self.n_unanswered:
            parts.append(f"{self.n_unanswered:,} without an answer from {self.spec}")
        line = "Harvest finished: " + ", ".join(parts)
        return line + (f"; {self.cut_off_note()}" if self.n_cut_off else "")

    def cut_off_note(self) -> str:
        """What the answers cut off at the output limit mean, in one line ('' when none were)."""
        if not self.n_cut_off:
            return ""
        return (f"{self.n_cut_off:,} answer(s) were cut off at max_tokens={self.max_tokens_hit} and stored as failed "
                "(a partial completion is not training data): raise --max-tokens, or --retry-failed asks again "
                "with twice the limit")


@dataclass(frozen=True, kw_only=True)
class HarvestEstimate(JobResult):
    """A dry run: what harvesting the pending examples would take; nothing was asked.

    ``n`` examples are pending; ``requests`` API requests would answer them (None for a teacher
    that sends none). Tokens and cost are zero for a teacher that costs nothing. ``sampled``
    examples were measured ``counted_with`` and the rest extrapolated, at the prices of
    ``prices_updated``. ``estimated_seconds``: the time the answers would take, judged from the
    teacher's earlier answers (None when it has none); ``seconds``: how long the dry run took.
    The cache fields, the answer length, ``max_tokens`` and ``notes`` (what the figures assume)
    come from metered teachers. ``teacher`` is None for a teacher the project has not used yet
    (a dry run stores nothing).
    """

    dry_run: bool = True
    teacher: int | None
    spec: str
    n: int
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    model: str | None = None
    batch: bool = False
    sampled: int = 0
    counted_with: str | None = None
    prices_updated: str | None = None
    price_per_mtok: dict[str, Any] | None = None
    requests: int | None = None
    estimated_seconds: float | None = None
    max_tokens: int | None = None
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens_per_answer: int | None = None
    cached_prefix_tokens: int | None = None
    min_cache_tokens: int | None = None
    cost_per_example: float | None = None
    notes: tuple[str, ...] = ()
    seconds: float

    @classmethod
    def of(cls, estimate: TeacherEstimate, *, teacher: int | None, spec: str, seconds: float) -> HarvestEstimate:
        """The dry run's result from the teacher's estimate."""
        return cls(teacher=teacher, spec=spec, seconds=seconds,
                   **{f.name: getattr(estimate, f.name) for f in fields(estimate)})
