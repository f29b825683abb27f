"""``kdstudio import-completions``: completions a teacher already wrote become the answers of the
teacher ``recorded:NAME`` (:mod:`kdstudio.core.teachers.recorded`), so nothing is paid twice.

The file: CSV, TSV, JSONL, a JSON array or Parquet with a prompt and a completion column
(auto-detected like an import's text and reference columns, or ``prompt_col``/``completion_col``),
or chat lines ``{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}`` (the seeds'
``distillation_train.jsonl``, OpenAI fine-tuning files): one user turn and the assistant turn
after it; a system turn is ignored (the project's instructions go with the teacher).

Decisions (documented in the README):
- a prompt is matched to the project's examples by its exact text (else its text without the
  whitespace around it), in every split it is in;
- a prompt that is not an example of the project is counted as ``unmatched``, or, with
  ``add_prompts=SPLIT``, added to that split as a new example (the completion is the teacher's
  answer, not a reference);
- rows with an empty prompt or completion are skipped and counted;
- a prompt that repeats with the same completion is counted once (``duplicates``); with another
  completion the first one is kept and the others counted (``conflicts``, the lines of the first
  few in a warning): a log of a sampled teacher asked twice is common and keeping the first is
  reproducible, while refusing the whole file would stop the common case for a few rows;
- an example the teacher already has an answer for gets the file's (``replaced`` counts the ones
  whose text changed), so importing the same file twice changes nothing;
- nothing usable, or no prompt that matches or is added, is an error; the import is one
  transaction, so an error leaves the project as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdstudio.core.data.importer import (
    JOIN,
    check_guessed_text,
    detect_columns,
    join_columns,
    require_column,
    text_hash,
)
from kdstudio.core.data.readers import FORMATS, check_file, read_records, sniff_format
from kdstudio.core.errors import DataError
from kdstudio.core.events import CancelToken, Event, Finished, JobResult, Log, Progress
from kdstudio.core.harvest.job import teacher_context
from kdstudio.core.store import SPLITS, Project, TeacherOutput
from kdstudio.core.teachers import fingerprint
from kdstudio.core.teachers.recorded import KIND, METHOD, RecordedTeacher, check_name

#: the column of chat lines: ``{"messages": [{"role": ..., "content": ...}, ...]}``
MESSAGES = "messages"
COMPLETION_NAMES = ("completion", "response", "output", "answer", "assistant", "reply", "reference", "ref",
                    "target", "summary")
SHOWN_CONFLICTS = 3


@dataclass(frozen=True)
class CompletionsImportResult(JobResult):
    """What ``kdstudio import-completions --json`` prints. Counts are of the file's rows, except
    ``recorded`` (answers written now, one per matching example: a prompt in two splits is two
    examples) and ``recorded_total`` (the teacher's answers in the project after the import)."""

    file: str
    format: str
    teacher: int  #: the teacher's id in the project
    spec: str  #: ``recorded:NAME``
    prompt_col: str
    completion_col: str
    rows: int  #: data rows read
    prompts: int  #: distinct prompts with a completion
    matched: int  #: prompts that are examples of the project
    added_prompts: int  #: prompts added as new examples (``add_split``)
    add_split: str | None
    unmatched: int  #: prompts neither matched nor added
    empty_prompts: int
    empty_completions: int
    unusable: int  #: chat lines without one user turn and an assistant turn after it
    duplicates: int  #: rows repeating a prompt with the same completion
    conflicts: int  #: rows repeating a prompt with another completion (the first was kept)
    recorded: int
    replaced: int  #: examples whose stored answer from this teacher changed
    recorded_total: int
    seconds: float


def _content(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content blocks
        return "".join(b.get("text", "") for b in value if isinstance(b, dict) and b.get("type", "text") == "text")
    return ""


def chat_pair(cell: str) -> tuple[str, str] | None:
    """(prompt, completion) of a chat line's ``messages``: one user turn and the assistant turn
    after it (a system turn is ignored); None for any other conversation."""
    try:
        messages = json.loads(cell)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(messages, list):
        return None
    turns = [(m.get("role"), _content(m.get("content"))) for m in messages
             if isinstance(m, dict) and m.get("role") != "system"]
    if len(turns) != 2 or turns[0][0] != "user" or turns[1][0] != "assistant":
        return None
    return turns[0][1], turns[1][1]


def _require(name: str, columns: list[str], file: Path, option: str) -> str:
    if name not in columns and JOIN in name:
        return JOIN.join(require_column(part.strip(), columns, file, option) for part in name.split(JOIN))
    return require_column(name, columns, file, option)


def _columns(columns: list[str], file: Path, prompt_col: str | None, completion_col: str | None
             ) -> tuple[str, str]:
    if MESSAGES in columns and not prompt_col and not completion_col:
        return MESSAGES, MESSAGES
    auto_prompt, auto_completion = detect_columns(columns, "generation")
    prompt = _require(prompt_col, columns, file, "--prompt-col") if prompt_col else auto_prompt
    if prompt is None:
        raise DataError(f"cannot tell which column holds the prompts; pass --prompt-col "
                        f"(columns: {', '.join(columns)})", file=str(file))
    parts = prompt.split(JOIN) if prompt not in columns else [prompt]
    if completion_col:
        completion: str | None = require_column(completion_col, columns, file, "--completion-col")
    else:
        lower = {c.lower(): c for c in columns if c not in parts}
        completion = next((lower[n] for n in COMPLETION_NAMES if n in lower), None) or auto_completion
    if completion is None or completion in parts:
        raise DataError(f"cannot tell which column holds the completions; pass --completion-col "
                        f"(columns: {', '.join(columns)})", file=str(file))
    return prompt, completion


def save_recorded(project: Project, name: str, answers: dict[int, str]) -> tuple[int, int]:
    """Store ``answers`` (example id → completion) as the answers of ``recorded:NAME``; return
    the teacher's id and how many stored answers changed. Call inside ``project.transaction()``."""
    spec = f"{KIND}:{name}"
    context = teacher_context(project, spec, {})
    settings = RecordedTeacher(name, context).settings()
    teacher_id = project.upsert_teacher(spec, KIND, name, fingerprint(spec, settings, context), settings)
    before = {ex: c for ex, c, status in project.conn.execute(
        "SELECT example, completion, status FROM teacher_outputs WHERE teacher = ?", (teacher_id,)) if status == "ok"}
    replaced = sum(1 for ex, c in answers.items() if ex in before and before[ex] != c)
    project.save_outputs(teacher_id, [TeacherOutput(ex, completion=c, method=METHOD)
                                      for ex, c in sorted(answers.items())])
    return teacher_id, replaced


def import_completions(
    project_path: str | Path,
    file: str | Path,
    *,
    teacher: str,
    prompt_col: str | None = None,
    completion_col: str | None = None,
    add_prompts: str | None = None,
    format: str | None = None,
    encoding: str | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Store the file's completions as the answers of ``recorded:NAME`` (``teacher`` is NAME or
    the spec), in one transaction; finishes with :class:`CompletionsImportResult`."""
    file = Path(file)
    cancel = cancel or CancelToken()
    name = check_name(teacher)
    spec = f"{KIND}:{name}"
    if add_prompts is not None and add_prompts not in SPLITS:
        raise DataError(f"--add-prompts takes a split: one of {', '.join(SPLITS)}, not {add_prompts!r}")
    if format is not None and format not in FORMATS:
        raise DataError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    check_file(file)
    fmt = format or sniff_format(file)
    t0 = time.monotonic()
    columns, records = read_records(file, fmt, encoding, [0])
    with Project(project_path) as project:
        if project.task != "generation":
            raise DataError(f"recorded completions are the answers of a generation project's teacher; "
                            f"{project_path} is a {project.task} project")
        prompt_key, completion_key = _columns(columns, file, prompt_col, completion_col)
        if prompt_key != MESSAGES and not prompt_col:  # a guessed prompt column must hold text
            records = check_guessed_text(prompt_key, columns, records, file, named=True)
        n = {"rows": 0, "empty_prompts": 0, "empty_completions": 0, "unusable": 0, "duplicates": 0, "conflicts": 0}
        pairs: dict[str, tuple[str, int]] = {}  # prompt → (first completion, line)
        conflict_lines: list[str] = []
        for line, record in records:
            n["rows"] += 1
            if prompt_key == MESSAGES:
                pair = chat_pair(record.get(MESSAGES, ""))
                if pair is None:
                    n["unusable"] += 1
                    continue
                prompt, completion = pair
            else:
                prompt, completion = join_columns(record, prompt_key), record.get(completion_key, "")
            if not prompt.strip():
                n["empty_prompts"] += 1
            elif not completion.strip():
                n["empty_completions"] += 1
            elif prompt in pairs:
                first, first_line = pairs[prompt]
                if first == completion:
                    n["duplicates"] += 1
                else:
                    n["conflicts"] += 1
                    if len(conflict_lines) < SHOWN_CONFLICTS:
                        conflict_lines.append(f"{line} (first at {first_line})")
            else:
                pairs[prompt] = (completion, line)
        if not pairs:
            raise DataError(f"no usable rows: {n['rows']} read, {n['empty_prompts']} with an empty prompt, "
                            f"{n['empty_completions']} with an empty completion"
                            + (f", {n['unusable']} chat lines without one user and one assistant turn"
                               if n["unusable"] else ""), file=str(file))
        yield Log(f"reading {file.name} as {fmt}: " + ("chat lines (messages)" if prompt_key == MESSAGES else
                  f"prompt column {prompt_key}, completion column {completion_key}"))
        if n["conflicts"]:
            yield Log(f"{n['conflicts']} row(s) repeat a prompt with another completion; the first completion is "
                      f"kept (lines {', '.join(conflict_lines)}{', …' if n['conflicts'] > SHOWN_CONFLICTS else ''})",
                      level="warning")
        cancel.check()
        with project.transaction():
            by_hash: dict[str, list[int]] = {}
            by_stripped: dict[str, list[int]] | None = None
            for ex_id, digest in project.conn.execute("SELECT id, hash FROM examples ORDER BY id"):
                by_hash.setdefault(digest, []).append(ex_id)
            answers: dict[int, str] = {}
            unmatched: list[tuple[str, str, int]] = []
            matched = 0
            for prompt, (completion, line) in pairs.items():
                ids = by_hash.get(text_hash(prompt))
                if not ids:
                    if by_stripped is None:
                        by_stripped = {}
                        for ex_id, text in project.conn.execute("SELECT id, text FROM examples ORDER BY id"):
                            by_stripped.setdefault(text_hash(text.strip()), []).append(ex_id)
                    ids = by_stripped.get(text_hash(prompt.strip()))
                if ids:
                    matched += 1
                    answers.update(dict.fromkeys(ids, completion))
                else:
                    unmatched.append((prompt, completion, line))
            added = 0
            if add_prompts and unmatched:
                added = project.insert_examples([(p, None, None, add_prompts, file.name, line, text_hash(p))
                                                 for p, _c, line in unmatched])
                hashes = {text_hash(p): c for p, c, _line in unmatched}
                for ex_id, digest in project.conn.execute(
                        "SELECT id, hash FROM examples WHERE split = ? AND source = ?", (add_prompts, file.name)):
                    if digest in hashes:
                        answers[ex_id] = hashes[digest]
            if not answers:
                raise DataError(f"none of the file's {len(pairs):,} prompts is an example of the project; import "
                                "the prompts first (kdstudio import) or pass --add-prompts SPLIT", file=str(file))
            teacher_id, replaced = save_recorded(project, name, answers)
            total = project.count_outputs(teacher_id)["n_ok"]
        yield Progress("import", n["rows"], n["rows"], 0.0, {"rows": n["rows"]})
        result = CompletionsImportResult(
            file=str(file), format=fmt, teacher=teacher_id, spec=spec, prompt_col=prompt_key,
            completion_col=completion_key, rows=n["rows"], prompts=len(pairs), matched=matched, added_prompts=added,
            add_split=add_prompts, unmatched=len(unmatched) - added, empty_prompts=n["empty_prompts"],
            empty_completions=n["empty_completions"], unusable=n["unusable"], duplicates=n["duplicates"],
            conflicts=n["conflicts"], recorded=len(answers), replaced=replaced, recorded_total=total,
            seconds=round(time.monotonic() - t0, 3))
    yield Finished(result)
