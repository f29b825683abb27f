"""The teacher registry: every spec kind names a class that keeps the Teacher protocol, the
classes are imported only when asked for, and a spec of no kind is the CLI's one-line error."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest

from kdstudio.core.errors import ConfigError
from kdstudio.core.teachers import Teacher, TeacherContext, load_teacher
from kdstudio.core.teachers.registry import batch_kinds, kinds, parse_spec, teacher_class


def test_every_kind_resolves_to_a_class_that_keeps_the_protocol():
    assert set(kinds()) == {"claude", "embed", "hf", "lm", "recorded"}
    context = TeacherContext(task="classification", labels=["yes", "no"])
    for kind in kinds():
        cls = teacher_class(kind)
        assert cls.kind == kind
        # builds only; nothing is loaded (a recorded teacher holds completions: a generation project's)
        teacher = load_teacher(f"{kind}:some-model", context if kind != "recorded" else TeacherContext("generation", []))
        assert isinstance(teacher, cls) and isinstance(teacher, Teacher)
        assert (teacher.spec, teacher.model) == (f"{kind}:some-model", "some-model")
        assert isinstance(teacher.batch_lane, bool) and isinstance(teacher.metered, bool)
    assert batch_kinds() == ["claude"]


@pytest.mark.parametrize("spec", ["gpt4", "gpt4:turbo", "claude:", ":model"])
def test_a_spec_of_no_registered_kind_is_one_clear_line(spec):
    with pytest.raises(ConfigError) as err:
        parse_spec(spec)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"teacher spec {spec!r} is not of the form KIND:MODEL with KIND one of hf, embed, claude, lm")
    with pytest.raises(ConfigError, match="unknown teacher kind 'gpt4'"):
        teacher_class("gpt4")


def test_the_cli_prints_the_registrys_error_for_an_unknown_kind(tmp_path):
    path = tmp_path / "p.kdproj"
    kd = [sys.executable, "-m", "kdstudio"]
    assert subprocess.run([*kd, "new", str(path), "--labels", "a,b"], capture_output=True).returncode == 0
    out = subprocess.run([*kd, "harvest", str(path), "--teacher", "gpt4:turbo"], capture_output=True, text=True)
    with pytest.raises(ConfigError) as err:
        parse_spec("gpt4:turbo")
    assert out.returncode == 2
    assert out.stderr == f"kdstudio: error: {err.value}\n"


def test_the_registry_and_every_teacher_class_import_without_torch_transformers_or_anthropic():
    code = (
        "import sys, json\n"
        "from kdstudio.core.teachers.registry import kinds, teacher_class\n"
        "classes = [teacher_class(k).__name__ for k in kinds()]\n"
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'anthropic') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_no_import_circle_among_the_teachers_and_the_harvest():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("kdstudio")
    modules = sorted(m for m in graph.modules if m.startswith(("kdstudio.core.teachers", "kdstudio.core.harvest")))
    circles = [(a, b) for a, b in itertools.combinations(modules, 2)
               if graph.chain_exists(importer=a, imported=b) and graph.chain_exists(importer=b, imported=a)]
    assert circles == []
    concrete = {m for m in modules if m.startswith("kdstudio.core.teachers.") and m.split(".")[3] in kinds()}
    assert concrete and not any(graph.chain_exists(importer="kdstudio.core.teachers.base", imported=m) for m in concrete)
