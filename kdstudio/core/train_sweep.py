"""The student size sweep: several student presets trained one after another on the same
harvest, each then evaluated, so the accuracy-versus-latency frontier shows which to keep.

``size_sweep(project_path, ["cnn", "transformer-tiny"], base={"epochs": 3})`` is one job: it
yields every training and evaluation event of each preset in turn (its own ``Finished`` events
become ``Log`` lines) and ends with ``Finished({"runs": [...]})``, one entry per preset with the
run id and the evaluation's accuracy and latency. A preset that fails is reported and the sweep
goes on; cancelling stops the whole sweep.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kdstudio.core.errors import Cancelled, KDStudioError
from kdstudio.core.events import CancelToken, Event, Finished, Log

#: The presets a size sweep offers by default, smallest first.
SWEEP_PRESETS = ("cnn", "bilstm", "transformer-tiny", "transformer-mini", "transformer-small")


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
    results: list[dict[str, Any]] = []
    for index, config in enumerate(configs, start=1):
        yield Log(f"size sweep {index}/{len(configs)}: training {config.student}")
        entry: dict[str, Any] = {"student": config.student, "run": None, "error": None}
        try:
            for event in train(project_path, config, cancel=cancel):
                if isinstance(event, Finished):
                    entry["run"] = event.result.get("run")
                    entry["train"] = event.result
                    yield Log(f"{config.student}: run #{entry['run']} finished")
                else:
                    yield event
            if evaluate_runs and entry["run"] is not None:
                yield Log(f"size sweep {index}/{len(configs)}: evaluating run #{entry['run']}")
                for event in evaluate(project_path, entry["run"], speed=speed, cancel=cancel):
                    if isinstance(event, Finished):
                        report = event.result
                        entry["student_accuracy"] = report.get("student_accuracy")
                        entry["student_latency_ms_p50"] = report.get("student_latency_ms_p50")
                        entry["student_params"] = report.get("student_params")
                    else:
                        yield event
        except Cancelled:
            raise
        except KDStudioError as exc:
            cancel.check()
            entry["error"] = str(exc)
            yield Log(f"{config.student} failed: {exc}", "warning")
        results.append(entry)
    yield Finished({"runs": results})


__all__ = ["SWEEP_PRESETS", "size_sweep"]
