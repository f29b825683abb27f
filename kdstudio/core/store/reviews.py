"""Reviews: what a person marks about an example in the comparison viewer or with ``kdstudio review``
(a corrected label, exclude, golden, a note), and the one rule by which every stage applies them.

Storing: :meth:`ReviewsMixin.set_review` merges. The fields given change, the others keep their
stored value, and a review left with nothing in it (no corrected label, not excluded, not golden,
no note) is removed. The viewer and the command line both write through it, so pressing G in the
viewer and then running ``kdstudio review --label L`` ends in the same review as the other order.

Applying (:func:`is_excluded`, :func:`reviewed_label`, :meth:`ReviewsMixin.reviewed_examples`):
an excluded example is left out of training, validation, evaluation and the golden set; for every
other example a person's corrected label replaces the gold label, on every split. Training also
replaces the teacher's answer on a corrected transfer row with the corrected label (one-hot).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kdstudio.core.store.project import now

REVIEW_FIELDS = ("corrected_label", "corrected_completion", "exclude", "golden", "note")


class _Keep(enum.Enum):
    KEEP = "keep"


#: ``set_review``'s default for a field: leave what is stored.
KEEP = _Keep.KEEP


def is_excluded(review: Mapping[str, Any] | None) -> bool:
    """Whether a person left the example out (of training, validation, evaluation, the golden set)."""
    return bool(review and review.get("exclude"))


def reviewed_label(gold: int | None, review: Mapping[str, Any] | None) -> int | None:
    """The label training and evaluation use for an example whose gold label is ``gold``: the
    person's corrected label when ``review`` has one, else ``gold``. (Check :func:`is_excluded`
    first: an excluded example is not used at all.)"""
    corrected = review.get("corrected_label") if review else None
    return int(corrected) if corrected is not None else gold


@dataclass(frozen=True)
class ReviewedExamples:
    """A split's examples with the reviews applied (see the module docstring)."""

    rows: list[tuple[int, str, int | None]]  #: (id, text, label) of the examples kept, in id order
    corrected: frozenset[int]  #: kept examples whose label is a person's correction
    excluded: frozenset[int]  #: examples a person left out (not in ``rows``)

    def labels(self) -> dict[int, int | None]:
        """Example id → the label training and evaluation use."""
        return {ex: label for ex, _text, label in self.rows}


class ReviewsMixin:
    conn: Any

    def set_review(
        self,
        example: int,
        *,
        corrected_label: int | _Keep | None = KEEP,
        corrected_completion: str | _Keep | None = KEEP,
        exclude: bool | _Keep = KEEP,
        golden: bool | _Keep = KEEP,
        note: str | _Keep | None = KEEP,
    ) -> dict[str, Any] | None:
        """Merge the fields given into ``example``'s review and return the review as stored (None
        when nothing is left in it, and then no review is stored)."""
        changes = {"corrected_label": corrected_label, "corrected_completion": corrected_completion,
                   "exclude": exclude, "golden": golden, "note": note}
        with self.transaction():
            review = self.review(example) or {"corrected_label": None, "corrected_completion": None,
                                              "exclude": False, "golden": False, "note": None}
            review.update({k: v for k, v in changes.items() if v is not KEEP})
            review = {
                "corrected_label": None if review["corrected_label"] is None else int(review["corrected_label"]),
                "corrected_completion": review["corrected_completion"] or None,
                "exclude": bool(review["exclude"]),
                "golden": bool(review["golden"]),
                "note": review["note"] or None,
            }
            if review["corrected_label"] is None and not (review["corrected_completion"] or review["exclude"]
                                                          or review["golden"] or review["note"]):
                self.conn.execute("DELETE FROM reviews WHERE example = ?", (example,))
                return None
            self.conn.execute(
                "INSERT OR REPLACE INTO reviews (example, corrected_label, corrected_completion, exclude, golden, "
                "note, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (example, review["corrected_label"], review["corrected_completion"], int(review["exclude"]),
                 int(review["golden"]), review["note"], now()),
            )
        return review

    def clear_review(self, example: int) -> None:
        with self.transaction():
            self.conn.execute("DELETE FROM reviews WHERE example = ?", (example,))

    def review(self, example: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT corrected_label, corrected_completion, exclude, golden, note FROM reviews WHERE example = ?",
            (example,)
        ).fetchone()
        return None if row is None else _review(*row)

    def reviews(self) -> dict[int, dict[str, Any]]:
        """Example id → review (``corrected_label``, ``corrected_completion``, ``exclude``, ``golden``,
        ``note``)."""
        return {ex: _review(cl, cc, x, g, n) for ex, cl, cc, x, g, n in self.conn.execute(
            "SELECT example, corrected_label, corrected_completion, exclude, golden, note FROM reviews")}

    def corrected_completions(self) -> dict[int, str]:
        """Example id → a person's corrected completion (generation): it replaces the teacher's
        completion in training, and scoring against the teacher scores against it."""
        return dict(self.conn.execute(
            "SELECT example, corrected_completion FROM reviews WHERE corrected_completion IS NOT NULL"))

    def reviewed_examples(self, split: str | None = None, *, ids: Sequence[int] | None = None) -> ReviewedExamples:
        """The examples of ``split`` (or ``ids``) as training and evaluation see them: excluded ones
        left out, corrected labels in place of gold."""
        reviews = self.reviews()
        rows, corrected, excluded = [], set(), set()
        for ex, text, gold in self.examples(split, ids=ids):
            review = reviews.get(ex)
            if is_excluded(review):
                excluded.add(ex)
                continue
            label = reviewed_label(gold, review)
            if review and review["corrected_label"] is not None:
                corrected.add(ex)
            rows.append((ex, text, label))
        return ReviewedExamples(rows, frozenset(corrected), frozenset(excluded))


def _review(corrected_label: int | None, corrected_completion: str | None, exclude: int, golden: int,
            note: str | None) -> dict[str, Any]:
    return {"corrected_label": corrected_label, "corrected_completion": corrected_completion,
            "exclude": bool(exclude), "golden": bool(golden), "note": note}


__all__ = ["KEEP", "REVIEW_FIELDS", "ReviewedExamples", "ReviewsMixin", "is_excluded", "reviewed_label"]
