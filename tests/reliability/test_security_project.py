"""A project file from an untrusted source, opened, shown and evaluated: nothing in it runs.

Injected: a trained and evaluated project whose settings/JSON columns (project settings, teacher
settings, teacher answers' probabilities and parts, run config and summary, predictions' probabilities
and scores, the evaluation report) hold, one variant per copy, JSON with ``__class__`` /
``!!python/object`` / ``py/object`` keys that name a command, numbers past a float, JSON nested
100 000 deep, text that is not JSON and JSON of the wrong type; whose text columns (project, label,
run and teacher names, texts, rationales, notes, metric names) hold HTML with ``<img onerror>`` and a
link, ANSI escapes and ``=HYPERLINK(...)``; and whose teacher state BLOB is a pickle that would run
a command. Each copy is opened with the core API and with ``kdstudio info``, ``eval`` and
``compare`` (exit 0, or 2 with one line; never a traceback or an internal error), and once in the
window, every tab shown, where no label that shows the project's text interprets it as rich text.
The commands the values name would create a file ``PWNED``: it must never appear.
"""

from __future__ import annotations

import json
import pickle
import shutil
import sqlite3
from pathlib import Path

import pytest
from fakes.tiny_models import build_toy_project

from kdstudio import cli
from kdstudio.core.errors import KDStudioError

PWN = "touch PWNED"
HTML = '<img src=x onerror="alert(1)"><a href="http://evil.example">click</a><b>bold</b>'
HOSTILE_TEXT = f'{HTML} \x1b[2J\x1b[31mred =HYPERLINK("http://evil.example","x") {{{{7*7}}}} __import__("os").system("{PWN}")'


class _Pwn:
    def __reduce__(self):
        import os

        return os.system, (PWN,)


JSON_VARIANTS = {
    "class-keys": json.dumps({"__class__": "os.system", "py/object": "os.system", "py/reduce": [PWN],
                              "!!python/object/apply:os.system": [PWN], "args": [PWN]}),
    "yaml-tag": f"!!python/object/apply:os.system [\"{PWN}\"]",
    "huge-numbers": '{"a": 1e999, "b": -1e999, "c": 123456789012345678901234567890123456789012345678901234567890}',
    "deep": "[" * 100_000 + "]" * 100_000,
    "not-json": "not json at all {",
    "wrong-type-string": json.dumps("just a string"),
    "wrong-type-list": json.dumps([1, "two", None, {"x": []}]),
    "null": "null",
}
JSON_COLUMNS = [("project", "settings"), ("teachers", "settings"), ("teacher_outputs", "probs"),
                ("teacher_outputs", "components"), ("runs", "config"), ("runs", "summary"),
                ("predictions", "probs"), ("predictions", "scores"), ("evaluations", "report")]
TEXT_COLUMNS = [("project", "name"), ("labels", "description"), ("examples", "text"), ("teachers", "spec"),
                ("teacher_outputs", "rationale"), ("teacher_outputs", "error"), ("runs", "name"),
                ("runs", "error"), ("metrics", "name"), ("reviews", "note")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A project with a fake teacher's answers, a cnn run trained for one epoch and its evaluation."""
    folder = tmp_path_factory.mktemp("trained")
    path = folder / "p.kdproj"
    build_toy_project(path, sizes={"train": 30, "valid": 9, "test": 12, "unlabeled": 0})[0].close()
    assert cli.main(["train", str(path), "--student", "cnn", "--epochs", "1", "--batch-size", "8",
                     "--num-threads", "1"]) == 0
    assert cli.main(["eval", str(path), "--run", "1", "--no-onnx"]) == 0
    conn = sqlite3.connect(path)
    with conn:
        example = conn.execute("SELECT id FROM examples WHERE split = 'test' LIMIT 1").fetchone()[0]
        conn.execute("INSERT INTO reviews (example, note, created) VALUES (?, 'a note', '2026-01-01')", (example,))
    conn.close()
    return folder


def hostile_copy(trained: Path, dest: Path, variant: str) -> Path:
    """A copy of the trained project's folder with ``variant`` written into every column it concerns."""
    shutil.copytree(trained, dest)
    path = dest / "p.kdproj"
    conn = sqlite3.connect(path)
    with conn:
        if variant == "text":
            for table, column in TEXT_COLUMNS:
                conn.execute(f"UPDATE {table} SET {column} = ?", (HOSTILE_TEXT,))
            names = [r[0] for r in conn.execute("SELECT id FROM labels ORDER BY id")]
            for i, label in enumerate(names):  # label names are unique
                conn.execute("UPDATE labels SET name = ? WHERE id = ?", (f"{HTML}\x1b[31m=1+{i}", label))
        elif variant == "pickle":
            conn.execute("UPDATE teachers SET state = ?", (pickle.dumps(_Pwn()),))
        else:
            for table, column in JSON_COLUMNS:
                conn.execute(f"UPDATE {table} SET {column} = ?", (JSON_VARIANTS[variant],))
    conn.close()
    return path


VARIANTS = ["text", "pickle", *JSON_VARIANTS]


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_crafted_project_is_opened_evaluated_and_compared_without_running_code_or_a_traceback(
        variant, trained, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = hostile_copy(trained, tmp_path / "copy", variant)
    from kdstudio.core.store import Project

    try:
        with Project(path) as project:  # the core API: opening and reading what the screens read
            project.summary() if hasattr(project, "summary") else None
            project.runs(), project.teachers(), project.labels()
    except KDStudioError:
        pass
    problems = []
    for argv in (["info", str(path), "--json"], ["eval", str(path), "--run", "1", "--no-onnx", "--json"],
                 ["compare", str(path), "--run", "1", "--split", "test", "--out", str(tmp_path / "c.csv")]):
        code = cli.main(argv)
        out = capsys.readouterr()
        errors = [line for line in out.err.splitlines() if line.startswith("kdstudio:")]
        if "Traceback" in out.err or "internal error" in out.err or (code != 0 and (
                len(errors) != 1 or not errors[0].startswith("kdstudio: error:"))):
            problems.append((argv[0], code, out.err.strip()[-400:]))
        if argv[0] == "eval" and variant in JSON_VARIANTS:  # unreadable probabilities: refused, not misread
            assert code == 2 and "damaged" in errors[0], errors
        if code == 0 and argv[0] == "compare":
            for row in (tmp_path / "c.csv").read_text(encoding="utf-8").splitlines()[1:]:
                assert not any(cell.startswith(("=", "+", "@")) for cell in row.split(",")), row
    assert not problems, problems
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "copy" / "PWNED").exists()


def _settle(qtbot, ms: int = 300) -> None:
    qtbot.wait(ms)


def shown_labels_with_markup(window) -> list[str]:
    """Every visible label that shows the project's hostile text and would render it as rich text."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import Qt as GuiQt  # Qt.mightBeRichText is a QtGui function
    from PySide6.QtWidgets import QLabel

    bad = []
    for label in window.findChildren(QLabel):
        text = label.text()
        if "onerror" not in text and "evil.example" not in text:
            continue
        rich = label.textFormat() == Qt.TextFormat.RichText or (
            label.textFormat() == Qt.TextFormat.AutoText and GuiQt.mightBeRichText(text))
        if rich and "&lt;img" not in text:
            chain, w = [], label
            while w is not None and len(chain) < 4:
                chain.append(f"{type(w).__name__}({w.objectName()})")
                w = w.parentWidget()
            bad.append(f"{' < '.join(chain)}: {text[:60]!r}")
    return bad


@pytest.mark.parametrize("variant", ["text", "wrong-type-list", "deep"])
def test_a_crafted_project_opens_in_the_window_and_every_tab_shows_it_as_plain_text(
        variant, trained, tmp_path, qtbot, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = hostile_copy(trained, tmp_path / "copy", variant)
    from kdstudio.gui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(path)
    view = window.project_view
    seen = []
    for index in range(view.tabs.count()):
        view.tabs.setCurrentIndex(index)
        _settle(qtbot)
        seen += shown_labels_with_markup(window)
    assert not seen, sorted(set(seen))
    if variant == "text":  # the hostile text did reach the screens, as text
        from PySide6.QtWidgets import QLabel

        assert any("onerror" in w.text() for w in window.findChildren(QLabel))
    view.close_project()
    assert not (tmp_path / "PWNED").exists()
