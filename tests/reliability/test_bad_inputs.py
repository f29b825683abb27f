"""Bad input files: a corpus of broken, odd or hostile data files fed to ``kdstudio import``.

Injected (each file generated here, in ``tmp_path``): wrong and mixed encodings (UTF-16 with and
without a byte-order mark, UTF-8 with BOM, Latin-1 / cp1252, invalid UTF-8), delimiters and
quoting (semicolon, tab, pipe, quoted delimiters and newlines, an unbalanced quote, ragged rows),
sizes (empty, header only, a 5 MB line, a million rows), duplicates (rows, texts with conflicting
labels, header names), label oddities (one class, a label only in test, labels differing by case
or spacing, numeric labels, empty label cells, a list as a label), formula injection, NUL bytes,
paths that are not readable files (a folder, a symbolic link loop, a missing or unreadable file),
Parquet files with wrong types, broken JSON Lines, a JSON object, binary files named ``.csv``;
and a few of them fed to ``kdstudio import-completions``.

Each case is either an error (exit 2, one line on stderr, no traceback, the project file exactly as
it was) or a success whose every stored text, label and split is checked, with the documented
warning line (README, "Bad input files") when there is one, and no other warning.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import json
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kdstudio.cli import main
from kdstudio.core.store import Project

Rows = list[tuple[str, str | None, str]]  # (text, label, split) of the rows stored from the file


@dataclass
class Case:
    make: Callable[[Path], Path]  # writes the bad input under the folder given, returns its path
    error: str | None = None  # regex the one error line must match
    rows: Rows | None = None  # on success: exactly the rows stored, in file order
    warning: str | None = None  # on success: regex of the one warning line expected
    args: list[str] = field(default_factory=list)
    needs: str | None = None  # a module the case needs (skipped cleanly without it)


def file(name: str, content: str | bytes, encoding: str = "utf-8") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
        return path
    return make


def csv_text(rows: list[tuple[str, str]], delimiter: str = ",", header: str = "text,label") -> str:
    out = [header.replace(",", delimiter)]
    for text, label in rows:
        out.append(f"{text}{delimiter}{label}")
    return "\r\n".join(out) + "\r\n"


AB = [("hello there", "a"), ("goodbye now", "b")]
AB_ROWS: Rows = [("hello there", "a", "train"), ("goodbye now", "b", "train")]
ACCENTED = [("café crème", "a"), ("naïve façade", "b")]
ACCENTED_ROWS: Rows = [("café crème", "a", "train"), ("naïve façade", "b", "train")]


# -- makers that need more than a string -----------------------------------------------------------
def utf16(name: str, text: str, codec: str, bom: bytes = b"") -> Callable[[Path], Path]:
    return file(name, bom + text.encode(codec))


def mixed_encodings(folder: Path) -> Path:
    path = folder / "mixed.csv"
    path.write_bytes("text,label\ncafé ok,a\n".encode() + "déjà vu,b\n".encode("cp1252"))
    return path


def huge_line(folder: Path) -> Path:
    path = folder / "huge.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("text,label\nhello there,a\n")
        f.write("word " * 1_000_000 + ",a\n")  # one 5 MB line
        f.write("goodbye now,b\n")
    return path


def huge_line_allowed(folder: Path) -> Path:
    path = folder / "big.jsonl"
    with path.open("w", encoding="utf-8") as f:
        f.write(json.dumps({"text": "x" * 5_000_000, "label": "a"}) + "\n")
        f.write(json.dumps({"text": "short", "label": "b"}) + "\n")
    return path


def folder_instead(folder: Path) -> Path:
    (folder / "data.csv").mkdir()
    return folder / "data.csv"


def link_loop(folder: Path) -> Path:
    (folder / "a.csv").symlink_to(folder / "b.csv")
    (folder / "b.csv").symlink_to(folder / "a.csv")
    return folder / "a.csv"


def dangling_link(folder: Path) -> Path:
    (folder / "gone.csv").symlink_to(folder / "nowhere.csv")
    return folder / "gone.csv"


def xlsx_named_csv(folder: Path) -> Path:
    path = folder / "sheet.csv"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return path


def gzip_named_csv(folder: Path) -> Path:
    path = folder / "data.csv"
    path.write_bytes(gzip.compress(csv_text(AB).encode()))
    return path


def parquet(name: str, columns: dict) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table(columns), folder / name)
        return folder / name
    return make


def late_nul(folder: Path) -> Path:
    path = folder / "late.csv"
    body = "".join(f"row number {i},{'ab'[i % 2]}\n" for i in range(1000))  # past the 8 KB looked at first
    path.write_bytes(b"text,label\n" + body.encode() + b"bad\x00row,a\n")
    return path


FORMULAS = ["=cmd|' /C calc'!A0", "+1+1 plus", "-2+3 minus", "@SUM(A1) at", "=HYPERLINK(\"http://x\")"]

CASES: dict[str, Case] = {
    # -- encodings --------------------------------------------------------------------------------
    # a byte-order mark names its encoding: read without --encoding (Excel's "Unicode text" export)
    "utf16le_bom": Case(utf16("u16le.csv", csv_text(ACCENTED), "utf-16-le", codecs.BOM_UTF16_LE),
                        rows=ACCENTED_ROWS),
    "utf16be_bom_tabs": Case(utf16("u16be.csv", csv_text(ACCENTED, "\t"), "utf-16-be", codecs.BOM_UTF16_BE),
                             rows=ACCENTED_ROWS),
    "utf32le_bom": Case(utf16("u32.csv", csv_text(ACCENTED, ";"), "utf-32-le", codecs.BOM_UTF32_LE),
                        rows=ACCENTED_ROWS),
    "utf16le_bom_as_told": Case(utf16("u16le.csv", csv_text(ACCENTED, "\t"), "utf-16-le", codecs.BOM_UTF16_LE),
                                rows=ACCENTED_ROWS, args=["--encoding", "utf-16"]),
    "utf16be_bom_as_told": Case(utf16("u16be.tsv", csv_text(ACCENTED, "\t"), "utf-16-be", codecs.BOM_UTF16_BE),
                                rows=ACCENTED_ROWS, args=["--encoding", "utf-16"]),
    "utf16le_no_bom": Case(utf16("nobom.csv", csv_text(ACCENTED), "utf-16-le"),
                           error=r"UTF-16 text without a byte-order mark; pass --encoding utf-16-le"),
    "utf16le_no_bom_as_told": Case(utf16("nobom.csv", csv_text(ACCENTED, ";"), "utf-16-le"), rows=ACCENTED_ROWS,
                                   args=["--encoding", "utf-16-le"]),
    "utf8_bom_csv": Case(file("bom.csv", codecs.BOM_UTF8 + csv_text(ACCENTED).encode()), rows=ACCENTED_ROWS),
    "utf8_bom_jsonl": Case(file("bom.jsonl", codecs.BOM_UTF8 + b'{"text": "caf\xc3\xa9 cr\xc3\xa8me", "label": "a"}\n'
                                b'{"text": "na\xc3\xafve fa\xc3\xa7ade", "label": "b"}\n'), rows=ACCENTED_ROWS),
    "latin1": Case(file("latin.csv", csv_text(ACCENTED), "latin-1"),
                   error=r"line 2: byte 0xe9 .*not valid text in UTF-8.*--encoding cp1252"),
    "cp1252_as_told": Case(file("win.csv", csv_text([("5 € “quoted”", "a"), ("déjà", "b")]), "cp1252"),
                           rows=[("5 € “quoted”", "a", "train"), ("déjà", "b", "train")],
                           args=["--encoding", "cp1252"]),
    "mixed_encodings": Case(mixed_encodings, error=r"line 3: byte 0xe9 .*not valid text in UTF-8"),
    "invalid_utf8": Case(file("bad.csv", b"text,label\nok fine,a\nbroken \xc3\x28 byte,b\n"),
                         error=r"line 3: byte 0xc3 .*not valid"),
    # -- delimiters and quoting --------------------------------------------------------------------
    "semicolon": Case(file("semi.csv", csv_text([("hello, there", "a"), ("goodbye now", "b")], ";")),
                      rows=[("hello, there", "a", "train"), ("goodbye now", "b", "train")]),
    "tab_in_csv": Case(file("tab.csv", csv_text(AB, "\t")), rows=AB_ROWS),
    "pipe": Case(file("pipe.csv", csv_text(AB, "|")), rows=AB_ROWS),
    "quoted_delimiters_and_newlines": Case(
        file("quoted.csv", 'text,label\r\n"one, two; three",a\r\n"line one\nline two",b\r\n"say ""hi"", ok",a\r\n'
                           '"crlf\r\ninside",b\r\n'),
        rows=[("one, two; three", "a", "train"), ("line one\nline two", "b", "train"), ('say "hi", ok', "a", "train"),
              ("crlf\r\ninside", "b", "train")]),
    "stray_quote_in_unquoted_field": Case(file("stray.csv", 'text,label\nhe said "hi" there,a\nbye,b\n'),
                                          rows=[('he said "hi" there', "a", "train"), ("bye", "b", "train")]),
    "unbalanced_quote": Case(file("open.csv", 'text,label\nfine,a\n"never closed,b\nmore,a\nend,b\n'),
                             error=r"line 3: a quote opened here is never closed"),
    "unbalanced_quote_one_column": Case(file("open1.csv", 'text\nfine\n"never closed\nmore\n'),
                                        args=["--label-col", ""], error=r"line 3: a quote opened here is never closed"),
    "ragged_long_row": Case(file("ragged.csv", "text,label\nfine,a\nextra,a,oops\n"),
                            error=r"line 3: expected 2 fields \(text, label\) but found 3"),
    "ragged_short_row": Case(file("short.csv", "text,label\nfine,a\nno label here\nok,b\n"),
                             error=r"line 3: expected 2 fields"),
    "cr_only_line_ends": Case(file("mac.csv", "text,label\rhello,a\rbye,b\r"), error=r"line 1: the lines end with a bare carriage return"),
    # -- sizes ---------------------------------------------------------------------------------------
    "empty": Case(file("empty.csv", b""), error=r"the file is empty"),
    "blank_lines_only": Case(file("blank.csv", "\n \n\t\n"), error=r"no rows \(only blank lines\)"),
    "header_only": Case(file("head.csv", "text,label\r\n"), error=r"no data rows"),
    "one_5mb_line_skipped": Case(huge_line, rows=AB_ROWS,
                                 warning=r"1 row\(s\) longer than --max-chars \(100000\) skipped \(line 3\)"),
    "one_5mb_line_allowed": Case(huge_line_allowed, rows=[("x" * 5_000_000, "a", "train"), ("short", "b", "train")],
                                 args=["--max-chars", "6000000"]),
    # -- duplicates ------------------------------------------------------------------------------------
    "duplicate_rows": Case(file("dups.csv", csv_text([*AB, *AB, AB[0]])), rows=AB_ROWS),
    "conflicting_labels": Case(file("conf.csv", csv_text([*AB, ("hello there", "b"), ("goodbye now", "b")])),
                               rows=AB_ROWS, warning=r"1 row\(s\) repeat a text with another label; the first label "
                                                     r"is kept \(line 4\)"),
    "conflicting_new_label": Case(file("conf2.csv", csv_text([*AB, ("hello there", "z")])), rows=AB_ROWS,
                                  warning=r"1 row\(s\) repeat a text with another label.*\(line 4\)"),
    "duplicate_header": Case(file("duph.csv", "text,text,label\na,b,c\n"), error=r"distinct, non-empty column names"),
    "empty_header_name": Case(file("emptyh.csv", "text,,label\na,b,c\n"), error=r"distinct, non-empty column names"),
    # -- labels ---------------------------------------------------------------------------------------
    "one_class": Case(file("one.csv", csv_text([("x y", "a"), ("z w", "a")])), args=["--split", "train"],
                      error=r"single class \('a'\)"),
    "label_only_in_test": Case(file("test.csv", csv_text([("t one", "a"), ("t two", "c")])),
                               rows=[("t one", "a", "test"), ("t two", "c", "test")],
                               warning=r"label\(s\) 'c' of this test file are not in the train split"),
    "labels_differ_by_case": Case(file("case.csv", csv_text([("one", "a"), ("two", "A"), ("three", "b")])),
                                  rows=[("one", "a", "train"), ("two", "A", "train"), ("three", "b", "train")],
                                  warning=r"labels 'a', 'A' differ only by case or spacing.*--label-names 'A=a'"),
    "labels_differ_by_inner_space": Case(
        file("space.csv", csv_text([("one", "very good"), ("two", "very  good"), ("three", "b")])),
        rows=[("one", "very good", "train"), ("two", "very  good", "train"), ("three", "b", "train")],
        warning=r"labels 'very good', 'very  good' differ only by case or spacing"),
    "labels_with_outer_spaces": Case(file("outer.csv", csv_text([("one", " a"), ("two", "b "), ("three", " a ")])),
                                     rows=[("one", "a", "train"), ("two", "b", "train"), ("three", "a", "train")]),
    "numeric_labels": Case(file("num.csv", csv_text([("one", "0"), ("two", "1"), ("three", "10")])),
                           rows=[("one", "0", "train"), ("two", "1", "train"), ("three", "10", "train")]),
    "empty_label_cells": Case(file("some.csv", csv_text([*AB, ("no label", ""), ("also none", " ")])),
                              rows=[*AB_ROWS, ("no label", None, "unlabeled"), ("also none", None, "unlabeled")]),
    "list_label": Case(file("multi.jsonl", '{"text": "hi", "label": "a"}\n{"text": "yo", "label": ["a", "b"]}\n'),
                       error=r"line 2: the label '\[\"a\", \"b\"\]' is a list or an object"),
    # -- formula injection: stored verbatim ---------------------------------------------------------------
    "formula_texts": Case(file("formula.csv", "text,label\n" + "".join(
        f'"{t.replace(chr(34), chr(34) * 2)}",{"ab"[i % 2]}\n' for i, t in enumerate(FORMULAS))),
        rows=[(t, "ab"[i % 2], "train") for i, t in enumerate(FORMULAS)]),
    # -- NUL bytes and binary files named .csv ---------------------------------------------------------
    "nul_in_head": Case(file("nul.csv", b"text,label\nhi\x00there,a\n"), error=r"binary file"),
    "nul_late": Case(late_nul, error=r"line 1002: the line holds a NUL byte"),
    "xlsx_named_csv": Case(xlsx_named_csv, error=r"ZIP archive \(an Excel .xlsx workbook\?\)"),
    "gzip_named_csv": Case(gzip_named_csv, error=r"gzip-compressed"),
    "png_named_csv": Case(file("img.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))),
                          error=r"binary file"),
    # -- paths that are not readable files --------------------------------------------------------------
    "folder": Case(folder_instead, error=r"is a folder"),
    "symlink_loop": Case(link_loop, error=r"broken link or a link loop"),
    "dangling_symlink": Case(dangling_link, error=r"broken link or a link loop"),
    "missing": Case(lambda folder: folder / "nope.csv", error=r"no such file"),
    # -- JSON ---------------------------------------------------------------------------------------
    "jsonl_broken_middle": Case(file("broken.jsonl", '{"text": "a b", "label": "a"}\n{"text": "c d", "label": \n'
                                                     '{"text": "e f", "label": "b"}\n'),
                                error=r"line 2: not valid JSON"),
    "json_object_pretty": Case(file("obj.json", json.dumps({"data": [{"text": "a", "label": "b"}]}, indent=2)),
                               error=r"holds one JSON object \(keys: data\), not an array of objects"),
    "json_object_one_line": Case(file("obj1.json", json.dumps({"data": [{"text": "a", "label": "b"}]})),
                                 error=r"cannot tell which column holds the text"),
    "jsonl_numeric_text": Case(file("n.jsonl", '{"text": 1, "label": "a"}\n{"text": 2.5, "label": "b"}\n'),
                               error=r"'text' holds no text \(first values: 1, 2.5\)"),
    # -- Parquet with wrong types ---------------------------------------------------------------------
    "parquet_numeric_text": Case(parquet("n.parquet", {"text": [1, 2], "label": ["a", "b"]}), needs="pyarrow",
                                 error=r"'text' holds no text"),
    "parquet_list_text": Case(parquet("l.parquet", {"text": [["a", "b"], ["c"]], "label": ["a", "b"]}),
                              needs="pyarrow", error=r"'text' holds no text"),
    "parquet_list_label": Case(parquet("ll.parquet", {"text": ["hi", "yo"], "label": [["a"], ["a", "b"]]}),
                               needs="pyarrow", error=r"line 1: the label '\[\"a\"\]' is a list"),
    "parquet_good": Case(parquet("ok.parquet", {"text": ["hello there", "goodbye now"], "label": ["a", "b"]}),
                         needs="pyarrow", rows=AB_ROWS),
    "not_parquet_named_parquet": Case(file("fake.parquet", csv_text(AB)), error=r"Parquet"),
}


def state(project: Path) -> str:
    with Project(project) as p:
        return hashlib.sha256("\n".join(p.conn.iterdump()).encode()).hexdigest()


def stored(project: Path, source: str) -> Rows:
    with Project(project) as p:
        names = p.labels()
        rows = p.conn.execute("SELECT text, label, split FROM examples WHERE source = ? ORDER BY line, id", (source,))
        return [(t, names[label] if label is not None else None, split) for t, label, split in rows]


def base_project(folder: Path, task: str = "classification") -> Path:
    """A project with a train and a valid split (labels a, b) already, as a user's would be."""
    project = folder / "p.kdproj"
    Project.create(project, task).close()
    (folder / "base").mkdir()
    for split, n in (("train", 10), ("valid", 4)):
        f = folder / "base" / f"{split}-base.csv"
        f.write_text(csv_text([(f"{split} example {i}", "ab"[i % 2]) for i in range(n)]), encoding="utf-8")
        assert main(["import", str(project), str(f), "--split", split]) == 0
    return project


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_bad_input_is_one_clear_error_or_a_documented_warning(tmp_path, capsys, name):
    case = CASES[name]
    if case.needs:
        pytest.importorskip(case.needs)
    project = base_project(tmp_path)
    (tmp_path / "in").mkdir()
    path = case.make(tmp_path / "in")
    before = state(project)
    code, out, err = cli(capsys, "import", str(project), str(path), *case.args)
    assert "Traceback" not in out + err
    if case.error is not None:
        assert code == 2 and out == "", err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kdstudio: error: "), err
        assert re.search(case.error, lines[0]), lines[0]
        assert state(project) == before  # nothing half-written: no rows, no label, no import record
        return
    assert code == 0, err
    assert stored(project, path.name) == case.rows  # every text, label and split exactly as in the file
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    if case.warning is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and re.search(case.warning, warnings[0]), err
    with Project(project) as p:
        assert p.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert p.conn.execute("SELECT name FROM labels WHERE id NOT IN "  # no class without an example
                              "(SELECT label FROM examples WHERE label IS NOT NULL)").fetchall() == []
        assert p.settings()["imports"][-1]["file"] == path.name


def test_an_unreadable_file_is_one_clear_error(tmp_path, capsys, monkeypatch):
    project = base_project(tmp_path)
    path = tmp_path / "secret.csv"
    path.write_text(csv_text(AB), encoding="utf-8")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the open fail as it would for a user
        real_open = Path.open

        def open_(self, *args, **kw):
            if self.name == path.name:
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kw)
        monkeypatch.setattr(Path, "open", open_)
    before = state(project)
    code, out, err = cli(capsys, "import", str(project), str(path))
    assert code == 2 and out == "" and err.strip().splitlines() == [f"kdstudio: error: {path}: cannot open the file: no permission "
                                                      "to read it"]
    assert state(project) == before


def test_formula_texts_are_stored_verbatim_and_exported_formula_safe(tmp_path, capsys):
    from kdstudio.core.export import export_teacher_outputs
    from kdstudio.core.store import TeacherOutput

    project = base_project(tmp_path)
    make = CASES["formula_texts"].make
    (tmp_path / "in").mkdir()
    assert cli(capsys, "import", str(project), str(make(tmp_path / "in")))[0] == 0
    with Project(project) as p:
        ids = [i for i, t, _ in p.examples("train") if t in FORMULAS]
        with p.transaction():
            teacher = p.upsert_teacher("hf:x", "hf", "x", "fp", {})
            p.save_outputs(teacher, [TeacherOutput(i, label=0, probs=[0.9, 0.1], rationale="=1+1") for i in ids])
    out = tmp_path / "outputs.csv"
    assert export_teacher_outputs(project, teacher, out, "csv") == len(FORMULAS)
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["text"] for r in rows) == sorted("'" + t for t in FORMULAS)
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())


# -- import-completions (generation projects) ------------------------------------------------------------
COMPLETION_CASES: dict[str, tuple[Callable[[Path], Path], str | None]] = {
    "numeric_prompt_guess": (file("n.jsonl", '{"foo": 1, "completion": "x"}\n{"foo": 2, "completion": "y"}\n'),
                             r"cannot tell which column holds the text.*'foo' holds no text"),
    "no_usable_rows": (file("e.csv", "prompt,completion\n,x\n  ,y\n"), r"no usable rows: 2 read, 2 with an empty"),
    "utf16_bom_read_as_marked": (utf16("u.csv", 'prompt,completion\nwrite a poem,"roses, red"\n', "utf-16-le",
                                       codecs.BOM_UTF16_LE), None),
    "xlsx_named_csv": (xlsx_named_csv, r"ZIP archive"),
    "semicolon": (file("s.csv", "prompt;completion\nwrite a poem;roses, red\n"), None),
}


@pytest.mark.parametrize("name", sorted(COMPLETION_CASES))
def test_import_completions_refuses_bad_inputs_cleanly(tmp_path, capsys, name):
    project = tmp_path / "g.kdproj"
    Project.create(project, "generation").close()
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt\nwrite a poem\n", encoding="utf-8")
    assert main(["import", str(project), str(prompts), "--split", "train", "--label-col", ""]) == 0
    make, error = COMPLETION_CASES[name]
    path = make(tmp_path)
    before = state(project)
    code, out, err = cli(capsys, "import-completions", str(project), str(path), "--teacher", "log")
    assert "Traceback" not in out + err
    if error is None:
        assert code == 0, err
        with Project(project) as p:
            assert [c for _ex, c, _s in p.conn.execute(
                "SELECT example, completion, status FROM teacher_outputs")] == ["roses, red"]
        return
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and re.search(error, lines[0]), err
    assert state(project) == before



@pytest.mark.slow
def test_a_million_rows_of_repeats_stream_in_and_warn_once(tmp_path, capsys):
    """A million rows, semicolon-separated with CRLF line ends, that repeat three texts (one of them
    with a conflicting label every 1000th row): read streaming, each text stored once with its first
    label, the duplicates counted and the conflicts warned about in one line. (A million distinct
    rows, and the peak memory of importing them, are tests/core/test_import.py's slow test.)"""
    project = tmp_path / "m.kdproj"
    Project.create(project, "classification").close()
    path = tmp_path / "million.csv"
    n = 1_000_000
    block = "".join("hello there;a\r\n" if i % 2 else "goodbye now;b\r\n" for i in range(998))
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("text;label\r\n")
        for _ in range(n // 1000):
            f.write(block + "hello there;a\r\nhello there;c\r\n")
    code, out, err = cli(capsys, "import", str(project), str(path), "--split", "train", "--json")
    assert code == 0 and "Traceback" not in err, err
    result = json.loads(out)
    assert (result["rows"], result["inserted"], result["duplicates"], result["delimiter"]) == (n, 2, n - 2, ";")
    assert stored(project, path.name) == [("goodbye now", "b", "train"), ("hello there", "a", "train")]
    with Project(project) as p:
        assert p.labels() == ["b", "a"]  # no class 'c' left without a single example
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert warnings == ["warning: 1000 row(s) repeat a text with another label; the first label is kept "
                        "(line 1001, 2001, 3001, …)"]
