"""The harvest talks to every teacher through the Teacher protocol alone: a local teacher and
Claude (against the loopback API) go through the same code path, the typed results keep the
``--json`` keys, and the task (not the teacher) decides what an answer must hold."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from fakes import anthropic_server
from fakes.anthropic_server import project_with_texts
from fakes.tiny_models import save_tiny_bert

from kdstudio.core.events import Finished, Progress, run_to_end
from kdstudio.core.harvest import HarvestConfig, HarvestEstimate, HarvestResult, harvest, job
from kdstudio.core.store import Project, TeacherOutput
from kdstudio.core.teachers import registry
from kdstudio.core.teachers.local import LocalTeacher

fake_anthropic = anthropic_server.fake_anthropic

README = Path(__file__).resolve().parents[2] / "README.md"
TEXTS = ["a positive review", "so negative", "neutral words"]
#: ``kdstudio harvest --json`` before the harvest returned a typed result: the contract.
RESULT_KEYS = ["teacher", "spec", "fingerprint", "n_ok", "n_failed", "input_tokens", "output_tokens",
               "cache_read_tokens", "cache_write_tokens", "cost_usd", "answered_total", "failed_total",
               "cost_usd_total", "seconds", "calibration", "n_cut_off", "max_tokens_hit", "n_unanswered"]
ESTIMATE_KEYS = ["dry_run", "teacher", "spec", "n", "input_tokens", "output_tokens", "cost_usd", "model", "batch",
                 "sampled", "counted_with", "prices_updated", "price_per_mtok", "requests", "seconds"]


class Spy:
    """Passes every attribute through to the teacher and notes the name."""

    def __init__(self, teacher, seen: list[str]) -> None:
        self._teacher, self._seen = teacher, seen

    def __getattr__(self, name):
        if not self._seen or self._seen[-1] != name:
            self._seen.append(name)
        return getattr(self._teacher, name)


@pytest.fixture
def spied(monkeypatch):
    """The protocol members the harvest used, per teacher spec, in order."""
    seen: dict[str, list[str]] = {}
    real = job.load_teacher

    def load(spec, context):
        return Spy(real(spec, context), seen.setdefault(spec, []))

    monkeypatch.setattr(job, "load_teacher", load)
    return seen


@pytest.fixture
def local_spec(tmp_path):
    folder = save_tiny_bert(tmp_path / "clf", n_labels=3)
    return f"hf:{folder}"


def local_config(spec: str, **kw) -> HarvestConfig:
    return HarvestConfig(teacher=spec, label_map={"LABEL_0": "positive", "LABEL_1": "negative", "LABEL_2": "neutral"},
                         **kw)


def test_a_local_teacher_and_claude_go_through_the_same_code_path(tmp_path, fake_anthropic, local_spec, spied):
    path = tmp_path / "p.kdproj"
    project_with_texts(path, TEXTS).close()
    claude = HarvestConfig(teacher="claude:claude-haiku-5-5", concurrency=1,
                           options={"api_key": "test-key", "base_url": fake_anthropic.url})
    events = {}
    for config in (local_config(local_spec), claude):
        events[config.teacher] = list(harvest(path, config))

    for spec, evs in events.items():
        result = evs[-1].result
        assert isinstance(evs[-1], Finished) and isinstance(result, HarvestResult)
        assert (result.spec, result.n_ok, result.n_failed, result.answered_total) == (spec, 3, 0, 3)
        assert [e.done for e in evs if isinstance(e, Progress) and e.stage == "harvest"][-1] == 3
    assert spied[local_spec] == spied[claude.teacher] == ["settings", "prepare", "answer", "metered", "close", "verbalized"]
    local_result, claude_result = (e[-1].result for e in events.values())
    assert local_result.cost_usd == 0 and claude_result.cost_usd > 0
    progress = [e for e in events[claude.teacher] if isinstance(e, Progress) and e.stage == "harvest"]
    assert "cost_usd" in progress[-1].info  # a metered teacher reports its spending as it goes


def test_the_dry_run_of_either_teacher_is_a_typed_estimate(tmp_path, fake_anthropic, local_spec, spied):
    path = tmp_path / "p.kdproj"
    project_with_texts(path, TEXTS).close()
    options = {"api_key": "test-key", "base_url": fake_anthropic.url}
    local = run_to_end(harvest(path, local_config(local_spec, dry_run=True)))
    claude = run_to_end(harvest(path, HarvestConfig(teacher="claude:claude-haiku-5-5", dry_run=True, options=options)))
    assert spied[local_spec] == spied["claude:claude-haiku-5-5"] == ["settings", "estimate"]
    for estimate in (local, claude):
        assert isinstance(estimate, HarvestEstimate) and estimate.dry_run and estimate.n == 3
    assert (local.cost_usd, local.input_tokens, local.requests, local.estimated_seconds) == (0, 0, None, None)
    assert claude.cost_usd > 0 and claude.requests == 3 and claude.counted_with == "count_tokens"
    assert fake_anthropic.message_requests() == []

    run_to_end(harvest(path, local_config(local_spec, limit=2)))
    again = run_to_end(harvest(path, local_config(local_spec, dry_run=True)))
    assert again.n == 1 and again.estimated_seconds is not None  # timed from the two answers stored


def test_harvest_result_json_keys_are_the_documented_ones(tmp_path, local_spec):
    assert [f.name for f in dataclasses.fields(HarvestResult)] == RESULT_KEYS
    row = next(line for line in README.read_text().splitlines() if line.startswith("| `--json` |")
               and "n_ok" in line)
    documented = re.findall(r"`(\w+)`", row.split("|")[2])
    assert documented and set(documented) <= set(RESULT_KEYS)
    assert [k for k in ESTIMATE_KEYS] == [f.name for f in dataclasses.fields(HarvestEstimate) if f.name in ESTIMATE_KEYS]

    path = tmp_path / "p.kdproj"
    project_with_texts(path, TEXTS).close()
    result = run_to_end(harvest(path, local_config(local_spec)))
    as_json = Finished(result).json()
    assert list(as_json) == RESULT_KEYS
    assert as_json == {k: getattr(result, k) for k in RESULT_KEYS} and as_json["n_ok"] == 3


class _WrongShapeTeacher(LocalTeacher):
    """A registered teacher whose second answer has one probability too few."""

    kind = "wrong"

    def __init__(self, model, context) -> None:
        self.model, self.spec, self.context = model, f"wrong:{model}", context

    def settings(self):
        return {}

    def prepare(self, project, teacher_id, *, cancel):
        yield from ()

    def answer(self, items, *, cancel):
        n = len(self.context.labels)
        yield [TeacherOutput(ex, probs=[1.0 / (n - (k == 1))] * (n - (k == 1))) for k, (ex, _) in enumerate(items)]

    def close(self):
        pass


def test_an_answer_without_the_tasks_kind_of_answer_is_stored_as_failed(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.TEACHERS, "wrong", lambda: _WrongShapeTeacher)
    path = tmp_path / "p.kdproj"
    project_with_texts(path, TEXTS).close()
    result = run_to_end(harvest(path, HarvestConfig(teacher="wrong:x")))
    assert (result.n_ok, result.n_failed) == (2, 1)
    with Project(path) as project:
        ((_, text, reason),) = project.failures(result.teacher)
    assert text == TEXTS[1] and "no distribution over the project's 3 labels" in reason
