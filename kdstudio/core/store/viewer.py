"""Queries behind the comparison viewer: a run's test predictions side by side with a teacher's
answers, filtered, sorted and paged in SQL so a page comes back fast on large projects.

Filters (keys of the ``filters`` dict; absent or None means "any"):

    disagreement    True: student top-1 != teacher top-1; False: both answered and agree
    student_label   label id the student predicted
    teacher_label   label id the teacher predicted
    gold_label      gold label id (the "class" of the example)
    gold            "right" / "wrong": the student's label against gold (rows without gold drop out)
    confidence      (low, high): the student's top probability, inclusive; either end may be None
    kl              (low, high): KL(teacher ‖ student), inclusive; either end may be None
    text            a substring of the text, case-insensitive (ASCII letters), % and _ taken literally

Sorts: ``kl``, ``margin``, ``entropy``, ``confidence``, ``teacher_confidence``, ``id``. Ties are
broken by example id in the same direction, so pages never overlap.

The rows live in ``compare_rows``, a narrow copy of (prediction, teacher answer, gold) per
(run, teacher) with an index per sort key and per filter; it is built on the first query (or by
``ensure_compare_rows``, which evaluation calls) and rebuilt after predictions, teacher answers
or gold labels change (triggers in the schema drop the stale copy).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kdstudio.core.store.jsoncol import probabilities
from kdstudio.core.store.project import now

SORTS = {
    "kl": "kl",
    "margin": "margin",
    "entropy": "entropy",
    "confidence": "confidence",
    "teacher_confidence": "teacher_confidence",
    "id": "example",
}
FILTERS = (
    "disagreement",
    "student_label",
    "teacher_label",
    "gold_label",
    "gold",
    "confidence",
    "kl",
    "text",
    "split",
)
TEXT_LIST_MAX = 2000  # text search: up to this many matches are listed up front
ROW_KEYS = (
    "example",
    "text",
    "gold",
    "student_label",
    "teacher_label",
    "confidence",
    "teacher_confidence",
    "margin",
    "entropy",
    "kl",
    "student_probs",
    "teacher_probs",
    "corrected_label",
    "note",
)


class ViewerMixin:
    conn: Any

    def _viewer_teacher(self, run_id: int, teacher_id: int | None) -> int:
        """The teacher to compare with: the one given, else the run's (0 when it has none)."""
        if teacher_id is not None:
            return int(teacher_id)
        row = self.conn.execute("SELECT teacher FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row[0] if row and row[0] is not None else 0

    def ensure_compare_rows(self, run_id: int, teacher_id: int | None = None) -> int:
        """Build the viewer's table for (run, teacher) when it is missing or stale (predictions,
        teacher answers or gold labels changed since); return how many rows it holds."""
        teacher_id = self._viewer_teacher(run_id, teacher_id)
        row = self.conn.execute(
            "SELECT rows FROM compare_cache WHERE run = ? AND teacher = ?", (run_id, teacher_id)
        ).fetchone()
        if row is not None:
            return row[0]
        cache_kib = self.conn.execute("PRAGMA cache_size").fetchone()[0]
        self.conn.execute("PRAGMA cache_size = -131072")  # the indexes fit in memory while built
        try:
            count = self._build_compare_rows(run_id, teacher_id)
        finally:
            self.conn.execute(f"PRAGMA cache_size = {int(cache_kib)}")
        # Fresh statistics let the planner pick a filter's index over the sort's on a big run.
        self.conn.execute("ANALYZE compare_rows")
        return count

    def _build_compare_rows(self, run_id: int, teacher_id: int) -> int:
        with self.transaction():
            self.conn.execute(
                "DELETE FROM compare_cache WHERE run = ? AND teacher = ?", (run_id, teacher_id)
            )  # and the rows, in case the file was edited with foreign keys off (no cascade then)
            self.conn.execute("DELETE FROM compare_rows WHERE run = ? AND teacher = ?", (run_id, teacher_id))
            self.conn.execute(
                "INSERT INTO compare_cache (run, teacher, built, rows) VALUES (?, ?, ?, 0)",
                (run_id, teacher_id, now()),
            )
            cur = self.conn.execute(
                "INSERT INTO compare_rows (run, teacher, example, student_label, teacher_label, gold, "
                "disagree, confidence, teacher_confidence, margin, entropy, kl, split) "
                "SELECT p.run, ?, p.example, p.label, o.label, e.label, "
                "COALESCE(o.label IS NOT NULL AND p.label IS NOT NULL AND o.label != p.label, 0), "
                "p.confidence, o.confidence, p.margin, p.entropy, p.kl, e.split "
                "FROM predictions p JOIN examples e ON e.id = p.example "
                "LEFT JOIN teacher_outputs o ON o.example = p.example AND o.teacher = ? "
                "AND o.status = 'ok' WHERE p.run = ?",
                (teacher_id, teacher_id, run_id),
            )
            self.conn.execute(
                "UPDATE compare_cache SET rows = ? WHERE run = ? AND teacher = ?",
                (cur.rowcount, run_id, teacher_id),
            )
        return cur.rowcount

    def _viewer_where(self, filters: dict[str, Any] | None) -> tuple[str, list[Any]]:
        """SQL conditions on ``compare_rows`` for ``filters``, and their arguments."""
        filters = {k: v for k, v in (filters or {}).items() if v is not None}
        unknown = set(filters) - set(FILTERS)
        if unknown:
            raise ValueError(
                f"unknown viewer filters: {sorted(unknown)}; known: {', '.join(FILTERS)}"
            )
        where, args = [], []
        if "split" in filters:
            splits = [filters["split"]] if isinstance(filters["split"], str) else list(filters["split"])
            where.append(f"split IN ({', '.join('?' * len(splits))})")
            args += splits
        if "disagreement" in filters:
            where.append(
                "disagree = 1"
                if filters["disagreement"]
                else "disagree = 0 AND teacher_label IS NOT NULL"
            )
        for key, column in (
            ("student_label", "student_label"),
            ("teacher_label", "teacher_label"),
            ("gold_label", "gold"),
        ):
            if key in filters:
                where.append(f"{column} = ?")
                args.append(int(filters[key]))
        if "gold" in filters:
            if filters["gold"] not in ("right", "wrong"):
                raise ValueError("the gold filter is 'right' or 'wrong'")
            where.append(
                "gold IS NOT NULL AND student_label "
                + ("=" if filters["gold"] == "right" else "!=")
                + " gold"
            )
        for key in ("confidence", "kl"):
            if key in filters:
                low, high = filters[key]
                if low is not None:
                    where.append(f"{key} >= ?")
                    args.append(float(low))
                if high is not None:
                    where.append(f"{key} <= ?")
                    args.append(float(high))
        if filters.get("text"):
            escaped = (
                str(filters["text"]).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            )
            pattern = f"%{escaped}%"
            # A rare term: list the few matching examples once. A common one: check each row
            # as the sort index is walked, which stops as soon as the page is full.
            hits = [
                r[0]
                for r in self.conn.execute(
                    "SELECT id FROM examples WHERE text LIKE ? ESCAPE '\\' LIMIT ?",
                    (pattern, TEXT_LIST_MAX + 1),
                )
            ]
            if len(hits) <= TEXT_LIST_MAX:
                where.append("example IN (SELECT value FROM json_each(?))")
                args.append(json.dumps(hits))
            else:
                where.append(
                    "EXISTS (SELECT 1 FROM examples WHERE id = example AND text LIKE ? ESCAPE '\\')"
                )
                args.append(pattern)
        return "".join(" AND " + w for w in where), args

    def compare_page(
        self,
        run_id: int,
        teacher_id: int | None = None,
        *,
        filters: dict[str, Any] | None = None,
        sort: str = "kl",
        descending: bool = True,
        offset: int = 0,
        limit: int = 200,
        with_total: bool = True,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of ``(rows, total)``: each row has the keys of ``ROW_KEYS`` (probabilities as
        lists, ``corrected_label``/``note`` from the example's review). ``teacher_id`` defaults
        to the run's teacher; ``total`` counts every row that matches (None with
        ``with_total=False``, for a viewer that already knows it)."""
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}; choose one of: {', '.join(SORTS)}")
        teacher_id = self._viewer_teacher(run_id, teacher_id)
        self.ensure_compare_rows(run_id, teacher_id)
        where, args = self._viewer_where(filters)
        direction = "DESC" if descending else "ASC"
        order = f"{SORTS[sort]} {direction}, example {direction}"
        sql = (
            "SELECT c.example, e.text, c.gold, c.student_label, c.teacher_label, c.confidence, "
            "c.teacher_confidence, c.margin, c.entropy, c.kl, p.probs, o.probs, r.corrected_label, r.note "
            "FROM (SELECT * FROM compare_rows WHERE run = ? AND teacher = ?"
            f"{where} ORDER BY {order} LIMIT ? OFFSET ?) c "
            "JOIN examples e ON e.id = c.example "
            "JOIN predictions p ON p.run = c.run AND p.example = c.example "
            "LEFT JOIN teacher_outputs o ON o.example = c.example AND o.teacher = c.teacher "
            "LEFT JOIN reviews r ON r.example = c.example "
            f"ORDER BY c.{order.replace(', ', ', c.')}"
        )
        rows = []
        params = [run_id, teacher_id, *args, int(limit), int(offset)]
        for row in self.conn.execute(sql, params):
            d = dict(zip(ROW_KEYS, row, strict=True))
            d["student_probs"] = probabilities(d["student_probs"])
            d["teacher_probs"] = probabilities(d["teacher_probs"])
            rows.append(d)
        total = self.compare_count(run_id, teacher_id, filters=filters) if with_total else None
        return rows, total

    def compare_count(
        self, run_id: int, teacher_id: int | None = None, *, filters: dict[str, Any] | None = None
    ) -> int:
        """How many of the run's predictions match ``filters``."""
        teacher_id = self._viewer_teacher(run_id, teacher_id)
        self.ensure_compare_rows(run_id, teacher_id)
        where, args = self._viewer_where(filters)
        return self.conn.execute(
            f"SELECT COUNT(*) FROM compare_rows WHERE run = ? AND teacher = ?{where}",
            [run_id, teacher_id, *args],
        ).fetchone()[0]

    def confusion_counts(
        self, run_id: int, teacher_id: int | None = None, against: str = "teacher",
        split: str | Sequence[str] | None = "test",
    ) -> list[list[int]]:
        """``m[s][x]``: how many examples of ``split`` (default test; None: all) the student labelled
        ``s`` and the teacher (or gold, with ``against="gold"``) labelled ``x``; rows without a
        teacher answer / gold are left out."""
        if against not in ("teacher", "gold"):
            raise ValueError("against is 'teacher' or 'gold'")
        teacher_id = self._viewer_teacher(run_id, teacher_id)
        self.ensure_compare_rows(run_id, teacher_id)
        n = self.conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0]
        m = [[0] * n for _ in range(n)]
        column = "teacher_label" if against == "teacher" else "gold"
        splits = [] if split is None else ([split] if isinstance(split, str) else list(split))
        split_sql = f" AND split IN ({', '.join('?' * len(splits))})" if splits else ""
        for s, x, count in self.conn.execute(
            f"SELECT student_label, {column}, COUNT(*) FROM compare_rows WHERE run = ? AND teacher = ? "
            f"AND {column} IS NOT NULL AND student_label IS NOT NULL{split_sql} GROUP BY student_label, {column}",
            (run_id, teacher_id, *splits),
        ):
            if 0 <= s < n and 0 <= x < n:
                m[s][x] = count
        return m
