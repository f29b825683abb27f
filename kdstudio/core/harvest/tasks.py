"""Where a task plugs into the harvest: the one small interface between the harvest and the kind
of answer a project wants.

The harvest never branches on the task. It looks the project's task up in :data:`TASKS` and asks it
two things:

- :meth:`HarvestTask.check_project`: can this project be harvested yet (classification: it has two
  labels at least)?
- :meth:`HarvestTask.check_answer`: does an answer the teacher gave as ok hold this task's kind of
  answer? Classification: a distribution over the project's labels (``TeacherOutput.probs`` and
  ``.label``); generation: a completion (``TeacherOutput.completion``). One that does not is stored
  as failed with the reason, so training never reads a row that has no answer.

The rest is the teachers' and the store's. A teacher reads ``context.task`` and answers in that
task's form: the Claude teacher through one prompt class per task (the system text, the structure
of the reply and its parse, :mod:`kdstudio.core.teachers.claude.prompt`); a teacher that cannot
serve a task says so when it is built (``hf:`` and ``embed:`` classify only). The store keeps each
kind of answer in its own columns of ``teacher_outputs`` (``probs``/``label``/``confidence``;
``completion``). Totals, progress events, :class:`~kdstudio.core.harvest.results.HarvestResult` and
the resume logic are the same for every task.

Generation is the second task: its teachers write completions instead of label distributions.
Growing it (references as a second answer, checks on length) or adding a third task is a class
here with these two methods, its entry in :data:`TASKS`, and the answer form on the teacher side
(a prompt class for Claude); the harvest job itself does not change.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from kdstudio.core.errors import ConfigError

if TYPE_CHECKING:
    from kdstudio.core.store import Project, TeacherOutput
    from kdstudio.core.teachers import TeacherContext


class HarvestTask(Protocol):
    name: str

    def check_project(self, project: Project) -> None:
        """Raise ConfigError (one line) when the project cannot be harvested yet."""

    def check_answer(self, output: TeacherOutput, context: TeacherContext) -> TeacherOutput:
        """The output as it is to be stored: an ok answer without this task's answer becomes failed."""


def _failed(output: TeacherOutput, reason: str) -> TeacherOutput:
    return replace(output, status="failed", error=reason, probs=None, label=None, completion=None)


class Classification:
    """Answers are probability distributions over the project's labels."""

    name = "classification"

    def check_project(self, project: Project) -> None:
        if len(project.labels()) < 2:
            raise ConfigError("the project has fewer than two labels; import labelled data or create it with --labels")

    def check_answer(self, output: TeacherOutput, context: TeacherContext) -> TeacherOutput:
        if output.status == "ok" and (output.probs is None or len(output.probs) != len(context.labels)):
            return _failed(output, f"the teacher's answer holds no distribution over the project's "
                                   f"{len(context.labels)} labels")
        return output


class Generation:
    """Answers are completions: text the teacher wrote for the example."""

    name = "generation"

    def check_project(self, project: Project) -> None:
        """Any project with examples can be harvested."""

    def check_answer(self, output: TeacherOutput, context: TeacherContext) -> TeacherOutput:
        if output.status == "ok" and output.completion is None:
            return _failed(output, "the teacher's answer holds no completion")
        return output


#: Project task → what the harvest asks of it.
TASKS: dict[str, HarvestTask] = {task.name: task for task in (Classification(), Generation())}


def task_of(project: Project) -> HarvestTask:
    """The harvest's view of the project's task."""
    if project.task not in TASKS:
        raise ConfigError(f"the harvest knows {' and '.join(TASKS)} projects, not {project.task!r}")
    return TASKS[project.task]
