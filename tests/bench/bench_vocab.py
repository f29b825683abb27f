"""What vocabulary pruning saves on each shared data set (no training: counts only).

For each data set, every text of every split goes through the MiniLM teacher's WordPiece tokenizer
(30,522 pieces), as ``kdstudio train`` prunes a project; the table gives the pieces kept and the
parameters of each from-scratch student with the teacher's full vocabulary and with the pruned one.

    python tests/bench/bench_vocab.py

With ``--holdout`` it also prunes on train only and reports how many test texts still tokenize
exactly as the teacher's tokenizer would (a new text is split over the kept pieces only).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DATASETS = Path(os.environ.get("KDSTUDIO_DATASETS", ROOT.parent / "shared" / "datasets"))
STUDENTS = ("cnn", "bilstm", "transformer-tiny")


def read(name: str) -> tuple[int, list[str], list[str]]:
    """(number of labels, train texts, test texts)."""
    folder = DATASETS / name
    if name == "banking77":
        def rows(file):
            with (folder / file).open(newline="", encoding="utf-8") as f:
                return [(r["text"], r["category"]) for r in csv.DictReader(f)]
        train, test = rows("train.csv"), rows("test.csv")
    elif name == "sst2":
        def rows(file):
            return [tuple(reversed(line.split(" ", 1))) for line in
                    (folder / file).read_text(encoding="utf-8").splitlines() if line]
        train, test = rows("stsa.binary.train") + rows("stsa.binary.dev"), rows("stsa.binary.test")
    elif name == "trec":
        def rows(file):
            return [(line.split(" ", 1)[1], line.split(":", 1)[0]) for line in
                    (folder / file).read_text(encoding="latin-1").splitlines() if line]
        train, test = rows("TREC.train"), rows("TREC.test")
    elif name == "sms_spam":
        lines = [line.split("\t", 1) for line in
                 (folder / "SMSSpamCollection").read_text(encoding="utf-8").splitlines() if line]
        train, test = [(t, lab) for lab, t in lines], []
    else:
        raise SystemExit(f"unknown data set {name}")
    return len({lab for _, lab in train}), [t for t, _ in train], [t for t, _ in test]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["banking77", "sst2", "trec", "sms_spam"])
    parser.add_argument("--holdout", action="store_true", help="also prune on train only and check test")
    args = parser.parse_args()

    from kdstudio.core.students import build_student, count_parameters
    from kdstudio.core.students.tokenizer import load_tokenizer, teacher_model_path
    from kdstudio.core.students.vocab import prune_wordpiece

    teacher = load_tokenizer(teacher_model_path("embed:minilm"))
    print("| data set | texts | pieces kept (of 30,522) | " + " | ".join(f"{s} full → pruned" for s in STUDENTS) + " |")
    print("|---|---:|---:|" + "---:|" * len(STUDENTS))
    figures = {}
    for name in args.datasets:
        n_labels, train, test = read(name)
        pruned = prune_wordpiece(teacher, train + test)
        params = {}
        for spec in STUDENTS:
            full = count_parameters(build_student(spec, n_labels, teacher))
            small = count_parameters(build_student(spec, n_labels, pruned.tokenizer))
            params[spec] = (full, small)
        figures[name] = {"texts": len(train) + len(test), "kept": pruned.size,
                         "params": {s: {"full": f, "pruned": p} for s, (f, p) in params.items()}}
        cells = " | ".join(f"{f / 1e6:.2f}M → {p / 1e6:.2f}M ({f / p:.1f}×)" for f, p in params.values())
        print(f"| {name} | {len(train) + len(test):,} | {pruned.size:,} | {cells} |")
        if args.holdout and test:
            from kdstudio.core.students.tokenizer import _plain_backend

            held = prune_wordpiece(teacher, train)
            mine = _plain_backend(held.tokenizer).encode_batch(test)
            theirs = _plain_backend(teacher).encode_batch(test)
            same = sum([held.teacher_ids[i] for i in a.ids] == b.ids for a, b in zip(mine, theirs, strict=True))
            figures[name]["holdout"] = {"kept_from_train": held.size, "test_texts_as_teacher": same, "test": len(test)}
    if args.holdout:
        for name, f in figures.items():
            if "holdout" in f:
                h = f["holdout"]
                print(f"{name}: pruned on train only ({h['kept_from_train']:,} pieces), "
                      f"{h['test_texts_as_teacher']:,} of {h['test']:,} test texts tokenize exactly as the teacher's")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
