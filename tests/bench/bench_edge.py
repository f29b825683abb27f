"""Edge students: size, speed in each runtime and quality, with and without vocabulary pruning.

Two few-gold projects with the offline ``embed:minilm`` probe as teacher:

- banking77 built as ``kdstudio demo`` builds it (the bundled sample, ``--gold-per-class`` gold
  labels per intent, the rest of train unlabelled); the demo's own KD and hard-label ``cnn`` runs
  give the demo's figures (KD − hard);
- SST-2 as ``bench_train_quality.py`` builds it (100 gold sentences per class).

On each, every student in ``--students`` trains with the teacher's answers twice, with the pruned
vocabulary (``--vocab pruned``, the default) and with the teacher's full one, for ``--epochs``
epochs (the demo's 6 by default), and is exported as ``kdstudio export --format onnx --int8``
exports it. Then one timing session per data set, in this process, times every student in torch,
from the exported ``model.onnx`` and from ``model_int8.onnx`` (each with the exported tokenizer),
and the teacher in torch and as one ONNX graph, interleaved (``time_interleaved``: blocks of calls
per model, the order rotating, warm-up excluded), at batch 1 and batch 64, tokenization included.

    python tests/bench/bench_edge.py --threads 1

Runs and exports are kept under ``--work`` and reused when the command runs again. Prints a
Markdown table per data set and a JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

VOCABS = ("pruned", "full")


def finished_run(path: Path, student: str, vocab: str, epochs: int, seed: int, hard: bool = False) -> int | None:
    from kdstudio.core.store import Project

    with Project(path) as project:
        for run in reversed(project.runs()):
            c = run["config"]
            if (run["student"] == student and run["status"] == "finished" and c.get("vocab", "full") == vocab
                    and c.get("epochs") == epochs and c.get("seed", 0) == seed and bool(c.get("hard_labels")) == hard):
                return run["id"]
    return None


def banking77(work: Path, args: argparse.Namespace) -> tuple[Path, dict]:
    """The demo's project (built, harvested and its two cnn runs trained by the demo job)."""
    from kdstudio.core.demo import demo
    from kdstudio.core.events import run_to_end

    out = work / f"banking77-gold{args.gold_per_class}"
    result = run_to_end(demo(out, student=args.demo_student, gold_per_class=args.gold_per_class, epochs=args.epochs,
                             seed=args.seed, export_format=None, speed=False))
    return Path(result.project), {"kd_run": result.run, "hard_run": result.hard_label_run,
                                  "kd_accuracy": result.student_accuracy,
                                  "hard_accuracy": result.hard_label_accuracy,
                                  "teacher_accuracy": result.teacher_accuracy}


def sst2(work: Path, args: argparse.Namespace) -> tuple[Path, dict]:
    from bench_train_quality import build_project

    from kdstudio.core.events import run_to_end
    from kdstudio.core.harvest import HarvestConfig, harvest

    path = work / "sst2.kdproj"
    if not path.exists():
        build_project(path, "sst2", 100, 33, args.seed)
    run_to_end(harvest(path, HarvestConfig(teacher="embed:minilm")))
    return path, {}


def teacher_accuracy(path: Path) -> tuple[int, float]:
    from kdstudio.core.store import Project

    with Project(path) as project:
        teacher = project.default_teacher()
        rows = project.teacher_outputs(teacher, ["test"])
    return teacher, sum(r["label"] == r["gold"] for r in rows) / len(rows)


def main() -> None:
    from kdstudio.core.demo import DEFAULTS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["banking77", "sst2"], choices=["banking77", "sst2"])
    parser.add_argument("--students", nargs="+", default=["cnn-tiny", "cnn", "bilstm", "transformer-tiny"])
    parser.add_argument("--demo-student", default=DEFAULTS["student"], help="the student of the banking77 demo runs")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    parser.add_argument("--gold-per-class", type=int, default=DEFAULTS["gold_per_class"],
                        help="banking77: gold labels per intent, as kdstudio demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and onnxruntime threads for the timing (eval leaves one core of two to the app)")
    parser.add_argument("--train-threads", type=int, default=0, help="threads for training (0: all cores but one)")
    parser.add_argument("--single-calls", type=int, default=60, help="timed batch-1 calls per model and runtime")
    parser.add_argument("--work", default=None, help="folder for projects, runs and exports (default: a temp folder)")
    args = parser.parse_args()

    import torch

    from kdstudio.core.evaluate.speed import time_interleaved
    from kdstudio.core.events import CancelToken, run_to_end
    from kdstudio.core.export import export
    from kdstudio.core.export.int8 import Int8CheckFailed
    from kdstudio.core.export.onnx import OnnxClassifier
    from kdstudio.core.harvest import teacher_context
    from kdstudio.core.store import Project
    from kdstudio.core.students import count_parameters, load_student, predict_probs
    from kdstudio.core.students.tokenizer import load_tokenizer
    from kdstudio.core.teachers import load_teacher
    from kdstudio.core.train import TrainConfig, run_folder, train

    work = Path(args.work or tempfile.mkdtemp(prefix="kd-edge-"))
    work.mkdir(parents=True, exist_ok=True)
    figures: dict = {}
    for name in args.datasets:
        t0 = time.monotonic()
        path, extra = (banking77 if name == "banking77" else sst2)(work, args)
        teacher_id, t_acc = teacher_accuracy(path)
        rows = []
        for student in args.students:
            for vocab in VOCABS:
                run = finished_run(path, student, vocab, args.epochs, args.seed)
                if run is None:
                    config = TrainConfig(student=student, vocab=vocab, epochs=args.epochs, seed=args.seed,
                                         teacher=teacher_id, num_threads=args.train_threads,
                                         name=f"edge {student} {vocab}")
                    run = run_to_end(train(path, config)).run
                out = work / f"{name}-run{run}-onnx"
                record = work / f"{name}-run{run}-export.json"
                if not record.is_file():
                    try:
                        exported = run_to_end(export(path, run, "onnx", out, int8=True)).to_json()
                    except Int8CheckFailed as exc:  # what kdstudio export --int8 refuses: the float model only
                        exported = {**run_to_end(export(path, run, "onnx", out)).to_json(), "int8_failed": str(exc)}
                    record.write_text(json.dumps(exported))
                exported = json.loads(record.read_text())
                with Project(path) as project:
                    accuracy = project.run(run)["summary"]["test_accuracy"]
                model, tokenizer, meta = load_student(run_folder(path, run))
                rows.append({
                    "student": student, "vocab": vocab, "run": run, "params": count_parameters(model),
                    "pieces": len(tokenizer), "onnx_mb": exported["onnx_bytes"] / 1e6,
                    "int8_mb": exported["int8_bytes"] / 1e6 if exported["int8_bytes"] else None,
                    "int8_ops": exported["int8_ops"], "int8_agreement": exported["int8_agreement"],
                    "int8_failed": exported.get("int8_failed"), "accuracy": accuracy,
                    "retention": accuracy / t_acc, "folder": str(out), "max_length": meta["max_length"],
                })
        print(f"{name}: trained and exported in {time.monotonic() - t0:.0f} s", flush=True)

        with Project(path) as project:
            texts = [t for _, t, _ in project.examples("test")]
            info = project.teacher(teacher_id)
            context = teacher_context(project, info["spec"], info["settings"])
            teacher = load_teacher(info["spec"], context)
            for _ in teacher.prepare(project, teacher_id, cancel=CancelToken()):
                pass
        from kdstudio.core.evaluate.runtimes import teacher_onnx

        predictors = {"teacher/torch": teacher.predict_probs}
        predictors["teacher/onnx"], teacher_onnx_mb, _ = teacher_onnx(teacher, texts, work, threads=args.threads)
        for row in rows:
            model, tokenizer, meta = load_student(run_folder(path, row["run"]))
            key = f"{row['student']}/{row['vocab']}"
            predictors[f"{key}/torch"] = (lambda m, tok, n: lambda batch: predict_probs(m, tok, batch, max_length=n))(
                model, tokenizer, meta["max_length"])
            shipped = load_tokenizer(row["folder"])
            for runtime, file in (("onnx", "model.onnx"), ("onnx_int8", "model_int8.onnx")):
                if (Path(row["folder"]) / file).is_file():
                    predictors[f"{key}/{runtime}"] = OnnxClassifier(Path(row["folder"]) / file, shipped,
                                                                    row["max_length"], threads=args.threads)
        torch.set_num_threads(args.threads)
        timing = time_interleaved(predictors, texts, single_calls=args.single_calls)
        teacher_ms = {r: timing[f"teacher/{r}"]["batch1_ms_p50"] for r in ("torch", "onnx")}
        teacher_params = teacher.parameter_count()
        print(f"\n{name}: teacher embed:minilm, {teacher_params / 1e6:.1f}M parameters, accuracy {t_acc:.3f}; "
              f"batch-1 p50 torch {teacher_ms['torch']:.2f} ms, ONNX {teacher_ms['onnx']:.2f} ms; "
              f"batch 64 torch {timing['teacher/torch']['batch64_ms_p50']:.0f} ms, "
              f"ONNX {timing['teacher/onnx']['batch64_ms_p50']:.0f} ms; ONNX file {teacher_onnx_mb:.1f} MB")
        print("| student | vocabulary | parameters (teacher ÷) | ONNX MB float / int8 | int8 top-1 agreement "
              "(quantized) | batch-1 p50 ms torch / ONNX / int8 | speed-up torch / ONNX | batch-64 ms ONNX | "
              "accuracy | retention |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for row in rows:
            key = f"{row['student']}/{row['vocab']}"
            runtimes = [r for r in ("torch", "onnx", "onnx_int8") if f"{key}/{r}" in timing]
            ms = {r: timing[f"{key}/{r}"]["batch1_ms_p50"] for r in runtimes}
            row.update({
                "p50_ms": ms, "batch64_ms": {r: timing[f"{key}/{r}"]["batch64_ms_p50"] for r in ms},
                "p95_ms": {r: timing[f"{key}/{r}"]["batch1_ms_p95"] for r in ms},
                "fewer_params": teacher_params / row["params"],
                "speedup": {"torch": teacher_ms["torch"] / ms["torch"], "onnx": teacher_ms["onnx"] / ms["onnx"],
                            "onnx_int8": teacher_ms["onnx"] / ms["onnx_int8"] if "onnx_int8" in ms else None},
            })
            int8 = (f"{row['int8_mb']:.2f}", f"{100 * row['int8_agreement']:.2f}% ({row['int8_ops']})",
                    f"{ms['onnx_int8']:.2f}") if "onnx_int8" in ms else ("—", "below 99.5%: not written", "—")
            print(f"| {row['student']} | {row['vocab']} ({row['pieces']:,}) | {row['params'] / 1e6:.2f}M "
                  f"({row['fewer_params']:.1f}×) | {row['onnx_mb']:.2f} / {int8[0]} | {int8[1]} | "
                  f"{ms['torch']:.2f} / {ms['onnx']:.2f} / {int8[2]} | {row['speedup']['torch']:.1f}× / "
                  f"{row['speedup']['onnx']:.1f}× | {row['batch64_ms']['onnx']:.1f} | {row['accuracy']:.3f} | "
                  f"{row['retention']:.3f} |", flush=True)
        if extra:
            print(f"demo ({args.demo_student}, pruned, run #{extra['kd_run']}): KD {extra['kd_accuracy']:.4f}, hard labels "
                  f"{extra['hard_accuracy']:.4f} (run #{extra['hard_run']}), KD − hard "
                  f"{100 * (extra['kd_accuracy'] - extra['hard_accuracy']):+.1f} points")
        figures[name] = {"teacher": {"accuracy": t_acc, "params": teacher_params, "p50_ms": teacher_ms,
                                     "onnx_mb": teacher_onnx_mb,
                                     "batch64_ms": {r: timing[f"teacher/{r}"]["batch64_ms_p50"] for r in teacher_ms}},
                         "students": rows, **extra}
        teacher.close()
    print(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
