"""The teacher registry: the kind of a spec (``claude:MODEL``) names the class that answers it.

Each entry imports its class only when it is asked for, so importing the registry (the CLI, the
store, the GUI at start-up) loads none of the teachers' libraries; the teachers themselves load
torch, transformers or anthropic only when they run. The abstract module
(:mod:`kdstudio.core.teachers.base`) knows none of the concrete teachers: they import it, the
registry imports them, and nothing imports the registry back.

A new kind of teacher is a class that satisfies :class:`~kdstudio.core.teachers.base.Teacher`
and one entry in :data:`TEACHERS`.
"""

from __future__ import annotations

from collections.abc import Callable

from kdstudio.core.errors import ConfigError
from kdstudio.core.teachers.base import Teacher, TeacherContext


def _hf() -> type[Teacher]:
    from kdstudio.core.teachers.hf import HFClassifierTeacher

    return HFClassifierTeacher


def _embed() -> type[Teacher]:
    from kdstudio.core.teachers.embed import EmbeddingTeacher

    return EmbeddingTeacher


def _claude() -> type[Teacher]:
    from kdstudio.core.teachers.claude import ClaudeTeacher

    return ClaudeTeacher


def _lm() -> type[Teacher]:
    from kdstudio.core.teachers.lm import CausalLMTeacher

    return CausalLMTeacher


def _recorded() -> type[Teacher]:
    from kdstudio.core.teachers.recorded import RecordedTeacher

    return RecordedTeacher


#: Spec kind → a function that imports and returns the teacher class (in the order help texts list them).
TEACHERS: dict[str, Callable[[], type[Teacher]]] = {"hf": _hf, "embed": _embed, "claude": _claude, "lm": _lm,
                                                     "recorded": _recorded}


def kinds() -> tuple[str, ...]:
    """Every spec kind a teacher is registered for."""
    return tuple(TEACHERS)


def parse_spec(spec: str) -> tuple[str, str]:
    """``"claude:claude-haiku-5-5"`` → ``("claude", "claude-haiku-5-5")``; ConfigError (one line)
    for a spec that is not KIND:MODEL with a registered kind."""
    kind, sep, model = spec.partition(":")
    if not sep or kind not in TEACHERS or not model:
        raise ConfigError(
            f"teacher spec {spec!r} is not of the form KIND:MODEL with KIND one of {', '.join(TEACHERS)} "
            "(e.g. embed:minilm, hf:./my-model, claude:claude-haiku-5-5, lm:gpt2, recorded:prod-log)"
        )
    return kind, model


def teacher_class(kind: str) -> type[Teacher]:
    """The class registered for ``kind`` (imported now)."""
    if kind not in TEACHERS:
        raise ConfigError(f"unknown teacher kind {kind!r}; choose one of {', '.join(TEACHERS)}")
    return TEACHERS[kind]()


def load_teacher(spec: str, context: TeacherContext) -> Teacher:
    """Build the teacher a spec names (nothing heavy is loaded until ``prepare``)."""
    kind, model = parse_spec(spec)
    return teacher_class(kind)(model, context)


def batch_kinds() -> list[str]:
    """The kinds whose teachers have a batch lane (for the message when one is asked of another)."""
    return [kind for kind in TEACHERS if teacher_class(kind).batch_lane]
