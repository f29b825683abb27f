"""How big and how fast each preset student is, for the student picker's cards: parameters, size
on disk and the time of one forward pass. The parameters depend on the vocabulary and the labels:
give the ones the run will use (``kdstudio.core.student_sizes.measure_for_project`` finds them for a
project) and the figures are the run's; without them they are for an 8,000-piece vocabulary and two
labels, for orientation only."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from kdstudio.core.events import CancelToken, Event, Finished, JobResult, Progress

#: The stand-in input: a batch of ``BATCH`` texts of ``TOKENS`` word pieces from a ``VOCABULARY``.
VOCABULARY, BATCH, TOKENS, LABELS = 8000, 32, 64, 2
#: Bytes a parameter takes on disk (float32 weights).
BYTES_PER_PARAM = 4


@dataclass(frozen=True)
class StudentFigure:
    """One student: ``params`` parameters, ``size_mb`` on disk, ``latency_ms`` for one batch."""

    name: str
    params: int
    size_mb: float
    latency_ms: float


@dataclass(frozen=True)
class StudentFigures(JobResult):
    """What :func:`measure_students` finishes with, in the order the names were given; the
    students were built for ``vocabulary`` word pieces (from ``tokenizer``: ``teacher``,
    ``pruned`` (the teacher's that the project uses, of ``teacher_vocabulary``), ``wordpiece``
    or ``stand-in``), ``labels`` labels and ``max_length`` tokens."""

    students: tuple[StudentFigure, ...]
    vocabulary: int = VOCABULARY
    labels: int = LABELS
    max_length: int = 128
    tokenizer: str = "stand-in"
    teacher_vocabulary: int | None = None


@dataclass(frozen=True)
class _Vocabulary:
    """Stands in for a tokenizer when a student is built only to be measured."""

    size: int
    pad_token_id: int = 0

    def __len__(self) -> int:
        return self.size


def measure_students(names: Sequence[str], *, vocabulary: int = VOCABULARY, labels: int = LABELS,
                     max_length: int = 128, tokenizer: str = "stand-in", teacher_vocabulary: int | None = None,
                     cancel: CancelToken | None = None) -> Iterator[Event]:
    """Build each preset student in ``names`` for ``vocabulary`` word pieces and ``labels``
    labels and time one forward pass (after a warm-up pass), on all cores but one:
    ``Progress("measure")`` per student, then ``Finished(StudentFigures)``."""
    import torch

    from kdstudio.core.students import build_student, count_parameters, resolve_student
    from kdstudio.core.threads import torch_threads

    figures = []
    with torch_threads():
        ids = torch.randint(5, max(6, vocabulary), (BATCH, min(TOKENS, max_length)))
        mask = torch.ones_like(ids)
        for i, name in enumerate(names):
            if cancel is not None:
                cancel.check()
            model = build_student(name, labels, _Vocabulary(vocabulary), max_length=max_length,
                                  task=resolve_student(name)[0].tasks[0]).eval()
            with torch.inference_mode():  # keywords: a causal LM's second argument is its cache
                model(input_ids=ids, attention_mask=mask)
                start = time.perf_counter()
                model(input_ids=ids, attention_mask=mask)
                ms = (time.perf_counter() - start) * 1000
            params = count_parameters(model)
            figures.append(StudentFigure(name, params, params * BYTES_PER_PARAM / 1e6, ms))
            yield Progress("measure", i + 1, len(names))
    yield Finished(StudentFigures(tuple(figures), vocabulary, labels, max_length, tokenizer, teacher_vocabulary))


__all__ = ["StudentFigure", "StudentFigures", "measure_students"]
