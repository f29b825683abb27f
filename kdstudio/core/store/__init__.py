"""The project store: the only module that writes SQL. See ``Project``."""

from kdstudio.core.store.outputs import BatchIntent, OutputsMixin, TeacherOutput
from kdstudio.core.store.project import SPLITS, TASKS, ProjectBase, now
from kdstudio.core.store.reviews import KEEP, ReviewedExamples, ReviewsMixin, is_excluded, reviewed_label
from kdstudio.core.store.runs import INTERRUPTED, RunsMixin, is_interrupted
from kdstudio.core.store.schema import SCHEMA_VERSION
from kdstudio.core.store.viewer import ViewerMixin


class Project(ViewerMixin, OutputsMixin, ReviewsMixin, RunsMixin, ProjectBase):
    """An open ``*.kdproj`` file. Open one per thread: ``Project(path)``; create with
    ``Project.create(path, task, labels=...)``."""


__all__ = [
    "INTERRUPTED",
    "KEEP",
    "SCHEMA_VERSION",
    "SPLITS",
    "TASKS",
    "BatchIntent",
    "Project",
    "ReviewedExamples",
    "TeacherOutput",
    "is_excluded",
    "is_interrupted",
    "now",
    "reviewed_label",
]
