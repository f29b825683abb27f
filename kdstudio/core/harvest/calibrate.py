"""Fit the calibration of a teacher whose distributions are verbalized, on the project's gold
training rows (see ``kdstudio.core.calibration``). Only the train split: validation and test rows
must stay unseen by anything the student is judged against."""

from __future__ import annotations

from kdstudio.core.calibration import Calibration, fit_calibration, verbalized_part
from kdstudio.core.store import Project


def calibrate_teacher(project: Project, teacher_id: int) -> tuple[Calibration | None, bool]:
    """The teacher's calibration, refitted when its gold training answers changed since the last
    fit; returns it (None when too few gold rows) and whether it is new."""
    rows = [r for r in project.teacher_outputs(teacher_id, ["train"]) if r["gold"] is not None and r["probs"]]
    current = Calibration.from_dict(project.calibration(teacher_id))
    if current is not None and current.n_fit + current.n_check == len(rows):
        return current, False
    fitted = fit_calibration([r["id"] for r in rows], [verbalized_part(r) for r in rows], [r["gold"] for r in rows])
    if fitted is None:
        return current, False
    fields = fitted.as_dict()
    fields.pop("version")
    version = project.save_calibration(teacher_id, fields)
    return Calibration.from_dict({**fields, "version": version}), True
