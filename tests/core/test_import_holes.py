"""Import holes: the CSV delimiter is sniffed and said, an unchecked guess of the text column is
refused, and a file with no usable rows is an error that leaves the project as it was."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kdstudio.core.data import import_file
from kdstudio.core.data.readers import sniff_delimiter
from kdstudio.core.errors import DataError
from kdstudio.core.events import Finished, Log, run_to_end
from kdstudio.core.store import Project


def new_project(tmp_path: Path) -> Path:
    path = tmp_path / "p.kdproj"
    Project.create(path, "classification").close()
    return path


def write(tmp_path: Path, name: str, content: str) -> Path:
    f = tmp_path / name
    f.write_text(content, encoding="utf-8", newline="")
    return f


def state(path: Path) -> tuple[str, int, list]:
    """A hash of every table, the number of examples and the import records."""
    with Project(path) as project:
        dump = "\n".join(project.conn.iterdump())
        n = project.conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0]
        imports = project.settings().get("imports", [])
    return hashlib.sha256(dump.encode()).hexdigest(), n, imports


def run(folder: Path, file: Path, **kw):
    """Import ``file`` into a new project in ``folder``; the result, the (text, label) rows and the log."""
    folder.mkdir(exist_ok=True)
    project = new_project(folder)
    events = list(import_file(project, file, split="train", **kw))
    result = next(e.result for e in events if isinstance(e, Finished))
    with Project(project) as p:
        rows = sorted((t, p.labels()[label] if label is not None else None) for _, t, label in p.examples("train"))
    return result, rows, [e.message for e in events if isinstance(e, Log)]


# -- 1. delimiter sniffing --------------------------------------------------------------------------
TRICKY = ['"hello, world; again"', '"semi; colon, comma"', "plain words", '"a ""quoted"" word; yes"']
EXPECT = ["hello, world; again", "semi; colon, comma", "plain words", 'a "quoted" word; yes']


@pytest.mark.parametrize("delimiter,name", [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_a_csv_is_read_with_its_delimiter_and_says_which(tmp_path, delimiter, name):
    body = "".join(f"{t}{delimiter}{'ab'[i % 2]}\r\n" for i, t in enumerate(TRICKY))
    f = write(tmp_path, "export.csv", f"text{delimiter}label\r\n{body}")
    assert sniff_delimiter(f) == delimiter
    result, rows, logs = run(tmp_path, f)
    assert result.delimiter == delimiter and json.loads(json.dumps(result.to_json()))["delimiter"] == delimiter
    assert result.text_col == "text" and result.label_col == "label" and result.inserted == 4
    assert rows == sorted(zip(EXPECT, "abab", strict=True))
    assert any(f"read as {name}-separated" in line for line in logs)


def test_a_comma_csv_whose_texts_hold_semicolons_stays_comma(tmp_path):
    f = write(tmp_path, "c.csv", "text,label\n" + "".join(
        f"word; other; {i} ; more,{'xy'[i % 2]}\n" for i in range(10)))
    result, rows, logs = run(tmp_path, f)
    assert result.delimiter == "," and any("read as comma-separated" in line for line in logs)
    assert rows[0] == ("word; other; 0 ; more", "x") and len(rows) == 10


def test_comma_wins_a_tie_and_tsv_and_explicit_format_keep_working(tmp_path):
    tie = write(tmp_path, "tie.csv", "text,label;x\nhi,a;b\nyo,b;c\n")  # 2 columns by comma and by semicolon
    assert sniff_delimiter(tie) == ","
    tsv = write(tmp_path, "s.tsv", 'sentence\tlabel\nit "quotes\t1\nfine one\t0\n')
    result, rows, _ = run(tmp_path / "t", tsv)
    assert result.delimiter == "\t" and result.format == "tsv" and ('it "quotes', "1") in rows
    semi = write(tmp_path, "data.txt", "text;label\nhello there;a\nbye now;b\n")
    result, rows, _ = run(tmp_path / "u", semi, format="csv")
    assert result.delimiter == ";" and rows == [("bye now", "b"), ("hello there", "a")]
    jl = write(tmp_path, "d.jsonl", '{"text": "hi", "label": "a"}\n{"text": "yo", "label": "b"}\n')
    result, _, _ = run(tmp_path / "v", jl)
    assert result.delimiter is None


# -- 2. a guess of the text column that cannot be checked ------------------------------------------
UNGUESSABLE = {
    "jsonl_numbers": ("foo.jsonl", "".join(f'{{"foo": {i}}}\n' for i in range(5)), "columns: foo"),
    "json_array_objects": ("foo.json", json.dumps([{"foo": {"a": 1}}, {"foo": [1, 2]}]), "columns: foo"),
    "csv_numbers_and_label": ("n.csv", "score,label\n1.5,a\n2,b\n3,a\n", "columns: score, label"),
    "csv_one_numeric_column": ("id.csv", "id\n1\n2\n3\n", "columns: id"),
}


@pytest.mark.parametrize("case", sorted(UNGUESSABLE))
def test_an_unchecked_text_guess_is_refused_naming_the_columns(tmp_path, case):
    project = new_project(tmp_path)
    before = state(project)
    name, content, columns = UNGUESSABLE[case]
    with pytest.raises(DataError, match=r"cannot tell which column holds the text.*--text-col") as err:
        run_to_end(import_file(project, write(tmp_path, name, content)))
    assert columns in str(err.value) and name in str(err.value) and "\n" not in str(err.value)
    assert state(project) == before


def test_a_guessed_column_that_holds_text_still_imports(tmp_path):
    one = write(tmp_path, "lines.csv", "words\nhello there\nhow are you\n")
    result, rows, _ = run(tmp_path / "i", one, label_col="")
    assert result.text_col == "words" and len(rows) == 2
    jl = write(tmp_path, "x.jsonl", '{"blurb": "good film", "label": "pos"}\n{"blurb": "bad film", "label": "neg"}\n')
    result, rows, _ = run(tmp_path / "j", jl)
    assert result.text_col == "blurb" and rows == [("bad film", "neg"), ("good film", "pos")]
    nums = write(tmp_path, "nums.jsonl", '{"foo": 1, "label": "a"}\n{"foo": 2, "label": "b"}\n')
    result, rows, _ = run(tmp_path / "k", nums, text_col="foo")  # asked for: imported as given
    assert rows == [("1", "a"), ("2", "b")]


# -- 3. no usable rows --------------------------------------------------------------------------------
NO_ROWS = {
    "all_empty": ("empty.csv", "text,label\n,a\n  ,b\n,a\n", {}, r"no usable rows: 3 rows read, 3 with an empty"),
    "all_too_long": ("long.csv", "text,label\n" + "".join(f"{'x' * 50} {i},a\n" for i in range(4)),
                     {"max_chars": 10}, r"no usable rows: 4 rows read, 0 with an empty text.*4 longer than "
                                        r"--max-chars \(10\)"),
    "mixed": ("mixed.jsonl", '{"text": "", "label": "a"}\n{"text": "far too long a text", "label": "b"}\n',
              {"max_chars": 5}, r"2 rows read, 1 with an empty text.*1 longer than --max-chars"),
    "header_only": ("head.csv", "text;label\n", {}, "no data rows"),
    "header_only_tsv": ("head.tsv", "sentence\tlabel\n\n", {}, "no data rows"),
}


@pytest.mark.parametrize("case", sorted(NO_ROWS))
def test_a_file_with_no_usable_rows_is_an_error_and_changes_nothing(tmp_path, case):
    project = new_project(tmp_path)
    run_to_end(import_file(project, write(tmp_path, "good.csv", "text,label\nfirst,a\nsecond,b\n"), split="train"))
    before = state(project)
    assert before[1] == 2 and len(before[2]) == 1
    name, content, kw, message = NO_ROWS[case]
    with pytest.raises(DataError, match=message) as err:
        run_to_end(import_file(project, write(tmp_path, name, content), **kw))
    assert name in str(err.value) and "\n" not in str(err.value)
    assert state(project) == before


# -- the command line: exit 2, one line, no traceback -----------------------------------------------
@pytest.mark.parametrize("content,args,message", [
    ('{"foo": 1}\n{"foo": 2}\n', [], "cannot tell which column holds the text"),
    ("text,label\n,a\n,b\n", [], "no usable rows: 2 rows read, 2 with an empty text"),
    ("text,label\nmuch too long,a\n", ["--max-chars", "3"], "1 longer than --max-chars (3)"),
])
def test_the_cli_exits_2_with_one_line(tmp_path, content, args, message):
    project = new_project(tmp_path)
    before = state(project)
    f = write(tmp_path, "bad.jsonl" if content.startswith("{") else "bad.csv", content)
    out = subprocess.run([sys.executable, "-m", "kdstudio", "import", str(project), str(f), *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    errors = [line for line in out.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in out.stderr
    assert out.stdout == ""
    assert state(project) == before
