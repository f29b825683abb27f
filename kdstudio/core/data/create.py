"""A new project with its data in one job: what ``kdstudio new`` then ``kdstudio import`` per file do,
plus the wizard's plan (teacher, student, settings). A failed import removes the half-made project,
so the person can fix the file and try again.

The validation split is made once, after every file is in: when no file went to valid, a stratified,
seeded ``valid_fraction`` of all the train rows moves there (whichever files they came from and
whether their split was ``auto`` or ``train``), so the project gets the split the wizard promised.

:func:`plan_project` makes the same project in a temporary folder and reports where every row
went, so the wizard shows counts that are, by construction, the counts the real project will
have; :func:`check_splits` says what would stop such a project from training or being evaluated.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdstudio.core.data.importer import ImportResult, auto_split, carve_valid, import_file
from kdstudio.core.errors import DataError
from kdstudio.core.events import CancelToken, Event, Finished, JobResult, Log
from kdstudio.core.store import Project


@dataclass(frozen=True)
class DataFile:
    """One file to import and the split its rows go to (``auto``: see :func:`import_file`)."""

    path: str
    split: str = "auto"


@dataclass(frozen=True)
class FileSplits:
    """Where one file's rows went: ``split`` as asked (``auto``...), ``target`` the split its
    labelled rows go to, ``splits`` the rows per split once the validation split is made."""

    file: str
    split: str
    target: str
    splits: dict[str, int]


@dataclass(frozen=True)
class CreateResult(JobResult):
    path: str
    imports: list[ImportResult]
    splits: dict[str, int]
    labels: list[str]
    files: list[FileSplits]
    valid_carved: int  # train rows moved to valid after the import
    valid_fraction: float


@dataclass(frozen=True)
class Problem:
    """Something that would stop the project from training or being evaluated. ``blocking``: it
    cannot train as it is (the wizard refuses); otherwise the person is asked to confirm."""

    message: str
    blocking: bool


def create_project(
    path: str | Path,
    task: str,
    files: Sequence[DataFile],
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    valid_fraction: float = 0.1,
    seed: int = 0,
    plan: dict[str, Any] | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Create the project at ``path``, import ``files`` in order, make the validation split,
    keep ``plan`` in its settings (and its ``instructions``, if any, as the project's)."""
    if not 0 <= valid_fraction < 1:
        raise DataError(f"the validation share must be in [0, 1), not {valid_fraction}")
    target = Path(path)
    Project.create(target, task).close()
    results: list[ImportResult] = []
    ranges: list[tuple[int, int]] = []
    try:
        for item in files:
            yield Log(f"importing {Path(item.path).name}")
            with Project(target) as project:
                first = project.max_example_id() + 1
            for event in import_file(target, item.path, text_col=text_col, label_col=label_col, split=item.split,
                                     valid_fraction=0, cancel=cancel):
                if isinstance(event, Finished):
                    results.append(event.result)
                else:
                    yield event
            with Project(target) as project:
                ranges.append((first, project.max_example_id()))
        with Project(target) as project:
            carved = 0
            if valid_fraction > 0 and project.split_counts()["valid"] == 0:
                with project.transaction():
                    carved = carve_valid(project, 0, valid_fraction, seed)
                if carved:
                    yield Log(f"{carved} train rows held out for validation ({valid_fraction:.0%}, stratified, "
                              f"seed {seed})")
            if plan:
                # a generation teacher's instructions (the wizard's system prompt) are the project's
                instructions = {"instructions": plan["instructions"]} if plan.get("instructions") else {}
                project.update_settings(plan=plan, **instructions)
            info = project.info()
            per_file = [
                FileSplits(file=str(item.path), split=item.split,
                           target=auto_split(Path(item.path)) if item.split == "auto" else item.split,
                           splits=project.split_counts(ids=ids))
                for item, ids in zip(files, ranges, strict=True)
            ]
        if not info["n_examples"]:
            raise DataError("no rows were imported")
    except BaseException:
        for suffix in ("", "-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        raise
    yield Finished(CreateResult(path=str(target), imports=results, splits=info["splits"], labels=info["labels"],
                                files=per_file, valid_carved=carved, valid_fraction=valid_fraction))


def plan_project(
    task: str,
    files: Sequence[DataFile],
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    valid_fraction: float = 0.1,
    seed: int = 0,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Where every row of ``files`` would go: :func:`create_project` in a temporary folder, which
    is then removed. Finishes with the :class:`CreateResult` the real project would have."""
    with tempfile.TemporaryDirectory(prefix="kdstudio-plan-") as folder:
        for event in create_project(Path(folder) / "plan.kdproj", task, files, text_col=text_col,
                                    label_col=label_col, valid_fraction=valid_fraction, seed=seed, cancel=cancel):
            if isinstance(event, Finished):
                result = event.result
            elif not isinstance(event, Log):
                yield event
    yield Finished(result)


def check_splits(result: CreateResult, task: str) -> list[Problem]:
    """What would stop a project made like ``result`` from training or being evaluated."""
    problems: list[Problem] = []
    splits = result.splits
    if task == "classification" and len(result.labels) < 2:
        problems.append(Problem(
            "No labels to learn from: choose the label column (a classifier needs at least two labels)."
            if not result.labels else f"Only one label ('{result.labels[0]}'): a classifier needs at least two.",
            True))
    if splits["train"] == 0:
        where = "; ".join(f"{Path(f.file).name}: " + ", ".join(f"{n:,} {s}" for s, n in f.splits.items() if n)
                          for f in result.files)
        named = [f for f in result.files if f.split == "auto" and f.target in ("test", "valid")]
        hint = (f" ({', '.join(Path(f.file).name for f in named)}: the name says {named[0].target}; "
                "set the split to train)" if named else "")
        problems.append(Problem(f"No training rows ({where}). Add a training file, or set a file's split to "
                                f"train{hint}.", True))
    if splits["train"] and splits["valid"] == 0:
        problems.append(Problem(
            "No validation rows: set “Hold out for validation” above 0 or add a validation file. A student is "
            "never validated on the training rows its teacher may have been fitted on."
            if result.valid_fraction == 0 else
            "No validation rows: too few training rows to hold some out; add more data or a validation file.",
            True))
    if splits["test"] == 0:
        problems.append(Problem("No test rows: nothing held out to compare the student with the teacher. Add a "
                                "test file now, or import one later (Data → Import).", False))
    return problems
