"""Architecture rules: core is GUI-free and imports heavy libraries lazily."""

from __future__ import annotations

import json
import subprocess
import sys


def test_every_core_module_imports_without_qt_or_pyqtgraph():
    code = (
        "import importlib, json, pkgutil, sys, kdstudio.core as core\n"
        "names = [m.name for m in pkgutil.walk_packages(core.__path__, 'kdstudio.core.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')"
        " or m.startswith('kdstudio.gui'))\n"
        "print(json.dumps({'modules': names, 'bad': bad}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "kdstudio.core.store" in result["modules"] and "kdstudio.core.data" in result["modules"]
    assert result["bad"] == []


def test_cli_and_store_start_without_torch_transformers_or_anthropic():
    code = (
        "import sys, json; import kdstudio.cli, kdstudio.core.store, kdstudio.core.data; "
        "kdstudio.cli.build_parser(); "
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'anthropic') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_import_linter_contracts_are_kept():
    """The contracts in pyproject.toml (core GUI-free, stages layered), checked by import-linter."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout
