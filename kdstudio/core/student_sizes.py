"""The student cards' figures for one project: each preset built with the vocabulary and labels
a run on this project will use, so the card's parameter count is the run's.

The vocabulary is chosen as a training run chooses it (``kdstudio.core.train.session``): the
teacher's tokenizer when the teacher is a local model whose tokenizer loads (pruned to the pieces
the project's texts use, unless ``--vocab full``), else a WordPiece
of ``vocab_size`` pieces trained on the rows the run trains and validates on (a small project
gives fewer pieces than asked); for a generation project, a byte-level BPE on its texts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from kdstudio.core.events import CancelToken, Event
from kdstudio.core.store import Project
from kdstudio.core.students.measure import measure_students
from kdstudio.core.students.tokenizer import (
    causal_teacher_path,
    load_tokenizer,
    teacher_model_path,
    train_bpe,
    train_wordpiece,
)
from kdstudio.core.train.config import TrainConfig
from kdstudio.core.train.data import load_training_data


@dataclass(frozen=True)
class RunVocabulary:
    """``size`` word pieces from ``tokenizer`` (``teacher``, ``pruned``: the teacher's that the
    project uses, of ``teacher_size``; ``wordpiece`` or ``bpe``), ``labels`` labels."""

    size: int
    tokenizer: str
    labels: int
    teacher_size: int | None = None


def run_vocabulary(project_path: str | Path, config: TrainConfig) -> RunVocabulary:
    """The vocabulary and labels a from-scratch student trained with ``config`` on the project gets."""
    with Project(project_path) as project:
        teacher_id = config.teacher if config.teacher is not None else project.default_teacher()
        teacher = project.teacher(teacher_id) if teacher_id is not None else None
        labels = len(project.labels())
        spec = teacher["spec"] if teacher else None
        generation = project.task == "generation"
        teacher_path = causal_teacher_path(spec) if generation else teacher_model_path(spec)
        if teacher_path:
            try:
                tokenizer = load_tokenizer(teacher_path)
            except (OSError, ValueError):
                tokenizer = None  # the run trains a WordPiece (a BPE) too
            if tokenizer is not None:
                pruned = None
                if config.vocab == "pruned" and not generation:
                    from kdstudio.core.students.vocab import PruningError, prune_wordpiece

                    try:
                        pruned = prune_wordpiece(tokenizer, project.texts())
                    except PruningError:
                        pruned = None
                if pruned is not None:
                    return RunVocabulary(pruned.size, "pruned", labels, pruned.teacher_size)
                return RunVocabulary(len(tokenizer), "teacher", labels)
        if generation:
            from kdstudio.core.train.generation import generation_corpus, teacher_completions

            corpus = generation_corpus(project, teacher_completions(project, teacher_id), project.references_of(),
                                       project.corrected_completions())
            return RunVocabulary(len(train_bpe(corpus, config.vocab_size)), "bpe", labels)
        data = load_training_data(project, teacher_id=teacher_id, hard_labels=config.hard_labels,
                                  seed=config.seed, calibrate=not config.uncalibrated)
    texts = data.train.texts + data.valid.texts
    return RunVocabulary(len(train_wordpiece(texts, config.vocab_size)), "wordpiece", labels)


def measure_for_project(names: Sequence[str], project_path: str | Path, config: TrainConfig | None = None, *,
                        cancel: CancelToken | None = None) -> Iterator[Event]:
    """:func:`~kdstudio.core.students.measure_students` with the vocabulary and labels of a run
    of ``config`` (the defaults when None) on the project."""
    config = config or TrainConfig()
    vocabulary = run_vocabulary(project_path, config)
    yield from measure_students(names, vocabulary=vocabulary.size, labels=vocabulary.labels,
                                max_length=config.max_length, tokenizer=vocabulary.tokenizer,
                                teacher_vocabulary=vocabulary.teacher_size, cancel=cancel)


__all__ = ["RunVocabulary", "measure_for_project", "run_vocabulary"]
