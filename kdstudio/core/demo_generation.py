"""``kdstudio demo --task generation``: generation end to end, offline, on the bundled E2E sample.

The E2E NLG sample (restaurant meaning representation → description, CC BY-SA 4.0; see
:mod:`kdstudio.core.generation_sample`) has several human references per meaning representation,
and its first references are recorded as the answers of the teacher ``recorded:e2e-references``:
the completions a teacher wrote once, paid for once. The demo

1. builds the sample project (split by meaning representation, seeded),
2. trains a ``gpt-tiny`` student from scratch on every reference of the train prompts (a
   tokenizer is trained on the project's text first),
3. evaluates it on the held-out meaning representations: ROUGE-L, chrF and BLEU against the
   teacher's completions and against all references, latency per completion and tokens/s,
4. exports it as a Hugging Face folder that ``transformers.pipeline("text-generation")`` loads,
   checked to write the same completions.

Each step is skipped when its result is already in the project (a finished run, a stored
evaluation), so a rerun after a crash or a cancel continues where it stopped; an interrupted run
resumes from its last checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from kdstudio.core.demo import _finished_run, _forward, _resumable_run
from kdstudio.core.errors import KDStudioError
from kdstudio.core.evaluate.generation_report import GenerationReport
from kdstudio.core.events import CancelToken, Event, Finished, Log, Metric
from kdstudio.core.generation_sample import TEACHER, generation_sample
from kdstudio.core.store import Project

DEFAULTS: dict[str, Any] = {"student": "gpt-tiny", "epochs": 4, "seed": 0}
PROJECT_FILE = "sample-generation.kdproj"


@dataclass(frozen=True, kw_only=True)
class GenerationDemoResult(GenerationReport):
    """What ``kdstudio demo --task generation --json`` prints: the run's evaluation report, then
    the demo's own keys (``student`` is the preset trained, ``seconds`` the whole demo's time)."""

    project: str
    export: str | None
    identical: int | None  #: exported completions identical to KD Studio's, of ``checked``
    checked: int | None
    epochs: int

    @classmethod
    def from_report(cls, report: GenerationReport, **demo: Any) -> GenerationDemoResult:
        return cls(**{**{f.name: getattr(report, f.name) for f in fields(GenerationReport)}, **demo})


def keep_subset(project: Project, rows: int, seed: int) -> None:
    """Keep ``rows`` train prompts and a quarter as many valid and test prompts (seeded); delete
    the rest, with their references and answers. For a quick check of an install."""
    import random

    rng = random.Random(seed)
    with project.transaction():
        for split, n in (("train", rows), ("valid", max(1, rows // 4)), ("test", max(1, rows // 4))):
            ids = [ex for ex, _text, _label in project.examples(split)]
            drop = sorted(set(ids) - set(rng.sample(ids, min(n, len(ids)))))
            for start in range(0, len(drop), 900):
                chunk = drop[start : start + 900]
                project.conn.execute(f"DELETE FROM examples WHERE id IN ({','.join('?' * len(chunk))})", chunk)


def demo_generation(
    out_dir: str | Path = "kdstudio-demo",
    *,
    student: str = DEFAULTS["student"],
    epochs: int = DEFAULTS["epochs"],
    seed: int = DEFAULTS["seed"],
    export_format: str | None = "hf",
    speed: bool = True,
    rows: int | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Build (or resume) ``out_dir/sample-generation.kdproj`` and run generation end to end on it.
    ``rows`` keeps that many train prompts (and a quarter as many valid and test prompts): the same
    steps on less data. Finishes with :class:`GenerationDemoResult`."""
    from kdstudio.core.evaluate import evaluate
    from kdstudio.core.train import train
    from kdstudio.core.train.config import TrainConfig

    cancel = cancel or CancelToken()
    t0 = time.monotonic()
    if rows is not None and rows < 1:
        raise KDStudioError(f"--rows must be at least 1 (got {rows})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / PROJECT_FILE
    steps = 4
    fresh = not path.exists()
    yield Log(f"1/{steps} building the E2E generation sample (references recorded as {TEACHER})")
    sample = yield from _forward(generation_sample(path, seed=seed, cancel=cancel), "sample", 1, steps)
    if fresh and rows is not None:
        with Project(path) as project:
            keep_subset(project, rows, seed)

    with Project(path) as project:
        done = _finished_run(project, student, True)
        resume = None if done else _resumable_run(project, student, True)
    if done:
        yield Log(f"2/{steps} student: run #{done} already finished")
        run = done
    else:
        yield Log(f"2/{steps} training {student} on every reference of the train prompts"
                  + (f", resuming run #{resume}" if resume else ""))
        config = TrainConfig(student=student, teacher=sample.teacher, hard_labels=True, epochs=epochs, seed=seed,
                             name=f"{student} on the references")
        trained = yield from _forward(
            (e for e in train(path, config, resume_run=resume, cancel=cancel) if not isinstance(e, Metric)),
            "train", 2, steps)
        run = trained.run

    with Project(path) as project:
        stored = project.evaluation(run)
    timed = stored is not None and (stored.get("student_latency_ms_p50") is not None or not speed)
    if timed and stored.get("task") == "generation":
        yield Log(f"3/{steps} run #{run}: evaluation already stored")
        report = GenerationReport.from_json(stored)
    else:
        yield Log(f"3/{steps} evaluating run #{run} on the held-out meaning representations")
        report = yield from _forward(evaluate(path, run, speed=speed, cancel=cancel), "eval", 3, steps)

    exported, identical, checked = None, None, None
    if export_format:
        from kdstudio.core.export import export

        yield Log(f"4/{steps} exporting run #{run} as {export_format}")
        result = yield from _forward(export(path, run, export_format, out / f"student-generation-{export_format}",
                                            cancel=cancel), "export", 4, steps)
        exported, identical, checked = result.out, result.identical, result.checked_examples
    yield Finished(GenerationDemoResult.from_report(
        report, project=str(path), export=exported, identical=identical, checked=checked, epochs=epochs,
        student=student, seconds=round(time.monotonic() - t0, 1),
    ))


def format_generation_demo(r: GenerationDemoResult) -> str:
    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    refs, teacher = r.student_vs_references, r.student_vs_teacher
    return "\n".join(line for line in [
        f"Demo finished in {r.seconds:.0f} s — project {r.project}",
        f"  student {r.student} (run #{r.run}, {r.epochs} epochs), {r.n_test} held-out meaning representations",
        f"  vs all references:         ROUGE-L {num(refs.rouge_l if refs else None)}, chrF "
        f"{num(refs.chrf if refs else None)}, BLEU {num(refs.bleu if refs else None)}",
        f"  vs the teacher's ({TEACHER}): ROUGE-L {num(teacher.rouge_l if teacher else None)}, "
        f"exact match {num(teacher.exact if teacher else None)}",
        (f"  latency per completion {r.student_latency_ms_p50:.1f} ms (p50), {r.student_tokens_per_s:.0f} tokens/s"
         if r.student_latency_ms_p50 and r.student_tokens_per_s else "  speed: not measured"),
        (f"  exported to {r.export} (pipeline wrote the same text on {r.identical}/{r.checked} prompts)"
         if r.export else ""),
        f"Open it in the app: kdstudio {r.project}",
    ] if line)


__all__ = ["DEFAULTS", "GenerationDemoResult", "demo_generation", "format_generation_demo"]
