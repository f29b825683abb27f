"""Teachers behind one Protocol: ``hf:``, ``embed:``, ``claude:`` and ``lm:`` specs."""

from kdstudio.core.teachers.base import (
    Teacher,
    TeacherContext,
    fingerprint,
    load_teacher,
    parse_spec,
)

__all__ = ["Teacher", "TeacherContext", "fingerprint", "load_teacher", "parse_spec"]
