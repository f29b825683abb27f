"""Security checks of the whole app, each an injected secret, a crafted input or a scan of the code.

Injected: a distinctive Anthropic API key (in ``ANTHROPIC_API_KEY``, and separately in the keyring)
through a whole Claude run against the loopback fake API (harvest with a 401 that stops it and a
per-example error whose message echoes the key back, train, eval, ONNX export, comparison CSV and
JSON Lines), then every file under the project's folder, the output folders and ``KDSTUDIO_HOME`` (the
SQLite ``-wal``/``-shm`` files included, held open by a reader so they are not checkpointed away), the
command's output and the text of the main screens are searched for the key and its last 8 characters;
every BLOB in the project is scanned for pickle and ``torch.save`` magic. Scanned in the code: every
SQL statement (parameterised, or built only from code constants on an allow-list with a reason),
every ``torch.load`` (``weights_only=True``), every Hugging Face loader (``trust_remote_code`` passed
explicitly, off unless asked for, with a warning in the harvest log and on the CLI when on) and every
CSV writer (cells pass through :func:`kdstudio.core.csvsafe.formula_safe`). Crafted projects are in
``test_security_project.py``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from fakes.anthropic_server import FakeAnthropic, _error, _Reply
from fakes.tiny_models import LABELS, build_toy_project

from kdstudio import cli
from kdstudio.core import secrets
from kdstudio.core.csvsafe import FORMULA_PREFIXES, formula_safe
from kdstudio.core.errors import KDStudioError

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kdstudio"
KEY = "sk-ant-api03-KdStudioPlantedSecret-7Qx2Vw9Lm4Rt8Zp3Hn6Jc1Bf5Dg0Ks-Wy7uXe2AA"
TAIL = KEY[-8:]
MODEL = "claude-haiku-5-5"

# -- static scans of the code ---------------------------------------------------------------------------
SQL_CALLS = {"execute", "executemany", "executescript"}
#: ``",".join("?" * len(xs))``: a run of placeholders, safe whatever ``xs`` holds.
PLACEHOLDERS = re.compile(r"^(', '|','|', ')\.join\('\?' \* len\([\w.]+\)\)$")
#: (file, function) -> why the SQL text built there is safe: every piece spliced in is a code constant,
#: a run of ``?`` placeholders or a value the function checked against a fixed list.
SQL_ALLOWED = {
    ("core/store/runs.py", "update_run"): "column names, checked against RUN_KEYS first; values are parameters",
    ("core/store/runs.py", "predictions"): "column names from a constant tuple",
    ("core/store/schema.py", "migrate"): "this file's own migration scripts and their int number",
    ("core/store/viewer.py", "ensure_compare_rows"): "PRAGMA cache_size takes no parameter: an int()",
    ("core/store/viewer.py", "compare_page"): "_viewer_where (constant clauses, values as parameters; "
                                              "unknown filters refused) and a column from SORTS (checked)",
    ("core/store/viewer.py", "compare_count"): "_viewer_where: constant clauses, values as parameters",
}


def _python_files():
    return sorted(PACKAGE.rglob("*.py"))


def _pieces(node: ast.AST) -> list[ast.AST]:
    """The expressions a string is built from (f-string values, % and + operands, .format arguments,
    both arms of a conditional); a constant has none; anything else is one piece, itself."""
    if isinstance(node, ast.Constant):
        return []
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _pieces(node.left) + _pieces(node.right)
    if isinstance(node, ast.IfExp):
        return _pieces(node.body) + _pieces(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _pieces(node.func.value) + list(node.args) + [k.value for k in node.keywords]
    return [node]


def _built_parts(node: ast.AST, assigned: dict[str, list[ast.AST]] | None = None,
                 seen: frozenset[str] = frozenset()) -> list[str]:
    """The pieces of a SQL string that are neither constants nor runs of ``?`` placeholders, as source
    text; a local variable is followed to what it was assigned (and extended with) in the function."""
    assigned = assigned or {}
    out: list[str] = []
    for piece in _pieces(node):
        if isinstance(piece, ast.Name) and piece.id in assigned:
            if piece.id not in seen:
                for value in assigned[piece.id]:
                    out += _built_parts(value, assigned, seen | {piece.id})
        elif not PLACEHOLDERS.match(ast.unparse(piece)):
            out.append(ast.unparse(piece))
    return out


def string_built_sql() -> dict[tuple[str, str], list[str]]:
    """(file, function) -> the non-constant pieces of every SQL statement built from strings there."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            assigned: dict[str, list[ast.AST]] = {}
            for n in ast.walk(fn):
                if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and n.value is not None:
                    targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                    for t in targets:
                        names = t.elts if isinstance(t, ast.Tuple) else [t]
                        values = n.value.elts if isinstance(n.value, ast.Tuple) and len(n.value.elts) == len(
                            names) else [n.value] * len(names)
                        for name, value in zip(names, values, strict=True):
                            if isinstance(name, ast.Name):
                                assigned.setdefault(name.id, []).append(value)
            for n in ast.walk(fn):
                if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.args):
                    continue
                if n.func.attr not in SQL_CALLS and not (n.func.attr == "query" and "db" in ast.unparse(n.func)):
                    continue
                parts = _built_parts(n.args[0], assigned)
                if parts:
                    found.setdefault((str(path.relative_to(PACKAGE)), fn.name), []).extend(parts)
    return found


def test_every_sql_statement_is_parameterised_or_built_from_allowed_code_constants():
    found = string_built_sql()
    assert found, "the scan found no built SQL at all: it is broken"
    unknown = {site: parts for site, parts in found.items() if site not in SQL_ALLOWED}
    assert not unknown, f"SQL built from strings (use ? parameters, or allow-list with a reason): {unknown}"
    stale = set(SQL_ALLOWED) - set(found)
    assert not stale, f"allow-list entries that no longer build SQL (remove them): {stale}"


def test_the_sql_scan_catches_string_built_statements():
    code = ("def bad(conn, user):\n    conn.execute(f\"SELECT * FROM t WHERE a = '{user}'\")\n"
            "def bad2(conn, user):\n    sql = 'SELECT * FROM t WHERE a = ' + user\n    conn.execute(sql)\n"
            "def good(conn, user):\n    conn.execute('SELECT * FROM t WHERE a = ?', (user,))\n")
    tree = ast.parse(code)
    hits = []
    for fn in tree.body:
        calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "execute"]
        assigned = [n.value for n in ast.walk(fn) if isinstance(n, ast.Assign)]
        if any(_built_parts(c.args[0]) for c in calls) or any(_built_parts(v) for v in assigned):
            hits.append(fn.name)
    assert hits == ["bad", "bad2"]


def _calls(attr: str):
    for path in _python_files():
        for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == attr:
                yield path.relative_to(PACKAGE), n


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_every_torch_load_passes_weights_only_true():
    loads = [(p, n) for p, n in _calls("load") if ast.unparse(n.func) == "torch.load"]
    assert loads, "no torch.load found: the scan is broken"
    for path, call in loads:
        value = _keyword(call, "weights_only")
        assert isinstance(value, ast.Constant) and value.value is True, f"{path}:{call.lineno} torch.load without " \
                                                                         "weights_only=True"
    assert not [p for p, n in _calls("loads") if ast.unparse(n.func) in ("pickle.loads", "torch.loads")]
    assert "import pickle" not in "".join(p.read_text(encoding="utf-8") for p in _python_files())


def test_every_hugging_face_loader_passes_trust_remote_code_explicitly():
    """``from_pretrained`` (and ``pipeline``) pass ``trust_remote_code``: ``False``, or the teacher's own
    option (off by default) through ``load_pretrained``, never the library's default by omission."""
    seen = 0
    for path, call in [*_calls("from_pretrained")]:
        owner = ast.unparse(call.func.value)
        if owner.endswith("Embedding"):  # torch.nn.Embedding.from_pretrained: a tensor, not a model folder
            continue
        seen += 1
        value = _keyword(call, "trust_remote_code")
        assert value is not None, f"{path}:{call.lineno} {owner}.from_pretrained without trust_remote_code"
        assert (isinstance(value, ast.Constant) and value.value is False) or ast.unparse(value) == "trust_remote_code", \
            f"{path}:{call.lineno}: trust_remote_code={ast.unparse(value)}"
    assert seen >= 8
    for path in _python_files():
        for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "pipeline":
                value = _keyword(n, "trust_remote_code")
                assert isinstance(value, ast.Constant) and value.value is False, f"{path}:{n.lineno}"
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "load_pretrained":
                value = _keyword(n, "trust_remote_code")  # absent: the default, False
                assert value is None or ast.unparse(value) in ("False", "self.trust_remote_code"), f"{path}:{n.lineno}"


def test_trust_remote_code_is_off_unless_asked_for_and_on_is_warned_in_the_log_and_on_the_cli(tmp_path, capsys):
    from kdstudio.core.events import Log
    from kdstudio.core.harvest import HarvestConfig, harvest
    from kdstudio.core.harvest.job import TRUST_REMOTE_CODE_WARNING
    from kdstudio.core.teachers.base import TeacherContext
    from kdstudio.core.teachers.hf import HFClassifierTeacher
    from kdstudio.core.teachers.lm import CausalLMTeacher

    assert "trust_remote_code" not in HarvestConfig(teacher="hf:x").teacher_options()
    ctx = TeacherContext(task="classification", labels=LABELS, descriptions={}, instructions="", options={})
    assert HFClassifierTeacher("x", ctx).trust_remote_code is False
    assert CausalLMTeacher("x", ctx).trust_remote_code is False

    path = tmp_path / "p.kdproj"
    build_toy_project(path, sizes={"train": 3}, with_teacher=False)[0].close()
    missing = str(tmp_path / "no-such-model")
    events = []
    with pytest.raises(KDStudioError):  # the model folder does not exist; the warning comes first
        for event in harvest(path, HarvestConfig(teacher=f"hf:{missing}", trust_remote_code=True)):
            events.append(event)
    assert [e.message for e in events if isinstance(e, Log)][:1] == [TRUST_REMOTE_CODE_WARNING]
    assert [e.level for e in events if isinstance(e, Log)][:1] == ["warning"]
    assert not [e for e in harvest_logs(path, f"hf:{missing}") if e == TRUST_REMOTE_CODE_WARNING]

    assert cli.main(["harvest", str(path), "--teacher", f"hf:{missing}", "--trust-remote-code"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"warning: {TRUST_REMOTE_CODE_WARNING}" and "Traceback" not in err


def harvest_logs(path, spec):
    from kdstudio.core.events import Log
    from kdstudio.core.harvest import HarvestConfig, harvest

    out = []
    try:
        for event in harvest(path, HarvestConfig(teacher=spec)):
            if isinstance(event, Log):
                out.append(event.message)
    except KDStudioError:
        pass
    return out


# -- CSV exports -----------------------------------------------------------------------------------------
def test_formula_safe_escapes_every_formula_start_and_leaves_the_rest():
    for start in FORMULA_PREFIXES:
        assert formula_safe(start + "1+1") == "'" + start + "1+1"
    assert formula_safe('=HYPERLINK("http://x","click")') == '\'=HYPERLINK("http://x","click")'
    for same in ("a=b", "", "hello", "'=already", " =x", 1.5, -3, None, True):
        assert formula_safe(same) == same


def test_every_csv_writer_passes_its_cells_through_formula_safe():
    """A module that writes CSV for a person uses ``formula_safe``; the demo's intermediate files
    (copied from the bundled sample and imported again, never opened in a spreadsheet) are exempt."""
    exempt = {Path("core/demo.py"): "copies of the bundled sample for the importer, not an export"}
    writers = {p for p, n in _calls("writer") if ast.unparse(n.func) == "csv.writer"}
    writers |= {p for p, n in _calls("DictWriter")} | {p for p, n in _calls("to_csv")}
    assert len(writers) >= 4
    for path in writers - set(exempt):
        assert "formula_safe(" in (PACKAGE / path).read_text(encoding="utf-8"), f"{path} writes CSV unescaped"


# -- the planted key -------------------------------------------------------------------------------------
class EchoingAPI(FakeAnthropic):
    """The fake API, as a careless proxy in front of it would be: a request marked ``[[fault:echo]]``
    gets a 400 whose message quotes the request's ``x-api-key`` header, and a 401 quotes it too."""

    def answer(self, body, fault, **kw):
        if fault == "echo":
            return _Reply(400, _error("invalid_request_error", f"bad request; headers were x-api-key: {KEY}"))
        if fault == "401":
            return _Reply(401, _error("authentication_error", f"invalid x-api-key {KEY}"))
        return super().answer(body, fault, **kw)


def files_under(*roots: Path) -> list[Path]:
    return sorted({p for root in roots for p in root.rglob("*") if p.is_file()})


def leaks(data: bytes) -> list[str]:
    """Which forms of the key ``data`` holds (UTF-8 and UTF-16 of the key and of its last 8 characters)."""
    found = []
    for name, needle in (("key", KEY), ("last 8 characters", TAIL)):
        for enc in ("utf-8", "utf-16-le"):
            if needle.encode(enc) in data:
                found.append(f"{name} ({enc})")
    return found


def pickled_blobs(path: Path) -> list[str]:
    """Every BLOB cell of the project that starts like a pickle or a ``torch.save`` zip."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    bad = []
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cols = [r[0] for r in conn.execute("SELECT name FROM pragma_table_info(?)", (table,))]
            for col in cols:
                for (value,) in conn.execute(f'SELECT "{col}" FROM "{table}" WHERE typeof("{col}") = \'blob\''):
                    head = bytes(value[:4])
                    if (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) or head == b"PK\x03\x04":
                        bad.append(f"{table}.{col}")
    finally:
        conn.close()
    return bad


@pytest.mark.parametrize("source", ["environment", "keyring"])
def test_a_planted_key_appears_in_no_file_output_or_blob_of_a_whole_claude_run(
        source, tmp_path, monkeypatch, capsys, memory_keyring, _isolated_home):
    if source == "environment":
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    else:
        secrets.set_api_key(KEY)
    assert secrets.get_api_key() == KEY and secrets.key_source() == source
    work = tmp_path / "work"
    path = work / "secret.kdproj"
    work.mkdir()
    project, _ = build_toy_project(path, sizes={"train": 24, "valid": 9, "test": 9, "unlabeled": 0},
                                   with_teacher=False)
    with project.transaction():
        project.insert_examples([
            ("sports echo [[fault:echo]]", 0, None, "train", "t", 90, "h-echo"),
            ("weather stop [[fault:401*1]]", 1, None, "train", "t", 91, "h-401"),
            ('=HYPERLINK("http://evil.example","money") sports', 2, None, "test", "t", 92, "h-formula"),
        ])
    project.close()
    reader = sqlite3.connect(path)  # keeps the -wal and -shm files on disk until the end
    reader.execute("SELECT COUNT(*) FROM examples").fetchone()
    outputs: list[str] = []

    def kd(*argv: str) -> int:
        code = cli.main(list(argv))
        out = capsys.readouterr()
        outputs.extend([out.out, out.err])
        assert "Traceback" not in out.err
        return code

    with EchoingAPI(api_keys=(KEY,)) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        p = str(path)
        assert kd("harvest", p, "--teacher", f"claude:{MODEL}", "--concurrency", "1") == 2
        errors = [line for line in outputs[-1].splitlines() if line.startswith("kdstudio: error:")]
        assert len(errors) == 1 and "401" in errors[0]  # one line, and the harvest stops
        assert kd("harvest", p, "--teacher", f"claude:{MODEL}", "--json") == 0
        used = {(r.headers.get("x-api-key") or r.headers.get("authorization", "")).removeprefix("Bearer ")
                for r in server.message_requests()}
        assert used == {KEY}  # the planted key is the one that was sent
    assert kd("train", p, "--student", "cnn", "--epochs", "1", "--batch-size", "8", "--num-threads", "1",
              "--json") == 0
    run = json.loads(outputs[-2])["run"]
    assert kd("eval", p, "--run", str(run), "--no-onnx", "--json") == 0
    assert kd("export", p, "--run", str(run), "--format", "onnx", "--out", str(tmp_path / "onnx")) == 0
    assert kd("compare", p, "--run", str(run), "--split", "train,test", "--out", str(tmp_path / "cmp.csv")) == 0
    assert kd("compare", p, "--run", str(run), "--disagreements", "--out", str(tmp_path / "cmp.jsonl")) == 0
    assert kd("info", p, "--json") == 0
    assert kd("doctor", "--json") in (0, 1)

    stored_error = reader.execute("SELECT error FROM teacher_outputs WHERE status = 'failed'").fetchone()[0]
    assert "x-api-key: " + secrets.mask(KEY) in stored_error  # the echo was stored, masked
    wal = [f for f in files_under(work) if f.name.endswith(("-wal", "-shm"))]
    assert {f.name for f in wal} == {"secret.kdproj-wal", "secret.kdproj-shm"}
    walked = files_under(tmp_path, Path(os.environ["KDSTUDIO_HOME"]))
    assert len(walked) >= 10 and any(f.suffix == ".onnx" for f in walked)
    for f in walked:
        assert not leaks(f.read_bytes()), f"{f.relative_to(tmp_path)} holds the {leaks(f.read_bytes())}"
    for text in outputs:
        assert not leaks(text.encode()), text
    rows = list((tmp_path / "cmp.csv").read_text(encoding="utf-8").splitlines())
    assert any(r.startswith('"\'=HYPERLINK(') or ",'=HYPERLINK(" in r or '"\'=HYPERLINK(' in r for r in rows), rows[:3]
    assert not any(",=" in r or r.startswith("=") or ',"=' in r for r in rows)
    reader.close()
    assert pickled_blobs(path) == []
    conn = sqlite3.connect(path)
    blob_columns = {(t, c) for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                    for (c, kind) in conn.execute("SELECT name, type FROM pragma_table_info(?)", (t,)) if kind == "BLOB"}
    conn.close()
    assert blob_columns == {("teachers", "state")}  # the probe's safetensors (a new BLOB column: review it here)
    weights = [f for f in files_under(work) if f.suffix in (".bin", ".pt", ".pth", ".pkl", ".safetensors")]
    assert weights and all(f.suffix == ".safetensors" or f.name == "trainer_state.pt" for f in weights), weights


def test_the_embedding_probe_is_stored_as_safetensors_not_a_pickle():
    import torch

    from kdstudio.core.teachers.embed import fit_probe, probe_from_bytes, probe_to_bytes

    torch.manual_seed(0)
    xs = [torch.randn(8) for _ in range(12)]
    probe = fit_probe(xs[:8], [0, 1] * 4, 2, xs[8:], [0, 1, 0, 1], seed=0)
    blob = probe_to_bytes(probe)
    assert blob[:1] != b"\x80" and blob[:2] != b"PK"
    back = probe_from_bytes(blob)
    assert torch.equal(back["weight"], probe["weight"]) and back["valid_accuracy"] == pytest.approx(probe[
        "valid_accuracy"], nan_ok=True)
    assert probe_from_bytes(b"\x80\x04crafted") is None and probe_from_bytes(b"PK\x03\x04junk") is None


def test_secrets_redact_masks_the_key_in_use_and_any_given_one(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    assert KEY not in secrets.redact(f"echo {KEY} and {KEY}") and secrets.mask(KEY) in secrets.redact(KEY)
    assert secrets.redact("sk-other-12345678 x", "sk-other-12345678") == f"{secrets.mask('sk-other-12345678')} x"
    assert secrets.redact("nothing here") == "nothing here"


# -- the screens, with a key set ---------------------------------------------------------------------------
def visible_texts(root) -> list[str]:
    """What a person (or a screenshot) can read: label, field, button, box and tab texts, tooltips, titles."""
    from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel, QLineEdit, QPlainTextEdit, QTabBar, QTextEdit

    texts = [root.windowTitle()]
    for w in root.findChildren(QLabel):
        texts += [w.text(), w.toolTip()]
    for w in root.findChildren(QLineEdit):
        texts += [w.displayText(), w.placeholderText(), w.toolTip()]
    for w in root.findChildren(QTextEdit) + root.findChildren(QPlainTextEdit):
        texts.append(w.toPlainText())
    for w in root.findChildren(QAbstractButton):
        texts += [w.text(), w.toolTip()]
    for w in root.findChildren(QComboBox):
        texts += [w.itemText(i) for i in range(w.count())]
    for w in root.findChildren(QTabBar):
        texts += [w.tabText(i) for i in range(w.count())]
    return [t for t in texts if t]


def test_no_screen_shows_the_key_and_the_key_field_is_masked(tmp_path, qtbot, monkeypatch, memory_keyring):
    from PySide6.QtWidgets import QLineEdit

    from kdstudio.gui.claude_options import ClaudeOptions
    from kdstudio.gui.main_window import MainWindow

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    path = tmp_path / "p.kdproj"
    build_toy_project(path, sizes={"train": 12, "valid": 6, "test": 6})[0].close()
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(path)
    view = window.project_view
    view.harvest.spec.setText(f"claude:{MODEL}")
    texts = []
    for index in range(view.tabs.count()):
        view.tabs.setCurrentIndex(index)
        qtbot.wait(200)
        texts += visible_texts(window)
    options = ClaudeOptions()  # the teacher dialog's key field: a key from the environment, then one typed
    qtbot.addWidget(options)
    options.show()
    qtbot.wait(100)
    texts += visible_texts(options)
    assert secrets.mask(KEY) in " ".join(texts)  # the key is mentioned, masked
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    options.key_edit.setText(KEY)
    assert options.key_edit.echoMode() == QLineEdit.EchoMode.Password and KEY not in options.key_edit.displayText()
    texts += visible_texts(options)
    options.save_key.click()
    qtbot.waitUntil(lambda: secrets.get_api_key() == KEY, timeout=10_000)
    qtbot.wait(100)
    texts += visible_texts(options) + visible_texts(window)
    assert len(texts) > 50
    assert not [t for t in texts if leaks(t.encode())]
    view.close_project()
