"""The command-line contract: documented commands, --help, exit codes, --json on stdout only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kdstudio.cli import COMMANDS, build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def kd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kdstudio", *args], capture_output=True, text=True, cwd=cwd)


def test_every_cli_command_and_flag_is_documented_in_the_readme():
    readme = README.read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sub.choices) == set(COMMANDS)
    for name, command in sub.choices.items():
        assert re.search(rf"kdstudio {name}\b", readme), f"`kdstudio {name}` is not in the README"
        for action in command._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in readme, f"`kdstudio {name} {flag}` is not in the README"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    out = kd(command, "--help")
    assert out.returncode == 0 and "usage: kdstudio" in out.stdout


def test_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path):
    out = kd("info", str(tmp_path / "missing.kdproj"))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("kdstudio: error:")
    assert kd("new", str(tmp_path / "p.kdproj")).returncode == 0
    (tmp_path / "empty.csv").write_text("")
    out = kd("import", str(tmp_path / "p.kdproj"), str(tmp_path / "empty.csv"))
    assert out.returncode == 2 and "empty.csv: the file is empty" in out.stderr and "Traceback" not in out.stderr


def test_usage_error_exits_2():
    assert kd("new").returncode == 2
    assert kd("import", "--split", "nope", "a", "b").returncode == 2


def test_an_unknown_command_is_a_usage_error_without_a_window(tmp_path):
    """Neither a command nor a project file: one line, exit 2, and no QApplication (with a Qt
    platform that does not exist, starting one would abort the process with status 134)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "no-such-platform"}
    for argv in (["trian", "x.kdproj"], ["doctr"], [str(tmp_path / "missing.kdproj")]):
        out = subprocess.run([sys.executable, "-m", "kdstudio", *argv], capture_output=True, text=True, env=env)
        assert out.returncode == 2, (argv, out.stderr)
        assert out.stderr.count("\n") == 1 and "is neither a command nor a project file" in out.stderr
    out = subprocess.run([sys.executable, "-m", "kdstudio", "trian"], capture_output=True, text=True, env=env)
    assert "did you mean `kdstudio train`?" in out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a display server is a Linux matter")
def test_without_a_display_the_window_says_so_in_one_line():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run([sys.executable, "-m", "kdstudio"], capture_output=True, text=True, env=env)
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert out.stderr.startswith("kdstudio: cannot open the window: no display") and "xvfb-run" in out.stderr


def test_json_output_is_one_object_on_stdout(tmp_path):
    assert kd("new", str(tmp_path / "p.kdproj"), "--labels", "neg,pos").returncode == 0
    (tmp_path / "d.csv").write_text("text,label\ngood,pos\nbad,neg\n")
    out = kd("import", str(tmp_path / "p.kdproj"), str(tmp_path / "d.csv"), "--split", "train", "--json")
    assert json.loads(out.stdout)["inserted"] == 2
    info = json.loads(kd("info", str(tmp_path / "p.kdproj"), "--json").stdout)
    assert info["labels"] == ["neg", "pos"] and info["splits"]["train"] == 2
