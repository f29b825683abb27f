"""The harvest: ask a teacher about every example of some splits and store each answer.

Answers are keyed by (example, teacher fingerprint) and written in small transactions as they
arrive, so a rerun asks only for what is missing, a crash or cancel loses nothing already paid
for, and one harvest serves any number of students.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kdstudio.core.errors import ConfigError
from kdstudio.core.events import CancelToken, EtaClock, Event, Finished, Log, Progress
from kdstudio.core.store import SPLITS, Project
from kdstudio.core.teachers import TeacherContext, fingerprint, load_teacher, parse_spec


def teacher_context(project: Project, spec: str, options: dict[str, Any]) -> TeacherContext:
    """What the teacher is told about the project; fills in mode defaults that change answers."""
    settings = project.settings()
    return TeacherContext(
        task=project.task,
        labels=project.labels(),
        descriptions={k: v for k, v in project.label_descriptions().items() if v},
        instructions=settings.get("instructions", ""),
        options=dict(options),
        gold_counts=project.label_counts("train"),
    )


def harvest(
    project_path: str | Path,
    teacher_spec: str,
    *,
    splits: Sequence[str] | None = None,
    limit: int | None = None,
    concurrency: int = 8,
    batch_api: bool = False,
    budget_usd: float | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    options: dict[str, Any] | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Harvest ``teacher_spec``'s answers for the examples of ``splits`` that have none yet.

    Yields Log and Progress(stage="harvest", info={failed, cost_usd, input_tokens, output_tokens})
    events and finally Finished with n_ok, n_failed, input_tokens, output_tokens, cost_usd, seconds.
    """
    cancel = cancel or CancelToken()
    splits = list(splits or SPLITS)
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ConfigError(f"unknown split {bad[0]!r}; choose from {', '.join(SPLITS)}")
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if budget_usd is not None and budget_usd < 0:
        raise ConfigError("--budget-usd must be >= 0")
    t0 = time.monotonic()
    with Project(project_path) as project:
        if project.task == "classification" and len(project.labels()) < 2:
            raise ConfigError("the project has fewer than two labels; import labelled data or create it with --labels")
        context = teacher_context(project, teacher_spec, {**(options or {}), "concurrency": concurrency,
                                                          "budget_usd": budget_usd, "batch_api": batch_api})
        teacher = load_teacher(teacher_spec, context)
        kind, model = parse_spec(teacher_spec)
        settings = teacher.settings()
        fp = fingerprint(teacher_spec, settings, context)
        teacher_id = project.upsert_teacher(teacher_spec, kind, model, fp, settings)
        pending = project.pending_examples(teacher_id, splits, retry_failed=retry_failed, limit=limit)
        if batch_api and not teacher.batch_lane:
            raise ConfigError(f"--batch-api needs a claude: teacher, not {teacher_spec}")
        before = project.count_outputs(teacher_id)
        context.options["spent_usd"] = before["cost_usd"]

        if dry_run:
            estimate = dataclasses.asdict(teacher.estimate(pending))
            yield Finished({"dry_run": True, "teacher": teacher_id, "spec": teacher_spec, **estimate,
                            "seconds": round(time.monotonic() - t0, 3)})
            return

        already = before["n_ok"]
        yield Log(f"teacher #{teacher_id} {teacher_spec}: {len(pending)} to ask, {already} answered before")
        totals = {"n_ok": 0, "n_failed": 0, "input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0,
                  "cache_write_tokens": 0, "cost_usd": 0.0}
        done = 0
        if pending or (batch_api and project.open_batches(teacher_id)):
            yield from teacher.prepare(project, teacher_id, cancel=cancel)
            clock = EtaClock(len(pending))
            if batch_api and hasattr(teacher, "answer_batch"):
                stream = teacher.answer_batch(project, teacher_id, pending, cancel=cancel,
                                              **({"poll_s": context.options["poll_s"]} if "poll_s" in context.options
                                                 else {}))
            else:
                stream = teacher.answer(pending, cancel=cancel)
            try:
                for outputs in stream:
                    project.save_outputs(teacher_id, outputs)
                    for o in outputs:
                        totals["n_ok" if o.status == "ok" else "n_failed"] += 1
                        totals["input_tokens"] += o.input_tokens
                        totals["output_tokens"] += o.output_tokens
                        totals["cache_read_tokens"] += o.cache_read_tokens
                        totals["cache_write_tokens"] += o.cache_write_tokens
                        totals["cost_usd"] += o.cost_usd
                    done += len(outputs)
                    info: dict[str, Any] = {"failed": totals["n_failed"]}
                    if kind == "claude":
                        info.update(cost_usd=round(before["cost_usd"] + totals["cost_usd"], 6), budget_usd=budget_usd,
                                    input_tokens=totals["input_tokens"], output_tokens=totals["output_tokens"])
                    yield Progress("harvest", done, max(len(pending), done), clock.eta(done), info)
            finally:
                close = getattr(stream, "close", None)
                if close:
                    close()
                teacher.close()
        after = project.count_outputs(teacher_id, splits)
        totals["cost_usd"] = round(totals["cost_usd"], 6)
        result = {"teacher": teacher_id, "spec": teacher_spec, "fingerprint": fp, **totals,
                  "answered_total": after["n_ok"], "failed_total": after["n_failed"],
                  "cost_usd_total": round(after["cost_usd"], 6), "seconds": round(time.monotonic() - t0, 3)}
    yield Finished(result)
