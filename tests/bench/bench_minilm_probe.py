"""Accuracy of the offline default teacher, ``embed:minilm`` with a probe, on four data sets.

Each set is imported with ``kdstudio import`` in its raw layout, the probe is fitted on the gold
train rows and calibrated on valid, and accuracy is measured on test (SMS Spam has no test file:
its carved validation split is the held-out set).

    python tests/bench/bench_minilm_probe.py [--sets banking77 sst2 trec sms_spam]
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

SETS = {
    "banking77": ([("banking77/train.csv", "auto"), ("banking77/test.csv", "test")], "test"),
    "sst2": ([("sst2/stsa.binary.train", "auto"), ("sst2/stsa.binary.test", "test")], "test"),
    "trec": ([("trec/TREC.train", "auto"), ("trec/TREC.test", "test")], "test"),
    "sms_spam": ([("sms_spam/SMSSpamCollection", "auto")], "valid"),
}


def measure(name: str, workdir: Path) -> dict:
    from kdstudio.core.data import import_file
    from kdstudio.core.events import run_to_end
    from kdstudio.core.harvest import HarvestConfig, harvest
    from kdstudio.core.store import Project

    path = workdir / f"{name}.kdproj"
    Project.create(path).close()
    files, held_out = SETS[name]
    for rel, split in files:
        run_to_end(import_file(path, DATASETS / rel, split=split))
    t0 = time.perf_counter()
    result = run_to_end(harvest(path, HarvestConfig(teacher="embed:minilm", splits=("train", "valid", "test"))))
    seconds = time.perf_counter() - t0
    with Project(path) as project:
        rows = project.teacher_outputs(result.teacher, [held_out])
        n_train = project.split_counts()["train"]
    accuracy = sum(r["label"] == r["gold"] for r in rows) / len(rows)
    return {"set": name, "held_out": held_out, "n": len(rows), "train": n_train, "accuracy": accuracy,
            "harvest_s": seconds, "answers": result.n_ok}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    args = parser.parse_args()
    print("| data set | probe fitted on | held out | accuracy | harvest time |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            r = measure(name, Path(tmp))
            print(f"| {r['set']} | {r['train']:,} gold train rows | {r['held_out']} ({r['n']:,}) | "
                  f"{r['accuracy']:.3f} | {r['harvest_s']:.0f} s for {r['answers']:,} answers |", flush=True)


if __name__ == "__main__":
    main()
