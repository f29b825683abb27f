"""What every teacher offers the harvest: the :class:`Teacher` protocol, the context a teacher
answers for, and the fingerprint that keys its answers.

A teacher answers batches of (example id, text) with ``TeacherOutput`` rows. The harvest stores
them keyed by (example, teacher fingerprint); the fingerprint hashes the spec and every setting
that changes the answers, so a changed prompt or model is a new teacher, never a silent mix.

This module knows no concrete teacher: :mod:`kdstudio.core.teachers.registry` maps spec kinds
(``claude``, ``embed``, ``hf``, ``lm``, ``recorded``) to their classes, and each of those imports this one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from kdstudio.core.events import CancelToken, Event

if TYPE_CHECKING:
    from kdstudio.core.store import Project, TeacherOutput

#: One example to answer: (example id, text).
Item = tuple[int, str]
#: What ``answer`` and ``answer_batch`` produce: lists of outputs, each saved by the harvest
#: before the teacher resumes (so a crash loses nothing already paid for).
Answers = Generator["list[TeacherOutput]", None, None]


@dataclass
class TeacherContext:
    """What a teacher may know about the project it answers for.

    ``gold_counts`` is the number of gold train rows per label (None when not known); a teacher
    whose default depends on gold labels (the embedding probe) reads it.
    """

    task: str
    labels: list[str]
    descriptions: dict[str, str | None] = field(default_factory=dict)
    instructions: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    gold_counts: dict[str, int] | None = None


@dataclass(frozen=True)
class TeacherEstimate:
    """What answering some examples would take, for a dry run: nothing is asked.

    A teacher that costs nothing leaves the tokens and cost at zero. ``sampled`` examples were
    measured ``counted_with`` (``count_tokens``, ``characters``) and the rest extrapolated;
    ``requests`` counts the API requests (more than ``n`` when some examples are asked again);
    ``estimated_seconds`` is the time the answers would take, when the teacher can tell.
    ``input_tokens`` are billed at the full input price, ``cache_write_tokens`` and
    ``cache_read_tokens`` at the cache prices; ``notes`` say what the figures assume (answer
    length, caching) in a line each.
    """

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


@runtime_checkable
class Teacher(Protocol):
    """Everything the harvest asks of a teacher; it never asks which kind of teacher it has.

    ``batch_lane``: the teacher also answers through :meth:`answer_batch` (asynchronous,
    cheaper, resumable from what it records in the project). ``metered``: its answers cost
    money, so the harvest reports tokens, cost and the budget while it runs. ``verbalized``: its
    distributions are stated, not computed (no log-probabilities), so the harvest calibrates them
    on the project's gold labels (``kdstudio.core.calibration``).
    """

    spec: str
    kind: str
    model: str
    batch_lane: bool
    metered: bool
    verbalized: bool

    def settings(self) -> dict[str, Any]:
        """Everything that changes the answers (prompt, mode, temperature...), JSON-able."""

    def estimate(self, items: Sequence[Item], *, ms_per_item: float | None = None) -> TeacherEstimate:
        """Tokens, cost and time a harvest of ``items`` would take, asking nothing.
        ``ms_per_item``: the mean time per answer this teacher took in earlier harvests."""

    def prepare(self, project: Project, teacher_id: int, *, cancel: CancelToken) -> Iterator[Event]:
        """Load weights, fit a probe on gold rows, check the API: once per harvest."""

    def answer(self, items: Sequence[Item], *, cancel: CancelToken) -> Answers:
        """Answer every (example id, text); yield outputs in small groups as they finish."""

    def answer_batch(self, project: Project, teacher_id: int, items: Sequence[Item], *,
                     cancel: CancelToken) -> Answers:
        """The batch lane (only where ``batch_lane``): like :meth:`answer`, resumable across runs."""

    def close(self) -> None:
        """Release models and clients; the teacher may be prepared again afterwards."""


@runtime_checkable
class MeasurableTeacher(Protocol):
    """What the evaluation asks of a teacher that runs on this machine, to size and time it the
    way it times the student (the local teachers offer it; an API teacher does not)."""

    def parameter_count(self) -> int:
        """How many parameters the loaded model has."""

    def predict_probs(self, texts: Sequence[str]) -> Any:
        """Label probabilities for ``texts``, an ``(n, k)`` array (after :meth:`Teacher.prepare`)."""


class TeacherModule(NamedTuple):
    """A local teacher as one classifier: ``module`` (a ``torch.nn.Module`` in eval mode) maps
    ``(input_ids, attention_mask)`` to the probabilities ``predict_probs`` gives for the texts
    ``tokenizer`` encodes (cut at ``max_length``), so it can be exported to ONNX and served alone."""

    module: Any
    tokenizer: Any
    max_length: int


@runtime_checkable
class ExportableTeacher(Protocol):
    """A teacher that runs here and can hand itself over as one torch module (for ONNX)."""

    def classifier_module(self) -> TeacherModule:
        """The teacher as one module from token ids to probabilities (after :meth:`Teacher.prepare`)."""


def fingerprint(spec: str, settings: dict[str, Any], context: TeacherContext) -> str:
    """The hash that keys a teacher's answers: spec, settings, labels and task."""
    blob = json.dumps(
        {"spec": spec, "settings": settings, "labels": context.labels, "task": context.task},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
