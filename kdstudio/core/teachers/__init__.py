"""Teachers behind one Protocol: ``hf:``, ``embed:``, ``claude:`` and ``lm:`` specs.

:mod:`~kdstudio.core.teachers.base` holds the protocol, :mod:`~kdstudio.core.teachers.registry`
the spec kinds and their classes (imported only when a spec of that kind is loaded).
"""

from kdstudio.core.teachers.base import (
    MeasurableTeacher,
    Teacher,
    TeacherContext,
    TeacherEstimate,
    fingerprint,
)
from kdstudio.core.teachers.registry import load_teacher, parse_spec

__all__ = [
    "MeasurableTeacher",
    "Teacher",
    "TeacherContext",
    "TeacherEstimate",
    "fingerprint",
    "load_teacher",
    "parse_spec",
]
