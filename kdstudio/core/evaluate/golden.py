"""Accuracy on the golden set: the examples a person has checked in the comparison viewer.

A golden example's true label follows the store's one rule for reviews
(``kdstudio.core.store.reviews``): the person's corrected label when they gave one, else the
example's gold label; golden examples with neither, and golden examples a person excluded, are
not scored. ``golden_accuracy`` is a pure function on plain dicts; ``golden_report`` reads what
it needs for one run from the project.

A project may set a floor (``project.update_settings(golden_floor=0.9)``): a run whose student
scores below it on the golden set is flagged (``below_floor``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kdstudio.core.store import is_excluded, reviewed_label


def golden_accuracy(
    reviews: Mapping[int, Mapping[str, Any]],
    gold: Mapping[int, int | None],
    student: Mapping[int, int | None],
    teacher: Mapping[int, int | None],
    *,
    floor: float | None = None,
) -> dict[str, Any]:
    """Student and teacher accuracy on the golden examples of ``reviews``.

    ``reviews`` maps example id → review (``golden``, ``corrected_label``, ``exclude``, ...);
    ``gold`` maps example id → gold label id; ``student`` and ``teacher`` map example id → the
    label each predicted. An example counts for the student when it has a true label and a
    student label, and for the teacher when it has a true label and a teacher label.

    Returns ``n_golden`` (examples marked golden, excluded ones included), ``n_student`` /
    ``n_teacher`` (how many were scored), ``student_accuracy`` / ``teacher_accuracy`` (None when
    nothing was scored), ``floor`` and ``below_floor`` (True only when a floor is set and the
    student is under it).
    """
    truth: dict[int, int] = {}
    n_golden = 0
    for example, review in reviews.items():
        if not review.get("golden"):
            continue
        n_golden += 1
        if is_excluded(review):
            continue
        label = reviewed_label(gold.get(example), review)
        if label is not None:
            truth[example] = int(label)

    def score(predicted: Mapping[int, int | None]) -> tuple[int, float | None]:
        pairs = [(predicted.get(ex), t) for ex, t in truth.items() if predicted.get(ex) is not None]
        if not pairs:
            return 0, None
        return len(pairs), sum(int(p) == t for p, t in pairs) / len(pairs)

    n_student, student_accuracy = score(student)
    n_teacher, teacher_accuracy = score(teacher)
    return {
        "n_golden": n_golden,
        "n_student": n_student,
        "n_teacher": n_teacher,
        "student_accuracy": student_accuracy,
        "teacher_accuracy": teacher_accuracy,
        "floor": floor,
        "below_floor": bool(
            floor is not None and student_accuracy is not None and student_accuracy < floor
        ),
    }


def golden_report(project: Any, run_id: int, teacher_id: int | None = None) -> dict[str, Any]:
    """``golden_accuracy`` for run ``run_id`` of an open ``Project`` against ``teacher_id``
    (default: the run's teacher, else the project's default teacher), with the project's
    ``golden_floor`` setting."""
    reviews = {ex: r for ex, r in project.reviews().items() if r["golden"]}
    floor = project.settings().get("golden_floor")
    if teacher_id is None:
        run = project.run(run_id) or {}
        teacher_id = run.get("teacher")
        if teacher_id is None:
            teacher_id = project.default_teacher()
    ids = sorted(reviews)
    gold = {ex: label for ex, _, label in project.examples(ids=ids)} if ids else {}
    student = {
        p["example"]: p["label"] for p in project.predictions(run_id) if p["example"] in reviews
    }
    teacher: dict[int, int | None] = {}
    if teacher_id is not None and ids:
        teacher = {
            o["id"]: o["label"] for o in project.teacher_outputs(teacher_id) if o["id"] in reviews
        }
    report = golden_accuracy(
        reviews, gold, student, teacher, floor=float(floor) if floor is not None else None
    )
    report["run"] = run_id
    return report


__all__ = ["golden_accuracy", "golden_report"]
