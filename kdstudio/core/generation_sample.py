"""The bundled generation sample: E2E NLG, meaning representation → restaurant description.

``resources/sample-e2e`` ships the data set's ``devset.csv`` and ``testset_w_refs.csv`` unchanged
(CC BY-SA 4.0; attribution in its ``SOURCE.md``). The original files use different restaurants
and attribute values (dev has only coffee shops serving Chinese or English food), so training on
one and testing on the other tests values never seen. :func:`generation_sample` instead:

1. reads both files (9,365 pairs) and gathers the references of each meaning representation
   (1,177 of them; a pair that repeats is kept once), dev first, in file order;
2. splits the meaning representations with a fixed seed, :data:`SHARES` of them to train, valid
   and test: all references of one meaning representation land in the same split, and no meaning
   representation is in two splits;
3. stores one example per meaning representation with every reference (``examples.reference`` is
   the first) and the first reference as the answer of the recorded teacher
   ``recorded:e2e-references`` (:data:`TEACHER`), so a student can be trained with no teacher to
   run and nothing to pay.

It is one transaction: a failure leaves no project behind. Building it again at the same path
reports the finished sample (the demo calls it on every run).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kdstudio.core.data.importer import text_hash
from kdstudio.core.data.readers import read_records
from kdstudio.core.errors import KDStudioError, ProjectError
from kdstudio.core.events import CancelToken, Event, Finished, JobResult, Log, run_to_end
from kdstudio.core.harvest.recorded import save_recorded
from kdstudio.core.paths import resources_dir
from kdstudio.core.store import Project

FILES = ("devset.csv", "testset_w_refs.csv")
TEACHER_NAME = "e2e-references"
TEACHER = f"recorded:{TEACHER_NAME}"
SAMPLE = "e2e_nlg"
#: shares of the meaning representations in train, valid and test
SHARES = {"train": 0.8, "valid": 0.1, "test": 0.1}
INSTRUCTIONS = ("Write a short description of the restaurant (one or two sentences) that states every fact "
                "of the meaning representation and nothing else.")


@dataclass(frozen=True)
class GenerationSampleResult(JobResult):
    """What ``kdstudio sample --task generation --json`` prints. ``splits`` counts examples
    (meaning representations) per split; ``references`` every reference stored."""

    project: str
    pairs: int  #: (meaning representation, reference) rows read
    meaning_representations: int
    splits: dict[str, int]
    references: int
    max_references: int  #: the most references one meaning representation has
    teacher: int  #: the recorded teacher's id in the project
    teacher_spec: str
    seed: int
    seconds: float


def e2e_dir() -> Path:
    """The bundled E2E files."""
    folder = resources_dir() / "sample-e2e"
    if not all((folder / name).is_file() for name in FILES):
        raise KDStudioError(f"the bundled E2E sample is missing ({folder}); reinstall KD Studio")
    return folder


def read_e2e(folder: Path) -> tuple[int, dict[str, list[tuple[str, str, int]]]]:
    """(pairs read, meaning representation → its distinct references as (text, file, line)),
    both files in order."""
    pairs = 0
    refs: dict[str, list[tuple[str, str, int]]] = {}
    for name in FILES:
        _columns, records = read_records(folder / name, "csv", None, [0])
        for line, record in records:
            pairs += 1
            mr, ref = record["mr"].strip(), record["ref"].strip()
            known = refs.setdefault(mr, [])
            if ref and all(ref != r for r, _f, _l in known):
                known.append((ref, name, line))
    return pairs, refs


def split_by_meaning(mrs: list[str], seed: int) -> dict[str, str]:
    """Meaning representation → split: a seeded shuffle of the sorted list, cut at :data:`SHARES`."""
    order = sorted(mrs)
    random.Random(seed).shuffle(order)
    n_valid, n_test = round(len(order) * SHARES["valid"]), round(len(order) * SHARES["test"])
    n_train = len(order) - n_valid - n_test
    return {mr: ("train" if i < n_train else "valid" if i < n_train + n_valid else "test")
            for i, mr in enumerate(order)}


def _report(project: Project, path: Path, seed: int, pairs: int, t0: float) -> GenerationSampleResult:
    refs = project.references_of()
    teacher = next((t["id"] for t in project.teachers() if t["spec"] == TEACHER), None)
    if teacher is None:
        raise ProjectError(f"{path} holds no {TEACHER}; it is not a finished generation sample")
    counts = project.split_counts()
    return GenerationSampleResult(
        project=str(path), pairs=pairs, meaning_representations=sum(counts.values()),
        splits={s: counts[s] for s in SHARES}, references=sum(map(len, refs.values())),
        max_references=max(map(len, refs.values()), default=0), teacher=teacher, teacher_spec=TEACHER, seed=seed,
        seconds=round(time.monotonic() - t0, 3))


def generation_sample(path: str | Path, *, seed: int = 0, source: str | Path | None = None,
                      cancel: CancelToken | None = None) -> Iterator[Event]:
    """Build the E2E sample project at ``path`` (see the module docstring); finishes with
    :class:`GenerationSampleResult`. ``source``: a folder with the two files (default: bundled)."""
    cancel = cancel or CancelToken()
    t0 = time.monotonic()
    path = Path(path)
    if path.exists():
        with Project(path) as project:
            settings = project.settings()
            if settings.get("sample") != SAMPLE:
                raise ProjectError(f"{path}: already exists and is not the generation sample; choose another path")
            yield Log(f"{path} is the generation sample already")
            result = _report(project, path, settings.get("sample_seed", seed), settings.get("sample_pairs", 0), t0)
        yield Finished(result)
        return
    folder = Path(source) if source is not None else e2e_dir()
    yield Log(f"reading the E2E files ({', '.join(FILES)})")
    pairs, refs = read_e2e(folder)
    cancel.check()
    split_of = split_by_meaning(list(refs), seed)
    yield Log(f"{pairs:,} pairs, {len(refs):,} meaning representations; split by meaning representation "
              f"(seed {seed}): " + ", ".join(f"{sum(1 for s in split_of.values() if s == k):,} {k}" for k in SHARES))
    partial = path.with_name(path.name + ".part")
    partial.unlink(missing_ok=True)
    try:
        with Project.create(partial, "generation", name="E2E restaurant descriptions (sample)", settings={
                "instructions": INSTRUCTIONS, "sample": SAMPLE, "sample_seed": seed, "sample_pairs": pairs}) as project:
            with project.transaction():
                rows = [(mr, None, found[0][0], split_of[mr], found[0][1], found[0][2], text_hash(mr))
                        for mr, found in refs.items() if found]
                project.insert_examples(rows)
                project.add_references([(split_of[mr], text_hash(mr), ref) for mr, found in refs.items()
                                        for ref, _f, _l in found])
                ids = {text: ex for ex, text, _label in project.examples()}
                teacher_id, _ = save_recorded(project, TEACHER_NAME, {ids[mr]: found[0][0]
                                                                      for mr, found in refs.items() if found})
                counts = project.split_counts()
                project.update_settings(imports=[{
                    "file": name, "format": "csv", "split": "train/valid/test by meaning representation",
                    "rows": sum(1 for found in refs.values() for _r, f, _l in found if f == name),
                    "inserted": sum(1 for _t, _l, _r, _s, f, _n, _h in rows if f == name), "duplicates": 0,
                    "skipped_empty": 0} for name in FILES])
            cancel.check()
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    yield Log(f"{sum(counts.values()):,} examples with their references; {TEACHER} (#{teacher_id}) answers each "
              "with its first reference, at no cost")
    with Project(path) as project:
        result = _report(project, path, seed, pairs, t0)
    yield Finished(result)


def build_generation_sample(path: str | Path, *, seed: int = 0, source: str | Path | None = None,
                            cancel: CancelToken | None = None) -> GenerationSampleResult:
    """:func:`generation_sample`, run to its end (for the demo and scripts)."""
    return run_to_end(generation_sample(path, seed=seed, source=source, cancel=cancel))
