"""The project file: one SQLite database per project, opened through sqlite-utils.

``Project`` is the only place that writes SQL. Each thread opens its own ``Project`` on the
same path (WAL lets a GUI read while a worker writes). Stage-specific queries live in the
mixins beside this module (outputs, runs, viewer); they all use ``self.conn``.

sqlite-utils (``self.db``, on the same connection) serves the reads that return rows as dicts
(``db.query``, ``table.rows_where``). Writes stay plain SQL inside :meth:`transaction`
(``BEGIN IMMEDIATE``, so two writers queue instead of failing half-way), and the schema changes
only through the numbered SQL scripts in ``schema.py``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from kdstudio import __version__
from kdstudio.core.errors import ProjectError
from kdstudio.core.store.jsoncol import json_dict
from kdstudio.core.store.schema import SCHEMA_VERSION, migrate

TASKS = ("classification", "generation")
#: how long a write waits for another connection's write (a job of another KD Studio) to end
BUSY_TIMEOUT_S = 30.0
SPLITS = ("train", "valid", "test", "unlabeled")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


SQLITE_HEADER = b"SQLite format 3\x00"


def _check_header(path: Path) -> None:
    """Refuse a file that is not an SQLite database (an empty one included) before SQLite opens
    it: SQLite would happily turn an empty file into a database, writing to it."""
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise ProjectError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise ProjectError(f"{path}: the file is empty, not a KD Studio project")
    if head != SQLITE_HEADER:
        raise ProjectError(f"{path}: not a KD Studio project")


def _damaged(exc: sqlite3.DatabaseError) -> str:
    if "malformed" in str(exc) or "corrupt" in str(exc):
        return f"the project file is damaged ({exc}); restore it from a backup"
    return f"not a KD Studio project ({exc})"


#: what SQLite says when the disk or the file system refuses a write, and the line a person reads
#: (``{text}``: SQLite's own words)
STORAGE_ERRORS = (
    ("readonly", "cannot be written (the file or its folder is read-only); nothing was changed"),
    ("disk I/O error", "the disk failed a read or write ({text}); everything stored before is kept; check the "
                       "disk (or a network folder's connection) and run it again"),
    ("database is locked", "another process kept the project busy for over {busy:g} s (a running job of another "
                           "KD Studio?); nothing was changed; try again when it finishes"),
    ("disk is full", "the disk is full ({text}); everything stored before is kept; free some space and run it again"),
)


def storage_error(path: Path, exc: sqlite3.OperationalError) -> ProjectError | None:
    """The one-line error for a write the disk or the file system refused (read-only file or
    folder, disk I/O error, busy, full disk), or None for any other SQLite error. Nothing of the
    refused write is kept."""
    text = str(exc)
    for needle, message in STORAGE_ERRORS:
        if needle in text:
            return ProjectError(f"{path}: " + message.format(text=text, busy=BUSY_TIMEOUT_S))
    return None


class ProjectBase:
    """Connection handling, project metadata, labels and examples."""

    def __init__(self, path: str | Path, *, _create: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        if _create is None and not self.path.is_file():
            raise ProjectError(f"{self.path}: no such project file (create it with `kdstudio new`)")
        if _create is None:
            _check_header(self.path)
        self.thread = threading.get_ident()
        try:
            conn = self._connect(_create is not None)
        except sqlite3.DatabaseError as exc:
            if _create is not None:
                raise ProjectError(f"{self.path}: cannot be created ({exc})") from None
            if "readonly" not in str(exc):
                raise ProjectError(f"{self.path}: {_damaged(exc)}") from None
            # A read-only folder: SQLite cannot create the -wal/-shm files beside the project. With
            # no -wal file there, no one can be writing it, so it opens read-only and unchanging
            # (reading works; a write says why it cannot be made).
            if Path(str(self.path) + "-wal").exists():
                raise ProjectError(f"{self.path}: cannot be opened: {exc} (is its folder read-only?)") from None
            try:
                conn = self._connect(False, read_only=True)
            except sqlite3.DatabaseError as again:
                raise ProjectError(f"{self.path}: cannot be opened: {again} (is its folder read-only?)") from None
        try:
            migrate(conn)
        except sqlite3.OperationalError as exc:
            conn.close()
            raise storage_error(self.path, exc) or exc from None
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        if _create is not None:
            with self.transaction():
                conn.execute(
                    "INSERT INTO project (id, name, task, created, app_version, settings) VALUES (1, ?, ?, ?, ?, ?)",
                    (_create["name"], _create["task"], now(), __version__, json.dumps(_create.get("settings", {}))),
                )
                self._insert_labels(_create.get("labels") or [])
        self._labels_cache: list[str] | None = None
        self._labels_version = -1

    def _connect(self, create: bool, *, read_only: bool = False) -> sqlite3.Connection:
        """Open the file and check it is a project this version can read, before anything is
        written: a file that is not a project, or is from a newer version, is refused exactly as
        it was found (switching to WAL would write to it)."""
        target = f"file:{self.path.absolute()}?mode=ro&immutable=1" if read_only else self.path
        conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=read_only)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if not create and (version == 0 or not conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'project'").fetchone()):
                raise ProjectError(f"{self.path}: not a KD Studio project")
            if version > SCHEMA_VERSION:
                raise ProjectError(f"{self.path}: made by a newer KD Studio (schema {version} > "
                                   f"{SCHEMA_VERSION}); upgrade KD Studio")
            conn.execute("PRAGMA foreign_keys = ON")
            if not read_only:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        task: str = "classification",
        *,
        labels: Sequence[str] = (),
        name: str | None = None,
        settings: dict[str, Any] | None = None,
    ):
        path = Path(path)
        if task not in TASKS:
            raise ProjectError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
        if path.exists():
            raise ProjectError(f"{path}: already exists; choose another name or delete it first")
        if not path.parent.exists():
            raise ProjectError(f"{path.parent}: no such folder")
        dupes = {x for x in labels if list(labels).count(x) > 1}
        if dupes:
            raise ProjectError(f"label given twice: {', '.join(sorted(dupes))}")
        try:
            return cls(path, _create={"task": task, "labels": list(labels), "name": name or path.stem,
                                      "settings": settings or {}})
        except BaseException:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: committed on success, rolled back on any exception."""
        if self.conn.in_transaction:  # nested: join the outer one
            yield self.conn
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise storage_error(self.path, exc) or exc from None
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                self.conn.execute("ROLLBACK")
            self._labels_cache = None
            if isinstance(exc, sqlite3.OperationalError):
                raise storage_error(self.path, exc) or exc from None
            raise

    # -- project metadata ----------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        row = self.conn.execute("SELECT name, task, created, app_version, settings FROM project").fetchone()
        return {"name": row[0], "task": row[1], "created": row[2], "app_version": row[3],
                "settings": json_dict(row[4])}

    @property
    def task(self) -> str:
        return self.meta()["task"]

    def settings(self) -> dict[str, Any]:
        return self.meta()["settings"]

    def update_settings(self, **values: Any) -> None:
        with self.transaction():
            merged = {**self.settings(), **values}
            self.conn.execute("UPDATE project SET settings = ?", (json.dumps(merged),))

    # -- labels -------------------------------------------------------------------------------
    def labels(self) -> list[str]:
        # PRAGMA data_version changes when another connection (a worker's import) commits, so the
        # cache never outlives a change made elsewhere.
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if self._labels_cache is None or version != self._labels_version:
            self._labels_cache = [r[0] for r in self.conn.execute("SELECT name FROM labels ORDER BY id")]
            self._labels_version = version
        return list(self._labels_cache)

    def label_descriptions(self) -> dict[str, str | None]:
        return dict(self.conn.execute("SELECT name, description FROM labels ORDER BY id"))

    def label_ids(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.labels())}

    def add_labels(self, names: Iterable[str]) -> dict[str, int]:
        """Add the labels not yet known (in the order given); return the full name → id map."""
        with self.transaction():
            known = set(self.labels())
            self._insert_labels([n for n in dict.fromkeys(names) if n not in known])
        return self.label_ids()

    def _insert_labels(self, names: Sequence[str]) -> None:
        start = self.conn.execute("SELECT COALESCE(MAX(id) + 1, 0) FROM labels").fetchone()[0]
        self.conn.executemany(
            "INSERT INTO labels (id, name) VALUES (?, ?)", [(start + i, n) for i, n in enumerate(names)]
        )
        self._labels_cache = None

    def drop_unused_labels(self, from_id: int) -> list[str]:
        """Remove the labels numbered ``from_id`` or above that no example has, from the last one
        down to the first one in use (ids stay contiguous: they index probability vectors); return
        their names. For labels an import created whose every row was dropped. Call inside ``transaction()``."""
        names = self.labels()
        removed: list[str] = []
        for label_id in range(len(names) - 1, from_id - 1, -1):
            if self.conn.execute("SELECT 1 FROM examples WHERE label = ? LIMIT 1", (label_id,)).fetchone():
                break
            self.conn.execute("DELETE FROM labels WHERE id = ?", (label_id,))
            removed.append(names[label_id])
        self._labels_cache = None
        return removed

    # -- examples -----------------------------------------------------------------------------
    def insert_examples(self, rows: Sequence[tuple]) -> int:
        """Insert (text, label_id, reference, split, source, line, hash) rows, skipping exact
        duplicates within a split. Returns how many were new. Call inside ``transaction()``."""
        before = self.conn.total_changes
        self.conn.executemany(
            "INSERT OR IGNORE INTO examples (text, label, reference, split, source, line, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return self.conn.total_changes - before

    def labels_by_hash(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int | None]:
        """The label id of the stored example with each (split, hash) in ``keys``."""
        found: dict[tuple[str, str], int | None] = {}
        for split in {s for s, _ in keys}:
            hashes = sorted(h for s, h in keys if s == split)
            for i in range(0, len(hashes), 500):
                part = hashes[i:i + 500]
                marks = ", ".join("?" * len(part))
                for digest, label in self.conn.execute(
                        f"SELECT hash, label FROM examples WHERE split = ? AND hash IN ({marks})", (split, *part)):
                    found[(split, digest)] = label
        return found

    def add_references(self, rows: Sequence[tuple[str, str, str]]) -> int:
        """Add (split, hash, reference) rows to the references of the example with that split and
        hash (generation: a prompt that repeats in a file with another completion has several
        references), skipping a text the example already has. Returns how many were added. Call
        inside ``transaction()``, after ``insert_examples``."""
        before = self.conn.total_changes
        for split, digest, text in rows:
            self.conn.execute(
                "INSERT INTO example_references (example, position, text) "
                "SELECT e.id, (SELECT COALESCE(MAX(r.position), -1) + 1 FROM example_references r "
                "WHERE r.example = e.id), ? FROM examples e WHERE e.split = ? AND e.hash = ? "
                "AND NOT EXISTS (SELECT 1 FROM example_references r WHERE r.example = e.id AND r.text = ?)",
                (text, split, digest, text),
            )
        added = self.conn.total_changes - before
        self.conn.execute(
            "UPDATE examples SET reference = (SELECT r.text FROM example_references r WHERE r.example = examples.id "
            "ORDER BY r.position LIMIT 1) WHERE reference IS NULL "
            "AND EXISTS (SELECT 1 FROM example_references r WHERE r.example = examples.id)"
        )
        return added

    def references_of(self, ids: Sequence[int] | None = None, *, split: str | None = None) -> dict[int, list[str]]:
        """Example id → its references in import order (generation), for ``ids`` or a ``split``;
        examples without one are left out."""
        sql = "SELECT r.example, r.text FROM example_references r"
        args: list[Any] = []
        if split is not None:
            sql += " JOIN examples e ON e.id = r.example WHERE e.split = ?"
            args.append(split)
        out: dict[int, list[str]] = {}
        if ids is None:
            for ex, text in self.conn.execute(sql + " ORDER BY r.example, r.position", args):
                out.setdefault(ex, []).append(text)
            return out
        where = " AND" if split is not None else " WHERE"
        for start in range(0, len(ids), 900):
            chunk = list(ids[start : start + 900])
            for ex, text in self.conn.execute(
                sql + f"{where} r.example IN ({','.join('?' * len(chunk))}) ORDER BY r.example, r.position",
                [*args, *chunk],
            ):
                out.setdefault(ex, []).append(text)
        return out

    def max_example_id(self) -> int:
        return self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM examples").fetchone()[0]

    def example_ids_by_label(self, split: str, *, after_id: int = 0) -> dict[int | None, list[int]]:
        out: dict[int | None, list[int]] = {}
        for ex_id, label in self.conn.execute(
            "SELECT id, label FROM examples WHERE split = ? AND id > ? ORDER BY id", (split, after_id)
        ):
            out.setdefault(label, []).append(ex_id)
        return out

    def move_examples(self, ids: Sequence[int], split: str) -> int:
        """Move examples to another split; duplicates already in that split are removed instead."""
        moved = 0
        for start in range(0, len(ids), 900):
            chunk = list(ids[start : start + 900])
            marks = ",".join("?" * len(chunk))
            self.conn.execute(
                f"DELETE FROM examples WHERE id IN ({marks}) AND hash IN "
                f"(SELECT hash FROM examples WHERE split = ?)",
                (*chunk, split),
            )
            cur = self.conn.execute(f"UPDATE examples SET split = ? WHERE id IN ({marks})", (split, *chunk))
            moved += cur.rowcount
        return moved

    def split_counts(self, *, ids: tuple[int, int] | None = None) -> dict[str, int]:
        """Examples per split; ``ids=(first, last)``: only those with ids in that range."""
        counts = dict.fromkeys(SPLITS, 0)
        if ids is None:
            counts.update(self.conn.execute("SELECT split, COUNT(*) FROM examples GROUP BY split"))
        else:
            counts.update(self.conn.execute(
                "SELECT split, COUNT(*) FROM examples WHERE id BETWEEN ? AND ? GROUP BY split", ids))
        return counts

    def label_counts(self, split: str | None = None) -> dict[str, int]:
        names = self.labels()
        sql = "SELECT label, COUNT(*) FROM examples WHERE label IS NOT NULL"
        args: tuple = ()
        if split:
            sql += " AND split = ?"
            args = (split,)
        counts = dict.fromkeys(names, 0)
        for label, n in self.conn.execute(sql + " GROUP BY label", args):
            counts[names[label]] = n
        return counts

    def examples(
        self, split: str | None = None, *, labelled: bool = False, ids: Sequence[int] | None = None
    ) -> list[tuple[int, str, int | None]]:
        """(id, text, label id) rows in id order."""
        sql, args = "SELECT id, text, label FROM examples WHERE 1", []
        if split:
            sql += " AND split = ?"
            args.append(split)
        if labelled:
            sql += " AND label IS NOT NULL"
        if ids is not None:
            rows: list[tuple[int, str, int | None]] = []
            for start in range(0, len(ids), 900):
                chunk = list(ids[start : start + 900])
                rows += self.conn.execute(
                    sql + f" AND id IN ({','.join('?' * len(chunk))})", [*args, *chunk]
                ).fetchall()
            return sorted(rows)
        return self.conn.execute(sql + " ORDER BY id", args).fetchall()

    def texts(self) -> Iterator[str]:
        """Every example's text (all splits, unlabeled rows and variants), in id order, streamed."""
        for (text,) in self.conn.execute("SELECT text FROM examples ORDER BY id"):
            yield text

    def example(self, example_id: int) -> dict[str, Any] | None:
        return next(self.db["examples"].rows_where("id = ?", [example_id],
                                                   select="id, text, label, reference, split, source, line"), None)

    def references(self, split: str) -> list[tuple[int, str, str | None]]:
        """(id, text, reference) rows for generation tasks."""
        return self.conn.execute(
            "SELECT id, text, reference FROM examples WHERE split = ? ORDER BY id", (split,)
        ).fetchall()

    # -- augmented examples ---------------------------------------------------------------------
    def augmented_ids(self) -> set[int]:
        """Ids of the variants ``kdstudio augment`` added (unlabeled, source 'augment')."""
        return {r[0] for r in self.conn.execute(
            "SELECT id FROM examples WHERE split = 'unlabeled' AND source = 'augment'")}

    def augmented_sources(self) -> set[int]:
        """Ids of the examples that already have variants."""
        return {r[0] for r in self.conn.execute(
            "SELECT DISTINCT line FROM examples WHERE split = 'unlabeled' AND source = 'augment'")}

    def texts_in_split(self, split: str) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT text FROM examples WHERE split = ?", (split,))}

    def remove_augmented(self) -> int:
        """Delete every variant (and, by cascade, the teacher answers and predictions on them).
        Call inside ``transaction()``."""
        return self.conn.execute(
            "DELETE FROM examples WHERE split = 'unlabeled' AND source = 'augment'").rowcount

    # -- summary ------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        meta = self.meta()
        counts = self.split_counts()
        teachers = [
            {"id": t, "spec": s, "ok": ok or 0, "failed": failed or 0, "cost_usd": round(cost or 0.0, 6)}
            for t, s, ok, failed, cost in self.conn.execute(
                "SELECT t.id, t.spec, SUM(o.status = 'ok'), SUM(o.status = 'failed'), SUM(o.cost_usd) "
                "FROM teachers t LEFT JOIN teacher_outputs o ON o.teacher = t.id GROUP BY t.id ORDER BY t.id"
            )
        ]
        runs = [
            {"id": r, "student": s, "status": st}
            for r, s, st in self.conn.execute("SELECT id, student, status FROM runs ORDER BY id")
        ]
        return {
            "path": str(self.path),
            "name": meta["name"],
            "task": meta["task"],
            "created": meta["created"],
            "schema_version": SCHEMA_VERSION,
            "n_labels": len(self.labels()),
            "labels": self.labels(),
            "splits": counts,
            "n_examples": sum(counts.values()),
            "augmented": len(self.augmented_ids()),
            "label_counts": {s: self.label_counts(s) for s in ("train", "valid", "test")},
            "imports": meta["settings"].get("imports", []),
            "teachers": teachers,
            "runs": runs,
        }
