"""The project file: schema, migrations, WAL, foreign keys, transactions, one connection per thread."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from kdstudio.core.errors import ProjectError
from kdstudio.core.store import SCHEMA_VERSION, Project, TeacherOutput
from kdstudio.core.store import schema as schema_module


def test_new_project_has_schema_version_wal_and_foreign_keys(tmp_path):
    path = tmp_path / "p.kdproj"
    with Project.create(path, "classification", labels=["neg", "pos"]) as project:
        assert project.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert project.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert project.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert project.labels() == ["neg", "pos"]
        tables = set(project.db.table_names())
    assert {"project", "labels", "examples", "teachers", "teacher_outputs", "batches", "runs", "metrics",
            "predictions", "reviews"} <= tables


def test_create_refuses_an_existing_file_and_unknown_task(tmp_path):
    path = tmp_path / "p.kdproj"
    Project.create(path).close()
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(path)
    with pytest.raises(ProjectError, match="unknown task"):
        Project.create(tmp_path / "q.kdproj", "regression")
    assert not (tmp_path / "q.kdproj").exists()


def test_opening_a_file_that_is_not_a_project_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.kdproj"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(ProjectError, match="not a KD Studio project"):
        Project(junk)
    with pytest.raises(ProjectError, match="no such project"):
        Project(tmp_path / "missing.kdproj")


def test_a_file_that_is_not_a_project_is_refused_without_being_written_to(tmp_path):
    empty = tmp_path / "empty.kdproj"
    empty.touch()
    with pytest.raises(ProjectError, match="the file is empty"):
        Project(empty)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (text)")
    conn.close()
    before = other.read_bytes()
    with pytest.raises(ProjectError, match="not a KD Studio project"):
        Project(other)
    assert empty.stat().st_size == 0 and other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.kdproj", "other.db"]  # no -wal, no -shm


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "p.kdproj"
    Project.create(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(ProjectError, match="newer KD Studio"):
        Project(path)


def test_migrations_apply_in_order_on_open(tmp_path, monkeypatch):
    path = tmp_path / "p.kdproj"
    Project.create(path).close()
    extra = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
    monkeypatch.setattr(schema_module, "MIGRATIONS", [*schema_module.MIGRATIONS, extra])
    monkeypatch.setattr("kdstudio.core.store.project.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Project(path) as project:
        assert project.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert "notes" in project.db.table_names()


def test_transaction_rolls_back_everything_on_error(tmp_path):
    with Project.create(tmp_path / "p.kdproj") as project:
        with pytest.raises(RuntimeError), project.transaction():
            project.add_labels(["a", "b"])
            project.insert_examples([("hello", 0, None, "train", "f", 1, "h1")])
            raise RuntimeError("boom")
        assert project.labels() == []
        assert project.split_counts()["train"] == 0


def test_duplicates_within_a_split_are_ignored_but_not_across_splits(tmp_path):
    with Project.create(tmp_path / "p.kdproj", labels=["a"]) as project, project.transaction():
        assert project.insert_examples([("x", 0, None, "train", "f", 1, "h"), ("x", 0, None, "train", "f", 2, "h")]) == 1
        assert project.insert_examples([("x", 0, None, "test", "f", 1, "h")]) == 1


def test_each_thread_opens_its_own_connection_and_reads_while_another_writes(tmp_path):
    path = tmp_path / "p.kdproj"
    main = Project.create(path, labels=["a", "b"])
    errors: list[BaseException] = []

    def use_shared_connection() -> None:
        try:
            main.conn.execute("SELECT 1")
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=use_shared_connection)
    t.start()
    t.join()
    assert isinstance(errors[0], sqlite3.ProgrammingError)  # sqlite3 refuses cross-thread use

    def writer() -> None:
        with Project(path) as own, own.transaction():
            own.insert_examples([(f"t{i}", i % 2, None, "train", "w", i, f"h{i}") for i in range(100)])

    t = threading.Thread(target=writer)
    t.start()
    t.join()
    assert main.split_counts()["train"] == 100
    main.close()


def test_outputs_are_keyed_by_example_and_teacher_and_replace_failures(tmp_path):
    with Project.create(tmp_path / "p.kdproj", labels=["a", "b"]) as project:
        with project.transaction():
            project.insert_examples([("one", 0, None, "train", "f", 1, "h1"), ("two", 1, None, "train", "f", 2, "h2")])
        teacher = project.upsert_teacher("embed:minilm", "embed", "minilm", "fp1", {})
        assert project.upsert_teacher("embed:minilm", "embed", "minilm", "fp1", {}) == teacher
        project.save_outputs(teacher, [TeacherOutput(example=1, probs=[0.2, 0.8]),
                                       TeacherOutput(example=2, status="failed", error="timeout")])
        assert [i for i, _ in project.pending_examples(teacher, ["train"])] == []
        assert [i for i, _ in project.pending_examples(teacher, ["train"], retry_failed=True)] == [2]
        project.save_outputs(teacher, [TeacherOutput(example=2, probs=[0.9, 0.1], cost_usd=0.5)])
        rows = project.teacher_outputs(teacher)
        assert [(r["id"], r["label"], r["attempts"]) for r in rows] == [(1, 1, 1), (2, 0, 2)]
        assert project.count_outputs(teacher)["n_failed"] == 0
        assert project.default_teacher() == teacher


def test_deleting_an_example_cascades_to_its_outputs(tmp_path):
    with Project.create(tmp_path / "p.kdproj", labels=["a", "b"]) as project:
        with project.transaction():
            project.insert_examples([("one", 0, None, "train", "f", 1, "h1")])
        teacher = project.upsert_teacher("embed:minilm", "embed", "minilm", "fp1", {})
        project.save_outputs(teacher, [TeacherOutput(example=1, probs=[0.2, 0.8])])
        with project.transaction():
            project.conn.execute("DELETE FROM examples WHERE id = 1")
        assert project.teacher_outputs(teacher) == []


def test_label_names_read_on_one_connection_follow_labels_added_on_another(tmp_path):
    path = tmp_path / "p.kdproj"
    with Project.create(path, "classification", labels=["a", "b"]) as reader:
        assert reader.labels() == ["a", "b"]
        with Project(path) as writer:
            writer.add_labels(["c"])
        assert reader.labels() == ["a", "b", "c"]


def test_a_write_that_waits_too_long_for_another_process_says_so_in_one_line(tmp_path, monkeypatch):
    """Another connection holds the write lock (a job of a second KD Studio): after the busy timeout
    the write is refused with one line naming why, and nothing of it is kept."""
    import sqlite3

    from kdstudio.core.errors import ProjectError
    from kdstudio.core.store import project as project_module

    path = tmp_path / "busy.kdproj"
    Project.create(path, "classification").close()
    monkeypatch.setattr(project_module, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Project(path) as project, pytest.raises(ProjectError, match=r"another process kept the project busy "
                                                     r"for over 0.2 s.*nothing was changed"), project.transaction():
            project.add_labels(["a", "b"])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Project(path) as project:
        assert project.labels() == []



@pytest.mark.parametrize(("message", "says"), [
    ("attempt to write a readonly database", "is read-only); nothing was changed"),
    ("database or disk is full", "the disk is full"),
    ("disk I/O error", "the disk failed a read or write"),
    ("database is locked", "another process kept the project busy"),
])
def test_each_storage_failure_sqlite_reports_has_its_one_line(tmp_path, message, says):
    import sqlite3

    from kdstudio.core.store.project import storage_error

    error = storage_error(tmp_path / "p.kdproj", sqlite3.OperationalError(message))
    assert error is not None and says in str(error) and "\n" not in str(error)
    assert storage_error(tmp_path / "p.kdproj", sqlite3.OperationalError("no such table: x")) is None
