"""Claude as a teacher on real label sets (77 and 150 intents, banking77's long customer messages)
against a loopback server that counts tokens as a tokenizer does and enforces ``max_tokens``:
answers that fit, a cut-off answer never paid for twice for the same reason, an honest dry run."""

from __future__ import annotations

import pytest
from fakes import anthropic_server
from fakes.anthropic_server import count_tokens, project_with_texts
from fakes.label_sets import banking77, banking77_texts, intents150

from kdstudio.core.errors import BudgetExceeded
from kdstudio.core.events import Log, run_to_end
from kdstudio.core.harvest import HarvestConfig, harvest
from kdstudio.core.store import Project
from kdstudio.core.teachers.base import TeacherContext
from kdstudio.core.teachers.claude import prompt as prompts
from kdstudio.core.teachers.claude.prompt import ClassificationPrompt, spread_rest

fake_anthropic = anthropic_server.fake_anthropic
UNSUPPORTED = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength",
               "maxItems", "pattern", "format"}
SETS = {"sst2": ["negative", "positive"], "trec": ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"],
        "banking77": banking77(), "intents150": intents150()}


def config(server, **kw) -> HarvestConfig:
    options = {"api_key": "test-key", "base_url": server.url, "max_retries": 0, "timeout_s": 10}
    return HarvestConfig(teacher="claude:claude-haiku-5-5", concurrency=4, options=options, **kw)


def walk(node, path="schema"):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


@pytest.mark.parametrize("name", list(SETS))
def test_the_schema_is_valid_for_json_outputs_and_max_tokens_fits_the_longest_answer(name):
    labels = SETS[name]
    prompt = ClassificationPrompt(TeacherContext("classification", labels), [])
    schema = prompt.schema()
    for path, node in walk(schema):
        assert not UNSUPPORTED & set(node if "type" in node else {}), path
        if node.get("type") == "object":
            assert node.get("additionalProperties") is False, path
        assert node.get("minItems", 0) in (0, 1), path
    assert prompt.full == (len(labels) <= prompts.FULL_UP_TO)
    enums = [node["enum"] for _, node in walk(schema) if "enum" in node]
    assert enums and all(e == labels for e in enums)  # label names only as enums
    longest = sorted(labels, key=len, reverse=True)[: prompt.top_k]
    worst = prompt._answer(longest, "0.0001", "x" * prompts.RATIONALE_CHARS)
    assert prompt.max_tokens(thinking=False) > count_tokens(worst)
    assert prompt.max_tokens(thinking=False) < 1000 or prompt.full  # a top-K answer needs no more


@pytest.mark.parametrize("labels", [banking77(), intents150()], ids=["77", "150"])
def test_long_label_sets_are_answered_in_full_within_80_output_tokens(tmp_path, fake_anthropic, labels):
    path = tmp_path / "p.kdproj"
    project_with_texts(path, banking77_texts(40), labels=tuple(labels)).close()
    result = run_to_end(harvest(path, config(fake_anthropic)))
    assert result.n_failed == 0 and result.n_ok == 40
    assert result.output_tokens / result.n_ok <= 80
    with Project(path) as project:
        rows = project.teacher_outputs(result.teacher)
    for row in rows:
        assert len(row["probs"]) == len(labels) and sum(row["probs"]) == pytest.approx(1.0, abs=1e-5)
        assert row["probs"][row["label"]] == max(row["probs"])


def test_an_answer_cut_off_is_retried_once_with_a_raised_limit(tmp_path, fake_anthropic):
    """The full 77-label distribution at max_tokens=512 is cut off every time (what happened to
    the first real user); the retry asks with twice the limit and says so, and is the last."""
    path = tmp_path / "p.kdproj"
    project_with_texts(path, banking77_texts(12), labels=tuple(banking77())).close()
    first = run_to_end(harvest(path, config(fake_anthropic, top_k=0, max_tokens=512)))
    assert first.n_failed == 12 and first.cost_usd > 0  # billed, and stored as failed with the reason
    with Project(path) as project:
        reasons = {reason for _, _, reason in project.failures(first.teacher)}
    assert reasons == {"answer cut off at max_tokens=512 (stop_reason max_tokens); retrying failed examples "
                       "raises the limit"}

    events = list(harvest(path, config(fake_anthropic, top_k=0, retry_failed=True)))
    logs = [e.message for e in events if isinstance(e, Log)]
    said = [m for m in logs if m.startswith("12 answer(s) were cut off at max_tokens=512; asking again with")]
    assert len(said) == 1
    raised = int(said[0].rpartition("=")[2])
    assert raised >= 1024  # twice the limit that cut them off, or the schema's own limit if higher
    second = events[-1].result
    assert second.teacher == first.teacher and second.n_ok == 12 and second.n_failed == 0
    asked = fake_anthropic.message_requests()
    assert len(asked) == 24 and [r.body["max_tokens"] for r in asked[12:]] == [raised] * 12


@pytest.mark.parametrize(("model", "n_labels", "cached"), [
    ("claude-haiku-5-5", 77, True), ("claude-sonnet-5-5", 77, True), ("claude-sonnet-5-5", 12, False)])
def test_the_dry_run_predicts_the_recorded_cost_within_15_percent(tmp_path, fake_anthropic, model, n_labels,
                                                                 cached):
    """The schema, the labels and the instructions are the cached prefix: 77 labels pass even
    Sonnet's 1,024-token minimum, 12 do not."""
    labels = banking77()[:n_labels]
    path = tmp_path / "p.kdproj"
    project = project_with_texts(path, banking77_texts(120), labels=tuple(labels))
    project.update_settings(instructions="Classify the intent of an online-banking customer message. " * 3)
    project.close()
    cfg = config(fake_anthropic)
    cfg.teacher = f"claude:{model}"
    estimate = run_to_end(harvest(path, HarvestConfig(**{**cfg.__dict__, "dry_run": True})))
    assert fake_anthropic.message_requests() == []
    result = run_to_end(harvest(path, cfg))
    assert result.n_ok == 120
    assert estimate.cost_usd == pytest.approx(result.cost_usd, rel=0.15)
    assert estimate.output_tokens == pytest.approx(result.output_tokens, rel=0.15)
    assert (result.cache_read_tokens > 0) == cached == (estimate.cache_read_tokens > 0)
    if not cached:
        assert any("no caching savings" in note and "minimum of 1,024" in note for note in estimate.notes)


def test_spreading_the_rest_of_the_mass_over_the_unnamed_labels():
    labels = ["a", "b", "c", "d", "e"]
    probs = spread_rest({"b": 0.6, "a": 0.3}, labels)
    assert probs == pytest.approx([0.3, 0.6, 0.1 / 3, 0.1 / 3, 0.1 / 3])
    over = spread_rest({"a": 0.9, "b": 0.3}, labels)  # named ones past 1: scaled down, the rest at the floor
    assert over[0] / over[1] == pytest.approx(3.0) and sum(over) == pytest.approx(1.0)
    assert max(over[2:]) < 1e-5


def test_a_budget_stop_says_what_was_spent_and_saved(tmp_path, fake_anthropic):
    path = tmp_path / "p.kdproj"
    project_with_texts(path, banking77_texts(60), labels=tuple(banking77())).close()
    with pytest.raises(BudgetExceeded) as err:
        run_to_end(harvest(path, config(fake_anthropic, budget_usd=0.0005)))
    with Project(path) as project:
        teacher = project.teachers()[0]["id"]
        counts = project.count_outputs(teacher)
    assert 0 < counts["n_ok"] < 60 and counts["cost_usd"] <= 0.0005
    spent = f"${counts['cost_usd']:.5f}".rstrip("0")
    assert str(err.value).startswith(f"budget reached: {spent[:6]}")
    assert f"of $0.0005 spent, {counts['n_ok']} answers saved this run" in str(err.value)


def test_a_dry_run_stores_nothing_and_names_the_teacher_once_it_exists(tmp_path, fake_anthropic):
    path = tmp_path / "p.kdproj"
    project_with_texts(path, banking77_texts(8), labels=tuple(banking77())).close()
    first = run_to_end(harvest(path, config(fake_anthropic, dry_run=True)))
    assert first.teacher is None and first.n == 8
    with Project(path) as project:
        assert project.teachers() == []  # the app prices every model a person looks at: no rows for them
    done = run_to_end(harvest(path, config(fake_anthropic, limit=3)))
    again = run_to_end(harvest(path, config(fake_anthropic, dry_run=True)))
    assert again.teacher == done.teacher and again.n == 5


def test_the_automatic_max_tokens_the_app_shows_is_the_one_the_teacher_sends(tmp_path, fake_anthropic):
    from kdstudio.core.teachers.claude import answer_shape

    labels = banking77()
    path = tmp_path / "p.kdproj"
    project_with_texts(path, banking77_texts(2), labels=tuple(labels)).close()
    for top_k in (None, 0, 3):
        shape = answer_shape("classification", labels, "claude-haiku-5-5", top_k=top_k)
        estimate = run_to_end(harvest(path, config(fake_anthropic, dry_run=True, top_k=top_k)))
        assert estimate.max_tokens == shape.max_tokens
        assert shape.top_k == {None: 5, 0: 77, 3: 3}[top_k] and shape.full == (top_k == 0)
    assert answer_shape("classification", labels, "claude-opus-5-5").max_tokens > answer_shape(
        "classification", labels, "claude-haiku-5-5").max_tokens  # room for thinking


def test_a_dry_run_without_a_key_counts_characters_and_says_so(tmp_path, fake_anthropic):
    path = tmp_path / "p.kdproj"
    project_with_texts(path, banking77_texts(6), labels=tuple(banking77())).close()
    options = {"base_url": fake_anthropic.url}
    estimate = run_to_end(harvest(path, HarvestConfig(teacher="claude:claude-haiku-5-5", dry_run=True,
                                                      options=options)))
    assert estimate.counted_with == "characters" and estimate.cost_usd > 0
    assert any(note.startswith("tokens guessed from the number of characters") and "no Anthropic API key" in note
               for note in estimate.notes)
    assert fake_anthropic.requests == []
