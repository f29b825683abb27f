"""Storage faults: what the disk and the file system do to a project, and what KD Studio says.

Injected: a read-only project file and a read-only project folder (run as a user who may not
write them); a second KD Studio process reading and writing the project while a harvest writes
it; a full disk during a harvest (SQLite's ``max_page_count``: a real "database or disk is full")
and during a checkpoint save (the save's file write raises ``ENOSPC`` half-way); a project from a
newer schema; corrupt project files (random bytes, a truncated project, an empty file, SQLite
files that are not projects); a runs folder deleted after training.

Checked each time: one line on stderr (exit 2), never a traceback; the file untouched where
nothing could be written; what was stored before the fault is still there (``PRAGMA
integrity_check`` ok); a rerun once the fault is gone completes.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fakes import anthropic_server
from fakes.anthropic_server import FakeAnthropic, project_with_texts
from fakes.tiny_models import build_toy_project

from kdstudio.cli import main
from kdstudio.core.store import Project
from kdstudio.core.store.outputs import OutputsMixin
from kdstudio.core.train import run_folder

fake_anthropic = anthropic_server.fake_anthropic
ROOT = Path(__file__).resolve().parents[2]
MODEL = "claude-haiku-5-5"
LABELS = ["positive", "negative", "neutral"]
TRAIN = ["--student", "cnn", "--epochs", "2", "--batch-size", "8", "--num-threads", "1"]


def _texts(n: int) -> list[str]:
    return [f"review {i} {LABELS[i % 3]}" for i in range(n)]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _integrity(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def _one_line(err: str) -> str:
    """The single stderr line of a refused command (progress lines aside)."""
    assert "Traceback" not in err, err
    lines = [x for x in err.strip().splitlines() if x.startswith("kdstudio:")]
    assert len(lines) == 1, err
    return lines[0]


def kd(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process; (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- (a) read-only file and folder -------------------------------------------------------------
def _as_other_user() -> list[str]:
    """A command prefix that runs a process as a user the file permissions apply to: none when
    not root; as root, a user namespace that maps an ordinary uid onto the files' owner."""
    if os.geteuid() != 0:
        return []
    prefix = ["unshare", "-U", "--map-user=1000", "--map-group=1000"]
    if shutil.which("unshare") is None or subprocess.run([*prefix, "true"], capture_output=True).returncode:
        pytest.skip("running as root without user namespaces: permissions cannot be taken away")
    return prefix


def _cli_as_other_user(prefix: list[str], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*prefix, sys.executable, "-m", "kdstudio", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=120)


def test_a_read_only_project_file_or_folder_reads_and_refuses_writes_in_one_line(tmp_path):
    prefix = _as_other_user()
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "p.kdproj"
    project_with_texts(path, _texts(6)).close()
    data = tmp_path / "more.csv"
    data.write_text("text,label\nnew one,positive\nnew two,negative\n")
    before = _digest(path)
    try:
        path.chmod(0o444)  # the file
        info = _cli_as_other_user(prefix, "info", path)
        assert info.returncode == 0 and "train 6" in info.stdout, info.stderr
        out = _cli_as_other_user(prefix, "import", path, data)
        assert out.returncode == 2 and "cannot be written (the file or its folder is read-only)" in _one_line(out.stderr)
        assert _digest(path) == before
        path.chmod(0o644)
        for extra in folder.glob("p.kdproj-*"):  # a clean close leaves none; a read-only one may
            extra.unlink()
        folder.chmod(0o555)  # the folder: SQLite cannot create p.kdproj-wal / -shm beside it
        info = _cli_as_other_user(prefix, "info", path)
        assert info.returncode == 0 and "train 6" in info.stdout, info.stderr
        out = _cli_as_other_user(prefix, "import", path, data)
        assert out.returncode == 2 and "cannot be written (the file or its folder is read-only)" in _one_line(out.stderr)
        out = _cli_as_other_user(prefix, "new", folder / "q.kdproj")
        assert out.returncode == 2 and "q.kdproj: cannot be created" in _one_line(out.stderr)
        assert sorted(p.name for p in folder.iterdir()) == ["p.kdproj"]
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)
    assert _digest(path) == before and _integrity(path) == "ok"


# -- (b) a second process while a harvest writes -------------------------------------------------
@pytest.mark.slow
def test_a_second_process_reads_and_writes_while_a_harvest_writes_and_nothing_breaks(tmp_path, monkeypatch):
    path = tmp_path / "p.kdproj"
    texts = _texts(40)
    project_with_texts(path, texts).close()
    extra = tmp_path / "extra.csv"
    extra.write_text("text\nadded while harvesting 1\nadded while harvesting 2\n")
    harvest = [sys.executable, "-m", "kdstudio", "harvest", str(path), "--teacher", f"claude:{MODEL}",
               "--concurrency", "2"]
    with FakeAnthropic(latency_s=0.25) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(tmp_path / "first.log", "w") as log:
            first = subprocess.Popen(harvest, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
            deadline = time.monotonic() + 60
            while len(server.message_requests()) < 6 and first.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            seen = []
            for args in (["info", "--json"], ["import", "--split", "unlabeled", "--json"], ["info", "--json"]):
                cmd = [sys.executable, "-m", "kdstudio", args[0], str(path), *([str(extra)] if args[0] == "import"
                                                                               else []), *args[1:]]
                seen.append(subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120))
            still_running = first.poll() is None
            assert first.wait(timeout=120) == 0, (tmp_path / "first.log").read_text()
        assert still_running, "the harvest ended before the second process was done; nothing was tested"
        for out in seen:
            assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
        first_info, _, last_info = (json.loads(s.stdout) for s in seen)
        assert first_info["splits"]["train"] == 40 and last_info["splits"]["unlabeled"] == 2
        answered = [i["teachers"][0]["ok"] if i["teachers"] else 0 for i in (first_info, last_info)]
        assert 0 <= answered[0] <= answered[1] <= 40  # a consistent snapshot each time
        assert _integrity(path) == "ok"
        asked = Counter(server.asked_texts())
        again = subprocess.run(harvest, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
        assert again.returncode == 0, again.stderr
        asked_again = Counter(server.asked_texts()) - asked
    assert all(asked_again[t] == 0 for t in texts)  # the rerun paid for nothing stored
    with Project(path) as project:
        rows = project.teacher_outputs(project.teachers()[0]["id"], status=None)
    assert len(rows) == 42 and len({r["text"] for r in rows}) == 42  # one row per example, the new two too
    assert _integrity(path) == "ok"


# -- (c) a full disk ----------------------------------------------------------------------------
def test_a_full_disk_during_a_harvest_keeps_what_was_stored_and_the_rerun_completes(
        tmp_path, fake_anthropic, monkeypatch, capsys):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
    path = tmp_path / "p.kdproj"
    texts = [f"{t} " + "padding " * 40 for t in _texts(60)]
    project_with_texts(path, texts).close()
    save = OutputsMixin.save_outputs
    calls = []

    def fill_the_disk_then_save(self, teacher_id, outputs):
        if not calls:  # the disk fills up one page after the first answers arrive
            pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
            self.conn.execute(f"PRAGMA max_page_count = {pages + 1}")
        calls.append(len(outputs))
        return save(self, teacher_id, outputs)

    monkeypatch.setattr(OutputsMixin, "save_outputs", fill_the_disk_then_save)
    code, _, err = kd(capsys, "harvest", path, "--teacher", f"claude:{MODEL}", "--concurrency", "1")
    assert code == 2 and "the disk is full" in _one_line(err) and "p.kdproj" in _one_line(err)
    assert _integrity(path) == "ok"
    with Project(path) as project:
        kept = {r["text"] for r in project.teacher_outputs(project.teachers()[0]["id"], status=None)}
    assert 0 < len(kept) < len(texts)
    monkeypatch.setattr(OutputsMixin, "save_outputs", save)  # space is back
    asked = Counter(fake_anthropic.asked_texts())
    code, _, err = kd(capsys, "harvest", path, "--teacher", f"claude:{MODEL}", "--concurrency", "1")
    assert code == 0, err
    again = Counter(fake_anthropic.asked_texts()) - asked
    assert not set(again) & kept  # nothing stored was paid for again
    with Project(path) as project:
        rows = project.teacher_outputs(project.teachers()[0]["id"], status=None)
    assert sorted(r["text"] for r in rows) == sorted(texts) and all(r["status"] == "ok" for r in rows)
    assert _integrity(path) == "ok"


def test_a_full_disk_during_a_checkpoint_save_keeps_the_last_checkpoint_and_resume_completes(
        tmp_path, monkeypatch, capsys):
    project, _ = build_toy_project(tmp_path / "toy.kdproj")
    project.close()
    path = tmp_path / "toy.kdproj"
    from kdstudio.core import students

    real_save = students.save_student
    saves = []

    def save_then_fill_the_disk(model, tokenizer, folder, meta):
        saves.append(Path(folder))
        if len(saves) < 3:
            return real_save(model, tokenizer, folder, meta)
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "model.safetensors").write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(students, "save_student", save_then_fill_the_disk)
    code, _, err = kd(capsys, "train", path, *TRAIN)
    line = _one_line(err)
    assert code == 2 and "the disk is full" in line and "checkpoint could not be saved" in line
    with Project(path) as project:
        run = project.runs()[-1]
    folder = run_folder(path, run["id"])
    assert not list(folder.glob("*.partial")) and not list(folder.glob("*.old"))
    meta = students.load_student(folder / "last")[2]  # the whole earlier checkpoint, not the half one
    assert meta["step"] > 0
    monkeypatch.setattr(students, "save_student", real_save)  # space is back
    code, _, err = kd(capsys, "train", path, "--resume", run["id"], "--num-threads", "1")
    assert code == 0, err
    with Project(path) as project:
        assert project.run(run["id"])["status"] == "finished"
    assert _integrity(path) == "ok"


# -- (d) (e) newer schema, corrupt files ----------------------------------------------------------
def _bad_projects(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = tmp_path / "good.kdproj"
    project_with_texts(good, _texts(30)).close()
    files: dict[str, tuple[Path, str]] = {}
    newer = tmp_path / "newer.kdproj"
    shutil.copy(good, newer)
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    files["newer schema"] = (newer, "made by a newer KD Studio (schema 99 > ")
    noise = tmp_path / "noise.kdproj"
    noise.write_bytes(os.urandom(64 * 1024))
    files["random bytes"] = (noise, "not a KD Studio project")
    truncated = tmp_path / "truncated.kdproj"
    truncated.write_bytes(good.read_bytes()[:6000])
    files["truncated"] = (truncated, "damaged")
    empty = tmp_path / "empty.kdproj"
    empty.write_bytes(b"")
    files["empty"] = (empty, "the file is empty")
    for name, version in (("other.db", 0), ("other-versioned.db", 3)):
        other = tmp_path / name
        with sqlite3.connect(other) as db:
            db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
            db.execute("INSERT INTO notes (text) VALUES ('mine')")
            db.execute(f"PRAGMA user_version = {version}")
        db.close()
        files[f"another app's SQLite file (user_version {version})"] = (other, "not a KD Studio project")
    return files


def test_a_newer_or_corrupt_or_foreign_project_file_is_refused_in_one_line_and_left_untouched(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("text,label\nhello,positive\n")
    for what, (path, expected) in _bad_projects(tmp_path).items():
        before = _digest(path)
        for args in (["info"], ["import", data], ["harvest", "--teacher", f"claude:{MODEL}"], ["train", *TRAIN],
                     ["eval"]):
            code, _, err = kd(capsys, args[0], path, *args[1:])
            line = _one_line(err)
            assert code == 2 and expected in line and path.name in line, (what, args[0], err)
        assert _digest(path) == before, what
        assert not Path(str(path) + "-wal").exists(), what


# -- (f) a runs folder deleted after training -----------------------------------------------------
def test_a_deleted_runs_folder_is_named_by_eval_export_and_resume_and_compare_still_works(tmp_path, capsys):
    project, _ = build_toy_project(tmp_path / "toy.kdproj")
    project.close()
    path = tmp_path / "toy.kdproj"
    code, _, err = kd(capsys, "train", path, *TRAIN)
    assert code == 0, err
    with Project(path) as project:
        run_id = project.runs()[-1]["id"]
    shutil.rmtree(Path(str(path) + ".runs"))
    for args in (["eval", "--run", run_id, "--no-onnx"],
                 ["export", "--run", run_id, "--format", "hf", "--out", tmp_path / "out"]):
        code, _, err = kd(capsys, args[0], path, *args[1:])
        line = _one_line(err)
        assert code == 2 and "toy.kdproj.runs" in line, (args[0], line)
    assert not (tmp_path / "out").exists()
    # The comparison reads the predictions stored in the project, not the checkpoints: it still works.
    code, _, err = kd(capsys, "compare", path, "--run", run_id, "--out", tmp_path / "c.csv")
    assert code == 0 and len((tmp_path / "c.csv").read_text().splitlines()) > 1, err
    with sqlite3.connect(path) as db:  # as if training had been stopped: resumable, but its checkpoint is gone
        db.execute("UPDATE runs SET status = 'cancelled' WHERE id = ?", (run_id,))
    db.close()
    code, _, err = kd(capsys, "train", path, "--resume", run_id, "--num-threads", "1")
    line = _one_line(err)
    assert code == 2 and f"run {run_id}" in line and "toy.kdproj.runs" in line, line
    code, out, err = kd(capsys, "info", path)
    assert code == 0 and f"run       #{run_id}" in out, err
    assert _integrity(path) == "ok"
