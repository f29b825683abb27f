"""Comparison-viewer queries on a large run: how long a page takes when the viewer opens, when a
filter or the sort changes, deep in the list, and the matching-row count.

    python tests/bench/bench_queries.py --rows 100000 --page 200 --repeat 5

Builds a project with ``--rows`` test examples, a teacher answer and a student prediction for
each (10 labels, about 15% disagreement), then times each query (best and median of ``--repeat``,
in ms, after one warm-up). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kdstudio.core.store import Project, TeacherOutput  # noqa: E402

WORDS = ["account", "card", "transfer", "refund", "fee", "balance", "pin", "cash", "loan", "limit", "top", "up", "exchange", "rate"]


def build(path: Path, rows: int, n_labels: int = 10, seed: int = 0) -> tuple[int, int]:
    """A project with ``rows`` test examples, teacher answers and one finished run."""
    import numpy as np

    rng = random.Random(seed)
    gen = np.random.default_rng(seed)
    project = Project.create(path, "classification", labels=[f"label_{i}" for i in range(n_labels)])
    examples = []
    for i in range(rows):
        text = " ".join(rng.choices(WORDS, k=rng.randint(4, 14))) + f" #{i}"
        examples.append(
            (
                text,
                i % n_labels,
                None,
                "test",
                "bench",
                i + 1,
                hashlib.sha1(text.encode()).hexdigest(),
            )
        )
    with project.transaction():
        project.insert_examples(examples)
    teacher_id = project.upsert_teacher("bench:teacher", "bench", "teacher", "bench", {})
    ids = [r[0] for r in project.examples("test")]
    teacher = gen.dirichlet(np.full(n_labels, 0.3), size=rows)
    student = 0.7 * teacher + 0.3 * gen.dirichlet(np.full(n_labels, 0.3), size=rows)
    project.save_outputs(
        teacher_id,
        [TeacherOutput(example=i, probs=t.tolist()) for i, t in zip(ids, teacher, strict=True)],
    )
    run_id = project.create_run("bilstm", teacher_id, {}, status="finished")
    records = []
    for i, s, t in zip(ids, student, teacher, strict=True):
        top = np.sort(s)[::-1]
        records.append(
            {
                "example": i,
                "probs": [round(float(x), 6) for x in s],
                "label": int(s.argmax()),
                "confidence": float(top[0]),
                "margin": float(top[0] - top[1]),
                "entropy": float(-(s * np.log(s + 1e-12)).sum()),
                "kl": float((t * (np.log(t + 1e-12) - np.log(s + 1e-12))).sum()),
            }
        )
    project.save_predictions(run_id, records)
    project.conn.execute("ANALYZE")
    project.close()
    return run_id, teacher_id


def timed(fn, repeat: int) -> dict[str, float]:
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return {"best_ms": round(min(samples), 2), "median_ms": round(statistics.median(samples), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.kdproj"
        t0 = time.perf_counter()
        run_id, teacher_id = build(path, args.rows)
        build_s = time.perf_counter() - t0
        project = Project(path)
        t0 = time.perf_counter()
        project.ensure_compare_rows(run_id, teacher_id)
        cache_s = time.perf_counter() - t0
        page = args.page

        def q(filters=None, sort="kl", descending=True, offset=0, with_total=False):
            return lambda: project.compare_page(
                run_id,
                teacher_id,
                filters=filters,
                sort=sort,
                descending=descending,
                offset=offset,
                limit=page,
                with_total=with_total,
            )

        cases = {
            "first page (sort kl desc)": q(),
            "first page + total count": q(with_total=True),
            "sort by margin asc": q(sort="margin", descending=False),
            "sort by entropy desc": q(sort="entropy"),
            "sort by id": q(sort="id", descending=False),
            "filter disagreement": q({"disagreement": True}),
            "filter disagreement + total": q({"disagreement": True}, with_total=True),
            "filter cell (student 3, teacher 5)": q({"student_label": 3, "teacher_label": 5}),
            "filter gold wrong": q({"gold": "wrong"}),
            "filter confidence 0.4-0.6": q({"confidence": (0.4, 0.6)}, sort="confidence"),
            "filter kl >= 0.2": q({"kl": (0.2, None)}),
            "text search 'refund'": q({"text": "refund"}),
            "text search 'refund' + total": q({"text": "refund"}, with_total=True),
            "text search, rare ('#4242')": q({"text": "#4242"}, with_total=True),
            "text search, no match": q({"text": "zzzz"}),
            "deep page (offset rows-page)": q(offset=args.rows - page),
            "count disagreement": lambda: project.compare_count(
                run_id, teacher_id, filters={"disagreement": True}
            ),
            "confusion student x teacher": lambda: project.confusion_counts(run_id, teacher_id),
        }
        results = {name: timed(fn, args.repeat) for name, fn in cases.items()}
        total = project.compare_count(run_id, teacher_id, filters={"disagreement": True})
        project.close()
    print(
        f"{args.rows} rows, page of {page}; project built in {build_s:.1f} s, viewer table in "
        f"{cache_s * 1000:.0f} ms (once per run and teacher); {total} disagreements"
    )
    print(f"{'query':40}{'best ms':>10}{'median ms':>11}")
    for name, r in results.items():
        print(f"{name:40}{r['best_ms']:>10.2f}{r['median_ms']:>11.2f}")
    print(
        json.dumps(
            {
                "rows": args.rows,
                "page": page,
                "viewer_table_ms": round(cache_s * 1000),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
