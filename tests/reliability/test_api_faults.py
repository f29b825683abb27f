"""API faults in the Claude teacher's real-time lane, through the real harvest job and the CLI.

Injected (loopback fake API, ``tests/fakes/anthropic_server.py``), in sequence on one example and at
random over seeded schedules on banking77's 77 labels: 429 with ``retry-after``, 529, 500, a
connection reset, a hung request (timeout), truncated JSON (``max_tokens`` cut-off), a reply that
is not JSON, an unknown label, a refusal; then the faults that concern every request: the spend
limit, 401 and 403. Checked after each run: every example has exactly one stored answer or one
recorded failure; an answer stored is the one the server gave (no silent misread); the server was
paid (a 200 reply) at most once per example, and a rerun asks nothing already stored; a fatal fault
stops the harvest with one clear line and keeps everything stored; ``PRAGMA integrity_check`` is ok.
``FAULT_COUNT`` adds up the faults the server gave, for the closing report.
"""

from __future__ import annotations

import random
import sqlite3
from collections import Counter

import pytest
from fakes.anthropic_server import RESET, FakeAnthropic, _unwrap, project_with_texts
from fakes.label_sets import banking77, banking77_texts

from kdstudio.cli import main
from kdstudio.core.errors import TeacherError
from kdstudio.core.events import run_to_end
from kdstudio.core.harvest import HarvestConfig, harvest
from kdstudio.core.store import Project

MODEL = "claude-haiku-5-5"
SPEC = f"claude:{MODEL}"

#: Faults that go away after N tries: the SDK retries them and the example is answered.
TRANSIENT = ["429*2", "529*2", "500*1", "reset*1", "hang*1", "429*1", "529*1"]
#: Faults that stay: the example ends as a recorded failure naming why.
PERMANENT = {"malformed": "invalid JSON", "unknown_label": "unknown label", "refusal": "refusal",
             "max_tokens": "max_tokens", "500": "500 api_error", "529": "529"}


def options(server: FakeAnthropic, **extra) -> dict:
    return {"api_key": "test-key", "base_url": server.url, "max_retries": 5, "timeout_s": 2.0, **extra}


def integrity_ok(path) -> bool:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def paid_replies(server: FakeAnthropic) -> Counter:
    """How many 200 replies (paid answers) the server gave per example text."""
    from fakes.anthropic_server import _user_text

    return Counter(_unwrap(_user_text(r.body)) for r in server.message_requests() if r.status == 200)


def fault_replies(server: FakeAnthropic) -> int:
    """Faults the server gave: error statuses, resets, and 200 replies carrying a permanent fault."""
    from fakes.anthropic_server import _user_text

    n = 0
    for r in server.message_requests():
        text = _user_text(r.body)
        n += r.status != 200 or any(f"[[fault:{name}]]" in text for name in PERMANENT)
    return n


def schedule(seed: int, n: int) -> list[str]:
    """``n`` banking77 texts, about a third carrying a transient fault and a sixth a permanent one."""
    rng = random.Random(seed)
    texts = []
    for i, text in enumerate(banking77_texts(n)):
        roll = rng.random()
        if roll < 0.33:
            text = f"{text} [[fault:{rng.choice(TRANSIENT)}]]"
        elif roll < 0.5:
            text = f"{text} [[fault:{rng.choice(sorted(PERMANENT))}]]"
        texts.append(f"#{i} {text}")
    return texts


def check_outcome(project: Project, tid: int, texts: list[str], server: FakeAnthropic) -> None:
    """Exactly one row per example, the right status, the label the server believed, the reason."""
    labels = project.labels()
    rows = {r["text"]: r for r in project.teacher_outputs(tid, status=None)}
    assert sorted(rows) == sorted(texts)  # nothing lost, nothing extra
    for text, row in rows.items():
        permanent = next((why for name, why in PERMANENT.items() if f"[[fault:{name}]]" in text), None)
        if permanent:
            assert row["status"] == "failed" and permanent in row["error"], (text, row["error"])
            assert row["probs"] is None
        else:
            assert row["status"] == "ok", (text, row["error"])
            believed = server.belief(text, labels, 1)
            assert labels[row["label"]] == max(believed, key=believed.get), text
    assert all(n == 1 for n in paid_replies(server).values())  # never paid twice for one example


FAULT_COUNT: Counter = Counter()


def test_faults_in_sequence_on_one_example_end_in_one_answer(tmp_path):
    with FakeAnthropic(retry_after_ms=5) as server:
        texts = banking77_texts(4)
        path = tmp_path / "p.kdproj"
        project_with_texts(path, texts, labels=tuple(banking77())).close()
        server.queue_faults("reset", "429", "529", "500", "429")
        result = run_to_end(harvest(path, HarvestConfig(teacher=SPEC, concurrency=1, options=options(server))))
        assert (result.n_ok, result.n_failed) == (4, 0)
        statuses = [r.status for r in server.message_requests()]
        assert statuses[:6] == [RESET, 429, 529, 500, 429, 200]  # one example through all five
        with Project(path) as project:
            check_outcome(project, result.teacher, texts, server)
        FAULT_COUNT["sequence"] += fault_replies(server)
    assert integrity_ok(path)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_fault_schedules_over_77_labels_lose_nothing(tmp_path, seed):
    texts = schedule(seed, 40)
    path = tmp_path / "p.kdproj"
    project_with_texts(path, texts, labels=tuple(banking77())).close()
    rng = random.Random(seed)
    with FakeAnthropic(retry_after_ms=5, hang_s=10) as server:
        server.queue_faults(*rng.choices(["429", "529", "500", "reset"], k=3))  # on whatever comes first
        config = HarvestConfig(teacher=SPEC, concurrency=4, options=options(server))
        result = run_to_end(harvest(path, config))
        n_permanent = sum(any(f"[[fault:{p}]]" in t for p in PERMANENT) for t in texts)
        assert (result.n_ok, result.n_failed) == (len(texts) - n_permanent, n_permanent)
        with Project(path) as project:
            check_outcome(project, result.teacher, texts, server)
        FAULT_COUNT[f"seed{seed}"] += fault_replies(server)

        asked = len(server.message_requests())
        again = run_to_end(harvest(path, config))  # a rerun asks nothing already stored
        assert (again.n_ok, again.n_failed) == (0, 0) and len(server.message_requests()) == asked
    assert integrity_ok(path)


@pytest.mark.parametrize(("fault", "says"), [
    ("spend_limit", "spend limit reached"),
    ("401", "API key rejected"),
    ("403", "403 permission_error"),
])
def test_a_fatal_fault_stops_with_one_line_and_keeps_what_was_stored(tmp_path, monkeypatch, capsys, fault, says):
    texts = [f"#{i} {t}" for i, t in enumerate(banking77_texts(8))]
    texts[4] += f" [[fault:{fault}*1]]"
    path = tmp_path / "p.kdproj"
    project_with_texts(path, texts, labels=tuple(banking77())).close()
    with FakeAnthropic() as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        code = main(["harvest", str(path), "--teacher", SPEC, "--concurrency", "1"])
        err = capsys.readouterr().err.strip().splitlines()  # progress and log lines, then the error
        errors = [line for line in err if "error" in line.lower()]
        assert code != 0 and errors == [err[-1]] and err[-1].startswith("kdstudio: error: "), err
        assert says in err[-1] and ".." not in err[-1] and not any("Traceback" in line for line in err)
        with Project(path) as project:
            tid = project.teachers()[0]["id"]
            stored = {r["text"] for r in project.teacher_outputs(tid, status=None)}
        assert stored == set(texts[:4])  # the answers before the fault; nothing after it was asked
        assert not any(t in texts[5:] for t in server.asked_texts())
        FAULT_COUNT[fault] += fault_replies(server)

        assert main(["harvest", str(path), "--teacher", SPEC, "--concurrency", "1"]) == 0  # the fault is gone
        with Project(path) as project:
            check_outcome(project, tid, texts, server)
    assert integrity_ok(path)


def test_a_fatal_fault_in_the_job_is_a_teacher_error(tmp_path):
    texts = [f"#{i} {t}" for i, t in enumerate(banking77_texts(6))]
    texts[2] += " [[fault:403]]"
    path = tmp_path / "p.kdproj"
    project_with_texts(path, texts, labels=tuple(banking77())).close()
    with FakeAnthropic() as server:
        with pytest.raises(TeacherError, match="403 permission_error") as caught:
            run_to_end(harvest(path, HarvestConfig(teacher=SPEC, concurrency=1, options=options(server))))
        assert "\n" not in str(caught.value)
        FAULT_COUNT["403-job"] += fault_replies(server)
    with Project(path) as project:
        assert {r["text"] for r in project.teacher_outputs(project.teachers()[0]["id"], status=None)} == set(texts[:2])
    assert integrity_ok(path)
