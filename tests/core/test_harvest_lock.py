"""One harvest per project at a time: a second one is refused at once, the lock goes with its holder."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fakes import anthropic_server
from fakes.anthropic_server import FakeAnthropic, project_with_texts

from kdstudio.core.errors import Cancelled, ConfigError
from kdstudio.core.events import CancelToken, Progress, run_to_end
from kdstudio.core.harvest import HarvestConfig, harvest
from kdstudio.core.harvest.lock import lock_path
from kdstudio.core.store import Project

fake_anthropic = anthropic_server.fake_anthropic
ROOT = Path(__file__).resolve().parents[2]
MODEL = "claude-haiku-5-5"
LABELS = ["positive", "negative", "neutral"]


def _texts(n: int) -> list[str]:
    return [f"review {i} {LABELS[i % 3]}" for i in range(n)]


def _cli(path: Path) -> list[str]:
    return [sys.executable, "-m", "kdstudio", "harvest", str(path), "--teacher", f"claude:{MODEL}",
            "--concurrency", "2"]


def _wait_for_requests(server: FakeAnthropic, proc: subprocess.Popen, n: int) -> None:
    deadline = time.monotonic() + 60
    while len(server.message_requests()) < n and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_second_harvest_in_this_process_is_refused_and_the_lock_goes_with_the_first(
        tmp_path, fake_anthropic, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
    path = tmp_path / "p.kdproj"
    project_with_texts(path, _texts(12)).close()
    config = HarvestConfig(teacher=f"claude:{MODEL}", concurrency=1)
    token = CancelToken()
    first = harvest(path, config, cancel=token)
    assert isinstance(next(e for e in first if isinstance(e, Progress)), Progress)  # running, lock held
    with pytest.raises(ConfigError, match=rf"another KD Studio process \(pid {os.getpid()}\) is harvesting"):
        next(harvest(path, HarvestConfig(teacher="claude:claude-opus-5-5")))  # any teacher
    assert run_to_end(harvest(path, HarvestConfig(teacher=f"claude:{MODEL}", dry_run=True))).spec  # reads only
    token.cancel()
    with pytest.raises(Cancelled):
        run_to_end(first)
    result = run_to_end(harvest(path, config))  # the cancelled one let go
    assert result.answered_total == 12
    with pytest.raises(ConfigError):  # a failed harvest lets go too
        run_to_end(harvest(path, HarvestConfig(teacher="nosuchkind:x")))
    assert run_to_end(harvest(path, config)).n_ok == 0
    assert not lock_path(path).read_text().strip()  # no stale pid left behind


@pytest.mark.slow
def test_a_second_process_is_refused_while_the_first_harvests_then_pays_for_nothing_stored(tmp_path, monkeypatch):
    path = tmp_path / "p.kdproj"
    texts = _texts(60)
    project_with_texts(path, texts).close()
    with FakeAnthropic(latency_s=0.4) as server:  # the first runs ~12 s: long enough to be refused in
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        with open(tmp_path / "first.log", "w") as log:
            first = subprocess.Popen(_cli(path), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            _wait_for_requests(server, first, 4)
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            asked_before = len(server.message_requests())
            second = subprocess.run(_cli(path), cwd=ROOT, capture_output=True, text=True, timeout=120)
            assert first.poll() is None  # the refusal came while the first still ran
            assert first.wait(timeout=120) == 0, (tmp_path / "first.log").read_text()
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"another KD Studio process (pid {first.pid}) is harvesting this project" in lines[0]
        assert "Traceback" not in second.stderr
        assert asked_before >= 4
        after_first = Counter(server.asked_texts())
        again = subprocess.run(_cli(path), cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert Counter(server.asked_texts()) == after_first  # the rerun asked nothing already stored
    assert all(n == 1 for n in after_first.values()) and set(after_first) == set(texts)
    with Project(path) as project:
        rows = project.teacher_outputs(project.teachers()[0]["id"], status=None)
    assert len(rows) == len(texts)


@pytest.mark.slow
def test_a_lock_held_by_a_killed_process_does_not_block_the_rerun(tmp_path, monkeypatch):
    path = tmp_path / "p.kdproj"
    texts = _texts(80)
    project_with_texts(path, texts).close()
    with FakeAnthropic(latency_s=0.05) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        with open(tmp_path / "first.log", "w") as log:
            first = subprocess.Popen(_cli(path), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            _wait_for_requests(server, first, 20)
            first.send_signal(signal.SIGKILL)
            first.wait()
        assert str(first.pid) in lock_path(path).read_text()  # the lock file still names the dead holder
        with Project(path) as project:
            tid = project.teachers()[0]["id"]
            stored = {r["text"] for r in project.teacher_outputs(tid, status=None)}
        assert 0 < len(stored) < len(texts), (tmp_path / "first.log").read_text()
        rerun = subprocess.run(_cli(path), cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        asked = Counter(server.asked_texts())
    with Project(path) as project:
        rows = project.teacher_outputs(tid, status=None)
    assert sorted(r["text"] for r in rows) == sorted(texts)  # exactly one row per example
    assert all(asked[t] == 1 for t in stored)  # nothing stored was asked again
    assert sum(asked.values()) - len(texts) <= 2  # at most the requests in flight at the kill
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
