"""The comparison viewer on a large run, measured as a person feels it: from creating the viewer
to its first page on screen, and from changing a filter or the sort to the repainted table.

    QT_QPA_PLATFORM=offscreen python tests/bench/bench_viewer.py --rows 100000 --repeat 5

Builds a project with ``--rows`` test examples, a teacher answer and a student prediction for
each through the store (10 labels), then times, offscreen:

- open (warm): the viewer table already built, as evaluation leaves it;
- open (cold): the table built on opening (a run that was never evaluated);
- each filter and sort change: the model's query, the count and the repaint of the visible rows.

Prints a table (best, median and worst of ``--repeat`` in ms) and one JSON line. Goals: open
under 1,000 ms, a filter or sort change under 200 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_queries import build  # noqa: E402  (the same 100,000-row project, through the store)

OPEN_GOAL_MS, CHANGE_GOAL_MS = 1000.0, 200.0


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "best_ms": round(min(samples), 1),
        "median_ms": round(statistics.median(samples), 1),
        "worst_ms": round(max(samples), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    from kdstudio.core.store import Project
    from kdstudio.gui.compare import ComparisonViewer
    from kdstudio.gui.theme import ThemeManager

    app = QApplication.instance() or QApplication(["bench"])
    ThemeManager.instance().apply("light")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.kdproj"
        t0 = time.perf_counter()
        run_id, _teacher_id = build(path, args.rows)
        build_s = time.perf_counter() - t0

        def open_viewer() -> tuple[ComparisonViewer, float]:
            t0 = time.perf_counter()
            viewer = ComparisonViewer(path)
            viewer.resize(1280, 800)
            viewer.show()
            deadline = time.monotonic() + 120
            while (
                viewer.model is None or viewer.model.run_id != run_id
            ) and time.monotonic() < deadline:
                app.processEvents()
                time.sleep(0.001)
            viewer.table.viewport().repaint()
            return viewer, (time.perf_counter() - t0) * 1000

        def drop_table() -> None:
            with Project(path) as project:  # a change to the predictions marks the table stale
                row = project.predictions(run_id)[0]
                project.save_predictions(run_id, [row])

        cold, warm = [], []
        for _ in range(args.repeat):
            drop_table()
            viewer, ms = open_viewer()
            cold.append(ms)
            viewer.close()
            viewer.deleteLater()
            viewer, ms = open_viewer()
            warm.append(ms)
            if _ < args.repeat - 1:
                viewer.close()
                viewer.deleteLater()
        app.processEvents()

        bar = viewer.filter_bar
        sort_index = {bar.sort.itemData(i): i for i in range(bar.sort.count())}

        def timed_change(apply, undo) -> list[float]:
            samples = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                apply()
                bar.flush()
                viewer.table.viewport().repaint()
                samples.append((time.perf_counter() - t0) * 1000)
                undo()
                bar.flush()
            return samples

        cases = {
            "disagreements only": (
                lambda: bar.disagreements.setChecked(True),
                lambda: bar.disagreements.setChecked(False),
            ),
            "student wrong vs gold": (
                lambda: bar.gold.setCurrentIndex(2),
                lambda: bar.gold.setCurrentIndex(0),
            ),
            "class = label_3": (
                lambda: bar.klass.setCurrentIndex(4),
                lambda: bar.klass.setCurrentIndex(0),
            ),
            "confidence 0.4–0.6": (
                lambda: (bar.conf_low.setValue(0.4), bar.conf_high.setValue(0.6)),
                lambda: (bar.conf_low.setValue(0.0), bar.conf_high.setValue(1.0)),
            ),
            "text search 'refund'": (
                lambda: bar.search.setText("refund"),
                lambda: bar.search.setText(""),
            ),
            "text search, rare '#4242'": (
                lambda: bar.search.setText("#4242"),
                lambda: bar.search.setText(""),
            ),
            "confusion cell click (3, 5)": (lambda: viewer.filter_cell(3, 5), bar.clear_cell),
            "sort by margin": (
                lambda: bar.sort.setCurrentIndex(sort_index["margin"]),
                lambda: bar.sort.setCurrentIndex(sort_index["kl"]),
            ),
            "sort by entropy": (
                lambda: bar.sort.setCurrentIndex(sort_index["entropy"]),
                lambda: bar.sort.setCurrentIndex(sort_index["kl"]),
            ),
            "sort direction (KL ascending)": (
                lambda: bar.direction.setChecked(False),
                lambda: bar.direction.setChecked(True),
            ),
        }
        results = {
            "open (table built by evaluation)": summary(warm),
            "open (table built on opening)": summary(cold),
        }
        for name, (apply, undo) in cases.items():
            results[name] = summary(timed_change(apply, undo))

        def scroll_deep() -> None:
            viewer.table.scrollToBottom()
            viewer.table.viewport().repaint()

        deep = []
        for _ in range(args.repeat):
            viewer.table.scrollToTop()
            viewer.model.refresh_rows()
            t0 = time.perf_counter()
            scroll_deep()
            deep.append((time.perf_counter() - t0) * 1000)
        results["scroll to the last row"] = summary(deep)
        viewer.close()

    worst_change = max(r["worst_ms"] for k, r in results.items() if not k.startswith("open"))
    print(
        f"{args.rows:,} test rows; project built in {build_s:.1f} s; times in ms over {args.repeat} tries"
    )
    print(f"{'action':40}{'best':>8}{'median':>8}{'worst':>8}")
    for name, r in results.items():
        print(f"{name:40}{r['best_ms']:>8.1f}{r['median_ms']:>8.1f}{r['worst_ms']:>8.1f}")
    print(
        f"goals: open < {OPEN_GOAL_MS:.0f} ms (warm worst {max(warm):.0f}), filter/sort change < "
        f"{CHANGE_GOAL_MS:.0f} ms (worst {worst_change:.0f})"
    )
    print(
        json.dumps(
            {
                "rows": args.rows,
                "repeat": args.repeat,
                "results": results,
                "open_ok": max(warm) < OPEN_GOAL_MS,
                "change_ok": worst_change < CHANGE_GOAL_MS,
            }
        )
    )


if __name__ == "__main__":
    main()
