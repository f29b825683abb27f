"""Data import: layouts, column mapping, splits, duplicates, and every kind of bad input."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kdstudio.core.data import import_file, preview, sniff_format
from kdstudio.core.errors import Cancelled, DataError
from kdstudio.core.events import CancelToken, Progress, run_to_end
from kdstudio.core.store import Project


def new_project(tmp_path: Path, task: str = "classification") -> Path:
    path = tmp_path / "p.kdproj"
    Project.create(path, task).close()
    return path


def snapshot(path: Path) -> str:
    """Everything in the project, as text, to check an import left it exactly as it was."""
    with Project(path) as project:
        dump = "\n".join(project.conn.iterdump())
    return hashlib.sha256(dump.encode()).hexdigest()


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    f = tmp_path / name
    f.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return f


def csv_rows(n: int, labels=("a", "b")) -> str:
    return "text,label\n" + "".join(f"example number {i},{labels[i % len(labels)]}\n" for i in range(n))


# -- layouts -----------------------------------------------------------------------------------
def test_csv_with_quoted_commas_and_auto_split_carves_stratified_valid(tmp_path):
    project = new_project(tmp_path)
    f = write(tmp_path, "train.csv", 'text,category\n"hello, world",greet\n' + "".join(
        f'"row {i}, with comma",{"x" if i % 2 else "y"}\n' for i in range(100)))
    result = run_to_end(import_file(project, f))
    assert result.inserted == 101
    assert result.splits["valid"] == 10 and result.splits["train"] == 91
    with Project(project) as p:
        assert set(p.labels()) == {"greet", "x", "y"}
        assert p.label_counts("valid")["x"] == 5 and p.label_counts("valid")["y"] == 5
        assert any(t == "hello, world" for _, t, _ in p.examples("train") + p.examples("valid"))


def test_validation_split_is_seeded(tmp_path):
    ids = []
    for attempt in range(2):
        d = tmp_path / str(attempt)
        d.mkdir()
        project = new_project(d)
        run_to_end(import_file(project, write(d, "train.csv", csv_rows(200)), seed=7))
        with Project(project) as p:
            ids.append([t for _, t, _ in p.examples("valid")])
    assert ids[0] == ids[1] and len(ids[0]) == 20


def test_tsv_jsonl_and_parquet(tmp_path):
    project = new_project(tmp_path)
    run_to_end(import_file(project, write(tmp_path, "a.tsv", "sentence\tlabel\nit is good\t1\nit is bad\t0\n"),
                           split="train", label_names={"0": "negative", "1": "positive"}))
    run_to_end(import_file(project, write(tmp_path, "b.jsonl", '{"text": "fine", "label": "positive"}\n\n'
                                                                 '{"text": "awful", "label": "negative"}\n'),
                           split="valid"))
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["great", "poor", None], "label": ["positive", "negative", "positive"]}),
                   tmp_path / "c.parquet")
    result = run_to_end(import_file(project, tmp_path / "c.parquet", split="test"))
    assert result.format == "parquet" and result.inserted == 2 and result.skipped_empty == 1
    with Project(project) as p:
        assert p.labels() == ["positive", "negative"]
        assert p.split_counts() == {"train": 2, "valid": 2, "test": 2, "unlabeled": 0}


def test_rows_without_label_go_to_unlabeled_and_empty_text_is_skipped_and_counted(tmp_path):
    project = new_project(tmp_path)
    f = write(tmp_path, "data.csv", "text,label\nfirst,a\nsecond,\n,b\n   ,b\nthird,b\nfourth,a\n")
    result = run_to_end(import_file(project, f, valid_fraction=0))
    assert result.skipped_empty == 2
    assert result.splits == {"train": 3, "valid": 0, "test": 0, "unlabeled": 1}


def test_exact_duplicates_within_a_split_are_dropped_and_counted(tmp_path):
    project = new_project(tmp_path)
    f = write(tmp_path, "data.csv", "text,label\nsame,a\nsame,a\nsame ,b\nother,b\n")
    result = run_to_end(import_file(project, f, valid_fraction=0))
    assert result.duplicates == 1 and result.inserted == 3
    again = run_to_end(import_file(project, f, valid_fraction=0))
    assert again.inserted == 0 and again.duplicates == 4


def test_generation_task_keeps_references(tmp_path):
    project = new_project(tmp_path, "generation")
    f = write(tmp_path, "gen.jsonl", '{"prompt": "2+2?", "completion": "4"}\n{"prompt": "capital of France?"}\n')
    run_to_end(import_file(project, f, split="train"))
    with Project(project) as p:
        assert p.references("train") == [(1, "2+2?", "4"), (2, "capital of France?", None)]
        assert p.labels() == []


def test_a_repeated_prompt_gathers_its_references_and_e2e_keeps_every_one(tmp_path, datasets):
    project = new_project(tmp_path, "generation")
    f = write(tmp_path, "gen.csv", "prompt,completion\nhi,hello\nhi,hey there\nhi,hello\nbye,\n")
    result = run_to_end(import_file(project, f, split="train"))
    assert (result.inserted, result.duplicates, result.references) == (2, 2, 2)
    with Project(project) as p:
        assert p.references_of(split="train") == {1: ["hello", "hey there"]}
        assert p.references("train")[0] == (1, "hi", "hello")
    e2e = datasets / "e2e_nlg" / "devset.csv"
    result = run_to_end(import_file(project, e2e, split="test"))
    with Project(project) as p:
        refs = p.references_of(split="test")
    assert result.inserted == len(refs) == 547  # one example per meaning representation
    with e2e.open(encoding="utf-8", newline="") as fh:
        pairs = {(row["mr"], row["ref"]) for row in csv.DictReader(fh)}
    assert sum(map(len, refs.values())) == result.references == len(pairs)  # a pair that repeats is kept once
    assert max(map(len, refs.values())) == 43


@pytest.mark.parametrize(
    ("rel", "fmt", "split", "expect"),
    [
        ("banking77/train.csv", "csv", "train", {"n_labels": 77, "total": 10003}),
        ("banking77/test.csv", "csv", "test", {"n_labels": 77, "total": 3080}),
        ("sst2/train.tsv", "tsv", "train", {"n_labels": 2}),
        ("sst2/stsa.binary.dev", "label-space", "valid", {"n_labels": 2, "total": 872}),
        ("sms_spam/SMSSpamCollection", "label-tab", "train", {"n_labels": 2}),
        ("trec/TREC.train", "trec", "train", {"n_labels": 6}),
        ("trec/TREC.test", "trec", "test", {"n_labels": 6, "total": 500}),
    ],
)
def test_shared_datasets_import_in_their_raw_layouts(tmp_path, datasets, rel, fmt, split, expect):
    f = datasets / rel
    assert sniff_format(f) == fmt
    project = new_project(tmp_path)
    result = run_to_end(import_file(project, f, split="auto" if split == "train" else split))
    assert result.n_labels == expect["n_labels"]
    total = result.inserted + result.duplicates
    if "total" in expect:
        assert result.inserted == expect["total"]
    assert total == result.rows - result.skipped_empty


def test_banking77_done_criterion_through_the_cli(tmp_path, datasets):
    project = tmp_path / "p.kdproj"
    run = lambda *a: subprocess.run([sys.executable, "-m", "kdstudio", *a], capture_output=True, text=True,  # noqa: E731
                                    cwd=tmp_path)
    assert run("new", str(project), "--task", "classification").returncode == 0
    assert run("import", str(project), str(datasets / "banking77/train.csv")).returncode == 0
    assert run("import", str(project), str(datasets / "banking77/test.csv"), "--split", "test").returncode == 0
    out = run("info", str(project), "--json")
    info = json.loads(out.stdout)
    assert info["n_labels"] == 77
    assert info["splits"]["train"] + info["splits"]["valid"] == 10003 and info["splits"]["valid"] > 900
    assert info["splits"]["test"] == 3080
    assert info["imports"][0]["duplicates"] == 0


def test_trec_fine_labels_and_sst2_label_names(tmp_path, datasets):
    project = new_project(tmp_path)
    result = run_to_end(import_file(project, datasets / "trec/TREC.test", split="test", label_col="fine"))
    assert result.n_labels > 30
    (tmp_path / "sst2").mkdir()
    project2 = new_project(tmp_path / "sst2")
    run_to_end(import_file(project2, datasets / "sst2/stsa.binary.dev", split="valid",
                           label_names={"0": "negative", "1": "positive"}))
    with Project(project2) as p:
        assert sorted(p.labels()) == ["negative", "positive"]


def test_preview_shows_first_rows_and_detected_columns(tmp_path):
    f = write(tmp_path, "d.csv", "id,utterance,intent\n1,hi there,greet\n2,bye now,leave\n")
    pv = preview(f, n=1)
    assert pv.columns == ["id", "utterance", "intent"]
    assert pv.rows == [["1", "hi there", "greet"]]
    assert (pv.text_col, pv.label_col) == ("utterance", "intent")
    assert pv.auto_split == "train" and pv.format == "csv"
    assert pv.delimiter == "," and pv.encoding == "utf-8"


def test_preview_says_the_delimiter_and_encoding_the_rows_were_read_with(tmp_path):
    semi = preview(write(tmp_path, "semi.csv", "text;label\nhello, world;a\nbye;b\n"))
    assert (semi.format, semi.delimiter, semi.columns) == ("csv", ";", ["text", "label"])
    assert semi.rows[0] == ["hello, world", "a"]
    tsv = preview(write(tmp_path, "d.tsv", "text\tlabel\nhi\ta\n"))
    assert (tsv.format, tsv.delimiter, tsv.columns) == ("tsv", "\t", ["text", "label"])
    wide = tmp_path / "wide.csv"
    wide.write_bytes("text;label\nhi;a\n".encode("utf-16"))  # a byte-order mark first
    read = preview(wide)
    assert (read.encoding, read.delimiter, read.rows) == ("utf-16", ";", [["hi", "a"]])
    assert preview(write(tmp_path, "d.jsonl", '{"text": "hi", "label": "a"}\n')).delimiter is None


# -- bad input: one clear line, nothing written ----------------------------------------------------
BAD_INPUTS = {
    "empty": ("empty.csv", b"", "the file is empty"),
    "binary": ("model.csv", bytes(range(256)) * 40, "binary file"),
    "latin1": ("latin.csv", "text,label\ncaf\u00e9 ok,a\n".encode("latin-1"), r"line 2: .*not valid text in UTF-8.*--encoding"),
    "ragged": ("ragged.csv", "text,label\nfine,a\nextra,a,oops\n", "line 3: expected 2 fields"),
    "single_class": ("one.csv", "text,label\nx,a\ny,a\nz,a\n", "single class"),
    "only_header": ("header.csv", "text,label\n", "no data rows"),
    "bad_json": ("bad.jsonl", '{"text": "ok", "label": "a"}\n{"text": oops}\n', "line 2: not valid JSON"),
    "json_array": ("arr.jsonl", '[{"text": "a"}]\n', "JSON Lines"),
    "utf16_no_bom": ("u16.csv", "text,label\nx,a\n".encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_leaves_the_project_as_it_was(tmp_path, case):
    project = new_project(tmp_path)
    run_to_end(import_file(project, write(tmp_path, "good.csv", csv_rows(20)), split="train"))
    before = snapshot(project)
    name, content, message = BAD_INPUTS[case]
    f = write(tmp_path, name, content)
    with pytest.raises(DataError, match=message) as err:
        run_to_end(import_file(project, f, split="train" if case != "single_class" else "auto"))
    assert name in str(err.value) and "\n" not in str(err.value)
    assert snapshot(project) == before


def test_single_class_is_refused_in_a_new_project(tmp_path):
    project = new_project(tmp_path)
    with pytest.raises(DataError, match="label column 'label' has a single class"):
        run_to_end(import_file(project, write(tmp_path, "one.csv", "text,label\nx,a\ny,a\n")))


def test_error_late_in_a_file_rolls_back_earlier_chunks(tmp_path):
    project = new_project(tmp_path)
    before = snapshot(project)
    f = write(tmp_path, "late.csv", csv_rows(12_000) + "broken,row,here\n")
    with pytest.raises(DataError, match="line 12002: expected 2 fields"):
        run_to_end(import_file(project, f))
    assert snapshot(project) == before


def test_misspelt_column_suggests_the_close_match(tmp_path):
    project = new_project(tmp_path)
    f = write(tmp_path, "d.csv", "text,category\nx,a\ny,b\n")
    with pytest.raises(DataError, match=r"no column 'categroy' for --label-col; did you mean 'category'\?"):
        run_to_end(import_file(project, f, label_col="categroy"))
    with pytest.raises(DataError, match=r"no column 'txt'.*did you mean 'text'"):
        run_to_end(import_file(project, f, text_col="txt"))


def test_one_megabyte_line_is_skipped_and_counted_not_a_crash(tmp_path):
    project = new_project(tmp_path)
    f = write(tmp_path, "big.csv", "text,label\n" + "x" * 1_000_000 + ",a\nshort,b\nother,a\n")
    result = run_to_end(import_file(project, f, valid_fraction=0))
    assert result.skipped_too_long == 1 and result.inserted == 2
    result = run_to_end(import_file(project, f, valid_fraction=0, max_chars=2_000_000))
    assert result.inserted == 1  # the long text itself, when allowed


def test_cancel_leaves_the_project_as_it_was(tmp_path):
    project = new_project(tmp_path)
    before = snapshot(project)
    token = CancelToken()
    events = import_file(project, write(tmp_path, "d.csv", csv_rows(30_000)), cancel=token)
    with pytest.raises(Cancelled):
        for event in events:
            if isinstance(event, Progress):
                token.cancel()
    assert snapshot(project) == before


@pytest.mark.slow
def test_million_row_file_imports_by_streaming(tmp_path):
    f = tmp_path / "big.csv"
    with f.open("w") as out:
        out.write("text,label\n")
        for i in range(1_000_000):
            out.write(f"message {i} about topic {i % 7},t{i % 7}\n")
    project = new_project(tmp_path)
    # A child process, so its peak resident memory is the import's alone.
    # VmHWM is the peak of this process image only (ru_maxrss would carry over the forking parent's).
    code = (
        "import json, resource, sys; from kdstudio.core.data import import_file; "
        "from kdstudio.core.events import run_to_end; r = run_to_end(import_file(sys.argv[1], sys.argv[2])); "
        "hwm = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')]; "
        "print(json.dumps([r.inserted, hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(project), str(f)], capture_output=True, text=True,
                         check=True)
    inserted, peak_kb = json.loads(out.stdout)
    assert inserted == 1_000_000
    # Holding the rows in memory would take several hundred MB; streaming stays near the interpreter's own size.
    assert peak_kb < 200 * 1024, f"peak memory {peak_kb / 1024:.0f} MB"
