"""Teachers behind one Protocol: ``hf:``, ``embed:``, ``claude:`` and ``lm:`` specs.

:mod:`~kdstudio.core.teachers.base` holds the protocol, :mod:`~kdstudio.core.teachers.registry`
the spec kinds and their classes (imported only when a spec of that kind is loaded).
"""

from kdstudio.core.teachers.base import (
    ExportableTeacher,
    MeasurableTeacher,
    Teacher,
    TeacherContext,
    TeacherEstimate,
    TeacherModule,
    fingerprint,
)
from kdstudio.core.teachers.registry import load_teacher, parse_spec

__all__ = [
    "ExportableTeacher",
    "MeasurableTeacher",
    "Teacher",
    "TeacherContext",
    "TeacherEstimate",
    "TeacherModule",
    "fingerprint",
    "load_teacher",
    "parse_spec",
]
