"""The ``kdstudio`` command: thin argument parsing over the core jobs.

Exit status: 0 success, 2 bad input or usage (one line on stderr), 1 internal error,
130 cancelled (Ctrl-C; everything finished so far is kept). ``--json`` prints one JSON object
on stdout and nothing else; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdstudio import __version__
from kdstudio.core.errors import Cancelled, KDStudioError
from kdstudio.core.events import CancelToken, Finished, Log, Metric, Progress

if TYPE_CHECKING:
    from kdstudio.core.harvest import HarvestConfig

COMMANDS = ("new", "import", "info", "augment", "harvest", "train", "sweep", "eval", "review", "compare", "export",
            "demo", "doctor")
#: HarvestConfig fields whose flags are spelled or parsed their own way (``--split a,b``,
#: ``--label-map A=x``), or that have no flag (``options``).
HARVEST_OWN_FLAGS = ("teacher", "splits", "label_map", "options")


class ProgressPrinter:
    """A progress bar with rate and ETA on stderr; plain periodic lines when stderr is not a terminal."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.stage: str | None = None

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        if isinstance(event, Log):
            self._clear()
            print(f"{event.message}", file=sys.stderr)
        elif isinstance(event, Progress):
            now = time.monotonic()
            final = event.total and event.done >= event.total
            if not final and now - self.last < (0.1 if self.tty else 5.0) and event.stage == self.stage:
                return
            self.last, self.stage = now, event.stage
            line = self._format(event)
            if self.tty:
                print("\r" + line.ljust(100)[:120], end="" if not final else "\n", file=sys.stderr, flush=True)
            else:
                print(line, file=sys.stderr, flush=True)

    def _clear(self) -> None:
        if self.tty and self.stage:
            print("\r" + " " * 110 + "\r", end="", file=sys.stderr)

    @staticmethod
    def _format(p: Progress) -> str:
        frac = p.fraction
        bar = "█" * int(frac * 24) + "░" * (24 - int(frac * 24))
        eta = f" ETA {_duration(p.eta_s)}" if p.eta_s is not None and p.done < p.total else ""
        extras = " ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in p.info.items() if v not in (None, "")
        )
        total = f"{p.done}/{p.total}" if p.stage not in ("import",) else f"{frac:5.1%}"
        return f"{p.stage:>8} {bar} {total}{eta} {extras}".rstrip()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


def run_job(events: Iterable[Any], *, as_json: bool, on_finish: Callable[[Any], None] | None = None) -> Any:
    """Drive a core job to its end, printing progress; return its ``Finished.result`` (a typed
    ``JobResult``, or a dict for jobs not yet typed), which ``on_finish`` also receives."""
    printer = ProgressPrinter()
    finished = Finished({})
    for event in events:
        if isinstance(event, Finished):
            finished = event
        elif not isinstance(event, Metric):
            printer(event)
    if as_json:
        print(json.dumps(finished.json(), indent=2, default=str))
    elif on_finish:
        on_finish(finished.result)
    return finished.result


# -- commands ----------------------------------------------------------------------------------
def cmd_new(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.store import Project

    labels = [x.strip() for x in args.labels.split(",") if x.strip()] if args.labels else []
    with Project.create(args.project, args.task, labels=labels, name=args.name) as project:
        info = project.info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"created {args.project} ({args.task}, {len(labels)} labels)")
    return 0


def cmd_import(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.data import ImportResult, import_file

    label_names = None
    if args.label_names:
        pairs = [p.partition("=") for p in args.label_names.split(",")]
        if any(not sep for _, sep, _ in pairs):
            raise KDStudioError("--label-names takes RAW=NAME pairs, e.g. 0=negative,1=positive")
        label_names = {k.strip(): v.strip() for k, _, v in pairs}

    def show(r: ImportResult) -> None:
        s = r.splits
        print(f"imported {r.inserted} of {r.rows} rows from {Path(r.file).name} ({r.format}): "
              f"{r.duplicates} duplicates dropped, {r.skipped_empty} empty and {r.skipped_too_long} "
              f"too long skipped, {r.valid_carved} moved to valid")
        print(f"project now: train {s['train']}, valid {s['valid']}, test {s['test']}, unlabeled {s['unlabeled']}, "
              f"{r.n_labels} labels")

    run_job(import_file(args.project, args.file, text_col=args.text_col, label_col=args.label_col,
                        split=args.split, format=args.format, encoding=args.encoding,
                        valid_fraction=args.valid_fraction, seed=args.seed, max_chars=args.max_chars,
                        label_names=label_names, cancel=cancel),
            as_json=args.json, on_finish=show)
    return 0


def cmd_info(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.store import Project

    with Project(args.project) as project:
        info = project.info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    s = info["splits"]
    print(f"{info['name']}  ({info['task']}, schema {info['schema_version']})")
    print(f"  labels    {info['n_labels']}" + (f": {', '.join(info['labels'][:8])}{' …' if info['n_labels'] > 8 else ''}"
                                                 if info["labels"] else ""))
    variants = f" ({info['augmented']} of them variants)" if info.get("augmented") else ""
    print(f"  examples  train {s['train']}  valid {s['valid']}  test {s['test']}  unlabeled {s['unlabeled']}{variants}")
    for imp in info["imports"]:
        print(f"  import    {imp['file']}: {imp['inserted']} rows into {imp['split']}, {imp['duplicates']} duplicates, "
              f"{imp['skipped_empty']} empty skipped")
    for t in info["teachers"]:
        print(f"  teacher   #{t['id']} {t['spec']}: {t['ok']} ok, {t['failed']} failed, ${t['cost_usd']:.4f}")
    for r in info["runs"]:
        print(f"  run       #{r['id']} {r['student']}: {r['status']}")
    return 0


def cmd_harvest(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.harvest import HarvestEstimate, HarvestResult, harvest

    def show(r: HarvestResult | HarvestEstimate) -> None:
        if isinstance(r, HarvestEstimate):
            print(f"estimate for {r.n} examples: ~{r.input_tokens:,} input and ~{r.output_tokens:,} output "
                  f"tokens, ~${r.cost_usd:.4f} (no request was sent)")
            return
        print(f"harvest done: {r.n_ok} ok, {r.n_failed} failed, {r.input_tokens:,} input / "
              f"{r.output_tokens:,} output tokens, ${r.cost_usd:.4f}, {r.seconds:.1f} s")

    run_job(harvest(args.project, _harvest_config(args), cancel=cancel), as_json=args.json, on_finish=show)
    return 0


def _harvest_config(args: argparse.Namespace) -> HarvestConfig:
    """The ``HarvestConfig`` the flags of ``kdstudio harvest`` describe."""
    from kdstudio.core.harvest import HarvestConfig

    label_map: dict[str, str] = {}
    if args.label_map:
        pairs = [p.partition("=") for p in args.label_map.split(",")]
        if any(not sep for _, sep, _ in pairs):
            raise KDStudioError("--label-map takes MODEL_LABEL=PROJECT_LABEL pairs, e.g. POS=positive,NEG=negative")
        label_map = {k.strip(): v.strip() for k, _, v in pairs}
    parsed = {"splits": tuple(args.split.split(",")) if args.split else None, "label_map": label_map}
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(HarvestConfig) if hasattr(args, f.name)}
    return HarvestConfig(**{**given, **parsed})


def cmd_augment(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.data.augment import AugmentConfig, AugmentResult, augment, remove_variants

    if args.remove:
        run_job(remove_variants(args.project, cancel=cancel), as_json=args.json,
                on_finish=lambda r: print(f"removed {r.removed} augmented examples (and the teacher answers on them)"))
        return 0
    config = AugmentConfig(per_example=args.per_example, p_mask=args.p_mask, p_replace=args.p_replace,
                           p_ngram=args.p_ngram, max_ngram=args.max_ngram, mask_token=args.mask_token,
                           seed=args.seed, splits=tuple(x.strip() for x in args.split.split(",") if x.strip()))

    def show(r: AugmentResult) -> None:
        print(f"augment done: {r.added} variants of {r.sources - r.skipped_already_augmented} examples "
              f"added to unlabeled ({r.duplicates_dropped} duplicates dropped, {r.skipped_already_augmented} "
              f"examples had variants already); {r.augmented_total} in all. Harvest the teacher next.")

    run_job(augment(args.project, config, cancel=cancel), as_json=args.json, on_finish=show)
    return 0


def cmd_train(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.train import TrainConfig, TrainResult, train

    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})

    def show(r: TrainResult) -> None:
        print(f"run #{r.run}: best step {r.best_step}, valid accuracy {r.valid_accuracy}, "
              f"agreement with teacher {r.valid_agreement}, {r.seconds} s")

    run_job(train(args.project, config, resume_run=args.resume, cancel=cancel), as_json=args.json, on_finish=show)
    return 0


def cmd_sweep(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.train_sweep import SweepResult, size_sweep

    presets = [p.strip() for p in args.students.split(",") if p.strip()]
    base = {"epochs": args.epochs, "seed": args.seed}
    if args.teacher is not None:
        base["teacher"] = args.teacher

    def show(r: SweepResult) -> None:
        print("student            run   accuracy   p50 latency")
        for e in r.runs:
            acc, ms = e.student_accuracy, e.student_latency_ms_p50
            print(f"{e.student:<18} {('#' + str(e.run)) if e.run else '-':<5} "
                  f"{'' if acc is None else f'{acc:.3f}':>9}   {'' if ms is None else f'{ms:.2f} ms':>10}"
                  + (f"   failed: {e.error}" if e.error else ""))

    run_job(size_sweep(args.project, presets, base=base, speed=not args.no_speed, cancel=cancel),
            as_json=args.json, on_finish=show)
    return 0


def cmd_review(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.store import Project

    with Project(args.project) as project:
        if project.example(args.example) is None:
            raise KDStudioError(f"no example #{args.example} in {args.project}")
        if args.clear:
            project.clear_review(args.example)
            review = None
        else:
            changes: dict[str, Any] = {}  # what the flags give; the store merges it into the stored review
            if args.label is not None:
                ids = project.label_ids()
                if args.label not in ids:
                    raise KDStudioError(f"unknown label {args.label!r}; the project's labels are "
                                        f"{', '.join(project.labels()[:20])}{' …' if len(ids) > 20 else ''}")
                changes["corrected_label"] = ids[args.label]
            for key in ("exclude", "golden", "note"):
                if getattr(args, key) is not None:
                    changes[key] = getattr(args, key)
            review = project.set_review(args.example, **changes)
    if args.json:
        print(json.dumps({"example": args.example, "review": review}))
    elif args.clear:
        print(f"example #{args.example}: review cleared")
    else:
        print(f"example #{args.example}: " + ("not reviewed" if review is None else
              ", ".join(k for k in ("corrected_label", "exclude", "golden") if review.get(k) not in (None, False))
              or "reviewed"))
    return 0


def cmd_compare(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.evaluate.compare import CompareFilters
    from kdstudio.core.export.compare import CompareExportConfig, CompareExportResult, export_compare

    def bounds(low: float | None, high: float | None) -> tuple[float | None, float | None] | None:
        return None if low is None and high is None else (low, high)

    filters = CompareFilters(
        splits=tuple(s.strip() for s in args.split.split(",") if s.strip()),
        disagreement=True if args.disagreements else None,
        gold=args.gold,
        gold_label=args.gold_label,
        student_label=args.student_label,
        teacher_label=args.teacher_label,
        confidence=bounds(args.min_confidence, args.max_confidence),
        kl=bounds(args.min_kl, args.max_kl),
        text=args.text,
    )
    config = CompareExportConfig(out=args.out, run=args.run, teacher=args.teacher, format=args.format,
                                 filters=filters, sort=args.sort, descending=not args.ascending)

    def show(r: CompareExportResult) -> None:
        teacher = f" against teacher #{r.teacher}" if r.teacher is not None else ""
        print(f"wrote {r.rows} rows of run #{r.run}{teacher} to {r.out} ({r.format})")

    run_job(export_compare(args.project, config, cancel=cancel), as_json=args.json, on_finish=show)
    return 0


def cmd_eval(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.evaluate import evaluate, format_report

    run_job(evaluate(args.project, args.run, cancel=cancel), as_json=args.json,
            on_finish=lambda r: print(format_report(r)))
    return 0


def cmd_export(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.export import export

    run_job(export(args.project, args.run, args.format, args.out, cancel=cancel), as_json=args.json,
            on_finish=lambda r: print(f"exported run #{r.run} as {r.format} to {r.out}"))
    return 0


def cmd_demo(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.demo import demo, format_demo

    run_job(demo(args.out, student=args.student, gold_per_class=args.gold_per_class, epochs=args.epochs,
                 rows=args.rows, cancel=cancel),
            as_json=args.json, on_finish=lambda r: print(format_demo(r)))
    return 0


def cmd_doctor(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.doctor import diagnose, format_doctor

    report = diagnose()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        try:
            "✗".encode(encoding)
            ascii_only = False
        except (LookupError, UnicodeEncodeError):  # a console that cannot show the mark
            ascii_only = True
        print(format_doctor(report, ascii_only=ascii_only))
    return 1 if report.failures else 0


# -- parser ------------------------------------------------------------------------------------
def _add_dataclass_args(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One flag per dataclass field, with its default and help text (STYLE rule 4)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        kind = hints[f.name]
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action="store_true", default=default, help=help_text)
            continue
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        base = args[0] if args else kind
        choices = f.metadata.get("choices")
        # None stands for a default that depends on the case; the help text says which.
        shown = "" if default is None else f" (default: {default})"
        parser.add_argument(flag, dest=f.name, type=base, default=default, choices=choices, help=help_text + shown)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdstudio",
        description="KD Studio: distil an expensive teacher model into a small, fast student. "
                    "Run `kdstudio` alone (or `kdstudio PROJECT`) to open the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"kdstudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("new", help="create an empty project file", description="Create an empty project file.")
    p.add_argument("project", help="path of the new *.kdproj file")
    p.add_argument("--task", choices=("classification", "generation"), default="classification",
                   help="what the student learns (default: classification)")
    p.add_argument("--labels", help="comma-separated label names (default: taken from the imported data)")
    p.add_argument("--name", help="display name (default: the file name)")
    p.add_argument("--json", action="store_true", help="print the project summary as JSON")
    p.set_defaults(func=cmd_new)

    from kdstudio.core.data import FORMATS

    p = sub.add_parser("import", help="import a data file (CSV, TSV, JSONL, Parquet, ...)",
                       description="Import a data file into the project as one transaction: on any error the "
                                   "project is left exactly as it was.")
    p.add_argument("project")
    p.add_argument("file")
    p.add_argument("--text-col", help="column with the input text (default: auto-detected)")
    p.add_argument("--label-col", help="column with the gold label (generation: the reference) (default: auto)")
    p.add_argument("--split", default="auto", choices=("auto", "train", "valid", "test", "unlabeled"),
                   help="auto: *test* files → test, *dev*/*valid* → valid, else train with a stratified validation "
                        "split carved out; rows without a label → unlabeled (default: auto)")
    p.add_argument("--format", choices=FORMATS, help="file layout (default: guessed from name and content)")
    p.add_argument("--encoding", help="text encoding (default: UTF-8, with or without BOM; latin-1 for trec)")
    p.add_argument("--valid-fraction", type=float, default=0.1, help="share of train carved into valid (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation split (default 0)")
    p.add_argument("--max-chars", type=int, default=100_000,
                   help="skip (and count) texts longer than this (default 100000)")
    p.add_argument("--label-names", help="rename raw labels, e.g. 0=negative,1=positive")
    p.add_argument("--json", action="store_true", help="print the import summary as JSON")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("info", help="summarise a project", description="Summarise a project: labels, splits, "
                                                                        "teachers, runs.")
    p.add_argument("project")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("harvest", help="ask a teacher about every example and store its answers",
                       description="Ask a teacher about every example of the chosen splits and store the answers. "
                                   "Reruns ask only for what is missing; nothing paid for is lost.")
    p.add_argument("project")
    from kdstudio.core.harvest.config import HarvestConfig

    harvest_help = {f.name: f.metadata["help"] for f in dataclasses.fields(HarvestConfig)}
    p.add_argument("--teacher", required=True, help=harvest_help["teacher"])
    p.add_argument("--split", help="comma-separated " + harvest_help["splits"])
    p.add_argument("--label-map", help=harvest_help["label_map"])
    _add_dataclass_args(p, HarvestConfig, skip=HARVEST_OWN_FLAGS)
    p.add_argument("--json", action="store_true", help="print n_ok, n_failed, tokens, cost_usd, seconds as JSON")
    p.set_defaults(func=cmd_harvest)

    p = sub.add_parser("augment", help="add variants of the texts to the transfer set for the teacher to label",
                       description="Add variants of the train (and unlabeled) texts to the unlabeled split: some "
                                   "words masked, some replaced by other words of the project, sometimes only an "
                                   "n-gram kept (after Tang et al. 2019). Harvest the teacher afterwards; a KD "
                                   "student then learns from more of the teacher's answers. Valid and test are "
                                   "never touched. Reruns add variants only for examples that have none.")
    p.add_argument("project")
    p.add_argument("--per-example", type=int, default=4, help="variants per example (default 4)")
    p.add_argument("--p-mask", type=float, default=0.1, help="chance each word is masked (default 0.1)")
    p.add_argument("--p-replace", type=float, default=0.1,
                   help="chance each word is replaced by another word of the project (default 0.1)")
    p.add_argument("--p-ngram", type=float, default=0.25,
                   help="chance a variant keeps only an n-gram of 1 to --max-ngram words (default 0.25)")
    p.add_argument("--max-ngram", type=int, default=5, help="longest n-gram kept (default 5)")
    p.add_argument("--mask-token", default="[MASK]", help="what a masked word becomes (default [MASK])")
    p.add_argument("--split", default="train,unlabeled", help="splits whose texts are varied (default train,unlabeled)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--remove", action="store_true", help="delete all variants (and the teacher answers on them)")
    p.add_argument("--json", action="store_true", help="print sources, added, duplicates_dropped, augmented_total")
    p.set_defaults(func=cmd_augment)

    p = sub.add_parser("train", help="train a student on the stored teacher outputs",
                       description="Train a student on the stored teacher outputs (KD), or on gold labels only "
                                   "with --hard-labels.")
    p.add_argument("project")
    from kdstudio.core.train.config import TrainConfig

    _add_dataclass_args(p, TrainConfig)
    p.add_argument("--resume", type=int, metavar="RUN", help="continue run RUN from its last checkpoint")
    p.add_argument("--json", action="store_true", help="print run, best_step, valid accuracy/agreement, seconds")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sweep", help="train and evaluate several student presets on the same harvest",
                       description="The size sweep: train several student presets one after another on the same "
                                   "teacher answers, evaluate each, and print accuracy against latency.")
    p.add_argument("project")
    p.add_argument("--students", default="cnn,bilstm,transformer-tiny",
                   help="comma-separated student specs (default: cnn,bilstm,transformer-tiny)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per student (default: each student's own, 20 for transformer-*, else 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--teacher", type=int, help="teacher id (default: the one with the most answers)")
    p.add_argument("--no-speed", action="store_true", help="skip latency timing in the evaluations")
    p.add_argument("--json", action="store_true", help="print the runs with their accuracy and latency as JSON")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("review", help="mark an example: correct the teacher's label, exclude it, add it to the "
                                      "golden set",
                       description="Review an example, as in the app's comparison viewer: the flags given change "
                                   "the stored review, the others keep it. The next training run uses the corrected "
                                   "label instead of the teacher's and leaves excluded rows out; in validation and "
                                   "evaluation the corrected label is the gold label.")
    p.add_argument("project")
    p.add_argument("example", type=int, help="example id (shown by the viewer and in exports)")
    p.add_argument("--label", help="the correct label (the teacher was wrong)")
    p.add_argument("--exclude", action=argparse.BooleanOptionalAction,
                   help="leave this example out of training and evaluation (--no-exclude: use it again)")
    p.add_argument("--golden", action=argparse.BooleanOptionalAction,
                   help="add it to the golden set a person has checked (--no-golden: take it out)")
    p.add_argument("--note", help="a free-text note ('' removes it)")
    p.add_argument("--clear", action="store_true", help="remove the review")
    p.add_argument("--json", action="store_true", help="print the stored review as JSON")
    p.set_defaults(func=cmd_review)

    from kdstudio.core.evaluate.compare import SORTS, CompareFilters
    from kdstudio.core.export.compare import FORMATS as COMPARE_FORMATS
    from kdstudio.core.export.compare import CompareExportConfig

    compare_help = {f.name: f.metadata["help"] for f in dataclasses.fields(CompareFilters)}
    compare_help |= {f.name: f.metadata["help"] for f in dataclasses.fields(CompareExportConfig)}
    p = sub.add_parser("compare", help="export a run's predictions beside the teacher's answers (CSV or JSON Lines)",
                       description="Write a run's predictions beside the teacher's answers, one row per example, "
                                   "as the app's Compare tab exports them: gold, both labels and confidences, KL, "
                                   "margin, entropy, the review, both probability vectors. The filters are the "
                                   "viewer's; rows come in the viewer's order.")
    p.add_argument("project")
    p.add_argument("--out", required=True, help=compare_help["out"])
    p.add_argument("--run", type=int, help=compare_help["run"])
    p.add_argument("--teacher", type=int, help=compare_help["teacher"])
    p.add_argument("--format", choices=COMPARE_FORMATS, help=compare_help["format"])
    p.add_argument("--split", default="test", help="comma-separated " + compare_help["splits"] + " (default: test)")
    p.add_argument("--disagreements", action="store_true",
                   help="only rows where the student's label differs from the teacher's")
    p.add_argument("--gold", choices=("right", "wrong"), help=compare_help["gold"])
    for key in ("gold_label", "student_label", "teacher_label"):
        p.add_argument("--" + key.replace("_", "-"), metavar="LABEL", help=compare_help[key])
    for key, what in (("confidence", "the student's top probability"), ("kl", "KL(teacher ‖ student)")):
        for end, word in (("min", "least"), ("max", "most")):
            p.add_argument(f"--{end}-{key}", type=float, metavar="X", help=f"only rows with {what} at {word} X")
    p.add_argument("--text", help=compare_help["text"])
    p.add_argument("--sort", choices=SORTS, default="kl", help="order of the rows (default: kl, largest first)")
    p.add_argument("--ascending", action="store_true", help="smallest first")
    p.add_argument("--json", action="store_true", help="print run, teacher, out, format, rows, filters, seconds")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("eval", help="evaluate a run on the test split",
                       description="Evaluate a run on the test split: accuracy, agreement, retention, KL, "
                                   "calibration, speed, size and the cascade plan.")
    p.add_argument("project")
    p.add_argument("--run", type=int, help="run id (default: the latest finished run)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export", help="export a trained student (Hugging Face folder or ONNX)",
                       description="Export a run's best student with its tokenizer, a model card and the teacher "
                                   "outputs.")
    p.add_argument("project")
    p.add_argument("--run", type=int, required=True, help="run id")
    p.add_argument("--format", choices=("hf", "onnx"), required=True, help="hf: transformers folder; onnx: ONNX model")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("demo", help="run the whole pipeline offline on the bundled sample",
                       description="Run the whole pipeline offline on the bundled banking77 sample: import, "
                                   "harvest with embed:minilm, train a KD student and the hard-label baseline, "
                                   "evaluate, export.")
    from kdstudio.core.demo import DEFAULTS as DEMO

    p.add_argument("--out", default="kdstudio-demo", help="output folder (default: ./kdstudio-demo)")
    p.add_argument("--student", default=DEMO["student"], help=f"student spec (default: {DEMO['student']})")
    p.add_argument("--epochs", type=int, default=DEMO["epochs"],
                   help=f"training epochs of both students (default: {DEMO['epochs']})")
    p.add_argument("--gold-per-class", type=int, default=DEMO["gold_per_class"],
                   help=f"gold labels kept per intent; the rest of train becomes unlabeled "
                        f"(default: {DEMO['gold_per_class']})")
    p.add_argument("--rows", type=int, help="use a seeded subset of this many train rows (and a third as many "
                                            "test rows) for a quick check of an install (default: all 10,003)")
    p.add_argument("--json", action="store_true", help="print the evaluation keys, hard_label_accuracy, seconds")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("doctor", help="what is installed and configured here, and what to fix",
                       description="Check this machine for KD Studio: versions of Python, torch and the other "
                                   "libraries, the GPU (or that training runs on the CPU), the Anthropic API key "
                                   "(only where it comes from, never the key), the offline MiniLM teacher, the "
                                   "data and settings folders, and a display for the desktop app. One line per "
                                   "check; under each problem, what to do. Exit status 0 when KD Studio can run, "
                                   "warnings included (no GPU, no key, no display); 1 when a check failed "
                                   "(something it needs is missing or broken).")
    p.add_argument("--json", action="store_true",
                   help="print {version, checks: [{name, status: ok|info|warn|fail, value, fix}], problems, "
                        "warnings, failures}")
    p.set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        from kdstudio.gui.app import main as gui_main

        return gui_main(argv[:1])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    cancel = CancelToken()

    def interrupt(signum, frame):  # first Ctrl-C: stop cleanly; second: stop now
        if cancel.cancelled:
            raise KeyboardInterrupt
        print("\nstopping… (press Ctrl-C again to force)", file=sys.stderr)
        cancel.cancel()

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        return args.func(args, cancel)
    except Cancelled:
        print("kdstudio: cancelled; everything finished so far is kept", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("kdstudio: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KDStudioError as exc:
        print(f"kdstudio: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # an internal error: one line, the traceback on request
        if os.environ.get("KDSTUDIO_DEBUG"):
            raise
        print(f"kdstudio: internal error: {type(exc).__name__}: {exc} (set KDSTUDIO_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    raise SystemExit(main())
