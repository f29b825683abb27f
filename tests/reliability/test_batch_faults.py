"""API faults in the Claude teacher's batch lane (Message Batches), through the real harvest job.

Injected (loopback fake API): batch requests that error or expire once (resubmitted once, then
answered), that error every time (resubmitted once, then a recorded failure), that are invalid
(never resubmitted), answers that are refused or not JSON, over seeded schedules on banking77's 77
labels; and a crash between the API creating a batch and the project recording its id (an exception
at that point, and a real SIGKILL of a CLI harvest), with a look-alike batch of another client in
the same workspace. Checked: every example has exactly one stored answer or recorded failure; the
rerun finds the crashed run's batch by listing the workspace's batches and ingests it, submitting
(and paying for) nothing twice; ``PRAGMA integrity_check`` is ok.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from fakes.anthropic_server import FakeAnthropic, project_with_texts
from fakes.label_sets import banking77, banking77_texts

from kdstudio.core.events import run_to_end
from kdstudio.core.harvest import HarvestConfig, harvest
from kdstudio.core.store import Project

MODEL = "claude-haiku-5-5"
SPEC = f"claude:{MODEL}"
ROOT = Path(__file__).resolve().parents[2]

#: marker → (times the server is asked about the text, stored status, part of the error)
OUTCOMES = {
    "": (1, "ok", None),
    "[[batch:errored*1]]": (2, "ok", None),
    "[[batch:expired*1]]": (2, "ok", None),
    "[[batch:errored]]": (2, "failed", "api_error"),
    "[[batch:expired]]": (2, "failed", "expired twice"),
    "[[batch:invalid]]": (1, "failed", "invalid_request_error"),
    "[[fault:refusal]]": (1, "failed", "refusal"),
    "[[fault:malformed]]": (1, "failed", "invalid JSON"),
}


def config(server: FakeAnthropic, **kw) -> HarvestConfig:
    return HarvestConfig(teacher=SPEC, batch_api=True,
                         options={"api_key": "test-key", "base_url": server.url, "poll_s": 0.01}, **kw)


def creates(server: FakeAnthropic) -> list:
    return [r for r in server.requests if r.method == "POST" and r.path == "/v1/messages/batches"]


def integrity_ok(path) -> bool:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def labelled_project(path, texts):
    project_with_texts(path, texts, labels=tuple(banking77())).close()


def all_answered_once(path, texts, server) -> None:
    with Project(path) as project:
        tid = project.teachers()[0]["id"]
        rows = project.teacher_outputs(tid, status=None)
        assert sorted(r["text"] for r in rows) == sorted(texts)
        assert all(r["status"] == "ok" and r["attempts"] == 1 for r in rows)
        assert project.open_batches(tid) == [] and project.batch_intents(tid) == []
    asked = Counter(server.asked_texts())
    assert all(asked[t] == 1 for t in texts)  # submitted (paid for) once


@pytest.mark.parametrize("seed", [1, 2])
def test_random_batch_faults_resubmit_once_and_never_the_invalid(tmp_path, seed):
    rng = random.Random(seed)
    markers = list(OUTCOMES)
    texts = [f"#{i} {t} {rng.choice(markers)}".strip() for i, t in enumerate(banking77_texts(30))]
    path = tmp_path / "p.kdproj"
    labelled_project(path, texts)
    with FakeAnthropic(batch_polls=1) as server:
        result = run_to_end(harvest(path, config(server)))
        asked = Counter(server.asked_texts())
        made = creates(server)
    with Project(path) as project:
        rows = {r["text"]: r for r in project.teacher_outputs(result.teacher, status=None)}
        assert project.open_batches(result.teacher) == []
    assert sorted(rows) == sorted(texts)
    for text in texts:
        marker = next((m for m in markers if m and m in text), "")
        times, status, why = OUTCOMES[marker]
        assert asked[text] == times, text
        assert rows[text]["status"] == status and rows[text]["attempts"] == 1, (text, rows[text]["error"])
        if why:
            assert why in rows[text]["error"], (text, rows[text]["error"])
    retried = sum(OUTCOMES[next((m for m in markers if m and m in t), "")][0] == 2 for t in texts)
    assert [len(c.body["requests"]) for c in made] == [len(texts)] + ([retried] if retried else [])
    assert result.n_ok + result.n_failed == len(texts)
    assert integrity_ok(path)


def decoy(server: FakeAnthropic, n: int) -> str:
    """A batch of ``n`` requests that another client put in the same workspace."""
    reply = server.create_batch({"requests": [
        {"custom_id": f"other-{i}", "params": {"model": MODEL, "max_tokens": 50,
                                              "messages": [{"role": "user", "content": f"other {i}"}]}}
        for i in range(n)]})
    return reply.body["id"]


@pytest.mark.parametrize("batch_polls", [0, 3], ids=["ended", "running"])
def test_a_batch_created_but_not_recorded_is_found_again_not_paid_twice(tmp_path, monkeypatch, batch_polls):
    texts = [f"#{i} {t}" for i, t in enumerate(banking77_texts(6))]
    path = tmp_path / "p.kdproj"
    labelled_project(path, texts)
    with FakeAnthropic(batch_polls=batch_polls) as server:
        def crash(self, intent_id, batch_id):
            raise KeyboardInterrupt  # the process dies after the API created the batch

        with monkeypatch.context() as m:
            m.setattr(Project, "confirm_batch", crash)
            with pytest.raises(KeyboardInterrupt):
                run_to_end(harvest(path, config(server)))
        (first,) = list(server.batches)
        other = decoy(server, len(texts))  # same size, newer: listed first
        with Project(path) as project:
            assert len(project.batch_intents(project.teachers()[0]["id"])) == 1

        run_to_end(harvest(path, config(server)))
        assert len(creates(server)) == 1  # nothing submitted again
        all_answered_once(path, texts, server)
        with Project(path) as project:
            known = project.known_batch_ids(project.teachers()[0]["id"])
        assert known == {first} and other not in known
    assert integrity_ok(path)



@pytest.mark.parametrize("fault", ["lost_reply", "reset", "529"])
@pytest.mark.parametrize("batch_polls", [0, 3], ids=["ended", "running"])
def test_a_create_without_a_reply_is_looked_for_before_it_is_sent_again(tmp_path, monkeypatch, fault, batch_polls):
    """A batch create is never retried blind: when its reply is lost (the batch was made, or not),
    the workspace's batches are listed first, so exactly one batch is made and paid for."""
    from kdstudio.core.teachers.claude import batch as batch_lane

    monkeypatch.setattr(batch_lane, "CREATE_BACKOFF_S", 0.01)
    texts = [f"#{i} {t}" for i, t in enumerate(banking77_texts(6))]
    path = tmp_path / "p.kdproj"
    labelled_project(path, texts)
    with FakeAnthropic(batch_polls=batch_polls) as server:
        decoy(server, len(texts) + 1)  # another client's batch in the workspace, of another size
        server.queue_batch_create_faults(fault)
        result = run_to_end(harvest(path, config(server)))
        assert result.n_ok == len(texts)
        ours = [b for b in server.batches.values() if not b["_requests"][0]["custom_id"].startswith("other-")]
        assert len(ours) == 1  # made once, whatever the reply said
        assert len(creates(server)) == (1 if fault == "lost_reply" else 2)
        if fault == "lost_reply":
            all_answered_once(path, texts, server)
        else:  # the refused create carried the texts too, but made no batch: nothing was paid for
            with Project(path) as project:
                tid = project.teachers()[0]["id"]
                rows = project.teacher_outputs(tid, status=None)
                assert sorted(r["text"] for r in rows) == sorted(texts) and {r["status"] for r in rows} == {"ok"}
                assert project.open_batches(tid) == [] and project.batch_intents(tid) == []
    assert integrity_ok(path)

def test_an_intent_that_never_reached_the_api_is_dropped_and_submitted_anew(tmp_path, monkeypatch):
    from anthropic.resources.messages.batches import Batches

    texts = [f"#{i} {t}" for i, t in enumerate(banking77_texts(5))]
    path = tmp_path / "p.kdproj"
    labelled_project(path, texts)
    with FakeAnthropic(batch_polls=0) as server:
        def crash(self, **kwargs):
            raise KeyboardInterrupt  # the process dies just before the create request is sent

        with monkeypatch.context() as m:
            m.setattr(Batches, "create", crash)
            with pytest.raises(KeyboardInterrupt):
                run_to_end(harvest(path, config(server)))
        with Project(path) as project:
            tid = project.teachers()[0]["id"]
            (intent,) = project.batch_intents(tid)
        other = decoy(server, len(texts))  # the right size and time, but its results carry other custom_ids
        result = run_to_end(harvest(path, config(server)))
        with Project(path) as project:
            assert project.batch_intents(tid) == [] and project.batch_requests(intent.id) == {}
            assert other not in project.known_batch_ids(tid)
        assert result.n_ok == 5 and len(creates(server)) == 1  # one new batch
        all_answered_once(path, texts, server)
    assert integrity_ok(path)


def test_a_harvest_killed_right_after_creating_a_batch_resumes_it(tmp_path, monkeypatch):
    texts = [f"#{i} {t}" for i, t in enumerate(banking77_texts(8))]
    path = tmp_path / "p.kdproj"
    labelled_project(path, texts)
    script = (
        "import os, signal, sys\n"
        "from kdstudio.core.store import Project\n"
        "Project.confirm_batch = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        "from kdstudio.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    with FakeAnthropic(batch_polls=2) as server:
        env = {**os.environ, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.url,
               "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, "-c", script, "harvest", str(path), "--teacher", SPEC, "--batch-api"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == -9, done.stderr
        assert len(creates(server)) == 1 and integrity_ok(path)

        result = run_to_end(harvest(path, config(server)))
        assert result.n_ok == len(texts) and len(creates(server)) == 1
        all_answered_once(path, texts, server)
    assert integrity_ok(path)
