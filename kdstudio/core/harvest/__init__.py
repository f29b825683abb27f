"""The harvest: ask a teacher about every example of some splits and store each answer.

Answers are keyed by (example, teacher fingerprint) and written in small transactions as they
arrive, so a rerun asks only for what is missing, a crash or cancel loses nothing already paid
for, and one harvest serves any number of students.

A :class:`HarvestConfig` goes in (the CLI builds it from its flags, the harvest panel from its
widgets), events come out, the last one ``Finished(HarvestResult)`` (``HarvestEstimate`` for a dry
run). The harvest talks to every teacher through the ``Teacher`` protocol and to the project's task
through :mod:`~kdstudio.core.harvest.tasks`; it has no case for a kind of teacher or a task.
:func:`import_completions` (:mod:`.recorded`) stores completions a teacher already wrote as the
answers of ``recorded:NAME``.
"""

from kdstudio.core.harvest.config import HarvestConfig
from kdstudio.core.harvest.job import harvest, teacher_context
from kdstudio.core.harvest.recorded import CompletionsImportResult, import_completions
from kdstudio.core.harvest.results import HarvestEstimate, HarvestResult

__all__ = ["CompletionsImportResult", "HarvestConfig", "HarvestEstimate", "HarvestResult", "harvest",
           "import_completions", "teacher_context"]
