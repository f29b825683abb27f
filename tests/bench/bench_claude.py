"""Benchmark: the Claude teacher's real-time lane against the loopback fake API.

2,000 examples, 200 ms server latency per request, 16 requests in flight. The ideal wall time is
2000 × 0.2 / 16 = 25 s; the goal is at most 1.1× that. The fake server runs in its own process
so that it does not compete with the client for the interpreter lock. Every answer is saved in a
project, as the harvest does.

Run: ``python tests/bench/bench_claude.py [--n 2000] [--latency-ms 200] [--concurrency 16]``
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    import anthropic  # noqa: F401 - load the SDK before the clock starts

    from kdstudio.core.events import CancelToken
    from kdstudio.core.store import Project
    from kdstudio.core.teachers.base import TeacherContext
    from kdstudio.core.teachers.claude import ClaudeTeacher

    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fakes" / "anthropic_server.py"), "--latency-ms", str(args.latency_ms)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        url = server.stdout.readline().strip()
        labels = ["positive", "negative", "neutral"]
        with tempfile.TemporaryDirectory() as tmp:
            project = Project.create(Path(tmp) / "bench.kdproj", "classification", labels=labels)
            texts = [f"review {i}: this was {labels[i % 3]} overall" for i in range(args.n)]
            with project.transaction():
                project.insert_examples([(t, None, None, "train", "bench", i, hashlib.sha256(t.encode()).hexdigest())
                                         for i, t in enumerate(texts)])
            options = {"api_key": "test-key", "base_url": url, "concurrency": args.concurrency, "max_retries": 2}
            teacher = ClaudeTeacher("claude-haiku-5-5", TeacherContext("classification", labels, options=options))
            tid = project.upsert_teacher(teacher.spec, "claude", teacher.model, "bench", teacher.settings())
            items = project.pending_examples(tid, ["train"])
            t0 = time.monotonic()
            for group in teacher.answer(items, cancel=CancelToken()):
                project.save_outputs(tid, group)
            wall = time.monotonic() - t0
            counts = project.count_outputs(tid)
            project.close()
    finally:
        server.terminate()
        server.wait(timeout=10)

    ideal = args.n * args.latency_ms / 1000 / args.concurrency
    ratio = wall / ideal
    verdict = "PASS" if ratio <= 1.1 and counts["n_ok"] == args.n else "FAIL"
    print(f"bench_claude: {args.n} examples, {args.latency_ms:g} ms latency, concurrency {args.concurrency}: "
          f"{wall:.2f} s vs ideal {ideal:.2f} s = {ratio:.3f}x (goal <= 1.1x) "
          f"ok={counts['n_ok']} failed={counts['n_failed']} cost=${counts['cost_usd']:.4f} {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
