"""One function per ``kdstudio`` command: parse nothing, build the job's typed config, run it."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdstudio.cli.output import run_job
from kdstudio.core.errors import KDStudioError
from kdstudio.core.events import CancelToken

if TYPE_CHECKING:
    from kdstudio.core.harvest import HarvestConfig

COMMANDS = ("new", "import", "import-completions", "info", "augment", "harvest", "train", "sweep", "eval", "review",
            "compare", "export", "demo", "sample", "doctor")
#: HarvestConfig fields whose flags are spelled or parsed their own way (``--split a,b``,
#: ``--label-map A=x``), or that have no flag (``options``).
HARVEST_OWN_FLAGS = ("teacher", "splits", "label_map", "options")


def cmd_new(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.store import Project

    labels = [x.strip() for x in args.labels.split(",") if x.strip()] if args.labels else []
    settings = {"instructions": args.instructions} if args.instructions else None
    with Project.create(args.project, args.task, labels=labels, name=args.name, settings=settings) as project:
        info = project.info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"created {args.project} ({args.task}, {len(labels)} labels)")
    return 0


def cmd_import(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.data import ImportResult, import_file

    if args.as_teacher:  # a teacher's recorded answers: the same job as import-completions
        args.teacher, args.prompt_col, args.completion_col = args.as_teacher, args.text_col, args.label_col
        args.add_prompts = None if args.split == "auto" else args.split
        return cmd_import_completions(args, cancel)

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
        if s["train"] and not s["valid"]:
            print("note: no valid split yet; a KD run needs one (import a validation file with --split valid, or "
                  "import the training file with --split auto, which holds out --valid-fraction)", file=sys.stderr)

    run_job(import_file(args.project, args.file, text_col=args.text_col, label_col=args.label_col,
                        split=args.split, format=args.format, encoding=args.encoding,
                        valid_fraction=args.valid_fraction, seed=args.seed, max_chars=args.max_chars,
                        label_names=label_names, cancel=cancel),
            as_json=args.json, on_finish=show)
    return 0


def cmd_import_completions(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.harvest.recorded import CompletionsImportResult, import_completions

    def show(r: CompletionsImportResult) -> None:
        print(f"{r.spec} (teacher #{r.teacher}): {r.recorded} completions recorded for {r.matched} matching prompts"
              + (f" and {r.added_prompts} prompts added to {r.add_split}" if r.added_prompts else "")
              + f"; {r.recorded_total} in all")
        skipped = [(r.unmatched, "prompts not in the project (--add-prompts SPLIT adds them)"),
                   (r.empty_completions, "empty completions"), (r.empty_prompts, "empty prompts"),
                   (r.unusable, "chat lines without one user and one assistant turn"),
                   (r.duplicates, "repeated rows"), (r.conflicts, "repeated prompts with another completion (the "
                                                                  "first was kept)"),
                   (r.replaced, "earlier answers replaced")]
        for count, what in skipped:
            if count:
                print(f"  {count:,} {what}")

    run_job(import_completions(args.project, args.file, teacher=args.teacher, prompt_col=args.prompt_col,
                               completion_col=args.completion_col, add_prompts=args.add_prompts,
                               format=args.format, encoding=args.encoding, cancel=cancel),
            as_json=args.json, on_finish=show)
    return 0


def cmd_info(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.store import Project, is_interrupted

    with Project(args.project) as project:
        project.mark_interrupted_runs()  # a run left "running" by a killed process says so
        info = project.info()
        interrupted = {r["id"] for r in project.runs() if is_interrupted(r)}
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
        resume = f" (interrupted; continue it with --resume {r['id']})" if r["id"] in interrupted else ""
        print(f"  run       #{r['id']} {r['student']}: {r['status']}{resume}")
    return 0


def cmd_harvest(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.harvest import HarvestEstimate, HarvestResult, harvest

    def show(r: HarvestResult | HarvestEstimate) -> None:
        if isinstance(r, HarvestEstimate):
            from kdstudio.core.teachers.pricing import usd

            cached = r.cache_read_tokens + r.cache_write_tokens
            print(f"estimate for {r.n} examples: ~{r.input_tokens + cached:,} input"
                  + (f" ({cached:,} through the prompt cache)" if cached else "")
                  + f" and ~{r.output_tokens:,} output tokens, ~{usd(r.cost_usd)}"
                  + (f" (~{usd(r.cost_per_example)} per example)" if r.cost_per_example else "")
                  + " (no request was sent)")
            for note in r.notes:
                print(f"  assumes {note}")
            return
        print(f"harvest done: {r.n_ok} ok, {r.n_failed} failed, {r.input_tokens:,} input / "
              f"{r.output_tokens:,} output tokens, ${r.cost_usd:.4f}, {r.seconds:.1f} s")
        if r.n_cut_off:
            print(f"  {r.cut_off_note()}")
        if r.n_unanswered:
            print(f"  {r.n_unanswered:,} example(s) got no answer from {r.spec}"
                  + (" (it has no recorded completion for them; add them with kdstudio import-completions)"
                     if r.spec.startswith("recorded:") else ""))

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
    options: dict[str, Any] = {}
    for pair in args.option or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise KDStudioError(f"--option takes KEY=VALUE, e.g. temperature=0.7 (got {pair!r})")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    parsed = {"splits": tuple(args.split.split(",")) if args.split else None, "label_map": label_map,
              "options": options}
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
        if r.task == "generation":
            scores = [f"{name} {value:.3f}" for name, value in (
                ("test ROUGE-L vs teacher", r.test_rouge_l_teacher),
                ("vs references", r.test_rouge_l_references)) if value is not None]
            print(f"run #{r.run} ({r.kd}): best step {r.best_step}, valid perplexity "
                  f"{r.valid_perplexity if r.valid_perplexity is None else round(r.valid_perplexity, 3)}"
                  + "".join(f", {s}" for s in scores) + f", {r.seconds} s"
                  + (f"; {r.stop_reason}" if r.stop_reason else ""))
            return
        print(f"run #{r.run}: best step {r.best_step}, valid accuracy {r.valid_accuracy}, "
              f"agreement with teacher {r.valid_agreement}, {r.seconds} s"
              + (f"; {r.stop_reason}" if r.stop_reason else ""))

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
            if args.completion is not None:
                if project.task != "generation":
                    raise KDStudioError("--completion corrects a generation project's completion; "
                                        "use --label in a classification project")
                changes["corrected_completion"] = args.completion or None
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
              ", ".join(k for k in ("corrected_label", "corrected_completion", "exclude", "golden")
                        if review.get(k) not in (None, False))
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
    from kdstudio.core.evaluate import evaluate
    from kdstudio.core.evaluate.tasks import format_any

    run_job(evaluate(args.project, args.run, onnx=not args.no_onnx, cancel=cancel), as_json=args.json,
            on_finish=lambda r: print(format_any(r)))
    return 0


def cmd_export(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.export import ExportResult, export, int8_summary

    def show(r: ExportResult) -> None:
        print(f"exported run #{r.run} as {r.format} to {r.out}"
              + (f"; pipeline parity: {r.identical}/{r.checked_examples} identical" if r.identical is not None else ""))
        line = int8_summary(r)
        if line:
            print(line)

    run_job(export(args.project, args.run, args.format, args.out, int8=args.int8, cancel=cancel), as_json=args.json,
            on_finish=show)
    return 0


def cmd_demo(args: argparse.Namespace, cancel: CancelToken) -> int:
    if args.task == "generation":
        from kdstudio.core.demo_generation import DEFAULTS, demo_generation, format_generation_demo

        run_job(demo_generation(args.out, student=args.student or DEFAULTS["student"],
                                epochs=args.epochs or DEFAULTS["epochs"], rows=args.rows, cancel=cancel),
                as_json=args.json, on_finish=lambda r: print(format_generation_demo(r)))
        return 0
    from kdstudio.core.demo import DEFAULTS, demo, format_demo

    run_job(demo(args.out, student=args.student or DEFAULTS["student"], gold_per_class=args.gold_per_class,
                 epochs=args.epochs or DEFAULTS["epochs"], rows=args.rows, cancel=cancel),
            as_json=args.json, on_finish=lambda r: print(format_demo(r)))
    return 0


def cmd_sample(args: argparse.Namespace, cancel: CancelToken) -> int:
    from kdstudio.core.generation_sample import GenerationSampleResult, generation_sample

    def show(r: GenerationSampleResult) -> None:
        s = r.splits
        print(f"generation sample {r.project}: {r.meaning_representations:,} meaning representations "
              f"(train {s['train']}, valid {s['valid']}, test {s['test']}, split by meaning representation, "
              f"seed {r.seed}) with {r.references:,} references; {r.teacher_spec} (teacher #{r.teacher}) answers "
              "each with its first reference")
        print(f"train a student on it with no teacher to pay: kdstudio train {r.project} --teacher {r.teacher} --student gpt-tiny")

    run_job(generation_sample(args.project, seed=args.seed, cancel=cancel), as_json=args.json, on_finish=show)
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
