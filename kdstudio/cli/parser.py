"""The ``kdstudio`` argument parser: every command's flags, most of them read off the jobs' typed configs."""

from __future__ import annotations

import argparse
import dataclasses
import typing

from kdstudio import __version__
from kdstudio.cli.commands import (
    HARVEST_OWN_FLAGS,
    cmd_augment,
    cmd_compare,
    cmd_demo,
    cmd_doctor,
    cmd_eval,
    cmd_export,
    cmd_harvest,
    cmd_import,
    cmd_import_completions,
    cmd_info,
    cmd_new,
    cmd_review,
    cmd_sample,
    cmd_sweep,
    cmd_train,
)


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
    p.add_argument("--instructions", help="the task's instructions: every teacher's system prompt (Claude) or the "
                                          "start of its prompt (lm:)")
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
    p.add_argument("--as-teacher", metavar="NAME",
                   help="the file holds a teacher's recorded answers (prompt → completion): store them as "
                        "recorded:NAME's, as import-completions does (--text-col/--label-col: prompt/completion "
                        "columns; --split S adds prompts the project lacks to S)")
    p.add_argument("--json", action="store_true", help="print the import summary as JSON")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("import-completions", help="import completions a teacher already wrote as a recorded teacher",
                       description="Store the completions in a file (a production log, distillation_train.jsonl) as "
                                   "the answers of the teacher recorded:NAME, so nothing is paid twice: prompt and "
                                   "completion columns (auto-detected), or chat lines with a user and an assistant "
                                   "message. One transaction: on any error the project is left as it was.")
    p.add_argument("project")
    p.add_argument("file")
    p.add_argument("--teacher", required=True, metavar="NAME", help="the teacher's name: its answers become those of "
                                                                    "recorded:NAME")
    p.add_argument("--prompt-col", help="column with the prompt, or A+B for A then B on a new line (default: auto)")
    p.add_argument("--completion-col", help="column with the completion (default: auto)")
    p.add_argument("--add-prompts", nargs="?", const="train", choices=("train", "valid", "test", "unlabeled"),
                   metavar="SPLIT", help="add the prompts that are not examples of the project to SPLIT (default "
                                         "without the flag: count them as unmatched; with it: train)")
    p.add_argument("--format", choices=FORMATS, help="file layout (default: guessed from name and content)")
    p.add_argument("--encoding", help="text encoding (default: UTF-8)")
    p.add_argument("--json", action="store_true", help="print matched, added_prompts, unmatched, the skipped counts "
                                                       "and recorded as JSON")
    p.set_defaults(func=cmd_import_completions)

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
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a further teacher option, repeatable; VALUE read as JSON when it is (e.g. lm: teachers: "
                        "temperature=0.7, top_p=0.9, seed=1, batch_size=16, keep_cut_off=true)")
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
    p.add_argument("--completion", help="generation: the correct completion; it replaces the teacher's in the next "
                                        "training run ('' removes it)")
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
    p.add_argument("--sort", choices=(*SORTS, "score"), default="kl",
                   help="order of the rows (default: kl, largest first; a generation run: lowest score first)")
    p.add_argument("--ascending", action="store_true", help="smallest first")
    p.add_argument("--json", action="store_true", help="print run, teacher, out, format, rows, filters, seconds")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("eval", help="evaluate a run on the test split",
                       description="Evaluate a run on the test split: accuracy, agreement, retention, KL, "
                                   "calibration, speed, size and the cascade plan.")
    p.add_argument("project")
    p.add_argument("--run", type=int, help="run id (default: the latest finished run)")
    p.add_argument("--no-onnx", action="store_true",
                   help="time the student and the teacher in torch only: no ONNX export (faster; the ONNX "
                        "entries of latency and speedups are null)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export", help="export a trained student (Hugging Face folder or ONNX)",
                       description="Export a run's best student with its tokenizer, a model card and the teacher "
                                   "outputs.")
    p.add_argument("project")
    p.add_argument("--run", type=int, required=True, help="run id")
    p.add_argument("--format", choices=("hf", "onnx"), required=True,
                   help="hf: transformers folder (a generation student: text-generation pipeline, checked for "
                        "parity); onnx: ONNX model (classifiers)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--int8", action="store_true",
                   help="with --format onnx: also write model_int8.onnx, the model quantized to 8-bit integers "
                        "(about 4x smaller), checked to give the float model's top label on at least 99.5%% of "
                        "the test texts")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("demo", help="run the whole pipeline offline on a bundled sample",
                       description="Run the whole pipeline offline on a bundled sample. Classification (the "
                                   "default): banking77 — import, harvest with embed:minilm, train a KD student and "
                                   "the hard-label baseline, evaluate, export ONNX. Generation: E2E NLG — build the "
                                   "sample (references recorded as the teacher's completions), train gpt-tiny, "
                                   "evaluate against the teacher and the references, export a Hugging Face folder.")
    from kdstudio.core.demo import DEFAULTS as DEMO
    from kdstudio.core.demo_generation import DEFAULTS as GEN

    p.add_argument("--task", choices=("classification", "generation"), default="classification",
                   help="which sample (default: classification)")
    p.add_argument("--out", default="kdstudio-demo", help="output folder (default: ./kdstudio-demo)")
    p.add_argument("--student", help=f"student spec (default: {DEMO['student']}; generation: {GEN['student']})")
    p.add_argument("--epochs", type=int,
                   help=f"training epochs of the students (default: {DEMO['epochs']}; generation: {GEN['epochs']})")
    p.add_argument("--gold-per-class", type=int, default=DEMO["gold_per_class"],
                   help=f"classification: gold labels kept per intent; the rest of train becomes unlabeled "
                        f"(default: {DEMO['gold_per_class']})")
    p.add_argument("--rows", type=int, help="use a seeded subset of this many train rows (and a third as many "
                                            "test rows; generation: train prompts and a quarter as many valid and "
                                            "test prompts) for a quick check of an install (default: all)")
    p.add_argument("--json", action="store_true", help="print the evaluation keys, hard_label_accuracy (generation: "
                                                       "export, identical, checked), seconds")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sample", help="build the bundled generation sample project (E2E NLG, offline)",
                       description="Build the generation sample: the bundled E2E NLG data (restaurant meaning "
                                   "representation → description, CC BY-SA 4.0), dev and test combined and split by "
                                   "meaning representation with a fixed seed (80/10/10), every reference kept, and "
                                   "the first reference of each recorded as the answers of recorded:e2e-references "
                                   "(no teacher to run, nothing to pay). The classification sample (banking77) is "
                                   "the one `kdstudio demo` builds.")
    p.add_argument("project", help="path of the new *.kdproj file (an existing sample is reported, not rebuilt)")
    p.add_argument("--task", choices=("generation",), default="generation",
                   help="which sample (default: generation)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split by meaning representation (default 0)")
    p.add_argument("--json", action="store_true", help="print project, pairs, meaning_representations, splits, "
                                                       "references, teacher, seed as JSON")
    p.set_defaults(func=cmd_sample)

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


