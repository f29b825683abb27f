"""``kdstudio export --format onnx --int8``: the int8 twin of model.onnx, its top-1 agreement with the
float model on the whole test split (recomputed here from the two files), the fallback to fewer
quantized operators, and a refused or failed export that leaves nothing half-written. Students are
trained for real on a 77-label project (banking77's intents) and on the 3-label toy project."""

from __future__ import annotations

import hashlib
import json
import random
import re

import numpy as np
import pytest
from fakes.tiny_models import FILLER, banking77_labels, build_toy_project, fake_teacher_probs

from kdstudio.core.errors import ConfigError
from kdstudio.core.events import Log, run_to_end
from kdstudio.core.export import INT8_MIN_AGREEMENT, ExportResult, export
from kdstudio.core.store import Project, TeacherOutput
from kdstudio.core.train import TrainConfig, train

STUDENTS = ("cnn", "bilstm", "transformer-tiny")
PER_LABEL = {"train": 6, "valid": 2, "test": 6}


def build_intent_project(path):
    """banking77's 77 intents, texts made of each intent's words and filler, and a fake teacher."""
    labels = banking77_labels()
    rng = random.Random(0)
    project = Project.create(path, "classification", labels=labels)
    rows = []
    for split, n in PER_LABEL.items():
        for i in range(n * len(labels)):
            gold = i % len(labels)
            words = labels[gold].lower().split("_") + rng.sample(FILLER, rng.randint(2, 8))
            rng.shuffle(words)
            text = " ".join(words)
            digest = hashlib.sha256(f"{split} {i} {text}".encode()).hexdigest()
            rows.append((text, gold, None, split, "toy", len(rows) + 1, digest))
    with project.transaction():
        project.insert_examples(rows)
    teacher = project.upsert_teacher("fake:teacher", "fake", "teacher", "0" * 16, {})
    project.save_outputs(teacher, [TeacherOutput(example=ex, probs=fake_teacher_probs(gold, rng, n_labels=len(labels)))
                                   for ex, _text, gold in project.examples()])
    project.close()
    return path


@pytest.fixture(scope="module")
def intents(tmp_path_factory):
    """The 77-label project with a cnn, a bilstm and a transformer-tiny trained on it: (path, runs)."""
    path = build_intent_project(tmp_path_factory.mktemp("int8") / "intents.kdproj")
    config = {"epochs": 6, "batch_size": 16, "num_threads": 1}
    runs = {s: run_to_end(train(path, TrainConfig(student=s, **config))).run for s in STUDENTS}
    return path, runs


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The 3-label toy project with one trained cnn and one transformer-tiny: (path, runs)."""
    path = tmp_path_factory.mktemp("int8-toy") / "toy.kdproj"
    build_toy_project(path, sizes={"train": 36, "valid": 12, "test": 60})[0].close()
    config = {"epochs": 1, "batch_size": 16, "num_threads": 1}
    return path, {s: run_to_end(train(path, TrainConfig(student=s, **config))).run for s in ("cnn", "transformer-tiny")}


def agreement_of(out, texts):
    """Top-1 agreement of model_int8.onnx with model.onnx in ``out``, recomputed from the two files with
    the exported tokenizer, in the export's batches (length-sorted, 64 a batch: int8 activations are
    quantized per batch)."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    marker = json.loads((out / "kdstudio.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    ids = tokenizer(texts, truncation=True, max_length=marker["max_length"])["input_ids"]
    ids = sorted(ids, key=len)
    sessions = [ort.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])
                for name in ("model.onnx", "model_int8.onnx")]
    same = 0
    for start in range(0, len(ids), 64):
        chunk = ids[start : start + 64]
        width = max(map(len, chunk))
        batch = np.full((len(chunk), width), tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros_like(batch)
        for row, seq in enumerate(chunk):
            batch[row, : len(seq)], mask[row, : len(seq)] = seq, 1
        tops = [s.run(None, {"input_ids": batch, "attention_mask": mask})[0].argmax(1) for s in sessions]
        same += int((tops[0] == tops[1]).sum())
    return same / len(ids)


@pytest.mark.parametrize("student", STUDENTS)
def test_int8_export_of_a_77_label_student_agrees_with_the_float_model_on_the_test_split(intents, tmp_path, student):
    path, runs = intents
    out = tmp_path / student
    result = run_to_end(export(path, runs[student], "onnx", out, int8=True))
    assert {"model.onnx", "model_int8.onnx", "tokenizer.json", "README.md", "kdstudio.json"} <= set(result.files)
    with Project(path) as project:
        texts = [t for _, t, _ in project.examples("test")]
    assert result.int8_checked_examples == len(texts) == 6 * 77 and result.int8_texts == "test"
    assert result.int8_agreement == pytest.approx(agreement_of(out, texts), abs=1e-6)
    assert result.int8_agreement >= INT8_MIN_AGREEMENT and result.int8_ops == "all"
    assert result.onnx_bytes == (out / "model.onnx").stat().st_size
    assert result.int8_bytes == (out / "model_int8.onnx").stat().st_size < result.onnx_bytes
    assert result.int8_max_abs_diff > 0 and result.checked_examples == 100 and result.max_abs_diff <= 1e-4
    assert json.loads((out / "kdstudio.json").read_text())["int8"] == "model_int8.onnx"
    card = (out / "README.md").read_text()
    assert "`model_int8.onnx`" in card and f"{result.int8_agreement:.2%} of 462 test texts" in card
    assert f"{result.int8_bytes / 1e6:.2f} MB" in card and 'InferenceSession("PATH/TO/THIS/FOLDER/model_int8.onnx")' in card


def test_quantize_int8_quantizes_the_operators_it_is_given(intents, tmp_path):
    import onnx

    from kdstudio.core.export.onnx import quantize_int8

    path, runs = intents
    run_to_end(export(path, runs["cnn"], "onnx", tmp_path / "float"))
    source = tmp_path / "float" / "model.onnx"
    ops = {name: {n.op_type for n in onnx.load(str(quantize_int8(source, tmp_path / f"{name}.onnx", types))).graph.node}
           for name, types in (("all", None), ("some", ["MatMul", "Gather"]))}
    assert "ConvInteger" in ops["all"] and "Conv" not in ops["all"]  # the default set includes convolutions
    assert "Conv" in ops["some"] and "ConvInteger" not in ops["some"]


def test_an_export_without_int8_reports_the_float_size_and_no_int8_figures(toy, tmp_path):
    path, runs = toy
    out = tmp_path / "plain"
    result = run_to_end(export(path, runs["cnn"], "onnx", out))
    assert result.onnx_bytes == (out / "model.onnx").stat().st_size
    assert (result.int8_bytes, result.int8_agreement, result.int8_ops, result.int8_checked_examples) == (None,) * 4
    assert not (out / "model_int8.onnx").exists() and json.loads((out / "kdstudio.json").read_text())["int8"] is None
    hf = run_to_end(export(path, runs["transformer-tiny"], "hf", tmp_path / "hf"))
    assert hf.onnx_bytes is None and hf.int8_bytes is None


def test_int8_goes_with_onnx_only_in_one_line(toy, tmp_path):
    path, runs = toy
    with pytest.raises(ConfigError, match="--int8 goes with --format onnx") as error:
        run_to_end(export(path, runs["transformer-tiny"], "hf", tmp_path / "x", int8=True))
    assert "\n" not in str(error.value) and not (tmp_path / "x").exists()


def test_a_transformer_student_exports_to_onnx_with_its_int8_twin(toy, tmp_path):
    path, runs = toy
    result = run_to_end(export(path, runs["transformer-tiny"], "onnx", tmp_path / "t", int8=True))
    assert result.max_abs_diff <= 1e-4 and result.int8_agreement >= INT8_MIN_AGREEMENT


def test_an_int8_model_short_of_the_agreement_fails_in_one_line_and_leaves_the_folder_as_it_was(
    toy, tmp_path, monkeypatch
):
    import kdstudio.core.export.int8 as int8

    path, runs = toy
    earlier = tmp_path / "earlier"
    run_to_end(export(path, runs["cnn"], "onnx", earlier))
    before = {p.name: p.read_bytes() for p in earlier.iterdir()}
    monkeypatch.setattr(int8, "INT8_MIN_AGREEMENT", 1.01)  # no int8 model can reach it
    for out in (tmp_path / "new", earlier):
        with pytest.raises(ConfigError, match=r"agrees with the float one on at most \d+\.\d\d% of 60 texts") as error:
            run_to_end(export(path, runs["cnn"], "onnx", out, int8=True))
        assert "\n" not in str(error.value) and "101.0% needed" in str(error.value)
    assert not (tmp_path / "new").exists()
    assert {p.name: p.read_bytes() for p in earlier.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier"]  # no half-written folder beside it


def damage(target):
    """Scramble the classifier's bias in an ONNX file, so its top label is mostly wrong."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(target))
    rng = np.random.default_rng(0)
    n_labels = model.graph.output[0].type.tensor_type.shape.dim[1].dim_value or 3
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and list(init.dims) == [n_labels]:
            init.CopyFrom(numpy_helper.from_array(rng.normal(0, 100, n_labels).astype(np.float32), init.name))
    onnx.save(model, str(target))


def test_the_fallback_to_matrix_products_and_embeddings_rescues_a_failing_full_quantization(
    intents, tmp_path, monkeypatch
):
    import kdstudio.core.export.onnx as onnx_module

    path, runs = intents
    real = onnx_module.quantize_int8
    tried = []

    def quantize(source, target, op_types=None, *, per_channel=False):
        tried.append((op_types, per_channel))
        real(source, target, op_types, per_channel=per_channel)
        if op_types is None:  # the full set, per tensor or per channel: as if it lost the top label
            damage(target)
        return target

    monkeypatch.setattr(onnx_module, "quantize_int8", quantize)
    events = list(export(path, runs["bilstm"], "onnx", tmp_path / "b", int8=True))
    result = events[-1].result
    assert isinstance(result, ExportResult) and result.int8_ops == "matmul+embeddings"
    assert tried == [(None, False), (None, True), (("MatMul", "Gather"), False)]  # the first that passes is kept
    assert result.int8_agreement >= INT8_MIN_AGREEMENT
    warnings = [e.message for e in events if isinstance(e, Log) and e.level == "warning"]
    assert len(warnings) == 2 and all("trying the next way" in w for w in warnings)
    assert "matrix products and embedding lookups only" in (tmp_path / "b" / "README.md").read_text()


def test_kdstudio_export_int8_prints_the_figures_and_the_json_keys(toy, tmp_path, capsys):
    from kdstudio.cli import main

    path, runs = toy
    args = ["export", str(path), "--run", str(runs["cnn"]), "--format", "onnx", "--int8"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("int8: model_int8.onnx ") and "x smaller), top-1 agreement with float" in line
    assert re.search(r"on 60 test texts( \(quantized: [a-z+-]+\))?$", line), line
    assert main([*args, "--out", str(tmp_path / "b"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("int8_agreement", "int8_checked_examples", "int8_max_abs_diff", "int8_ops", "onnx_bytes",
                "int8_bytes"):
        assert data[key] is not None, key
    assert data["int8_bytes"] == (tmp_path / "b" / "model_int8.onnx").stat().st_size
    assert main(["export", str(path), "--run", str(runs["transformer-tiny"]), "--format", "hf", "--int8",
                 "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--int8 goes with --format onnx" in err and "\n" not in err
