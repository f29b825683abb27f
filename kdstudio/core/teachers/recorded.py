"""``recorded:NAME`` teachers: completions a teacher already wrote, imported from a file.

A production log or the seeds' ``distillation_train.jsonl`` holds prompt → completion pairs that
were paid for once; ``kdstudio import-completions PROJECT FILE --teacher NAME`` stores them as the
answers of the teacher ``recorded:NAME`` (:mod:`kdstudio.core.harvest.recorded`), so training,
evaluation, reports and the app use them like any teacher's and nothing is paid twice.

Harvesting a recorded teacher asks nobody and costs nothing: it can only say how many prompts
have no recorded completion (the harvest's ``n_unanswered``). The fingerprint is the name's (and
the task's), so the import and a harvest of ``recorded:NAME`` meet at the same teacher.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from kdstudio.core.errors import ConfigError
from kdstudio.core.events import CancelToken, Event, Log
from kdstudio.core.teachers.base import Answers, Item, TeacherContext, TeacherEstimate

if TYPE_CHECKING:
    from kdstudio.core.store import Project

KIND = "recorded"
METHOD = "recorded"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str) -> str:
    """``name`` (a ``recorded:`` prefix removed) when it is a usable teacher name; else ConfigError."""
    name = name.removeprefix(f"{KIND}:")
    if not _NAME.match(name):
        raise ConfigError(f"recorded teacher name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-' "
                          "(e.g. claude-prod-log)")
    return name


class RecordedTeacher:
    """The answers of ``recorded:NAME`` are what was imported under that name; it answers nothing new."""

    kind = KIND
    batch_lane = False
    metered = False
    verbalized = False

    def __init__(self, model: str, context: TeacherContext) -> None:
        if context.task != "generation":
            raise ConfigError(f"recorded:{model} holds completions; it teaches generation projects, "
                              f"not {context.task}")
        self.model = check_name(model)
        self.spec = f"{KIND}:{self.model}"
        self.context = context

    def settings(self) -> dict[str, Any]:
        return {"recorded": self.model}

    def estimate(self, items: Sequence[Item], *, ms_per_item: float | None = None) -> TeacherEstimate:
        return TeacherEstimate(n=len(items), model=self.model, requests=0, estimated_seconds=0.0, notes=(
            f"{self.spec} asks nobody: {len(items):,} prompt(s) have no recorded completion; add them with "
            "kdstudio import-completions",))

    def prepare(self, project: Project, teacher_id: int, *, cancel: CancelToken) -> Iterator[Event]:
        yield Log(f"{self.spec} asks nobody and costs nothing: it only has the completions imported under "
                  "that name (kdstudio import-completions)")

    def answer(self, items: Sequence[Item], *, cancel: CancelToken) -> Answers:
        """Nothing: a prompt without a recorded completion stays without one (the harvest counts it)."""
        yield from ()

    def answer_batch(self, project: Project, teacher_id: int, items: Sequence[Item], *,
                     cancel: CancelToken) -> Answers:
        raise ConfigError(f"{self.spec} has no batch lane; leave out --batch-api")

    def close(self) -> None:
        """Nothing to release."""
