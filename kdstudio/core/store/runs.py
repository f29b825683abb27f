"""Training runs, their metrics and predictions, and evaluations."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from kdstudio.core.store.jsoncol import json_dict, json_dict_or_none, probabilities
from kdstudio.core.store.project import now

RUN_KEYS = ("id", "name", "student", "teacher", "config", "status", "started", "finished",
            "best_checkpoint", "last_checkpoint", "parent_run", "summary", "error")
#: The error of a run that a killed or crashed process left ``running`` (its status: ``cancelled``).
INTERRUPTED = "interrupted: the process stopped before the run ended (killed or crashed)"


def is_interrupted(run: dict[str, Any]) -> bool:
    """True for a run marked by ``mark_interrupted_runs`` (and not resumed since)."""
    return run.get("status") == "cancelled" and run.get("error") == INTERRUPTED


class RunsMixin:
    conn: Any
    db: Any  # sqlite_utils.Database on ``conn``

    # -- runs ---------------------------------------------------------------------------------
    def create_run(self, student: str, teacher: int | None, config: dict[str, Any], *,
                   name: str | None = None, parent_run: int | None = None, status: str = "running") -> int:
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO runs (name, student, teacher, config, status, started, parent_run) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, student, teacher, json.dumps(config, sort_keys=True), status, now(), parent_run),
            )
            return cur.lastrowid

    def update_run(self, run_id: int, **fields: Any) -> None:
        """Set run columns; ``config`` and ``summary`` dicts are stored as JSON (summary is merged)."""
        if "summary" in fields:
            fields["summary"] = json.dumps({**(self.run(run_id) or {}).get("summary", {}), **fields["summary"]})
        if "config" in fields:
            fields["config"] = json.dumps(fields["config"], sort_keys=True)
        if fields.get("status") in ("finished", "cancelled", "failed") and "finished" not in fields:
            fields["finished"] = now()
        unknown = set(fields) - set(RUN_KEYS)
        if unknown:
            raise KeyError(f"unknown run fields: {sorted(unknown)}")
        with self.transaction():
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))

    def run(self, run_id: int) -> dict[str, Any] | None:
        d = next(self.db["runs"].rows_where("id = ?", [run_id], select=", ".join(RUN_KEYS)), None)
        if d is None:
            return None
        d["config"], d["summary"] = json_dict(d["config"]), json_dict(d["summary"])
        return d

    def runs(self) -> list[dict[str, Any]]:
        ids = [r[0] for r in self.conn.execute("SELECT id FROM runs ORDER BY id")]
        return [self.run(i) for i in ids]

    def close_unfinished_runs(self, after_run: int, status: str, message: str = "") -> list[int]:
        """Runs after ``after_run`` still marked running or queued become ``cancelled`` (when
        ``status`` is "cancelled") or ``failed`` with ``message``. A window's stop path calls this:
        a job stopped between two yields does not run its own cleanup at once."""
        closed = []
        for run in self.runs():
            if run["id"] > after_run and run["status"] in ("running", "queued"):
                fields: dict[str, Any] = {"status": "cancelled" if status == "cancelled" else "failed"}
                if status != "cancelled" and message:
                    fields["error"] = message
                self.update_run(run["id"], **fields)
                closed.append(run["id"])
        return closed

    def mark_interrupted_runs(self) -> list[int]:
        """Runs stored as ``running`` whose process is gone (killed, crashed: no one holds their
        liveness lock, see ``kdstudio.core.store.live``) are marked interrupted: ``cancelled``
        with the error ``INTERRUPTED`` (see ``is_interrupted``); their ids. What opening a project
        does, in the window and in ``kdstudio info``; a run training in this or another process is
        left alone. ``kdstudio train --resume RUN`` continues an interrupted run."""
        from kdstudio.core.store.live import run_is_live

        marked = []
        for run_id, in self.conn.execute("SELECT id FROM runs WHERE status = 'running' ORDER BY id").fetchall():
            if not run_is_live(self.path, run_id):
                try:
                    self.update_run(run_id, status="cancelled", error=INTERRUPTED)
                except sqlite3.OperationalError:  # a read-only or busy project: shown as it is stored
                    break
                marked.append(run_id)
        return marked

    def latest_run(self, *, status: str | None = "finished") -> int | None:
        sql, args = "SELECT id FROM runs", ()
        if status:
            sql, args = sql + " WHERE status = ?", (status,)
        row = self.conn.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return row[0] if row else None

    def preferred_run(self) -> int | None:
        """The run a person most likely wants to look at: the latest finished distillation run
        (not a hard-label baseline), else the latest finished run."""
        finished = [r for r in self.runs() if r["status"] == "finished"]
        kd = [r for r in finished if not r["config"].get("hard_labels")]
        return (kd or finished)[-1]["id"] if finished else None

    # -- metrics ------------------------------------------------------------------------------
    def add_metrics(self, run_id: int, rows: Sequence[tuple[int, float, float, str, float]]) -> None:
        """(step, epoch, wall_s, name, value) rows."""
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO metrics (run, step, epoch, wall_s, name, value) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, *r) for r in rows],
            )

    def metrics(self, run_id: int, name: str | None = None, *, after_rowid: int = 0) -> list[tuple]:
        """(rowid, step, epoch, wall_s, name, value) in insertion order."""
        sql, args = "SELECT rowid, step, epoch, wall_s, name, value FROM metrics WHERE run = ? AND rowid > ?", [
            run_id, after_rowid]
        if name:
            sql += " AND name = ?"
            args.append(name)
        return self.conn.execute(sql + " ORDER BY rowid", args).fetchall()

    def truncate_metrics(self, run_id: int, after_step: int) -> None:
        """Drop metrics logged after ``after_step`` (a resumed run logs them again)."""
        with self.transaction():
            self.conn.execute("DELETE FROM metrics WHERE run = ? AND step > ?", (run_id, after_step))

    # -- predictions --------------------------------------------------------------------------
    def save_predictions(self, run_id: int, rows: Sequence[dict[str, Any]]) -> None:
        """Rows with example, probs, label, confidence, margin, entropy, kl, completion, latency_ms
        and, for generation, scores (a JSON-able dict) and score (the viewer's sort key)."""
        with self.transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO predictions (run, example, probs, label, confidence, margin, entropy, kl, "
                "completion, latency_ms, scores, score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, r["example"], json.dumps(r["probs"]) if r.get("probs") is not None else None,
                  r.get("label"), r.get("confidence"), r.get("margin"), r.get("entropy"), r.get("kl"),
                  r.get("completion"), r.get("latency_ms"),
                  json.dumps(r["scores"]) if r.get("scores") is not None else None, r.get("score"))
                 for r in rows],
            )

    def predictions(self, run_id: int, split: str | None = None) -> list[dict[str, Any]]:
        """A run's predictions in example order, of one split (``test``...) or of all."""
        keys = ("example", "probs", "label", "confidence", "margin", "entropy", "kl", "completion", "latency_ms",
                "scores", "score")
        sql = f"SELECT {', '.join('p.' + k for k in keys)} FROM predictions p"
        args: tuple = (run_id,)
        if split:
            sql += " JOIN examples e ON e.id = p.example WHERE p.run = ? AND e.split = ?"
            args = (run_id, split)
        else:
            sql += " WHERE p.run = ?"
        out = list(self.db.query(sql + " ORDER BY p.example", args))
        for d in out:
            d["probs"] = probabilities(d["probs"])
            d["scores"] = json_dict_or_none(d["scores"])
        return out

    # -- evaluations --------------------------------------------------------------------------
    def save_evaluation(self, run_id: int, report: dict[str, Any]) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO evaluations (run, created, report) VALUES (?, ?, ?)",
                (run_id, now(), json.dumps(report)),
            )

    def evaluation(self, run_id: int) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT report FROM evaluations WHERE run = ?", (run_id,)).fetchone()
        return json_dict_or_none(row[0]) if row else None
