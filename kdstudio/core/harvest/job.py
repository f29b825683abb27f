"""The harvest job: ask a teacher about every pending example of some splits and store each answer."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdstudio.core.errors import BudgetExceeded, ConfigError
from kdstudio.core.events import CancelToken, EtaClock, Event, Finished, Log, Progress
from kdstudio.core.harvest.calibrate import calibrate_teacher
from kdstudio.core.harvest.config import HarvestConfig
from kdstudio.core.harvest.lock import harvest_lock
from kdstudio.core.harvest.results import HarvestEstimate, HarvestResult
from kdstudio.core.harvest.tasks import task_of
from kdstudio.core.store import SPLITS, Project, TeacherOutput
from kdstudio.core.teachers import TeacherContext, fingerprint, load_teacher, parse_spec
from kdstudio.core.teachers.pricing import usd
from kdstudio.core.teachers.registry import batch_kinds

_CUT_OFF = re.compile(r"cut off at max_(?:new_)?tokens=(\d+)")


def teacher_context(project: Project, spec: str, options: dict[str, Any]) -> TeacherContext:
    """What the teacher ``spec`` is told about the project, with ``options``."""
    settings = project.settings()
    return TeacherContext(
        task=project.task,
        labels=project.labels(),
        descriptions={k: v for k, v in project.label_descriptions().items() if v},
        instructions=settings.get("instructions", ""),
        options=dict(options),
        gold_counts=project.label_counts("train"),
    )


@dataclass
class _Totals:
    """What this run's answers added up to.

    ``n_ok`` and ``n_failed`` count examples, not answers: a lane may send an example's answer
    again (the realtime lane's k-sample mix replaces the first answer it stored), and the store
    keeps one row per example, so the later answer replaces the earlier one here too. Tokens and
    cost add up every answer.
    """

    status: dict[int, str] = field(default_factory=dict)
    cut_off: dict[int, int] = field(default_factory=dict)  #: example → the max_tokens its answer hit
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def n_ok(self) -> int:
        return sum(1 for s in self.status.values() if s == "ok")

    @property
    def n_failed(self) -> int:
        return len(self.status) - self.n_ok

    @property
    def done(self) -> int:
        return len(self.status)

    def add(self, outputs: Sequence[TeacherOutput]) -> None:
        for o in outputs:
            self.status[o.example] = "ok" if o.status == "ok" else "failed"
            limit = cut_off_at(o)
            if limit is None:
                self.cut_off.pop(o.example, None)
            else:
                self.cut_off[o.example] = limit
            self.input_tokens += o.input_tokens
            self.output_tokens += o.output_tokens
            self.cache_read_tokens += o.cache_read_tokens
            self.cache_write_tokens += o.cache_write_tokens
            self.cost_usd += o.cost_usd


def cut_off_at(output: TeacherOutput) -> int | None:
    """The output limit a failed answer was cut off at (Claude's ``max_tokens``, a local
    model's ``max_new_tokens``), or None for any other answer."""
    if output.status == "ok":
        return None
    m = _CUT_OFF.search(output.error or "")
    return int(m.group(1)) if m else None


def harvest(project_path: str | Path, config: HarvestConfig, *, cancel: CancelToken | None = None
            ) -> Iterator[Event]:
    """Harvest ``config.teacher``'s answers for the examples of ``config.splits`` that have none yet.

    Yields Log and Progress(stage="harvest", info={failed, teacher (its id), and for a metered
    teacher cost_usd, budget_usd, input_tokens, output_tokens}) events and finally
    ``Finished(HarvestResult)``, or ``Finished(HarvestEstimate)`` for a dry run (nothing is asked,
    nothing is stored). One harvest per project runs at a time (any teacher): a second one,
    from this process or another, is refused with a ``ConfigError`` (``kdstudio.core.harvest.lock``).
    """
    cancel = cancel or CancelToken()
    config.validate()
    if config.dry_run:
        yield from _harvest(project_path, config, cancel)
        return
    with harvest_lock(project_path):
        yield from _harvest(project_path, config, cancel)


#: Logged (harvest log, CLI stderr) when a teacher may run the model folder's own Python code.
TRUST_REMOTE_CODE_WARNING = ("trust_remote_code is on: the model folder's own Python code will run on this "
                             "machine; use it only for a model you trust")


def _harvest(project_path: str | Path, config: HarvestConfig, cancel: CancelToken) -> Iterator[Event]:
    spec = config.teacher
    splits = list(config.splits or SPLITS)
    t0 = time.monotonic()
    with Project(project_path) as project:
        task = task_of(project)
        task.check_project(project)
        context = teacher_context(project, spec, config.teacher_options())
        if context.options.get("trust_remote_code"):
            yield Log(TRUST_REMOTE_CODE_WARNING, level="warning")
        teacher = load_teacher(spec, context)
        kind, model = parse_spec(spec)
        settings = teacher.settings()
        fp = fingerprint(spec, settings, context)
        if config.batch_api and not teacher.batch_lane:
            lanes = " or ".join(f"{k}:" for k in batch_kinds())
            raise ConfigError(f"--batch-api needs a {lanes} teacher, not {spec}")

        if config.dry_run:  # stores nothing: a teacher not used before has no id yet
            known = next((t["id"] for t in project.teachers() if t["fingerprint"] == fp), None)
            pending = project.pending_examples(known if known is not None else -1, splits,
                                               retry_failed=config.retry_failed, limit=config.limit)
            ms = _ms_per_answer(project, known) if known is not None else None
            estimate = teacher.estimate(pending, ms_per_item=ms)
            yield Finished(HarvestEstimate.of(estimate, teacher=known, spec=spec,
                                              seconds=round(time.monotonic() - t0, 3)))
            return

        teacher_id = project.upsert_teacher(spec, kind, model, fp, settings)
        pending = project.pending_examples(teacher_id, splits, retry_failed=config.retry_failed, limit=config.limit)
        before = project.count_outputs(teacher_id)
        context.options["spent_usd"] = before["cost_usd"]

        yield Log(f"teacher #{teacher_id} {spec}: {len(pending)} to ask, {before['n_ok']} answered before")
        totals = _Totals()
        if pending or (config.batch_api and project.open_batches(teacher_id)):
            yield from teacher.prepare(project, teacher_id, cancel=cancel)
            clock = EtaClock(len(pending))
            if config.batch_api:
                stream = teacher.answer_batch(project, teacher_id, pending, cancel=cancel)
            else:
                stream = teacher.answer(pending, cancel=cancel)
            try:
                try:
                    for outputs in stream:
                        outputs = [task.check_answer(o, context) for o in outputs]
                        project.save_outputs(teacher_id, outputs)
                        totals.add(outputs)
                        info: dict[str, Any] = {"failed": totals.n_failed, "teacher": teacher_id}
                        if teacher.metered:
                            info.update(cost_usd=round(before["cost_usd"] + totals.cost_usd, 6),
                                        budget_usd=config.budget_usd, input_tokens=totals.input_tokens,
                                        output_tokens=totals.output_tokens)
                        done = totals.done
                        yield Progress("harvest", done, max(len(pending), done), clock.eta(done), info)
                except BudgetExceeded as exc:  # the lane says why; the totals are known here
                    spent = before["cost_usd"] + totals.cost_usd
                    why = str(exc).partition(" reached: ")[2] or str(exc)
                    raise BudgetExceeded(
                        f"budget reached: {usd(spent)} of {usd(config.budget_usd or 0.0)} spent, "
                        f"{totals.n_ok} answers saved this run ({why})") from None
            finally:
                stream.close()
                teacher.close()
        calibration = None
        if teacher.verbalized:
            calibration, new = calibrate_teacher(project, teacher_id)
            if new:
                yield Log(calibration.summary())
        after = project.count_outputs(teacher_id, splits)
    yield Finished(HarvestResult(
        teacher=teacher_id, spec=spec, fingerprint=fp, n_ok=totals.n_ok, n_failed=totals.n_failed,
        input_tokens=totals.input_tokens, output_tokens=totals.output_tokens,
        cache_read_tokens=totals.cache_read_tokens, cache_write_tokens=totals.cache_write_tokens,
        cost_usd=round(totals.cost_usd, 6), answered_total=after["n_ok"], failed_total=after["n_failed"],
        cost_usd_total=round(after["cost_usd"], 6), seconds=round(time.monotonic() - t0, 3),
        calibration=calibration.as_dict() if calibration else None,
        n_cut_off=len(totals.cut_off), max_tokens_hit=max(totals.cut_off.values(), default=None),
        n_unanswered=max(0, len(pending) - totals.done),
    ))


def _ms_per_answer(project: Project, teacher_id: int) -> float | None:
    """The mean time per answer the teacher took in earlier harvests, or None."""
    latencies = [r["latency_ms"] for r in project.teacher_outputs(teacher_id) if r["latency_ms"]]
    return sum(latencies) / len(latencies) if latencies else None
