"""Generation students on E2E NLG: held-out meaning representations, several references each.

The bundled E2E sample (the data set's dev and test files, which share no meaning representation
(MR), combined and split by MR, seeded: 80% of the MRs to train, 10% to valid, 10% to test; the
same project as ``kdstudio demo --task generation``). Every reference of a train MR is a training
row (``--hard-labels``: no teacher).

Part 1 trains each student (``--students``, default gpt-tiny and gpt-mini) on the references and
reports test ROUGE-L, chrF and BLEU against the references (corpus scores, all references of an
MR at once), the training time and the student's latency per completion.

Part 2 (``--three-ways``) is the seed's claim: a larger local teacher (``--teacher``, default
``gpt-small``, trained on the references) writes greedy completions for every prompt; then the same ``gpt-tiny`` student
trains three ways for the same number of optimizer steps — references only, sequence-level KD on
the teacher's completions, token-level KD on its next-token distribution (the teacher runs
alongside) — and each is scored against the references and against the teacher.

    python tests/bench/bench_generation.py                       # part 1, ~10 minutes on 2 cores
    python tests/bench/bench_generation.py --three-ways --students  # part 2 only (an hour or more on 2 cores)
    python tests/bench/bench_generation.py --three-ways --students --teacher gpt-mini --teacher-epochs 6 --steps 1374 --threads 1

Prints Markdown tables and a JSON line with every figure. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DATASETS = Path(os.environ.get("KDSTUDIO_DATASETS", ROOT.parent / "shared" / "datasets"))


def build_project(path: Path, seed: int = 0) -> Path:
    """The bundled E2E sample (``kdstudio sample --task generation``): one example per MR, split by MR
    (seeded 80/10/10), every reference kept, the first recorded as ``recorded:e2e-references``."""
    from kdstudio.core.generation_sample import build_generation_sample

    build_generation_sample(path, seed=seed)
    return path


def run(path: Path, **settings) -> tuple[object, float]:
    """Train with ``settings``; (TrainResult, wall seconds including the held-out completions)."""
    from kdstudio.core.events import Finished, Log
    from kdstudio.core.train import TrainConfig, train

    t0 = time.perf_counter()
    result = None
    for event in train(path, TrainConfig(**settings)):
        if isinstance(event, Log):
            print("   ", event.message, file=sys.stderr)
        elif isinstance(event, Finished):
            result = event.result
    return result, time.perf_counter() - t0


def scores_vs(path: Path, run_id: int, teacher_id: int) -> dict[str, float]:
    """The run's test completions scored against the teacher's (corpus ROUGE-L, chrF)."""
    from kdstudio.core.store import Project
    from kdstudio.core.text_metrics import corpus_scores

    with Project(path) as project:
        teacher = {o["id"]: o["completion"] for o in project.teacher_outputs(teacher_id, ["test"])}
        rows = project.predictions(run_id, "test")
    return corpus_scores([r["completion"] for r in rows], [[teacher[r["example"]]] for r in rows])


def harvest_teacher(path: Path, run_id: int, seed_settings: dict) -> int:
    """The trained teacher's greedy completions for every prompt, stored as an ``lm:`` teacher."""
    from kdstudio.core.generate import generate_all
    from kdstudio.core.store import Project, TeacherOutput
    from kdstudio.core.students import load_student
    from kdstudio.core.train import run_folder

    folder = run_folder(path, run_id)
    model, tokenizer, meta = load_student(folder / "best")
    with Project(path) as project:
        examples = project.examples()
        t0 = time.perf_counter()
        completions = generate_all(model, tokenizer, [t for _, t, _ in examples], batch_size=32,
                                   max_new_tokens=meta["max_new_tokens"], template=meta["template"])
        print(f"    teacher wrote {len(examples)} completions in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        spec = f"lm:{folder}"
        teacher = project.upsert_teacher(spec, "lm", str(folder), hashlib.sha256(spec.encode()).hexdigest()[:16],
                                         {"max_new_tokens": meta["max_new_tokens"]})
        project.save_outputs(teacher, [TeacherOutput(example=ex, completion=c.text, method="greedy",
                                                     latency_ms=c.latency_ms)
                                       for (ex, _, _), c in zip(examples, completions, strict=True)])
    return teacher


def row(name: str, r, seconds: float, extra: dict | None = None) -> dict:
    return {"student": name, "run": r.run, "steps": r.steps, "train_s": round(r.seconds, 1), "wall_s": round(seconds, 1),
            "rouge_l": r.test_rouge_l_references, "chrf": r.test_chrf_references, "bleu": r.test_bleu_references,
            "ms": r.test_latency_ms, "tok_s": r.test_tokens_per_s, "valid_ppl": r.valid_perplexity, **(extra or {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", nargs="*", default=["gpt-tiny", "gpt-mini"])
    parser.add_argument("--epochs", type=int, help="epochs of part 1 (default: the student's)")
    parser.add_argument("--three-ways", action="store_true", help="run part 2 (teacher, then three students)")
    parser.add_argument("--teacher", default="gpt-small", help="part 2's local teacher preset (default gpt-small)")
    parser.add_argument("--teacher-epochs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps of each part-2 student")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_generation_"))
    path = build_project(folder / "e2e.kdproj", args.seed)
    from kdstudio.core.store import Project

    with Project(path) as project:
        counts = project.split_counts()
        n_refs = len([r for refs in project.references_of(split="train").values() for r in refs])
    print(f"E2E: {counts['train']} train / {counts['valid']} valid / {counts['test']} test MRs, "
          f"{n_refs} train references")
    base = {"num_threads": args.threads, "seed": args.seed, "batch_size": 32}
    figures: dict[str, list[dict]] = {"references": [], "three_ways": []}
    for student in args.students:
        r, seconds = run(path, student=student, hard_labels=True, epochs=args.epochs, **base)
        figures["references"].append(row(student, r, seconds))
    if figures["references"]:
        print("\n| student | steps | training | test ROUGE-L | chrF | BLEU | ms / completion | tokens/s |")
        print("|---|---|---|---|---|---|---|---|")
        for f in figures["references"]:
            print(f"| {f['student']} | {f['steps']} | {f['train_s'] / 60:.1f} min | {f['rouge_l']:.3f} | "
                  f"{f['chrf']:.3f} | {f['bleu']:.3f} | {f['ms']:.1f} | {f['tok_s']:.0f} |")
    if args.three_ways:
        teacher_run, seconds = run(path, student=args.teacher, hard_labels=True, epochs=args.teacher_epochs, **base)
        figures["teacher"] = row(args.teacher, teacher_run, seconds)
        teacher = harvest_teacher(path, teacher_run.run, base)
        per_epoch = {"references": math.ceil(n_refs / base["batch_size"]),
                     "sequence": math.ceil(counts["train"] / base["batch_size"])}
        ways = [("references only", {"hard_labels": True}, per_epoch["references"]),
                ("sequence KD", {"kd": "sequence"}, per_epoch["sequence"]),
                ("token KD", {"kd": "token", "temperature": 1.0, "alpha": 0.5}, per_epoch["sequence"])]
        for name, settings, steps_per_epoch in ways:
            epochs = max(1, round(args.steps / steps_per_epoch))
            r, seconds = run(path, student="gpt-tiny", teacher=teacher, epochs=epochs, patience=0, **settings, **base)
            vs = scores_vs(path, r.run, teacher)
            figures["three_ways"].append(row(name, r, seconds, {"rouge_l_teacher": vs["rouge_l"],
                                                                 "chrf_teacher": vs["chrf"]}))
        t = figures["teacher"]
        print(f"\nteacher {t['student']}: {t['steps']} steps, {t['train_s'] / 60:.1f} min, test ROUGE-L {t['rouge_l']:.3f}, "
              f"chrF {t['chrf']:.3f}, BLEU {t['bleu']:.3f}, {t['ms']:.1f} ms / completion, {t['tok_s']:.0f} tokens/s")
        print("\n| gpt-tiny trained on | steps | training | vs references ROUGE-L | chrF | BLEU "
              "| vs teacher ROUGE-L | chrF | ms / completion |")
        print("|---|---|---|---|---|---|---|---|---|")
        for f in figures["three_ways"]:
            print(f"| {f['student']} | {f['steps']} | {f['train_s'] / 60:.1f} min | {f['rouge_l']:.3f} | "
                  f"{f['chrf']:.3f} | {f['bleu']:.3f} | {f['rouge_l_teacher']:.3f} | {f['chrf_teacher']:.3f} | "
                  f"{f['ms']:.1f} |")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
