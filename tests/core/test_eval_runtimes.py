"""Latency as users serve it: the interleaved timing, the teachers as one ONNX-ready module, and the
runtime matrix of ``kdstudio eval`` (student in torch, ONNX and int8; teacher in torch and ONNX)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fakes.tiny_models import LABELS, build_toy_project, save_tiny_bert

from kdstudio.core.errors import Cancelled
from kdstudio.core.evaluate import EvalReport, evaluate, format_report
from kdstudio.core.evaluate.speed import RUNTIME_KEYS, time_interleaved
from kdstudio.core.events import CancelToken, Log, run_to_end
from kdstudio.core.store import Project, TeacherOutput
from kdstudio.core.train import TrainConfig, train

FAST = {"epochs": 1, "batch_size": 16, "num_threads": 1}
TEXTS = ["the team won the match", "rain and wind today", "pay the bank fee", "a big storm", "new card price"]


def _recorder(calls, name):
    def predict(texts):
        calls.append((name, len(texts)))
        return np.zeros((len(texts), 3))

    return predict


def test_interleaved_timing_runs_blocks_of_each_predictor_in_rotating_order_with_an_untimed_first_call():
    calls = []
    names = ["a", "b", "c"]
    timing = time_interleaved({n: _recorder(calls, n) for n in names}, TEXTS, single_calls=7, block=3,
                              batch_size=8, batch_rounds=3, warmup=2)
    # warm-up: 2 single rounds and 1 batch round, one call each; then blocks of 3 timed calls
    # (+1 untimed) until 7 are timed: 3 + 3 + 1; then 3 batch rounds
    warm, rest = calls[:9], calls[9:]
    assert [n for n, _ in warm] == ["a", "b", "c", "b", "c", "a", "a", "b", "c"]
    assert [size for _, size in warm] == [1] * 6 + [8] * 3
    single, batches = rest[:3 * (4 + 4 + 2)], rest[3 * (4 + 4 + 2):]
    blocks, i = [], 0
    for size in (4, 4, 4, 4, 4, 4, 2, 2, 2):
        blocks.append(single[i:i + size])
        i += size
    assert all(len({n for n, _ in b}) == 1 and {s for _, s in b} == {1} for b in blocks)  # one model per block
    assert [b[0][0] for b in blocks] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # rotating each round
    assert [n for n, _ in batches] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert {s for _, s in batches} == {8}
    for name in names:
        t = timing[name]
        assert list(t) == list(RUNTIME_KEYS)
        assert 0 < t["batch1_ms_p50"] <= t["batch1_ms_p95"]
        assert t["batch64_per_s"] == pytest.approx(8 / (t["batch64_ms_p50"] / 1000))


def test_interleaved_timing_stops_when_cancelled_and_reports_none_without_texts():
    cancel = CancelToken()
    calls = []

    def stopping(texts):
        calls.append(texts)
        if len(calls) == 4:
            cancel.cancel()

    with pytest.raises(Cancelled):
        time_interleaved({"a": stopping, "b": stopping}, TEXTS, single_calls=50, cancel=cancel)
    assert len(calls) == 4  # checked before every call
    assert time_interleaved({"a": stopping}, []) == {"a": dict.fromkeys(RUNTIME_KEYS)}


# -- the teachers as one module --------------------------------------------------------------------


def _prepared(tmp_path, spec, **options):
    from kdstudio.core.harvest import teacher_context
    from kdstudio.core.teachers import load_teacher

    path = tmp_path / "t.kdproj"
    project, teacher_id = build_toy_project(path, teacher_spec=spec)
    teacher = load_teacher(spec, teacher_context(project, spec, options))
    list(teacher.prepare(project, teacher_id, cancel=CancelToken()))
    project.close()
    return teacher


def _hf_folder(tmp_path):
    from transformers import AutoConfig

    folder = save_tiny_bert(tmp_path / "hf-teacher", n_labels=4)
    config = AutoConfig.from_pretrained(folder)
    config.id2label = dict(enumerate(["weather", "other", "money", "sports"]))  # not the project's order
    config.label2id = {v: k for k, v in config.id2label.items()}
    config.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("kind", ["embed-probe", "embed-zero-shot", "hf"])
def test_a_local_teacher_as_one_module_gives_its_predict_probs_in_torch_and_in_onnx(tmp_path, kind):
    import torch

    from kdstudio.core.evaluate.runtimes import sample_ids, teacher_onnx
    from kdstudio.core.students import pad_batch
    from kdstudio.core.students.tokenizer import encode, pad_id

    if kind == "hf":
        teacher = _prepared(tmp_path, f"hf:{_hf_folder(tmp_path)}")
    else:
        folder = save_tiny_bert(tmp_path / "encoder")
        teacher = _prepared(tmp_path, f"embed:{folder}", mode=kind.removeprefix("embed-"))
    try:
        module, tokenizer, max_length = teacher.classifier_module()
        ids, mask = pad_batch(encode(tokenizer, TEXTS, max_length), pad_id(tokenizer))
        with torch.no_grad():
            probs = module(ids, mask).numpy()
        expected = teacher.predict_probs(TEXTS)
        assert probs.shape == (len(TEXTS), len(LABELS))
        assert np.abs(probs - expected).max() < 1e-5
        assert sample_ids(tokenizer, TEXTS, max_length)[0].shape[0] == 2
        predictor, size_mb, diff = teacher_onnx(teacher, TEXTS, tmp_path, threads=1)
        assert diff < 1e-4 and size_mb > 0
        assert np.abs(predictor.predict(TEXTS) - expected).max() < 1e-4
    finally:
        teacher.close()


# -- the matrix in the report ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embed_run(tmp_path_factory):
    """A trained cnn run whose teacher is an embedding probe over a tiny encoder (runs here)."""
    tmp = tmp_path_factory.mktemp("runtimes")
    folder = save_tiny_bert(tmp / "encoder")
    path = tmp / "e.kdproj"
    build_toy_project(path, teacher_spec=f"embed:{folder}")[0].close()
    return path, run_to_end(train(path, TrainConfig(student="cnn", **FAST))).run


def _ratio(teacher, student):
    return teacher["batch1_ms_p50"] / student["batch1_ms_p50"]


def test_eval_times_every_runtime_of_student_and_teacher_and_the_speedups_are_their_ratios(embed_run):
    path, run_id = embed_run
    events = list(evaluate(path, run_id))
    assert not [e for e in events if isinstance(e, Log) and e.level == "warning"]
    report = events[-1].result
    m = report.latency
    runtimes = {"student/torch": m.student.torch, "student/onnx": m.student.onnx,
                "student/onnx_int8": m.student.onnx_int8, "teacher/torch": m.teacher.torch,
                "teacher/onnx": m.teacher.onnx}
    for name, r in runtimes.items():
        assert r is not None, name
        assert 0 < r.batch1_ms_p50 <= r.batch1_ms_p95, name
        assert r.batch64_ms_p50 > 0 and r.batch64_per_s > 0, name
    s = report.speedups
    assert s.torch == pytest.approx(m.teacher.torch.batch1_ms_p50 / m.student.torch.batch1_ms_p50, rel=1e-3)
    assert s.onnx == pytest.approx(m.teacher.onnx.batch1_ms_p50 / m.student.onnx.batch1_ms_p50, rel=1e-3)
    assert s.onnx_int8 == pytest.approx(m.teacher.onnx.batch1_ms_p50 / m.student.onnx_int8.batch1_ms_p50, rel=1e-3)
    # the flat keys are the torch column of the same measurement, and the headline says so
    assert report.speedup_runtime == "torch" and report.speedup == s.torch
    assert report.student_latency_ms_p50 == m.student.torch.batch1_ms_p50
    assert report.student_latency_ms_p95 == m.student.torch.batch1_ms_p95
    assert report.student_throughput_per_s == m.student.torch.batch64_per_s
    assert report.teacher_latency_ms_p50 == m.teacher.torch.batch1_ms_p50
    assert report.teacher_timing == "measured"
    assert 0 < report.student_int8_size_mb < report.student_onnx_size_mb and report.teacher_onnx_size_mb > 0
    with Project(path) as project:
        stored = project.evaluation(run_id)
    assert EvalReport.from_json(stored) == report
    assert list(stored["latency"]) == ["student", "teacher"]
    assert list(stored["latency"]["student"]) == ["torch", "onnx", "onnx_int8"]
    assert list(stored["latency"]["teacher"]["onnx"]) == list(RUNTIME_KEYS)
    assert list(stored["speedups"]) == ["torch", "onnx", "onnx_int8"]
    text = format_report(report)
    assert "speed-up" in text and "ONNX int8" in text and "torch, batch 1" in text


def test_no_onnx_times_torch_only(embed_run, capsys):
    from kdstudio.cli import main

    path, run_id = embed_run
    assert main(["eval", str(path), "--run", str(run_id), "--no-onnx", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    latency = out["latency"]
    assert latency["student"]["torch"]["batch1_ms_p50"] > 0 and latency["teacher"]["torch"]["batch64_per_s"] > 0
    assert latency["student"]["onnx"] is None and latency["student"]["onnx_int8"] is None
    assert latency["teacher"]["onnx"] is None
    assert out["speedups"]["onnx"] is None and out["speedups"]["torch"] == out["speedup"]
    assert out["student_onnx_size_mb"] is None and out["teacher_onnx_size_mb"] is None


def test_a_metered_teacher_has_no_onnx_form_and_keeps_its_recorded_latency(tmp_path):
    path = tmp_path / "c.kdproj"
    project, tid = build_toy_project(path, teacher_spec="claude:claude-haiku-test")
    project.save_outputs(tid, [TeacherOutput(example=r["id"], probs=r["probs"], cost_usd=0.0005,
                                             latency_ms=400.0 + r["id"]) for r in project.teacher_outputs(tid)])
    project.close()
    run_to_end(train(path, TrainConfig(student="cnn", **FAST)))
    events = list(evaluate(path))
    assert not [e for e in events if isinstance(e, Log) and e.level == "warning"]
    report = events[-1].result
    assert report.latency.teacher.torch is None and report.latency.teacher.onnx is None
    assert report.latency.student.onnx_int8 is not None
    assert report.speedups.torch is None and report.speedups.onnx is None and report.speedups.onnx_int8 is None
    assert report.teacher_timing == "recorded" and report.speedup_runtime == "recorded"
    assert report.speedup == pytest.approx(report.teacher_latency_ms_p50 / report.student_latency_ms_p50, rel=1e-3)
    assert report.teacher_onnx_size_mb is None


def test_without_timing_the_matrix_is_none_and_an_older_report_reads_back(embed_run):
    path, run_id = embed_run
    report = run_to_end(evaluate(path, run_id, speed=False))
    assert report.latency is None and report.speedups is None and report.speedup_runtime is None
    new = ("speedup_runtime", "speedups", "latency", "student_onnx_size_mb", "student_int8_size_mb",
           "teacher_onnx_size_mb")
    older = {k: v for k, v in report.to_json().items() if k not in new}
    old = EvalReport.from_json(older)
    assert old.latency is None and old.speedups is None and old.student_accuracy == report.student_accuracy
    assert "speed-up" in format_report(old)
