"""The student size sweep: several student presets trained one after another on the same
harvest, each then evaluated, so the accuracy-versus-latency frontier shows which to keep.

``size_sweep(project_path, ["cnn", "transformer-tiny"], base={"epochs": 3})`` is one job: it
yields every training and evaluation event of each preset in turn (its own ``Finished`` events
become ``Log`` lines) and ends with ``Finished(SweepResult(runs=(...)))``, one ``SweepEntry`` per
preset with the run id, its ``TrainResult`` and the evaluation's accuracy and latency. A preset
that fails is reported (``error``) and the sweep goes on; cancelling stops the whole sweep.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kdstudio.core.errors import Cancelled, KDStudioError
from kdstudio.core.events import CancelToken, Event, Finished, JobResult, Log
from kdstudio.core.train.result import TrainResult

#: The presets a size sweep offers by default, smallest first.
SWEEP_PRESETS = ("cnn", "bilstm", "transformer-tiny", "transformer-mini", "transformer-small")


@dataclass(frozen=True)
class SweepEntry:
    """One preset of a sweep: its run (None when training failed before it began) and results."""

    student: str
    run: int | None = None
    error: str | None = None  # why the preset failed; None when it trained
    train: TrainResult | None = None
    student_accuracy: float | None = None  # from the evaluation (None when not evaluated)
    student_latency_ms_p50: float | None = None
    student_params: int | None = None


@dataclass(frozen=True)
class SweepResult(JobResult):
    """What ``kdstudio sweep --json`` prints: ``runs``, one entry per preset, in order."""

    runs: tuple[SweepEntry, ...]


def size_sweep(
    project_path: str | Path,
    presets: Sequence[str],
    *,
    base: dict[str, Any] | None = None,
    evaluate_runs: bool = True,
    speed: bool = True,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Train ``presets`` one after another with the settings of ``base`` (a ``TrainConfig``'s
    fields; ``student`` and ``name`` are set per preset) and evaluate each finished run."""
    from kdstudio.core.evaluate import evaluate
    from kdstudio.core.train import train
    from kdstudio.core.train.config import TrainConfig

    cancel = cancel or CancelToken()
    if not presets:
        raise KDStudioError("a size sweep needs at least one student preset")
    configs = []
    for preset in presets:  # check every preset before the first one trains
        settings = {**(base or {}), "student": preset, "name": f"sweep: {preset}"}
        configs.append(TrainConfig.from_dict(settings).validate())
    results: list[SweepEntry] = []
    for index, config in enumerate(configs, start=1):
        yield Log(f"size sweep {index}/{len(configs)}: training {config.student}")
        entry = SweepEntry(config.student)
        try:
            for event in train(project_path, config, cancel=cancel):
                if isinstance(event, Finished):
                    entry = SweepEntry(config.student, run=event.result.run, train=event.result)
                    yield Log(f"{config.student}: run #{entry.run} finished")
                else:
                    yield event
            if evaluate_runs and entry.run is not None:
                yield Log(f"size sweep {index}/{len(configs)}: evaluating run #{entry.run}")
                for event in evaluate(project_path, entry.run, speed=speed, cancel=cancel):
                    if isinstance(event, Finished):
                        report = event.result
                        entry = replace(
                            entry,
                            student_accuracy=report.student_accuracy,
                            student_latency_ms_p50=report.student_latency_ms_p50,
                            student_params=report.student_params,
                        )
                    else:
                        yield event
        except Cancelled:
            raise
        except KDStudioError as exc:
            cancel.check()
            entry = replace(entry, error=str(exc))
            yield Log(f"{config.student} failed: {exc}", "warning")
        results.append(entry)
    yield Finished(SweepResult(tuple(results)))


__all__ = ["SWEEP_PRESETS", "SweepEntry", "SweepResult", "size_sweep"]
