"""Export: ONNX checked against torch, the transformers folder loads in a pipeline, the model
card, and teacher outputs as JSONL / formula-safe CSV."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from fakes.tiny_models import build_toy_project

from kdstudio.core.errors import ConfigError
from kdstudio.core.events import run_to_end
from kdstudio.core.export import csv_safe, export, export_teacher_outputs
from kdstudio.core.store import Project, TeacherOutput
from kdstudio.core.students import load_student, predict_probs
from kdstudio.core.train import TrainConfig, run_folder, train

FAST = {"epochs": 1, "batch_size": 16, "num_threads": 1}
TRICKY = ['=HYPERLINK("http://x")', "+1 555", "-2+3", "@SUM(A1)", "plain"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "toy.kdproj"
    project, teacher_id = build_toy_project(
        path, sizes={"train": 36, "valid": 12, "test": 100, "unlabeled": 0}
    )
    with project.transaction():
        project.insert_examples(
            [(t, None, None, "unlabeled", "x", 1, f"h{i}") for i, t in enumerate(TRICKY)]
        )
    new = project.examples("unlabeled")
    project.save_outputs(
        teacher_id,
        [TeacherOutput(example=i, probs=[0.2, 0.3, 0.5], rationale="=why") for i, _, _ in new],
    )
    project.close()
    runs = {
        s: run_to_end(train(path, TrainConfig(student=s, **FAST))).run
        for s in ("bilstm", "cnn", "transformer-tiny")
    }
    return path, runs, teacher_id


@pytest.mark.parametrize("student", ["bilstm", "cnn"])
def test_onnx_export_matches_torch_with_dynamic_axes_and_tokenizer_beside(toy, tmp_path, student):
    import onnx
    import onnxruntime as ort
    from transformers import AutoTokenizer

    path, runs, _ = toy
    out = tmp_path / "onnx"
    result = run_to_end(export(path, runs[student], "onnx", out))
    assert result.checked_examples == 100 and result.max_abs_diff <= 1e-4
    assert {"model.onnx", "tokenizer.json", "README.md", "kdstudio.json"} <= set(result.files)
    graph = onnx.load(str(out / "model.onnx")).graph
    dims = {i.name: [d.dim_param for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims == {"input_ids": ["batch", "sequence"], "attention_mask": ["batch", "sequence"]}
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    texts = ["the team won the match again and again", "rain", "bank fee"]
    enc = tokenizer(texts, padding=True, truncation=True, return_tensors="np")
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(
        None,
        {
            "input_ids": enc["input_ids"].astype(np.int64),
            "attention_mask": enc["attention_mask"].astype(np.int64),
        },
    )[0]
    model, tok, meta = load_student(run_folder(path, runs[student]))
    expected = predict_probs(model, tok, texts, max_length=meta["max_length"])
    exp = np.exp(logits - logits.max(1, keepdims=True))
    assert np.allclose(exp / exp.sum(1, keepdims=True), expected, atol=1e-4)


def test_hf_export_loads_in_a_pipeline_and_predicts_like_kd_studio(toy, tmp_path):
    from transformers import pipeline

    path, runs, _ = toy
    out = tmp_path / "hf"
    result = run_to_end(export(path, runs["transformer-tiny"], "hf", out))
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= set(
        result.files
    )
    with Project(path) as project:
        texts = [t for _, t, _ in project.examples("test")][:40]
        labels = project.labels()
    classify = pipeline("text-classification", model=str(out), device="cpu")
    got = [r["label"] for r in classify(texts, truncation=True)]
    model, tok, meta = load_student(run_folder(path, runs["transformer-tiny"]))
    probs = predict_probs(model, tok, texts, max_length=meta["max_length"])
    assert got == [labels[i] for i in probs.argmax(1)]


def test_bilstm_and_cnn_export_as_onnx_only(toy, tmp_path):
    path, runs, _ = toy
    with pytest.raises(ConfigError, match="--format onnx"):
        run_to_end(export(path, runs["bilstm"], "hf", tmp_path / "x"))
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="unknown export format"):
        run_to_end(export(path, runs["bilstm"], "tflite", tmp_path / "y"))
    with pytest.raises(ConfigError, match="no run #42"):
        run_to_end(export(path, 42, "onnx", tmp_path / "z"))


def test_model_card_names_teacher_data_metrics_use_and_limits(toy, tmp_path):
    path, runs, _ = toy
    out = tmp_path / "card"
    run_to_end(export(path, runs["transformer-tiny"], "hf", out))
    card = (out / "README.md").read_text()
    for needle in (
        "fake:teacher",
        "## Data",
        "## Evaluation",
        "accuracy",
        "agreement",
        "retention",
        "ECE",
        "## Intended use",
        "## Limits",
        "pipeline(",
        "sports",
    ):
        assert needle in card, needle
    with Project(path) as project:
        assert project.evaluation(runs["transformer-tiny"]) is not None  # evaluated for the card
    marker = json.loads((out / "kdstudio.json").read_text())
    assert marker["labels"] == ["sports", "weather", "money"] and marker["format"] == "hf"


def test_export_refuses_a_foreign_folder_and_replaces_an_earlier_export(toy, tmp_path):
    path, runs, _ = toy
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        run_to_end(export(path, runs["transformer-tiny"], "hf", foreign))
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = tmp_path / "again"
    run_to_end(export(path, runs["transformer-tiny"], "hf", out))
    (out / "stale.bin").write_bytes(b"x")
    run_to_end(export(path, runs["transformer-tiny"], "hf", out))
    assert not (out / "stale.bin").exists()


def test_teacher_outputs_as_jsonl_and_formula_safe_csv(toy, tmp_path):
    path, _, teacher_id = toy
    n = export_teacher_outputs(path, teacher_id, tmp_path / "t.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert n == len(lines) == 36 + 12 + 100 + len(TRICKY)
    first = lines[0]
    assert set(first) >= {"text", "label", "probabilities", "rationale"}
    assert set(first["probabilities"]) == {"sports", "weather", "money"}
    assert first["label"] == max(first["probabilities"], key=first["probabilities"].get)
    assert {line["text"] for line in lines} >= set(TRICKY)  # JSONL keeps texts as they are

    export_teacher_outputs(path, teacher_id, tmp_path / "t.csv", "csv")
    with open(tmp_path / "t.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts = {r["text"] for r in rows}
    assert {'\'=HYPERLINK("http://x")', "'+1 555", "'-2+3", "'@SUM(A1)", "plain"} <= texts
    assert not any(r["text"][:1] in "=+-@" for r in rows)
    assert {r["rationale"] for r in rows if r["text"] == "plain"} == {"'=why"}
    assert {"p_sports", "p_weather", "p_money"} <= set(rows[0])
    with pytest.raises(ConfigError, match="jsonl or csv"):
        export_teacher_outputs(path, teacher_id, tmp_path / "t.xml", "xml")


def test_csv_safe_escapes_formula_starts_only():
    assert csv_safe("=1+1") == "'=1+1" and csv_safe("@x") == "'@x"
    assert csv_safe("+x") == "'+x" and csv_safe("-x") == "'-x" and csv_safe("\tx") == "'\tx"
    assert (
        csv_safe("a=b") == "a=b"
        and csv_safe("") == ""
        and csv_safe(-3) == -3
        and csv_safe(None) is None
    )


def test_the_formats_a_run_exports_to_follow_its_students_architecture(toy):
    from kdstudio.core.export import formats_for, run_formats

    path, runs, _ = toy
    assert formats_for("hf") == ("hf", "onnx") and formats_for("cnn") == ("onnx",)
    assert run_formats(path, runs["transformer-tiny"]) == ("hf", "onnx")
    assert run_formats(path, runs["cnn"]) == run_formats(path, runs["bilstm"]) == ("onnx",)
    assert run_formats(path, 999) == ("hf", "onnx")  # no saved student: the export says what is missing
