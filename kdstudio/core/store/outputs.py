"""Teachers, their cached outputs and Anthropic batch bookkeeping."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kdstudio.core.store.jsoncol import json_dict, json_dict_or_none, probabilities
from kdstudio.core.store.project import now


@dataclass
class TeacherOutput:
    """One teacher answer for one example, as stored in ``teacher_outputs``."""

    example: int
    status: str = "ok"  # ok | failed
    probs: list[float] | None = None
    label: int | None = None
    completion: str | None = None
    rationale: str | None = None
    method: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: k-sample answers: {"verbalized": mean distribution, "votes": vote frequencies}, mixed into ``probs``
    components: dict[str, list[float]] | None = None

    def __post_init__(self) -> None:
        if self.probs is not None and self.label is None:
            self.label = max(range(len(self.probs)), key=self.probs.__getitem__)


#: The status of a ``batches`` row written before the batch is submitted (its id is a placeholder
#: until the API answers with the real one).
SUBMITTING = "submitting"


@dataclass(frozen=True)
class BatchIntent:
    """A batch about to be submitted, recorded before the create call: if the process dies between
    the API creating the batch and the project recording it, the next harvest finds the batch again
    by listing the workspace's batches (created at or after ``created``, ``request_count`` requests,
    results whose custom_ids are ``custom_ids``) instead of paying for it twice."""

    id: str  #: a placeholder ``intent-NONCE``, never an Anthropic batch id
    teacher: int
    created: str  #: ISO 8601 UTC, seconds
    request_count: int
    custom_ids: frozenset[str]


class OutputsMixin:
    conn: Any
    db: Any  # sqlite_utils.Database on ``conn``

    # -- teachers -----------------------------------------------------------------------------
    def upsert_teacher(self, spec: str, kind: str, model: str, fingerprint: str, settings: dict) -> int:
        with self.transaction():
            row = self.conn.execute("SELECT id FROM teachers WHERE fingerprint = ?", (fingerprint,)).fetchone()
            if row:
                return row[0]
            cur = self.conn.execute(
                "INSERT INTO teachers (spec, kind, model, fingerprint, settings, created) VALUES (?, ?, ?, ?, ?, ?)",
                (spec, kind, model, fingerprint, json.dumps(settings, sort_keys=True), now()),
            )
            return cur.lastrowid

    def teachers(self) -> list[dict[str, Any]]:
        out = list(self.db["teachers"].rows_where(
            select="id, spec, kind, model, fingerprint, settings, created", order_by="id"))
        for t in out:
            t["settings"] = json_dict(t["settings"])
        return out

    def teacher(self, teacher_id: int) -> dict[str, Any] | None:
        return next((t for t in self.teachers() if t["id"] == teacher_id), None)

    def teacher_state(self, teacher_id: int) -> bytes | None:
        row = self.conn.execute("SELECT state FROM teachers WHERE id = ?", (teacher_id,)).fetchone()
        return row[0] if row else None

    def set_teacher_state(self, teacher_id: int, state: bytes) -> None:
        with self.transaction():
            self.conn.execute("UPDATE teachers SET state = ? WHERE id = ?", (state, teacher_id))

    def save_calibration(self, teacher_id: int, fit: dict[str, Any]) -> int:
        """Store a new calibration of the teacher's distributions (``fit``: the fields of a
        ``kdstudio.core.calibration.Calibration``); returns its version (1, 2, ...)."""
        with self.transaction():
            last = self.conn.execute("SELECT MAX(version) FROM calibrations WHERE teacher = ?", (teacher_id,))
            version = (last.fetchone()[0] or 0) + 1
            self.conn.execute("INSERT INTO calibrations (teacher, version, fit, created) VALUES (?, ?, ?, ?)",
                              (teacher_id, version, json.dumps({**fit, "version": version}), now()))
        return version

    def calibration(self, teacher_id: int) -> dict[str, Any] | None:
        """The teacher's latest calibration (its fields, ``version`` included), or None."""
        row = self.conn.execute("SELECT fit FROM calibrations WHERE teacher = ? ORDER BY version DESC LIMIT 1",
                                (teacher_id,)).fetchone()
        return json_dict_or_none(row[0]) if row else None

    def default_teacher(self) -> int | None:
        """The teacher with the most successful outputs (the one a student trains on by default)."""
        row = self.conn.execute(
            "SELECT teacher FROM teacher_outputs WHERE status = 'ok' GROUP BY teacher "
            "ORDER BY COUNT(*) DESC, teacher DESC LIMIT 1"
        ).fetchone()
        return row[0] if row else None

    # -- outputs ------------------------------------------------------------------------------
    def pending_examples(
        self, teacher_id: int, splits: Sequence[str], *, retry_failed: bool = False, limit: int | None = None
    ) -> list[tuple[int, str]]:
        """(id, text) of examples in ``splits`` with no stored answer from this teacher
        (or only a failed one, with ``retry_failed``), in id order."""
        marks = ",".join("?" * len(splits))
        cond = "o.example IS NULL" + (" OR o.status = 'failed'" if retry_failed else "")
        sql = (
            f"SELECT e.id, e.text FROM examples e LEFT JOIN teacher_outputs o "
            f"ON o.example = e.id AND o.teacher = ? WHERE e.split IN ({marks}) AND ({cond}) ORDER BY e.id"
        )
        args: list[Any] = [teacher_id, *splits]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return self.conn.execute(sql, args).fetchall()

    def count_outputs(self, teacher_id: int, splits: Sequence[str] | None = None) -> dict[str, Any]:
        sql = (
            "SELECT COUNT(*), SUM(o.status = 'ok'), SUM(o.status = 'failed'), SUM(o.input_tokens), "
            "SUM(o.output_tokens), SUM(o.cache_write_tokens), SUM(o.cache_read_tokens), SUM(o.cost_usd) "
            "FROM teacher_outputs o JOIN examples e ON e.id = o.example WHERE o.teacher = ?"
        )
        args: list[Any] = [teacher_id]
        if splits:
            sql += f" AND e.split IN ({','.join('?' * len(splits))})"
            args += list(splits)
        r = self.conn.execute(sql, args).fetchone()
        return {"n": r[0], "n_ok": r[1] or 0, "n_failed": r[2] or 0, "input_tokens": r[3] or 0,
                "output_tokens": r[4] or 0, "cache_write_tokens": r[5] or 0, "cache_read_tokens": r[6] or 0,
                "cost_usd": r[7] or 0.0}

    def save_outputs(self, teacher_id: int, outputs: Sequence[TeacherOutput]) -> None:
        """Store answers in one small transaction. A new answer replaces an earlier failure;
        attempts count every time the teacher was asked about the example."""
        rows = []
        for o in outputs:
            confidence = max(o.probs) if o.probs else None
            rows.append((
                o.example, teacher_id, json.dumps([round(p, 7) for p in o.probs]) if o.probs else None,
                o.label, confidence, o.completion, o.rationale, o.method, o.input_tokens, o.output_tokens,
                o.cache_write_tokens, o.cache_read_tokens, o.cost_usd, o.latency_ms, o.status, o.error, now(),
                json.dumps(o.components) if o.components else None,
            ))
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO teacher_outputs (example, teacher, probs, label, confidence, completion, rationale, "
                "method, input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, cost_usd, latency_ms, "
                "status, error, created, components) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (example, teacher) DO UPDATE SET probs = excluded.probs, label = excluded.label, "
                "confidence = excluded.confidence, completion = excluded.completion, rationale = excluded.rationale, "
                "method = excluded.method, input_tokens = input_tokens + excluded.input_tokens, "
                "output_tokens = output_tokens + excluded.output_tokens, "
                "cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens, "
                "cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens, "
                "cost_usd = cost_usd + excluded.cost_usd, latency_ms = excluded.latency_ms, "
                "status = excluded.status, error = excluded.error, attempts = attempts + 1, "
                "created = excluded.created, components = excluded.components",
                rows,
            )

    def teacher_outputs(
        self, teacher_id: int, splits: Sequence[str] | None = None, *, status: str | None = "ok"
    ) -> list[dict[str, Any]]:
        """Stored answers joined with their examples: id, text, gold, split, probs, label, ..."""
        sql = (
            "SELECT e.id, e.text, e.label AS gold, e.split, o.probs, o.label, o.confidence, o.completion, o.rationale, "
            "o.status, o.error, o.cost_usd, o.latency_ms, o.output_tokens, o.attempts, o.method, o.components "
            "FROM teacher_outputs o JOIN examples e ON e.id = o.example WHERE o.teacher = ?"
        )
        args: list[Any] = [teacher_id]
        if splits:
            sql += f" AND e.split IN ({','.join('?' * len(splits))})"
            args += list(splits)
        if status:
            sql += " AND o.status = ?"
            args.append(status)
        out = list(self.db.query(sql + " ORDER BY e.id", args))
        for d in out:
            d["probs"] = probabilities(d["probs"])
            d["components"] = json_dict_or_none(d["components"])
        return out

    def failures(self, teacher_id: int, limit: int = 1000) -> list[tuple[int, str, str]]:
        """(example id, text, reason) of failed answers."""
        return self.conn.execute(
            "SELECT e.id, e.text, o.error FROM teacher_outputs o JOIN examples e ON e.id = o.example "
            "WHERE o.teacher = ? AND o.status = 'failed' ORDER BY e.id LIMIT ?",
            (teacher_id, limit),
        ).fetchall()

    def recent_completions(self, teacher_id: int, limit: int = 8) -> list[tuple[int, str, str, int]]:
        """(example id, prompt, completion, output tokens) of a generation teacher's latest answers, newest first."""
        return self.conn.execute(
            "SELECT e.id, e.text, o.completion, o.output_tokens FROM teacher_outputs o JOIN examples e "
            "ON e.id = o.example WHERE o.teacher = ? AND o.status = 'ok' AND o.completion IS NOT NULL "
            "ORDER BY o.created DESC, o.rowid DESC LIMIT ?",
            (teacher_id, limit),
        ).fetchall()

    # -- Message Batches ----------------------------------------------------------------------
    def record_batch(self, batch_id: str, teacher_id: int, requests: Sequence[tuple[str, int, int]]) -> None:
        """Store a submitted batch and its (custom_id, example, attempt) requests before polling."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO batches (id, teacher, status, request_count, created) VALUES (?, ?, 'in_progress', ?, ?)",
                (batch_id, teacher_id, len(requests), now()),
            )
            self.conn.executemany(
                "INSERT OR REPLACE INTO batch_requests (custom_id, batch, example, teacher, attempt) "
                "VALUES (?, ?, ?, ?, ?)",
                [(cid, batch_id, ex, teacher_id, attempt) for cid, ex, attempt in requests],
            )

    def record_batch_intent(self, intent_id: str, teacher_id: int, requests: Sequence[tuple[str, int, int]]) -> None:
        """Store a batch about to be submitted (status ``submitting``, id ``intent_id``) with its
        (custom_id, example, attempt) requests, before the create call; see :class:`BatchIntent`."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO batches (id, teacher, status, request_count, created) VALUES (?, ?, ?, ?, ?)",
                (intent_id, teacher_id, SUBMITTING, len(requests), now()),
            )
            self.conn.executemany(
                "INSERT OR REPLACE INTO batch_requests (custom_id, batch, example, teacher, attempt) "
                "VALUES (?, ?, ?, ?, ?)",
                [(cid, intent_id, ex, teacher_id, attempt) for cid, ex, attempt in requests],
            )

    def batch_intents(self, teacher_id: int) -> list[BatchIntent]:
        """Batches of this teacher recorded before submission and not yet confirmed, oldest first."""
        rows = self.conn.execute(
            "SELECT id, created, request_count FROM batches WHERE teacher = ? AND status = ? ORDER BY created, id",
            (teacher_id, SUBMITTING)).fetchall()
        return [BatchIntent(id=bid, teacher=teacher_id, created=created, request_count=count,
                            custom_ids=frozenset(self.batch_requests(bid))) for bid, created, count in rows]

    def confirm_batch(self, intent_id: str, batch_id: str) -> None:
        """The API created the batch ``intent_id`` stood for: it becomes ``batch_id`` (in progress)."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO batches (id, teacher, status, request_count, created) "
                "SELECT ?, teacher, 'in_progress', request_count, created FROM batches WHERE id = ? AND status = ?",
                (batch_id, intent_id, SUBMITTING),
            )
            self.conn.execute("UPDATE batch_requests SET batch = ? WHERE batch = ?", (batch_id, intent_id))
            self.conn.execute("DELETE FROM batches WHERE id = ?", (intent_id,))

    def drop_batch_intent(self, intent_id: str) -> None:
        """No batch was created for ``intent_id``: forget it (its examples become pending again)."""
        with self.transaction():
            self.conn.execute("DELETE FROM batch_requests WHERE batch = ?", (intent_id,))
            self.conn.execute("DELETE FROM batches WHERE id = ? AND status = ?", (intent_id, SUBMITTING))

    def batch_of(self, custom_id: str) -> str | None:
        """The id of the submitted batch that holds request ``custom_id``; None while it is only an
        intent, or when the intent was dropped."""
        row = self.conn.execute(
            "SELECT b.id FROM batch_requests r JOIN batches b ON b.id = r.batch "
            "WHERE r.custom_id = ? AND b.status != ?",
            (custom_id, SUBMITTING)).fetchone()
        return row[0] if row else None

    def known_batch_ids(self, teacher_id: int) -> set[str]:
        """Every Anthropic batch id this project has recorded for the teacher."""
        return {r[0] for r in self.conn.execute(
            "SELECT id FROM batches WHERE teacher = ? AND status != ?", (teacher_id, SUBMITTING))}

    def open_batches(self, teacher_id: int) -> list[str]:
        """Ids of this teacher's submitted batches whose results are not all ingested, oldest first."""
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM batches WHERE teacher = ? AND status NOT IN ('ingested', ?) ORDER BY created",
            (teacher_id, SUBMITTING),
        )]

    def batch_requests(self, batch_id: str) -> dict[str, tuple[int, int, str]]:
        """custom_id → (example, attempt, status)."""
        return {cid: (ex, att, st) for cid, ex, att, st in self.conn.execute(
            "SELECT custom_id, example, attempt, status FROM batch_requests WHERE batch = ?", (batch_id,)
        )}

    def examples_in_open_batches(self, teacher_id: int) -> set[int]:
        return {r[0] for r in self.conn.execute(
            "SELECT r.example FROM batch_requests r JOIN batches b ON b.id = r.batch "
            "WHERE r.teacher = ? AND b.status != 'ingested' AND r.status = 'pending'", (teacher_id,)
        )}

    def set_batch_status(self, batch_id: str, status: str) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE batches SET status = ?, ended = CASE WHEN ? IN ('ended', 'ingested') THEN ? ELSE ended END "
                "WHERE id = ?", (status, status, now(), batch_id),
            )

    def set_batch_request_status(self, custom_ids: Sequence[str], status: str) -> None:
        with self.transaction():
            self.conn.executemany(
                "UPDATE batch_requests SET status = ? WHERE custom_id = ?", [(status, c) for c in custom_ids]
            )

    # -- Claude teacher: batch ingestion ----------------------------------------------------------
    # (added for kdstudio.core.teachers.claude: ingesting a batch twice after a crash must not
    # store an answer twice)
    def output_statuses(self, teacher_id: int, example_ids: Sequence[int]) -> dict[int, str]:
        """example id → stored status ('ok' / 'failed') for those of ``example_ids`` this teacher
        has already answered."""
        out: dict[int, str] = {}
        ids = list(example_ids)
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            out.update(self.conn.execute(
                f"SELECT example, status FROM teacher_outputs WHERE teacher = ? "
                f"AND example IN ({','.join('?' * len(chunk))})", (teacher_id, *chunk),
            ))
        return out
