"""What evaluation does for each kind of project, in one table: the job that evaluates a run,
the typed report it stores and how the command line shows it.

``EVALUATIONS`` maps a project's task to its :class:`Evaluation`; callers look a task up with
:func:`evaluation_for` and read a stored report back with :func:`report_from_json` (a generation
report says ``"task": "generation"``; a report without ``task`` is a classification one). Each
entry imports its modules only when used, so importing this table is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdstudio.core.errors import ConfigError

if TYPE_CHECKING:
    from kdstudio.core.evaluate.generation_report import GenerationReport
    from kdstudio.core.evaluate.result import EvalReport
    from kdstudio.core.events import Event

    Report = EvalReport | GenerationReport


@dataclass(frozen=True)
class Evaluation:
    """One task's evaluation: ``job(project_path, run_id, speed=, cancel=)`` yields events and
    finishes with the report; ``report()`` is the report's class; ``format(report)`` is the text
    ``kdstudio eval`` prints."""

    job: Callable[..., Iterator[Event]]
    report: Callable[[], type]
    format: Callable[[Any], str]


def _classification_job(project_path: str | Path, run_id: int | None = None, **kwargs: Any) -> Iterator[Event]:
    from kdstudio.core.evaluate.report import evaluate_run

    return evaluate_run(project_path, run_id, **kwargs)


def _generation_job(project_path: str | Path, run_id: int | None = None, **kwargs: Any) -> Iterator[Event]:
    from kdstudio.core.evaluate.generation import evaluate_generation

    return evaluate_generation(project_path, run_id, **kwargs)


def _eval_report() -> type:
    from kdstudio.core.evaluate.result import EvalReport

    return EvalReport


def _generation_report() -> type:
    from kdstudio.core.evaluate.generation_report import GenerationReport

    return GenerationReport


def _format_classification(report: Any) -> str:
    from kdstudio.core.evaluate import format_report

    return format_report(report)


def _format_generation(report: Any) -> str:
    from kdstudio.core.evaluate.generation_text import format_generation_report

    return format_generation_report(report)


EVALUATIONS: dict[str, Evaluation] = {
    "classification": Evaluation(_classification_job, _eval_report, _format_classification),
    "generation": Evaluation(_generation_job, _generation_report, _format_generation),
}


def evaluation_for(task: str) -> Evaluation:
    """The evaluation of a ``task`` project; ConfigError for a task it does not know."""
    try:
        return EVALUATIONS[task]
    except KeyError:
        raise ConfigError(f"no evaluation for {task!r} projects; KD Studio evaluates {', '.join(EVALUATIONS)}") \
            from None


def report_from_json(data: Mapping[str, Any]) -> Report:
    """A stored report (``Project.evaluation``) as the typed report of its task."""
    return evaluation_for(data.get("task") or "classification").report().from_json(data)


def format_any(report: Any) -> str:
    """The command line's text for a report of any task."""
    return evaluation_for(getattr(report, "task", None) or "classification").format(report)


__all__ = ["EVALUATIONS", "Evaluation", "evaluation_for", "format_any", "report_from_json"]
