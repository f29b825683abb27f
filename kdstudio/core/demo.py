"""``kdstudio demo``: the whole pipeline offline on the bundled banking77 sample.

The sample plays the few-gold story KD Studio is made for: a person has labelled a few examples
per intent and has thousands of unlabelled customer messages. The demo keeps ``gold_per_class``
labels per intent in train (seeded), turns the rest of train into unlabelled traffic, then

1. harvests ``embed:minilm`` (a probe fitted on the gold rows) over everything,
2. trains a KD student on the teacher's soft labels,
3. trains the same student on the gold rows only (the hard-label baseline),
4. evaluates the KD run on test and exports it.

Each step is skipped when its result is already in the project, so a rerun after a crash or a
cancel continues where it stopped. The same function builds the GUI's sample project ("Open
Sample Project" runs it when :func:`sample_is_ready` says no).
"""

from __future__ import annotations

import csv
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from kdstudio.core.errors import KDStudioError
from kdstudio.core.evaluate.result import EvalReport
from kdstudio.core.events import CancelToken, Event, Finished, Log, Metric, Progress
from kdstudio.core.paths import resources_dir
from kdstudio.core.store import Project

TEACHER = "embed:minilm"
DEFAULTS: dict[str, Any] = {"student": "cnn-tiny", "gold_per_class": 40, "epochs": 6, "seed": 0}
TEST_SHARE = 3  # a ``rows``-row demo keeps rows // TEST_SHARE test rows


@dataclass(frozen=True, kw_only=True)
class DemoResult(EvalReport):
    """What ``kdstudio demo --json`` prints: the KD run's evaluation report, then the demo's own
    keys. ``student`` is the preset the demo trained and ``seconds`` the whole demo's time (the
    report's own evaluation time is not kept); ``hard_label_accuracy`` is the test accuracy of
    the same student trained on the gold labels only (run ``hard_label_run``); ``export`` is the
    exported folder (None when the demo exports nothing)."""

    hard_label_run: int
    hard_label_accuracy: float | None
    project: str
    export: str | None
    gold_per_class: int

    @classmethod
    def from_report(cls, report: EvalReport, **demo: Any) -> DemoResult:
        """The KD run's ``report`` with the demo's fields (which replace the report's ``student``
        and ``seconds``)."""
        return cls(**{**{f.name: getattr(report, f.name) for f in fields(EvalReport)}, **demo})


def write_subset(source: Path, target: Path, rows: int, seed: int) -> int:
    """Copy a seeded random subset of ``rows`` data rows of the CSV ``source`` (header kept, order kept)."""
    with source.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        data = list(reader)
    keep = sorted(random.Random(seed).sample(range(len(data)), min(rows, len(data))))
    tmp = target.with_suffix(".part")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(data[i] for i in keep)
    tmp.replace(target)
    return len(keep)


def sample_dir() -> Path:
    folder = resources_dir() / "sample"
    if not (folder / "train.csv").is_file():
        raise KDStudioError(f"the bundled sample is missing ({folder}); reinstall KD Studio")
    return folder


def write_few_gold_train(source: Path, target: Path, gold_per_class: int, seed: int) -> int:
    """Copy train.csv keeping the label of ``gold_per_class`` rows per class (seeded); blank the rest."""
    with source.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_label: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_label.setdefault(row["category"], []).append(i)
    rng = random.Random(seed)
    keep = {i for label in sorted(by_label) for i in rng.sample(by_label[label], min(gold_per_class,
                                                                                      len(by_label[label])))}
    tmp = target.with_suffix(".part")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category"])
        for i, row in enumerate(rows):
            writer.writerow([row["text"], row["category"] if i in keep else ""])
    tmp.replace(target)
    return len(keep)


def sample_is_ready(path: str | Path) -> bool:
    """True when the sample project at ``path`` exists and has a finished run to show (else
    :func:`demo` builds it, or continues where an earlier build stopped)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with Project(path) as project:
            return project.latest_run() is not None
    except KDStudioError:
        return False


def _finished_run(project: Project, student: str, hard: bool) -> int | None:
    for run in reversed(project.runs()):
        if run["student"] == student and run["status"] == "finished" and bool(run["config"].get("hard_labels")) == hard:
            return run["id"]
    return None


def _resumable_run(project: Project, student: str, hard: bool) -> int | None:
    for run in reversed(project.runs()):
        if (run["student"] == student and run["status"] in ("cancelled", "running")
                and bool(run["config"].get("hard_labels")) == hard and run.get("last_checkpoint")):
            return run["id"]
    return None


def _forward(events: Iterator[Event], stage: str, step: int, steps: int) -> Iterator[Event]:
    """Pass a sub-job's events on, tagging progress with the demo step; return its result."""
    forward_result: Any = {}
    for event in events:
        if isinstance(event, Progress):
            event.info = {"step": f"{step}/{steps}", **event.info}
            event.stage = stage
        if not isinstance(event, Finished):
            yield event
        else:
            yield Log(f"{stage} done")
            forward_result = event.result
    return forward_result


def demo(
    out_dir: str | Path = "kdstudio-demo",
    *,
    student: str = DEFAULTS["student"],
    gold_per_class: int = DEFAULTS["gold_per_class"],
    epochs: int = DEFAULTS["epochs"],
    seed: int = DEFAULTS["seed"],
    export_format: str | None = "onnx",
    speed: bool = True,
    sample: str | Path | None = None,
    rows: int | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Build (or resume) ``out_dir/sample.kdproj`` and run the whole pipeline on it.

    ``sample`` is a folder with ``train.csv`` and ``test.csv`` in banking77's layout (default:
    the bundled banking77 sample). ``rows`` keeps a seeded subset of that many train rows (and a
    third as many test rows): the same steps on less data, for a quick check of an install.
    Finishes with :class:`DemoResult`."""
    from kdstudio.core.data import import_file
    from kdstudio.core.evaluate import evaluate
    from kdstudio.core.harvest import HarvestConfig, harvest
    from kdstudio.core.train import train
    from kdstudio.core.train.config import TrainConfig

    cancel = cancel or CancelToken()
    t0 = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sample.kdproj"
    steps = 6
    if not path.exists():
        Project.create(path, "classification", name="Banking77 sample",
                       settings={"instructions": "Classify the intent of an online-banking customer message."}
                       ).close()
    with Project(path) as project:
        imported = {imp["file"] for imp in project.settings().get("imports", [])}
    sample = Path(sample) if sample is not None else sample_dir()
    if rows is not None and rows < 1:
        raise KDStudioError(f"--rows must be at least 1 (got {rows})")
    if "few-gold-train.csv" not in imported:
        if rows is not None:
            subset = out / "sample-subset"
            subset.mkdir(exist_ok=True)
            write_subset(sample / "train.csv", subset / "train.csv", rows, seed)
            write_subset(sample / "test.csv", subset / "test.csv", max(1, rows // TEST_SHARE), seed)
            sample = subset
        yield Log(f"1/{steps} importing the banking77 sample ({gold_per_class} gold labels per intent)")
        few = out / "few-gold-train.csv"
        write_few_gold_train(sample / "train.csv", few, gold_per_class, seed)
        yield from _forward(import_file(path, few, seed=seed, cancel=cancel), "import", 1, steps)
        yield from _forward(import_file(path, sample / "test.csv", split="test", cancel=cancel), "import", 1, steps)

    yield Log(f"2/{steps} harvesting the teacher {TEACHER} (probe on the gold rows)")
    harvested = yield from _forward(harvest(path, HarvestConfig(teacher=TEACHER), cancel=cancel), "harvest", 2,
                                    steps)
    teacher_id = harvested.teacher

    results: dict[str, int] = {}
    for hard, step in ((False, 3), (True, 4)):
        kind = "hard-label baseline" if hard else "KD student"
        with Project(path) as project:
            done = _finished_run(project, student, hard)
            resume = None if done else _resumable_run(project, student, hard)
        if done:
            yield Log(f"{step}/{steps} {kind}: run #{done} already finished")
            results[kind] = done
            continue
        yield Log(f"{step}/{steps} training the {kind} ({student})" + (f", resuming run #{resume}" if resume else ""))
        config = TrainConfig(student=student, teacher=teacher_id, hard_labels=hard, epochs=epochs, seed=seed,
                             name=f"{student} {'hard labels' if hard else 'KD'}")
        trained = yield from _forward(
            (e for e in train(path, config, resume_run=resume, cancel=cancel) if not isinstance(e, Metric)),
            "train", step, steps)
        results[kind] = trained.run

    kd_run, hard_run = results["KD student"], results["hard-label baseline"]
    yield Log(f"5/{steps} evaluating run #{kd_run} and the baseline #{hard_run} on test")
    report = yield from _forward(evaluate(path, kd_run, speed=speed, cancel=cancel), "eval", 5, steps)
    baseline = yield from _forward(evaluate(path, hard_run, speed=False, cancel=cancel), "eval", 5, steps)

    exported = None
    if export_format:
        from kdstudio.core.export import export
        from kdstudio.core.export.int8 import Int8CheckFailed

        int8 = export_format == "onnx"  # with the int8 model beside the float one, when it keeps the top labels
        yield Log(f"6/{steps} exporting run #{kd_run} as {export_format}" + (" with an int8 model" if int8 else ""))
        try:
            done = yield from _forward(export(path, kd_run, export_format, out / f"student-{export_format}",
                                              int8=int8, cancel=cancel), "export", 6, steps)
        except Int8CheckFailed as exc:
            yield Log(f"{exc}; exporting the float model alone", "warning")
            done = yield from _forward(export(path, kd_run, export_format, out / f"student-{export_format}",
                                              cancel=cancel), "export", 6, steps)
        exported = done.out
    yield Finished(DemoResult.from_report(
        report,
        hard_label_run=hard_run,
        hard_label_accuracy=baseline.student_accuracy,
        project=str(path),
        export=exported,
        student=student,
        gold_per_class=gold_per_class,
        seconds=round(time.monotonic() - t0, 1),
    ))


def _runtime(r: DemoResult) -> str:
    return f" ({r.speedup_runtime})" if r.speedup_runtime == "torch" else ""


def format_demo(r: DemoResult) -> str:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    return "\n".join([
        f"Demo finished in {r.seconds:.0f} s — project {r.project}",
        f"  teacher ({TEACHER}, probe on {r.gold_per_class} gold labels per intent): accuracy "
        f"{pct(r.teacher_accuracy)}",
        f"  KD student ({r.student}, run #{r.run}):  accuracy {pct(r.student_accuracy)}, "
        f"agreement {pct(r.agreement)}, retention {pct(r.retention)}",
        f"  hard-label baseline (run #{r.hard_label_run}): accuracy {pct(r.hard_label_accuracy)}",
        (f"  speed-up at batch 1{_runtime(r)}: {r.speedup:.0f}x ({r.student_latency_ms_p50:.2f} ms vs "
         f"{r.teacher_latency_ms_p50:.2f} ms)" if r.speedup else "  speed: not measured")
        + (f", student {r.student_size_mb:.1f} MB" if r.student_size_mb else ""),
        *([f"  in ONNX: {r.speedups.onnx:.0f}x; int8 student vs ONNX teacher: {r.speedups.onnx_int8:.0f}x"]
          if r.speedups is not None and r.speedups.onnx and r.speedups.onnx_int8 else []),
        f"  exported to {r.export}" if r.export else "",
        f"Open it in the app: kdstudio {r.project}",
    ])
