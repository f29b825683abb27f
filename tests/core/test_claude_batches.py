"""The Claude teacher's Message Batches lane: half price, resubmission rules and restarts that
never submit or store an example twice."""

from __future__ import annotations

import re
import threading

import pytest
from fakes import anthropic_server
from fakes.anthropic_server import FakeAnthropic, project_with_texts

from kdstudio.core.errors import BudgetExceeded, Cancelled, ConfigError
from kdstudio.core.events import CancelToken
from kdstudio.core.teachers.base import TeacherContext
from kdstudio.core.teachers.claude import ClaudeTeacher

fake_anthropic = anthropic_server.fake_anthropic

LABELS = ["positive", "negative", "neutral"]


def make_teacher(server: FakeAnthropic, **options) -> ClaudeTeacher:
    opts = {"api_key": "test-key", "base_url": server.url, "max_retries": 1, "timeout_s": 5}
    opts.update(options)
    return ClaudeTeacher("claude-haiku-5-5", TeacherContext(task="classification", labels=LABELS, options=opts))


def run_batch(project, teacher, *, cancel=None, poll_s=0.01, items=None) -> int:
    """Drive ``answer_batch`` like the harvest: save every yielded list before resuming."""
    tid = project.upsert_teacher(teacher.spec, "claude", teacher.model, "fp", teacher.settings())
    items = items if items is not None else project.pending_examples(tid, ["train"])
    for group in teacher.answer_batch(project, tid, items, cancel=cancel or CancelToken(), poll_s=poll_s):
        project.save_outputs(tid, group)
    return tid


def batch_creates(server):
    return [r for r in server.requests if r.method == "POST" and r.path == "/v1/messages/batches"]


def test_batch_harvest_answers_every_example_at_half_price(tmp_path, fake_anthropic):
    texts = [f"review {i} {LABELS[i % 3]}" for i in range(12)]
    project = project_with_texts(tmp_path / "p.kdproj", texts)
    tid = run_batch(project, make_teacher(fake_anthropic))

    rows = {r["text"]: r for r in project.teacher_outputs(tid, status=None)}
    assert len(rows) == 12 and all(r["status"] == "ok" for r in rows.values())
    assert all(LABELS[rows[t]["label"]] == t.split()[-1] for t in texts)
    assert fake_anthropic.message_requests() == []  # no real-time call
    (create,) = batch_creates(fake_anthropic)
    ids = [q["custom_id"] for q in create.body["requests"]]
    assert len(set(ids)) == 12 and all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", c) for c in ids)
    c = project.count_outputs(tid)
    full = (c["input_tokens"] * 0.1 + c["output_tokens"] * 0.5 + c["cache_write_tokens"] * 0.125
            + c["cache_read_tokens"] * 0.01) / 1e6
    assert c["cost_usd"] == pytest.approx(full / 2, rel=1e-6)
    assert project.open_batches(tid) == []


def test_errored_and_expired_requests_are_resubmitted_once_and_invalid_ones_never(tmp_path, fake_anthropic):
    texts = ["a positive [[batch:errored*1]]", "b negative [[batch:expired*1]]", "c neutral [[batch:invalid]]",
             "d positive [[batch:errored]]", "e negative", "f [[fault:refusal]]"]
    project = project_with_texts(tmp_path / "p.kdproj", texts)
    tid = run_batch(project, make_teacher(fake_anthropic))

    rows = {r["text"]: r for r in project.teacher_outputs(tid, status=None)}
    assert rows[texts[0]]["status"] == rows[texts[1]]["status"] == rows[texts[4]]["status"] == "ok"
    assert "invalid_request_error" in rows[texts[2]]["error"]
    assert "api_error" in rows[texts[3]]["error"]
    assert "refusal" in rows[texts[5]]["error"]
    assert all(r["attempts"] == 1 for r in rows.values())
    asked = fake_anthropic.asked_texts()
    assert [asked.count(t) for t in texts] == [2, 2, 1, 2, 1, 1]
    creates = batch_creates(fake_anthropic)
    assert len(creates) == 2
    assert all(q["custom_id"].split("-")[1] == "a2" for q in creates[1].body["requests"])
    assert project.open_batches(tid) == []


def test_restart_resumes_the_open_batch_instead_of_submitting_again(tmp_path):
    texts = [f"t{i} positive" for i in range(8)]
    with FakeAnthropic(batch_polls=1000) as server:
        project = project_with_texts(tmp_path / "p.kdproj", texts)
        cancel = CancelToken()
        threading.Timer(0.3, cancel.cancel).start()
        with pytest.raises(Cancelled):
            run_batch(project, make_teacher(server), cancel=cancel, poll_s=0.05)
        tid = project.teachers()[0]["id"]
        assert len(project.open_batches(tid)) == 1
        assert project.examples_in_open_batches(tid) == {ex for ex, _ in project.pending_examples(tid, ["train"])}

        server.batch_polls = 1  # the batch ends while the app is closed
        run_batch(project, make_teacher(server))
        assert len(batch_creates(server)) == 1
        assert project.count_outputs(tid)["n_ok"] == 8
        assert sorted(server.asked_texts()) == sorted(texts)
        assert project.open_batches(tid) == []


def test_new_examples_are_submitted_beside_a_resumed_batch(tmp_path):
    with FakeAnthropic(batch_polls=1000) as server:
        project = project_with_texts(tmp_path / "p.kdproj", ["a positive", "b negative"])
        cancel = CancelToken()
        threading.Timer(0.3, cancel.cancel).start()
        with pytest.raises(Cancelled):
            run_batch(project, make_teacher(server), cancel=cancel, poll_s=0.05)
        with project.transaction():
            project.insert_examples([("c neutral", None, None, "train", "t", 3, "h3")])
        server.batch_polls = 1
        tid = run_batch(project, make_teacher(server))
        creates = batch_creates(server)
        assert [len(c.body["requests"]) for c in creates] == [2, 1]
        assert project.count_outputs(tid)["n_ok"] == 3


def test_crash_after_saving_but_before_marking_stores_nothing_twice(tmp_path, fake_anthropic):
    texts = [f"t{i} negative" for i in range(5)]
    project = project_with_texts(tmp_path / "p.kdproj", texts)
    teacher = make_teacher(fake_anthropic)
    tid = project.upsert_teacher(teacher.spec, "claude", teacher.model, "fp", teacher.settings())
    gen = teacher.answer_batch(project, tid, project.pending_examples(tid, ["train"]), cancel=CancelToken(),
                               poll_s=0.01)
    project.save_outputs(tid, next(gen))
    gen.close()  # the process dies here: outputs saved, batch not yet marked ingested
    assert len(project.open_batches(tid)) == 1
    cost = project.count_outputs(tid)["cost_usd"]

    run_batch(project, make_teacher(fake_anthropic), items=project.pending_examples(tid, ["train"]))
    rows = project.teacher_outputs(tid)
    assert len(rows) == 5 and {r["attempts"] for r in rows} == {1}
    assert project.count_outputs(tid)["cost_usd"] == pytest.approx(cost)
    assert project.open_batches(tid) == [] and len(batch_creates(fake_anthropic)) == 1


def test_batch_budget_submits_only_what_fits_then_stops(tmp_path, fake_anthropic):
    texts = [f"t{i} positive" for i in range(20)]
    project = project_with_texts(tmp_path / "p.kdproj", texts)
    teacher = make_teacher(fake_anthropic, budget_usd=0.0005)
    per = teacher.estimate_request_cost("t0 positive", batch=True)
    with pytest.raises(BudgetExceeded, match="not submitted"):
        run_batch(project, teacher)
    tid = project.teachers()[0]["id"]
    n = project.count_outputs(tid)["n_ok"]
    assert n == int(0.0005 // per) and 0 < n < 20
    assert len(fake_anthropic.asked_texts()) == n


def test_k_sample_mode_is_refused_in_the_batch_lane(tmp_path, fake_anthropic):
    project = project_with_texts(tmp_path / "p.kdproj", ["x"])
    with pytest.raises(ConfigError, match="k-sample"):
        run_batch(project, make_teacher(fake_anthropic, k_samples=3))
