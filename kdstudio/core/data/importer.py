"""The import stage: a data file into the project, in one transaction.

Decisions (documented in the README):
- rows whose text is empty are skipped and counted (``skipped_empty``); so are texts longer than
  ``max_chars`` (``skipped_too_long``), so one runaway line cannot swamp the project;
- exact duplicate texts within a split (byte for byte, whitespace included) are dropped and
  counted (``duplicates``);
- ``split="auto"`` keeps a file named like ``*test*`` as test and ``*dev*``/``*valid*`` as valid,
  treats anything else as train, sends rows without a label to ``unlabeled``, and carves a
  stratified, seeded validation split from the new train rows when the project has none yet;
- the import is one transaction: any error, or a cancel, leaves the project exactly as it was.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kdstudio.core.data.readers import (
    DEFAULT_ENCODING,
    FORMATS,
    bom_encoding,
    check_file,
    delimiter_name,
    read_records,
    sniff_delimiter,
    sniff_format,
)
from kdstudio.core.errors import DataError
from kdstudio.core.events import CancelToken, EtaClock, Event, Finished, JobResult, Log, Progress
from kdstudio.core.store import SPLITS, Project

TEXT_NAMES = ("text", "sentence", "content", "message", "question", "query", "utterance", "review",
              "document", "input", "prompt", "body", "sms", "tweet", "mr", "source")
LABEL_NAMES = ("label", "labels", "category", "class", "intent", "target", "sentiment", "y", "gold",
               "coarse")
REFERENCE_NAMES = ("reference", "ref", "references", "target", "completion", "output", "response", "answer",
                   "summary", "label")
CHUNK = 5000
#: ``--text-col A+B``: the text is column A, then column B on a new line when B is not empty.
JOIN = "+"
#: ``label_col`` for "this file has no label column" (None means: guess it from the names).
NO_LABEL_COLUMN = ""


@dataclass(frozen=True)
class Preview(JobResult):
    """The first rows of a data file and its guessed layout (the wizard's preview)."""

    path: str
    format: str
    encoding: str  # the one the rows were read with (a UTF-16/32 byte-order mark's, else the format's default)
    columns: list[str]
    rows: list[list[str]]
    text_col: str | None
    label_col: str | None
    auto_split: str  # where ``split="auto"`` sends this file's labelled rows
    delimiter: str | None = None  # a csv file's (sniffed) or a tsv file's; None for the other formats


@dataclass(frozen=True)
class ImportResult(JobResult):
    """What ``kdstudio import --json`` prints: counts of this file's rows and the project's splits."""

    file: str
    format: str
    text_col: str
    label_col: str | None
    rows: int  # data rows read
    inserted: int
    duplicates: int
    skipped_empty: int
    skipped_too_long: int
    valid_carved: int  # new train rows moved to valid
    splits: dict[str, int]  # the project's split sizes after the import
    n_labels: int
    seconds: float
    references: int = 0  # generation: references added (a repeated prompt's further completions included)
    delimiter: str | None = None  # csv/tsv: the delimiter the file was read with (",", ";", "\t", "|")
    warnings: list[str] = field(default_factory=list)  # what the import noticed (README, "Bad input files")


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _pick(columns: list[str], names: tuple[str, ...], exclude: str | None = None) -> str | None:
    lower = {c.lower(): c for c in columns if c != exclude}
    return next((lower[n] for n in names if n in lower), None)


def join_columns(record: dict[str, str], key: str) -> str:
    """The text of ``key`` in ``record``: one column, or ``A+B``: the non-empty ones of A and B
    joined by newlines (an instruction and its input)."""
    if key in record or JOIN not in key:
        return record.get(key, "")
    return "\n".join(v for v in (record.get(part, "") for part in key.split(JOIN)) if v.strip())


def detect_columns(columns: list[str], task: str = "classification") -> tuple[str | None, str | None]:
    """Guess (text column, label column) from the column names. An ``instruction`` column makes
    the text: ``instruction+input`` when there is an ``input`` column too (Alpaca, GPTeacher)."""
    lower = {c.lower(): c for c in columns}
    text = _pick(columns, TEXT_NAMES)
    if "instruction" in lower:
        text = lower["instruction"] + (JOIN + lower["input"] if "input" in lower else "")
    if text is None and len(columns) == 1:
        text = columns[0]
    label = _pick(columns, REFERENCE_NAMES if task == "generation" else LABEL_NAMES, exclude=text)
    if text is None and label is not None and len(columns) == 2:
        text = next(c for c in columns if c != label)
    return text, label


def require_column(name: str, columns: list[str], file: Path, option: str) -> str:
    if name in columns:
        return name
    folded = {c.lower(): c for c in columns}
    if name.lower() in folded:
        return folded[name.lower()]
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise DataError(f"no column '{name}' for {option}{hint} (columns: {', '.join(columns)})", file=str(file))


def resolve_columns(
    columns: list[str], file: Path, task: str, text_col: str | None, label_col: str | None
) -> tuple[str, str | None]:
    auto_text, auto_label = detect_columns(columns, task)
    if text_col and text_col not in columns and JOIN in text_col:
        text = JOIN.join(require_column(part.strip(), columns, file, "--text-col") for part in text_col.split(JOIN))
    else:
        text = require_column(text_col, columns, file, "--text-col") if text_col else auto_text
    if text is None:
        raise DataError(f"cannot tell which column holds the text; pass --text-col (columns: {', '.join(columns)})",
                        file=str(file))
    if label_col == NO_LABEL_COLUMN:
        label = None
    elif label_col:
        label = require_column(label_col, columns, file, "--label-col")
    else:
        label = auto_label if auto_label != text else None
    if label is not None and (label == text or label in text.split(JOIN)):
        raise DataError(f"--text-col and --label-col are the same column '{text}'", file=str(file))
    return text, label


#: rows looked at to check a text column guessed without a known name
CHECK_ROWS = 200


def looks_like_text(value: str) -> bool:
    """Whether a cell could be a text: it has a letter and is not a JSON number, literal, object or array."""
    value = value.strip()
    if not any(ch.isalpha() for ch in value):
        return False
    try:
        return isinstance(json.loads(value), str)
    except ValueError:
        return True


def check_guessed_text(
    text_key: str, columns: list[str], records: Iterator[tuple[int, dict[str, str]]], file: Path,
    named: bool = False,
) -> Iterator[tuple[int, dict[str, str]]]:
    """A guessed text column must hold something that looks like text in its first rows; otherwise
    the guess cannot be checked and is refused, naming the columns seen. ``named``: the guess went
    by a known name (``text``...), so a column with no values at all is left to the later "no data
    rows" / "no usable rows" errors. Returns the records, the rows looked at included."""
    head = list(itertools.islice(records, CHECK_ROWS))
    values = [join_columns(record, text_key) for _, record in head]
    if named and not any(v.strip() for v in values):
        return itertools.chain(head, records)
    if not any(looks_like_text(v) for v in values):
        seen = ", ".join(dict.fromkeys(v.strip()[:20] for v in values if v.strip()))
        sample = f"; '{text_key}' holds no text (first values: {seen[:80]})" if seen else f"; '{text_key}' is empty"
        raise DataError(
            f"cannot tell which column holds the text: none holds text in its first rows{sample}; pass --text-col "
            f"(columns: {', '.join(columns)})", file=str(file))
    return itertools.chain(head, records)


def auto_split(file: Path) -> str:
    name = file.name.lower()
    if "test" in name:
        return "test"
    if any(k in name for k in ("dev", "valid", "val.")):
        return "valid"
    return "train"


def preview(path: str | Path, *, format: str | None = None, encoding: str | None = None, n: int = 20,
            task: str = "classification") -> Preview:
    """The first ``n`` rows of a file and the guessed layout, for the wizard."""
    path = Path(path)
    check_file(path)
    fmt = format or sniff_format(path)
    encoding = encoding or (bom_encoding(path) if fmt != "parquet" else None)
    delimiter = {"csv": sniff_delimiter(path, encoding) if fmt == "csv" else None, "tsv": "\t"}.get(fmt)
    columns, records = read_records(path, fmt, encoding, [0], delimiter=delimiter)
    rows = []
    for _, record in records:
        rows.append([record.get(c, "") for c in columns])
        if len(rows) >= n:
            break
    text, label = detect_columns(columns, task)
    return Preview(path=str(path), format=fmt, encoding=encoding or DEFAULT_ENCODING.get(fmt, "utf-8"),
                   columns=columns, rows=rows, text_col=text, label_col=label, auto_split=auto_split(path),
                   delimiter=delimiter)


def preview_job(path: str | Path, *, task: str = "classification", n: int = 20,
                cancel: CancelToken | None = None) -> Iterator[Event]:
    """:func:`preview` as a job, so a window can read a large file off its own thread."""
    yield Finished(preview(path, n=n, task=task))


def import_file(
    project_path: str | Path,
    file: str | Path,
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    split: str = "auto",
    format: str | None = None,
    encoding: str | None = None,
    valid_fraction: float = 0.1,
    seed: int = 0,
    max_chars: int = 100_000,
    label_names: dict[str, str] | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Import ``file`` into the project as one transaction, streaming, yielding progress.

    ``text_col``/``label_col`` None: guessed from the column names; ``label_col=NO_LABEL_COLUMN``:
    the file has no labels (its rows go to unlabeled under ``split="auto"``)."""
    file = Path(file)
    cancel = cancel or CancelToken()
    if split != "auto" and split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose auto or one of {', '.join(SPLITS)}")
    if format is not None and format not in FORMATS:
        raise DataError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if not 0 <= valid_fraction < 1:
        raise DataError(f"--valid-fraction must be in [0, 1), not {valid_fraction}")
    check_file(file)
    fmt = format or sniff_format(file)
    if not encoding and fmt != "parquet":
        encoding = bom_encoding(file)  # a byte-order mark names its encoding; the log line says which
    positions = [0]
    delimiter = {"csv": sniff_delimiter(file, encoding) if fmt == "csv" else None, "tsv": "\t"}.get(fmt)
    columns, records = read_records(file, fmt, encoding, positions, delimiter=delimiter)
    with Project(project_path) as project:
        task = project.task
        text_key, label_key = resolve_columns(columns, file, task, text_col, label_col)
        if not text_col:  # a guess (even by a column's name) is checked on the first rows
            named = _pick(columns, TEXT_NAMES) is not None or "instruction" in {c.lower() for c in columns}
            records = check_guessed_text(text_key, columns, records, file, named=named)
        target = auto_split(file) if split == "auto" else split
        label_names = label_names or {}
        t0 = time.monotonic()
        size = file.stat().st_size
        clock = EtaClock(size)
        stats = {"rows": 0, "inserted": 0, "duplicates": 0, "skipped_empty": 0, "skipped_too_long": 0,
                 "references": 0}
        per_split = dict.fromkeys(SPLITS, 0)
        how = f", read as {delimiter_name(delimiter)}-separated" if delimiter is not None else ""
        how += f", encoding {encoding}" if encoding else ""
        # said once the first rows are in (or at the end), so a file refused early prints its one error line only
        announce = [Log(f"importing {file.name} as {fmt}{how} (text: {text_key}, "
                        f"{'reference' if task == 'generation' else 'label'}: {label_key or 'none'}) into {target}")]
        notes = ImportNotes()
        with project.transaction():
            first_new_id = project.max_example_id()
            had_valid = project.split_counts()["valid"] > 0
            label_ids = project.label_ids()
            labels_before = len(label_ids)
            file_labels: set[str] = set()
            chunk: list[tuple] = []
            last_emit = 0.0

            def flush() -> None:
                new = project.insert_examples(chunk)
                if new < len(chunk) and task == "classification":
                    notes.check_conflicts(project, chunk)
                stats["inserted"] += new
                stats["duplicates"] += len(chunk) - new
                if task == "generation":  # a repeated prompt with another completion: one more reference
                    stats["references"] += project.add_references(
                        [(split_, digest, ref) for _t, _l, ref, split_, _s, _n, digest in chunk if ref])
                chunk.clear()

            for line, record in records:
                stats["rows"] += 1
                text = join_columns(record, text_key)
                if not text.strip():
                    stats["skipped_empty"] += 1
                    continue
                if len(text) > max_chars:
                    stats["skipped_too_long"] += 1
                    notes.skipped_too_long(line)
                    continue
                raw_label = record.get(label_key, "").strip() if label_key else ""
                if raw_label[:1] in ("[", "{") and task == "classification" and not looks_like_text(raw_label):
                    raise DataError(f"the label '{raw_label[:40]}' is a list or an object; a classification project "
                                    "takes one label per row", file=str(file), line=line)
                label_id, reference, row_split = None, None, target
                if task == "generation":
                    reference = raw_label or None
                elif raw_label:
                    name = label_names.get(raw_label, raw_label)
                    file_labels.add(name)
                    if name not in label_ids:
                        label_ids = project.add_labels([name])
                    label_id = label_ids[name]
                elif split == "auto":
                    row_split = "unlabeled"
                per_split[row_split] += 1
                chunk.append((text, label_id, reference, row_split, file.name, line, text_hash(text)))
                if len(chunk) >= CHUNK:
                    flush()
                    cancel.check()
                    yield from announce
                    announce.clear()
                    now = time.monotonic()
                    if now - last_emit > 0.2:
                        last_emit = now
                        yield Progress("import", positions[0], size, clock.eta(positions[0]),
                                       {"rows": stats["rows"]})
            flush()
            if stats["rows"] == 0:
                raise DataError("the file has no data rows (only a header or blank lines)", file=str(file))
            if stats["skipped_empty"] + stats["skipped_too_long"] == stats["rows"]:
                raise DataError(
                    f"no usable rows: {stats['rows']} rows read, {stats['skipped_empty']} with an empty text "
                    f"(column '{text_key}'), {stats['skipped_too_long']} longer than --max-chars ({max_chars})",
                    file=str(file))
            if task == "classification" and len(file_labels) == 1 and (target == "train" or len(project.labels()) < 2):
                raise DataError(
                    f"the label column '{label_key}' has a single class ('{next(iter(file_labels))}'); a classifier "
                    "needs at least two", file=str(file),
                )
            if task == "classification":  # a label whose every row was a conflicting repeat: no class
                file_labels -= set(project.drop_unused_labels(labels_before))
            yield from announce
            warned = list(notes.warnings(project, file_labels, target, max_chars))
            yield from warned
            moved = 0
            if target == "train" and split == "auto" and not had_valid and valid_fraction > 0:
                moved = carve_valid(project, first_new_id, valid_fraction, seed)
            counts = project.split_counts()
            record_summary = {"file": file.name, "format": fmt, "split": target, **stats,
                              "valid_carved": moved}
            settings = project.settings()
            project.update_settings(imports=[*settings.get("imports", []), record_summary])
        yield Progress("import", size, size, 0.0, {"rows": stats["rows"]})
        result = ImportResult(file=str(file), format=fmt, text_col=text_key, label_col=label_key, **stats,
                              valid_carved=moved, splits=counts, n_labels=len(project.labels()),
                              seconds=round(time.monotonic() - t0, 3), delimiter=delimiter,
                              warnings=[w.message for w in warned])
    yield Finished(result)


#: lines shown in a warning before "…"
SHOWN_LINES = 3


def _lines(lines: list[int], total: int) -> str:
    return ", ".join(map(str, lines[:SHOWN_LINES])) + (", …" if total > SHOWN_LINES else "")


class ImportNotes:
    """What an import noticed that is worth a warning (each documented in the README, "Bad input files")."""

    def __init__(self) -> None:
        self.too_long: list[int] = []  # the first few lines
        self.n_too_long = 0
        self.conflicts = 0
        self.conflict_lines: list[str] = []

    def check_conflicts(self, project: Project, chunk: list[tuple]) -> None:
        """Rows dropped as duplicates whose label differs from the stored one's (the first is kept)."""
        stored = project.labels_by_hash({(split, digest) for _t, _l, _r, split, _s, _n, digest in chunk})
        for _text, label, _ref, split, _source, line, digest in chunk:
            key = (split, digest)
            if key in stored and stored[key] != label:
                self.conflicts += 1
                if len(self.conflict_lines) < SHOWN_LINES:
                    self.conflict_lines.append(str(line))

    def skipped_too_long(self, line: int) -> None:
        self.n_too_long += 1
        if len(self.too_long) < SHOWN_LINES:  # the first few lines, for the warning
            self.too_long.append(line)

    def warnings(self, project: Project, file_labels: set[str], target: str, max_chars: int) -> Iterator[Log]:
        if self.too_long:
            yield Log(f"{self.n_too_long} row(s) longer than --max-chars ({max_chars}) skipped (line "
                      f"{_lines(self.too_long, self.n_too_long)})", level="warning")
        if self.conflicts:
            yield Log(f"{self.conflicts} row(s) repeat a text with another label; the first label is kept (line "
                      f"{_lines(self.conflict_lines, self.conflicts)})", level="warning")
        groups: dict[str, list[str]] = {}
        for name in project.labels():
            groups.setdefault(" ".join(name.split()).casefold(), []).append(name)
        for names in groups.values():
            if len(names) > 1 and file_labels.intersection(names):
                merge = ",".join(f"{n}={names[0]}" for n in names[1:])
                yield Log(f"labels {', '.join(repr(n) for n in names)} differ only by case or spacing; they are kept "
                          f"apart (to merge them, import with --label-names '{merge}')", level="warning")
        if target in ("valid", "test"):
            in_train = project.label_counts("train")
            missing = sorted(n for n in file_labels if not in_train.get(n))
            if missing and sum(in_train.values()):
                yield Log(f"label(s) {', '.join(repr(n) for n in missing)} of this {target} file are not in the "
                          "train split; a student trained on it can never predict them", level="warning")


def carve_valid(project: Project, after_id: int, fraction: float, seed: int) -> int:
    """Move a stratified, seeded ``fraction`` of each label's new train rows to valid."""
    rng = random.Random(seed)
    chosen: list[int] = []
    for _label, ids in sorted(project.example_ids_by_label("train", after_id=after_id).items(),
                             key=lambda kv: (kv[0] is None, kv[0] or 0)):
        k = round(len(ids) * fraction)
        if k == 0 and len(ids) >= 2 and rng.random() < len(ids) * fraction:
            k = 1
        chosen += rng.sample(ids, k)
    return project.move_examples(sorted(chosen), "valid")
