"""The Claude teacher writing completions, on the loopback fake: the fake replies with genuine
GPT-4 completions (gpteacher toolformer), counts their tokens from the text and cuts them at
``max_tokens`` as the API does; a cut-off completion is stored as failed with the reason and
still billed; the cache works only above the model's minimum prefix; batches cost half."""

from __future__ import annotations

import json

import pytest
from fakes.anthropic_server import FakeAnthropic, count_tokens, project_with_texts

from kdstudio.core.events import Log, run_to_end
from kdstudio.core.harvest import HarvestConfig, harvest
from kdstudio.core.store import Project
from kdstudio.core.teachers import pricing

MODEL = "claude-haiku-5-5"


@pytest.fixture(scope="module")
def pairs(datasets):
    rows = json.loads((datasets / "gpteacher_toolformer" / "toolformer-similarity-0.9-dataset.json").read_text())[:40]
    return {r["instruction"] + ("\n" + r["input"] if r["input"] else ""): r["response"] for r in rows}


@pytest.fixture
def server(pairs):
    with FakeAnthropic(completion=lambda text: pairs[text]) as fake:
        yield fake


def config(server: FakeAnthropic, **kwargs) -> HarvestConfig:
    options = {"api_key": "test-key", "base_url": server.url, "max_retries": 1, "timeout_s": 5, "poll_s": 0.01}
    return HarvestConfig(teacher=f"claude:{MODEL}", options=options, **kwargs)


def make_project(tmp_path, pairs, instructions: str = ""):
    path = tmp_path / "gen.kdproj"
    project_with_texts(path, list(pairs), task="generation").close()
    if instructions:
        with Project(path) as p:
            p.update_settings(instructions=instructions)
    return path


def test_completions_are_stored_as_written_and_cut_offs_fail_with_the_reason_and_their_cost(tmp_path, pairs, server):
    path = make_project(tmp_path, pairs)
    limit = 24
    long = {p for p, c in pairs.items() if count_tokens(c) > limit}
    assert 0 < len(long) < len(pairs)  # genuine completions: most fit in 24 tokens, some do not
    events = list(harvest(path, config(server, max_tokens=limit, concurrency=2)))
    result = events[-1].result
    assert (result.n_ok, result.n_failed, result.n_cut_off, result.max_tokens_hit) == (
        len(pairs) - len(long), len(long), len(long), limit)
    assert f"{len(long)} answer(s) were cut off at max_tokens={limit}" in result.summary()
    with Project(path) as p:
        rows = {r["text"]: r for r in p.teacher_outputs(result.teacher, status=None)}
        ledger = p.count_outputs(result.teacher)
    for prompt, row in rows.items():
        if prompt in long:
            assert row["status"] == "failed" and row["completion"] is None
            assert row["error"].startswith(f"completion cut off at max_tokens={limit} (stop_reason max_tokens)")
            assert "raise --max-tokens" in row["error"] and row["cost_usd"] > 0  # billed all the same
        else:
            assert row["status"] == "ok" and row["completion"] == pairs[prompt] and row["method"] == "completion"
    # output tokens counted from the text the API returned; the cut ones at the limit
    expected_out = sum(min(count_tokens(c), limit) if p in long else count_tokens(c) for p, c in pairs.items())
    assert result.output_tokens == ledger["output_tokens"] == expected_out
    price = pricing.price(MODEL)
    cost = price.cost({"input_tokens": result.input_tokens, "output_tokens": result.output_tokens})
    assert result.cost_usd == pytest.approx(cost, rel=1e-6) and ledger["cost_usd"] == pytest.approx(cost, rel=1e-6)
    # the default system prompt is far under the 512-token minimum: nothing is cached
    assert result.cache_write_tokens == result.cache_read_tokens == 0
    bodies = [r.body for r in server.message_requests()]
    assert all(b["max_tokens"] == limit and "output_config" not in b and "tools" not in b for b in bodies)

    retry = list(harvest(path, config(server, retry_failed=True)))
    again = retry[-1].result  # the default limit (1024) is far above twice 24: every one fits now
    assert (again.n_ok, again.n_failed, again.n_cut_off) == (len(long), 0, 0)
    with Project(path) as p:
        done = {r["text"]: r["completion"] for r in p.teacher_outputs(result.teacher)}
    assert done == pairs


def test_long_instructions_are_cached_and_batches_cost_half(tmp_path, pairs, server):
    instructions = ("You answer requests by calling the tools you have access to, inline, as tool('query'). "
                    * 40).strip()
    path = make_project(tmp_path, pairs, instructions)
    realtime = run_to_end(harvest(path, config(server, concurrency=1, limit=10)))
    system = server.message_requests()[0].body["system"][0]
    assert system["text"].startswith(instructions[:80]) and system["cache_control"] == {"type": "ephemeral"}
    assert count_tokens(system["text"]) >= 512
    assert realtime.n_ok == 10 and realtime.cache_write_tokens > 0 and realtime.cache_read_tokens == (
        9 * realtime.cache_write_tokens)  # one write, nine reads

    batch = run_to_end(harvest(path, config(server, batch_api=True)))
    assert batch.teacher == realtime.teacher and batch.n_ok == len(pairs) - 10
    with Project(path) as p:
        rows = {r["text"]: r for r in p.teacher_outputs(batch.teacher)}
    assert {t: r["completion"] for t, r in rows.items()} == pairs
    price = pricing.price(MODEL)
    usage = {"input_tokens": batch.input_tokens, "output_tokens": batch.output_tokens,
             "cache_creation_input_tokens": batch.cache_write_tokens,
             "cache_read_input_tokens": batch.cache_read_tokens}
    assert price.cost(usage, batch=True) == pytest.approx(price.cost(usage) / 2, rel=1e-9)
    assert batch.cost_usd == pytest.approx(price.cost(usage, batch=True), abs=1e-6)  # the result rounds to 1e-6


def test_the_dry_run_of_a_generation_harvest_counts_a_completions_worth_of_output(tmp_path, pairs, server):
    path = make_project(tmp_path, pairs)
    events = list(harvest(path, config(server, dry_run=True)))
    estimate = events[-1].result
    assert estimate.n == len(pairs) and estimate.max_tokens == 1024 and estimate.counted_with == "count_tokens"
    assert estimate.output_tokens_per_answer <= 1024 and estimate.cost_usd > 0
    assert any("no caching savings" in n for n in estimate.notes)
    assert not [e for e in events if isinstance(e, Log) and e.level == "error"]
    assert server.message_requests() == []  # nothing was asked
