"""The Claude teacher's real-time lane against the loopback fake API: answers, failures, cost,
cancel, budget, rate limits and k-sample mode."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from fakes import anthropic_server
from fakes.anthropic_server import FakeAnthropic, project_with_texts

from kdstudio.core.errors import BudgetExceeded, Cancelled, ConfigError, TeacherError
from kdstudio.core.events import CancelToken
from kdstudio.core.store import Project
from kdstudio.core.teachers import claude
from kdstudio.core.teachers.base import TeacherContext, fingerprint
from kdstudio.core.teachers.claude import ClaudeTeacher

fake_anthropic = anthropic_server.fake_anthropic  # the fixture: a started fake API per test

LABELS = ["positive", "negative", "neutral"]
MODEL = "claude-haiku-5-5"


def make_teacher(server: FakeAnthropic, model: str = MODEL, *, task: str = "classification", **options) -> ClaudeTeacher:
    opts = {"api_key": "test-key", "base_url": server.url, "max_retries": 2, "timeout_s": 5, "concurrency": 4}
    opts.update(options)
    ctx = TeacherContext(task=task, labels=LABELS if task == "classification" else [],
                         descriptions={"positive": "praise", "negative": "complaints"},
                         instructions="Label customer reviews.", options=opts)
    return ClaudeTeacher(model, ctx)


def harvest_into(project, teacher: ClaudeTeacher, *, cancel: CancelToken | None = None, items=None) -> int:
    """Drive ``answer`` like the harvest does: save each yielded list before asking for more."""
    tid = project.upsert_teacher(teacher.spec, "claude", teacher.model, "fp-" + teacher.model, teacher.settings())
    items = items if items is not None else project.pending_examples(tid, ["train"])
    for group in teacher.answer(items, cancel=cancel or CancelToken()):
        project.save_outputs(tid, group)
    return tid


def rows_by_text(project, tid):
    return {r["text"]: r for r in project.teacher_outputs(tid, status=None)}


def test_answers_are_saved_with_label_probabilities_usage_and_cost(tmp_path, fake_anthropic):
    texts = ["a positive review", "so negative", "neutral words", "very positive again"]
    project = project_with_texts(tmp_path / "p.kdproj", texts)
    teacher = make_teacher(fake_anthropic)
    tid = harvest_into(project, teacher)

    rows = rows_by_text(project, tid)
    assert {t: LABELS[rows[t]["label"]] for t in texts} == {
        texts[0]: "positive", texts[1]: "negative", texts[2]: "neutral", texts[3]: "positive"}
    for row in rows.values():
        assert row["status"] == "ok" and row["method"] == "verbalized"
        assert sum(row["probs"]) == pytest.approx(1.0, abs=1e-5)
        assert max(row["probs"]) == pytest.approx(0.8, abs=1e-5)
        assert row["rationale"] and "\n" not in row["rationale"]
        assert row["latency_ms"] > 0
    totals = project.count_outputs(tid)
    assert totals["n_ok"] == 4
    # three labels make a prompt far under claude-haiku-5-5's 512-token minimum: nothing is cached
    assert totals["cache_write_tokens"] == totals["cache_read_tokens"] == 0
    # cost of each row = price table × the usage the server reported
    assert totals["cost_usd"] == pytest.approx(
        (totals["input_tokens"] * 0.1 + totals["output_tokens"] * 0.5
         + totals["cache_write_tokens"] * 0.125 + totals["cache_read_tokens"] * 0.01) / 1e6, rel=1e-6)


def test_request_has_cached_system_prompt_per_label_schema_and_no_sampling_parameters(tmp_path, fake_anthropic):
    project = project_with_texts(tmp_path / "p.kdproj", ["one positive text"])
    teacher = make_teacher(fake_anthropic, few_shot=[("I love it", "positive")])
    harvest_into(project, teacher)

    (req,) = fake_anthropic.message_requests()
    body = req.body
    assert req.headers["authorization"] == "Bearer test-key"
    assert not {"temperature", "top_p", "top_k"} & set(body)
    (system,) = body["system"]
    assert system["cache_control"] == {"type": "ephemeral"}
    assert "Label customer reviews." in system["text"] and "- positive: praise" in system["text"]
    assert "I love it" in system["text"]  # few-shot examples live in the cached prefix
    schema = body["output_config"]["format"]["schema"]
    assert body["output_config"]["format"]["type"] == "json_schema"
    assert schema["properties"]["label"]["enum"] == LABELS
    probs = schema["properties"]["probabilities"]
    assert probs["properties"] == {name: {"type": "number"} for name in LABELS}  # one property per label
    assert probs["required"] == LABELS and probs["additionalProperties"] is False
    assert "tools" not in body and "tool_choice" not in body
    assert "one positive text" in body["messages"][0]["content"]


@pytest.mark.parametrize(
    ("marker", "status", "error_part"),
    [
        ("[[fault:malformed]]", "failed", "invalid JSON"),
        ("[[fault:unknown_label]]", "failed", "unknown label"),
        ("[[fault:refusal]]", "failed", "refusal"),
        ("[[fault:max_tokens]]", "failed", "max_tokens"),
        ("[[fault:400]]", "failed", "400 invalid_request_error"),
        ("[[fault:500]]", "failed", "500 api_error"),
        ("[[fault:529*2]]", "ok", None),
        ("[[fault:429*2]]", "ok", None),
        ("[[fault:500*1]]", "ok", None),
    ],
)
def test_each_fault_ends_in_the_right_row_and_the_harvest_goes_on(tmp_path, fake_anthropic, marker, status, error_part):
    texts = ["first positive", f"{marker} second negative", "third neutral"]
    project = project_with_texts(tmp_path / "p.kdproj", texts)
    tid = harvest_into(project, make_teacher(fake_anthropic))

    rows = rows_by_text(project, tid)
    assert rows[texts[0]]["status"] == rows[texts[2]]["status"] == "ok"
    row = rows[texts[1]]
    assert row["status"] == status
    if error_part:
        assert error_part in row["error"]
        assert row["probs"] is None
    else:
        assert LABELS[row["label"]] == "negative"


def test_failed_answer_that_was_billed_keeps_its_tokens_and_cost(tmp_path, fake_anthropic):
    project = project_with_texts(tmp_path / "p.kdproj", ["[[fault:refusal]] x"])
    tid = harvest_into(project, make_teacher(fake_anthropic))
    counts = project.count_outputs(tid)
    assert counts["n_failed"] == 1 and counts["cost_usd"] > 0 and counts["input_tokens"] > 0


def test_hung_request_times_out_then_the_retry_answers(tmp_path):
    with FakeAnthropic(hang_s=5) as server:
        project = project_with_texts(tmp_path / "p.kdproj", ["[[fault:hang*1]] positive", "[[fault:hang]] neutral"])
        tid = harvest_into(project, make_teacher(server, timeout_s=0.4, max_retries=1))
        rows = rows_by_text(project, tid)
    assert rows["[[fault:hang*1]] positive"]["status"] == "ok"
    assert rows["[[fault:hang]] neutral"]["status"] == "failed"
    assert "timed out" in rows["[[fault:hang]] neutral"]["error"]


def test_spend_limit_stops_the_harvest_and_keeps_the_answers_already_saved(tmp_path, fake_anthropic):
    texts = ["a positive", "b negative", "c neutral", "[[fault:spend_limit]] d", "e positive", "f negative"]
    project = project_with_texts(tmp_path / "p.kdproj", texts)
    with pytest.raises(TeacherError, match="spend limit"):
        harvest_into(project, make_teacher(fake_anthropic, concurrency=1))
    tid = project.teachers()[0]["id"]
    assert sorted(rows_by_text(project, tid)) == texts[:3]
    assert "e positive" not in fake_anthropic.asked_texts()[-1]
    assert not any("e positive" in t for t in fake_anthropic.asked_texts())


def test_rejected_key_raises_a_clear_teacher_error(tmp_path, fake_anthropic):
    project = project_with_texts(tmp_path / "p.kdproj", ["a positive", "b"])
    with pytest.raises(TeacherError, match="API key rejected"):
        harvest_into(project, make_teacher(fake_anthropic, api_key="sk-wrong"))
    assert project.count_outputs(project.teachers()[0]["id"])["n"] == 0


def test_missing_key_is_reported_before_any_request(tmp_path, fake_anthropic):
    teacher = make_teacher(fake_anthropic, api_key=None)
    with pytest.raises(TeacherError, match="no Anthropic API key"):
        list(teacher.answer([(1, "x")], cancel=CancelToken()))
    assert fake_anthropic.requests == []


def test_sdk_reads_key_and_address_from_the_environment(tmp_path, fake_anthropic, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
    project = project_with_texts(tmp_path / "p.kdproj", ["a positive"])
    teacher = make_teacher(fake_anthropic, api_key=None, base_url=None)
    tid = harvest_into(project, teacher)
    assert project.count_outputs(tid)["n_ok"] == 1


def test_falls_back_to_a_forced_tool_call_when_the_model_rejects_json_outputs(tmp_path):
    with FakeAnthropic(no_output_config=("claude-haiku-4-5",)) as server:
        project = project_with_texts(tmp_path / "p.kdproj", ["a positive", "b negative", "c neutral"])
        tid = harvest_into(project, make_teacher(server, "claude-haiku-4-5", concurrency=1))
        bodies = [r.body for r in server.message_requests()]
    assert project.count_outputs(tid)["n_ok"] == 3
    assert "output_config" in bodies[0] and bodies[1]["tool_choice"] == {"type": "tool", "name": "record_label"}
    assert all("tools" in b for b in bodies[1:])  # the switch sticks for the rest of the harvest


def test_uses_json_outputs_on_models_that_reject_forced_tool_use_and_skips_thinking_blocks(tmp_path, fake_anthropic):
    project = project_with_texts(tmp_path / "p.kdproj", ["a positive", "b negative"])
    teacher = make_teacher(fake_anthropic, "claude-opus-5-5", output_mode="tool", concurrency=1)
    tid = harvest_into(project, teacher)
    bodies = [r.body for r in fake_anthropic.message_requests()]
    assert project.count_outputs(tid)["n_ok"] == 2
    assert "tool_choice" in bodies[0] and "output_config" in bodies[-1] and "tool_choice" not in bodies[-1]
    assert bodies[-1]["output_config"]["effort"] == "low"  # thinking is always on: keep it short


def test_generation_task_stores_the_completion(tmp_path, fake_anthropic):
    project = project_with_texts(tmp_path / "p.kdproj", ["Summarise this please"], task="generation")
    tid = harvest_into(project, make_teacher(fake_anthropic, task="generation"))
    (row,) = project.teacher_outputs(tid)
    assert row["completion"].startswith("Summary: Summarise") and row["method"] == "completion"
    body = fake_anthropic.message_requests()[0].body
    assert "output_config" not in body and body["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_cancel_stops_within_two_seconds_and_loses_no_answer(tmp_path):
    texts = [f"text {i} positive" for i in range(80)]
    with FakeAnthropic(latency_s=0.25) as server:
        project = project_with_texts(tmp_path / "p.kdproj", texts)
        teacher = make_teacher(server, concurrency=4)
        tid = project.upsert_teacher(teacher.spec, "claude", MODEL, "fp-" + MODEL, teacher.settings())
        cancel = CancelToken()
        saved = 0
        with pytest.raises(Cancelled):
            for group in teacher.answer(project.pending_examples(tid, ["train"]), cancel=cancel):
                project.save_outputs(tid, group)
                saved += len(group)
                if saved >= 4 and not cancel.cancelled:
                    cancel.cancel()
                    cancelled_at = time.monotonic()
        stopped_in = time.monotonic() - cancelled_at
        assert stopped_in < 2.0
        first_run = project.count_outputs(tid)["n"]
        assert 4 <= first_run < 40

        # a rerun asks only what is missing; each example ends answered exactly once
        asked_before = len(server.message_requests())
        harvest_into(project, make_teacher(server, concurrency=16), items=project.pending_examples(tid, ["train"]))
        rows = project.teacher_outputs(tid, status=None)
        assert len(rows) == 80 and {r["attempts"] for r in rows} == {1}
        asked_after = len(server.message_requests()) - asked_before
        assert asked_after == 80 - first_run
        assert asked_before - first_run <= 4  # only requests in flight at the cancel are lost


def test_pause_holds_new_requests_until_resume(tmp_path):
    with FakeAnthropic(latency_s=0.05) as server:
        project = project_with_texts(tmp_path / "p.kdproj", [f"t{i} positive" for i in range(30)])
        teacher = make_teacher(server, concurrency=2)
        cancel = CancelToken()
        cancel.pause()
        threading.Timer(0.5, cancel.resume).start()
        t0 = time.monotonic()
        tid = harvest_into(project, teacher, cancel=cancel)
        first = min(r.at for r in server.message_requests())
    assert project.count_outputs(tid)["n_ok"] == 30
    assert first - t0 >= 0.4


def test_budget_stops_before_the_request_that_would_pass_it(tmp_path, fake_anthropic):
    texts = [f"review {i} positive" for i in range(40)]
    project = project_with_texts(tmp_path / "p.kdproj", texts)
    budget = 0.0002 + 0.0004  # room for about ten requests of this size (~$0.000035 each)
    teacher = make_teacher(fake_anthropic, budget_usd=budget, spent_usd=0.0002, concurrency=2)
    with pytest.raises(BudgetExceeded, match="budget"):
        harvest_into(project, teacher)
    tid = project.teachers()[0]["id"]
    counts = project.count_outputs(tid)
    assert 1 <= counts["n"] < 40
    assert 0.0002 + counts["cost_usd"] <= budget
    assert len(fake_anthropic.message_requests()) == counts["n"]  # nothing asked and thrown away


def test_k_sample_mode_asks_the_most_uncertain_examples_again_and_mixes_the_answers(tmp_path, fake_anthropic):
    texts = ["sure positive", "[[votes:positive,negative,negative]] [[conf:0.5]] unsure", "plain negative",
             "another neutral"]
    project = project_with_texts(tmp_path / "p.kdproj", texts)
    teacher = make_teacher(fake_anthropic, k_samples=2, uncertain_fraction=0.25)
    assert teacher.settings()["method"] == "k-sample"
    tid = harvest_into(project, teacher)

    asked = fake_anthropic.asked_texts()
    assert asked.count(texts[1]) == 3 and all(asked.count(t) == 1 for t in texts if t != texts[1])
    rows = rows_by_text(project, tid)
    row = rows[texts[1]]
    assert row["method"] == "k-sample" and row["attempts"] == 2
    # mean verbalized: pos (0.5+0.25+0.25)/3, neg (0.25+0.5+0.5)/3; votes: pos 1/3, neg 2/3 → mixed half/half
    pos = 0.5 * (1.0 / 3) + 0.5 * (1 / 3)
    neg = 0.5 * (1.25 / 3) + 0.5 * (2 / 3)
    assert row["probs"][0] == pytest.approx(pos, abs=1e-4)
    assert row["probs"][1] == pytest.approx(neg, abs=1e-4)
    assert LABELS[row["label"]] == "negative"
    assert rows[texts[0]]["method"] == "verbalized"
    assert project.count_outputs(tid)["cost_usd"] > 0


def test_rate_limit_headers_pause_dispatch_before_the_limit_is_hit(tmp_path):
    with FakeAnthropic(ratelimit=(3, 0.6)) as server:
        project = project_with_texts(tmp_path / "p.kdproj", [f"t{i} neutral" for i in range(7)])
        t0 = time.monotonic()
        tid = harvest_into(project, make_teacher(server, concurrency=1))
        took = time.monotonic() - t0
        statuses = server.statuses()
    assert project.count_outputs(tid)["n_ok"] == 7
    assert statuses[429] == 0 and statuses[200] == 7
    assert took >= 0.6  # waited for at least one reset


def test_many_failures_in_a_row_stop_the_harvest(tmp_path, fake_anthropic):
    fake_anthropic.queue_faults(*["500"] * 60)
    project = project_with_texts(tmp_path / "p.kdproj", [f"t{i}" for i in range(60)])
    with pytest.raises(TeacherError, match="in a row"):
        harvest_into(project, make_teacher(fake_anthropic, max_retries=0, concurrency=2))
    counts = project.count_outputs(project.teachers()[0]["id"])
    assert counts["n_failed"] >= claude.TRANSIENT_STREAK_LIMIT and counts["n"] < 60


def test_estimate_counts_tokens_on_a_sample_and_calls_no_model(fake_anthropic):
    teacher = make_teacher(fake_anthropic)
    items = [(i, f"example number {i} positive") for i in range(200)]
    est = teacher.estimate(items, sample=20)
    assert est.n == 200 and est.sampled == 20 and est.counted_with == "count_tokens"
    assert fake_anthropic.message_requests() == []
    counted = [r for r in fake_anthropic.requests if r.path == "/v1/messages/count_tokens"]
    assert len(counted) == 20 + 3  # the sample, then the cached prefix and a typical answer, once each
    assert est.input_tokens > 200 * 30 and est.output_tokens > 0
    assert est.cost_usd == pytest.approx((est.input_tokens * 0.1 + est.output_tokens * 0.5) / 1e6, rel=1e-3)
    assert est.estimated_seconds is None  # no earlier answers to time
    assert teacher.estimate(items, sample=20, ms_per_item=400).estimated_seconds == pytest.approx(200 * 0.4 / 4)
    batch = make_teacher(fake_anthropic, batch_api=True).estimate(items, sample=20)
    assert batch.cost_usd == pytest.approx(est.cost_usd / 2, rel=1e-3)


def test_prepare_checks_price_key_and_model_without_spending(tmp_path, fake_anthropic):
    project = project_with_texts(tmp_path / "p.kdproj", ["x"])
    logs = list(make_teacher(fake_anthropic).prepare(project, 1, cancel=CancelToken()))
    assert logs and "claude-haiku-5-5" in logs[-1].message and "test-key" not in logs[-1].message
    with pytest.raises(ConfigError, match="no price known"):
        list(make_teacher(fake_anthropic, "claude-unknown-9").prepare(project, 1, cancel=CancelToken()))
    with pytest.raises(ConfigError, match="does not offer"):
        list(make_teacher(fake_anthropic, "claude-sonnet-4-5").prepare(project, 1, cancel=CancelToken()))
    with pytest.raises(TeacherError, match="rejected"):
        list(make_teacher(fake_anthropic, api_key="bad").prepare(project, 1, cancel=CancelToken()))
    assert fake_anthropic.message_requests() == []


def test_settings_hold_the_prompt_but_never_the_key(fake_anthropic):
    a = make_teacher(fake_anthropic, api_key="secret-key-123")
    b = make_teacher(fake_anthropic, few_shot=[("good", "positive")])
    assert "secret-key-123" not in repr(a.settings())
    ctx = a.context
    assert fingerprint(a.spec, a.settings(), ctx) != fingerprint(b.spec, b.settings(), ctx)
    assert a.settings() == make_teacher(fake_anthropic, concurrency=32, budget_usd=3).settings()


def test_api_key_is_not_stored_in_the_project_file(tmp_path, fake_anthropic):
    fake_anthropic.api_keys.add("sk-ant-very-secret-value")
    project = project_with_texts(tmp_path / "p.kdproj", ["a positive"])
    harvest_into(project, make_teacher(fake_anthropic, api_key="sk-ant-very-secret-value"))
    project.close()
    for f in tmp_path.iterdir():
        assert b"very-secret" not in f.read_bytes()


def test_list_models_gives_prices_beside_each_model(fake_anthropic):
    models = claude.list_models(api_key="test-key", base_url=fake_anthropic.url)
    by_id = {m.id: m for m in models}
    assert by_id["claude-haiku-5-5"].price["input"] == pytest.approx(0.10)
    assert by_id["claude-haiku-5-5"].price["batch_discount"] == 0.5
    assert by_id["claude-haiku-5-5"].display_name == "Claude Haiku 5.5"


def test_the_model_list_and_connection_jobs_finish_with_typed_results(fake_anthropic):
    from kdstudio.core.events import run_to_end

    listed = run_to_end(claude.list_claude_models(api_key="test-key", base_url=fake_anthropic.url))
    assert isinstance(listed, claude.ClaudeModels)
    assert "claude-haiku-5-5" in [m.id for m in listed.models]
    assert listed.to_json()["models"][0].keys() >= {"id", "display_name", "price"}
    checked = run_to_end(claude.check_claude(MODEL, api_key="test-key", base_url=fake_anthropic.url))
    assert isinstance(checked, claude.ClaudeCheck) and checked.model == MODEL
    assert checked.message.startswith("Connected")
    with pytest.raises(TeacherError, match="rejected"):
        run_to_end(claude.check_claude(MODEL, api_key="nope", base_url=fake_anthropic.url))


def test_test_connection_returns_one_line_or_a_clear_error(fake_anthropic):
    msg = claude.test_connection(MODEL, api_key="test-key", base_url=fake_anthropic.url)
    assert msg.startswith("Connected") and "\n" not in msg and "test-key" not in msg
    with pytest.raises(TeacherError, match="rejected"):
        claude.test_connection(MODEL, api_key="nope", base_url=fake_anthropic.url)
    with pytest.raises(TeacherError, match="cannot reach"):
        claude.test_connection(MODEL, api_key="test-key", base_url="http://127.0.0.1:9", timeout_s=1)


def test_canned_payloads_are_valid_sdk_objects(fake_anthropic):
    from anthropic.types import Message
    from anthropic.types.messages import MessageBatch

    teacher = make_teacher(fake_anthropic, "claude-opus-5-5")
    reply = fake_anthropic.answer(teacher.request_params("a positive"), None)
    msg = Message.model_validate(reply.body)
    assert [b.type for b in msg.content] == ["thinking", "text"]
    created = fake_anthropic.create_batch({"requests": [{"custom_id": "e1-a1", "params": teacher.request_params("x")}]})
    MessageBatch.model_validate(created.body)


# -- through the harvest and the command line ------------------------------------------------------
def test_harvest_end_to_end_records_failures_cost_and_a_dry_run_estimate(tmp_path, fake_anthropic):
    from kdstudio.core.events import run_to_end
    from kdstudio.core.harvest import HarvestConfig, harvest

    texts = ["a positive", "b negative [[fault:malformed]]", "c neutral [[fault:529*1]]", "d [[fault:refusal]]"]
    project = project_with_texts(tmp_path / "p.kdproj", texts)
    project.close()
    options = {"api_key": "test-key", "base_url": fake_anthropic.url, "max_retries": 2, "timeout_s": 5}
    spec = f"claude:{MODEL}"

    estimate = run_to_end(harvest(tmp_path / "p.kdproj", HarvestConfig(teacher=spec, dry_run=True, options=options)))
    assert estimate.dry_run and estimate.n == 4 and estimate.cost_usd > 0
    assert fake_anthropic.message_requests() == []

    result = run_to_end(harvest(tmp_path / "p.kdproj", HarvestConfig(teacher=spec, concurrency=2, options=options)))
    assert (result.n_ok, result.n_failed) == (2, 2) and result.cost_usd > 0
    again = run_to_end(harvest(tmp_path / "p.kdproj", HarvestConfig(teacher=spec, concurrency=2, options=options)))
    assert again.n_ok == again.n_failed == 0  # nothing asked twice
    assert len(fake_anthropic.asked_texts()) == 5  # four examples, one 529 retried by the SDK


def test_k_sample_harvest_counts_each_example_once_though_its_mix_is_saved_again(tmp_path, fake_anthropic):
    from kdstudio.core.events import Progress, run_to_end
    from kdstudio.core.harvest import HarvestConfig, harvest

    texts = ["sure positive", "[[votes:positive,negative,negative]] [[conf:0.5]] unsure", "plain negative",
             "another neutral"]
    project = project_with_texts(tmp_path / "p.kdproj", texts)
    project.close()
    options = {"api_key": "test-key", "base_url": fake_anthropic.url, "max_retries": 2, "timeout_s": 5,
               "k_samples": 2, "uncertain_fraction": 0.25}
    events = list(harvest(tmp_path / "p.kdproj", HarvestConfig(teacher=f"claude:{MODEL}", options=options)))
    result = run_to_end(iter(events))
    with Project(tmp_path / "p.kdproj") as p:
        stored = p.count_outputs(result.teacher)
        rows = p.teacher_outputs(result.teacher)
    assert len(fake_anthropic.asked_texts()) == 6  # four first answers, two more for the unsure one
    assert result.n_ok == stored["n_ok"] == len(rows) == result.answered_total == 4
    assert result.answered_before == 0
    assert result.summary().startswith("Harvest finished: 4 answered, 0 failed, $")
    assert result.cost_usd == pytest.approx(stored["cost_usd"], abs=1e-6)  # every answer paid for is counted
    progress = [e for e in events if isinstance(e, Progress)]
    assert all(e.done <= e.total == 4 for e in progress)


def test_harvest_budget_counts_what_the_teacher_spent_in_earlier_runs(tmp_path, fake_anthropic):
    from kdstudio.core.events import run_to_end
    from kdstudio.core.harvest import HarvestConfig, harvest

    project = project_with_texts(tmp_path / "p.kdproj", [f"t{i} positive" for i in range(30)])
    project.close()
    options = {"api_key": "test-key", "base_url": fake_anthropic.url}
    spec = f"claude:{MODEL}"
    first = run_to_end(harvest(tmp_path / "p.kdproj", HarvestConfig(teacher=spec, limit=10, options=options)))
    spent = first.cost_usd
    budget = spent + 0.0006
    with pytest.raises(BudgetExceeded):
        run_to_end(harvest(tmp_path / "p.kdproj", HarvestConfig(teacher=spec, budget_usd=budget, concurrency=1, options=options)))
    with Project(tmp_path / "p.kdproj") as project:
        total = project.count_outputs(project.teachers()[0]["id"])
    assert total["cost_usd"] <= budget  # the earlier run's spending counts against the budget
    assert 10 < total["n"] < 30


def test_harvest_with_the_batch_api(tmp_path):
    from kdstudio.core.events import run_to_end
    from kdstudio.core.harvest import HarvestConfig, harvest

    with FakeAnthropic(batch_polls=0) as server:
        project = project_with_texts(tmp_path / "p.kdproj", ["a positive", "b negative", "c neutral"])
        project.close()
        options = {"api_key": "test-key", "base_url": server.url}
        result = run_to_end(harvest(tmp_path / "p.kdproj", HarvestConfig(teacher=f"claude:{MODEL}", batch_api=True, options=options)))
        assert result.n_ok == 3 and server.message_requests() == []
        with Project(tmp_path / "p.kdproj") as project:
            assert project.open_batches(project.teachers()[0]["id"]) == []



def test_a_slow_store_never_leaves_more_than_concurrency_answers_paid_and_unstored(fake_anthropic):
    """However slowly the answers are stored, requests sent but not stored never exceed the
    concurrency: that is all a kill at any moment can lose."""
    teacher = make_teacher(fake_anthropic, concurrency=3)
    items = [(i, f"review {i} {LABELS[i % 3]}") for i in range(30)]
    stored = 0
    most_unstored = 0
    for group in teacher.answer(items, cancel=CancelToken()):
        most_unstored = max(most_unstored, len(fake_anthropic.message_requests()) - stored)
        time.sleep(0.15)  # a store slower than the API, as on a busy disk
        most_unstored = max(most_unstored, len(fake_anthropic.message_requests()) - stored)
        stored += len(group)
    assert stored == len(items) and len(fake_anthropic.message_requests()) == len(items)
    assert most_unstored <= 3

@pytest.mark.slow
def test_killed_cli_harvest_resumes_without_repeating_paid_calls(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[2]
    path = tmp_path / "p.kdproj"
    texts = [f"review {i} {LABELS[i % 3]}" for i in range(240)]
    project_with_texts(path, texts).close()
    with FakeAnthropic(latency_s=0.05) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        cmd = [sys.executable, "-m", "kdstudio", "harvest", str(path), "--teacher", f"claude:{MODEL}",
               "--concurrency", "4"]
        with open(tmp_path / "run1.log", "w") as log:
            proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 60
            while len(server.message_requests()) < 60 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        with Project(path) as project:
            tid = project.teachers()[0]["id"]
            stored_after_kill = {r["text"] for r in project.teacher_outputs(tid, status=None)}
        assert 0 < len(stored_after_kill) < len(texts), (tmp_path / "run1.log").read_text()

        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        asked = Counter(server.asked_texts())

    with Project(path) as project:
        rows = project.teacher_outputs(tid, status=None)
    assert len(rows) == len(texts) and {r["attempts"] for r in rows} == {1}
    assert all(r["status"] == "ok" for r in rows)
    assert all(asked[t] == 1 for t in stored_after_kill)  # nothing stored was asked again
    # Asked twice: at most what was in flight at the kill. A worker starts its next request only once
    # its last answer is stored, so requests sent plus answers not yet stored never exceed --concurrency.
    assert sum(asked.values()) - len(texts) <= 4
