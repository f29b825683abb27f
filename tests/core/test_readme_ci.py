"""The README's two set-up commands are what CI runs, verbatim, each in its own fresh clone and venv."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    """The shell commands of the README's "Set up" section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S)]


def ci_commands() -> list[str]:
    """The commands `.ci/run` hands to its `readme_command` helper (fresh clone, fresh venv), in order."""
    commands = []
    for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines():
        if line.startswith("readme_command "):
            _, _name, command = shlex.split(line)
            commands.append(command)
    return commands


def test_ci_runs_both_readme_commands_verbatim_and_in_order():
    readme = readme_commands()
    assert len(readme) == 2, readme
    assert ci_commands() == readme


def test_the_first_readme_command_is_the_default_install_and_the_demo():
    first, second = readme_commands()
    steps = [step.strip() for step in first.split("&&")]
    assert "pip install -e ." in steps, "the try-it command must install with no extras"
    assert steps[-1].startswith("kdstudio demo")
    assert "pip install -e '.[dev]'" in second and second.endswith("python -m pytest")


def test_each_readme_command_gets_its_own_clone_and_virtual_environment():
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    helper = run.split("readme_command() {", 1)[1].split("\n}", 1)[0]
    assert "git clone" in helper and 'cd "$work/$name"' in helper
    assert all(command.startswith("python3 -m venv .venv") for command in ci_commands())
    names = [shlex.split(line)[1] for line in run.splitlines() if line.startswith("readme_command ")]
    assert len(set(names)) == len(names) == 2
