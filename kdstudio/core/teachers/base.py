"""What every teacher offers the harvest, and the parsing of teacher specs.

A teacher answers batches of (example id, text) with ``TeacherOutput`` rows. The harvest
stores them keyed by (example, teacher fingerprint); the fingerprint hashes the spec and every
setting that changes the answers, so a changed prompt or model is a new teacher, never a
silent mix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from kdstudio.core.errors import ConfigError
from kdstudio.core.events import CancelToken, Event

if TYPE_CHECKING:
    from kdstudio.core.store import Project, TeacherOutput

TEACHER_KINDS = ("hf", "embed", "claude", "lm")


@dataclass
class TeacherContext:
    """What a teacher may know about the project it answers for."""

    task: str
    labels: list[str]
    descriptions: dict[str, str | None] = field(default_factory=dict)
    instructions: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Teacher(Protocol):
    spec: str
    kind: str
    model: str

    def settings(self) -> dict[str, Any]:
        """Everything that changes the answers (prompt, mode, temperature...), JSON-able."""

    def prepare(self, project: Project, teacher_id: int, *, cancel: CancelToken) -> Iterator[Event]:
        """Load weights, fit a probe on gold rows, check the API: once per harvest."""

    def answer(self, items: Sequence[tuple[int, str]], *, cancel: CancelToken) -> Iterator[list[TeacherOutput]]:
        """Answer every (example id, text); yield outputs in small groups as they finish."""

    def close(self) -> None: ...


def parse_spec(spec: str) -> tuple[str, str]:
    """``"claude:claude-haiku-5-5"`` → ``("claude", "claude-haiku-5-5")``."""
    kind, sep, model = spec.partition(":")
    if not sep or kind not in TEACHER_KINDS or not model:
        raise ConfigError(
            f"teacher spec {spec!r} is not of the form KIND:MODEL with KIND one of {', '.join(TEACHER_KINDS)} "
            "(e.g. embed:minilm, hf:./my-model, claude:claude-haiku-5-5, lm:gpt2)"
        )
    return kind, model


def fingerprint(spec: str, settings: dict[str, Any], context: TeacherContext) -> str:
    blob = json.dumps(
        {"spec": spec, "settings": settings, "labels": context.labels, "task": context.task},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_teacher(spec: str, context: TeacherContext) -> Teacher:
    """Build the teacher a spec names (nothing heavy is loaded until ``prepare``)."""
    kind, model = parse_spec(spec)
    if kind == "claude":
        from kdstudio.core.teachers.claude import ClaudeTeacher

        return ClaudeTeacher(model, context)
    if kind == "embed":
        from kdstudio.core.teachers.embed import EmbeddingTeacher

        return EmbeddingTeacher(model, context)
    if kind == "hf":
        from kdstudio.core.teachers.hf import HFClassifierTeacher

        return HFClassifierTeacher(model, context)
    from kdstudio.core.teachers.lm import CausalLMTeacher

    return CausalLMTeacher(model, context)
