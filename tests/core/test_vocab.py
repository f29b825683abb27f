"""Vocabulary pruning: the pruned tokenizer gives the teacher's pieces, renumbered, on every project
text; training keeps only the pieces the project uses (every split), starts them from the same
vectors, and every consumer of the saved student (evaluation, ONNX, transformers) gets the same ids."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest
import torch
from fakes.tiny_models import build_toy_project

from kdstudio.core.events import run_to_end
from kdstudio.core.paths import resources_dir
from kdstudio.core.store import Project, TeacherOutput
from kdstudio.core.students import input_embeddings, keep_embedding_rows, load_student, predict_probs
from kdstudio.core.students.tokenizer import _plain_backend, load_tokenizer, teacher_model_path, train_bpe
from kdstudio.core.students.vocab import SPELLING, prune_wordpiece, teacher_ids_of
from kdstudio.core.train import TrainConfig, run_folder, train

ODD = [
    "Why was my card declined in Zürich?? I paid 1.234,56 € at 09:45!!!",
    "My top-up 🙂 didn't go through, ref #A1B2-C3D4 (again…)",
    "カードが届きません — card not arrived",
    "   ",
    "x" * 600,
]
ONLY_UNLABELED = "cryptocurrency wallets hyperinflation"


@pytest.fixture(scope="module")
def minilm():
    return load_tokenizer(teacher_model_path("embed:minilm"))


@pytest.fixture(scope="module")
def banking_texts():
    texts = []
    for name in ("train.csv", "test.csv"):
        with (resources_dir() / "sample" / name).open(newline="", encoding="utf-8") as f:
            texts += [row["text"] for row in csv.DictReader(f)]
    return texts + ODD


def test_every_project_text_gets_the_teachers_pieces_renumbered(minilm, banking_texts):
    pruned = prune_wordpiece(minilm, banking_texts)
    assert pruned is not None and 2000 < pruned.size < 4000 and pruned.teacher_size == len(minilm) == 30522
    mine = [e.ids for e in pruned.tokenizer.backend_tokenizer.encode_batch(banking_texts)]
    theirs = [e.ids for e in _plain_backend(minilm).encode_batch(banking_texts)]  # no padding or truncation
    assert len(mine) == len(banking_texts)
    for a, b in zip(mine, theirs, strict=True):
        assert [pruned.teacher_ids[i] for i in a] == b
    assert pruned.teacher_ids == sorted(set(pruned.teacher_ids))  # the teacher's order
    for token in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        assert pruned.tokenizer.convert_tokens_to_ids(token) == pruned.teacher_ids.index(minilm.convert_tokens_to_ids(token))
    assert pruned.tokenizer.pad_token_id == 0 and len(pruned.tokenizer) == pruned.size


def test_a_new_word_spells_with_kept_pieces_and_an_unknown_character_is_unk(minilm, banking_texts):
    pruned = prune_wordpiece(minilm, banking_texts)
    tok = pruned.tokenizer
    unk = tok.unk_token_id
    new = tok("qwzxv glorpfest")["input_ids"]
    assert unk not in new and len(new) > 4  # spelled from kept pieces, never dropped
    assert all(c in tok.get_vocab() and "##" + c in tok.get_vocab() for c in SPELLING.lower())
    odd = "\U0001fae8"  # a character outside the teacher's vocabulary: [UNK] for both
    assert minilm(odd)["input_ids"][1] == minilm.unk_token_id
    assert tok(odd)["input_ids"] == [tok.cls_token_id, unk, tok.sep_token_id]


def test_the_saved_tokenizer_reloads_with_autotokenizer_and_maps_back_to_the_teacher(minilm, banking_texts, tmp_path):
    from transformers import AutoTokenizer

    pruned = prune_wordpiece(minilm, banking_texts[:3000])
    pruned.tokenizer.save_pretrained(str(tmp_path))
    again = AutoTokenizer.from_pretrained(str(tmp_path))
    sample = banking_texts[:200] + ODD
    assert again(sample)["input_ids"] == pruned.tokenizer(sample)["input_ids"]
    assert teacher_ids_of(again, minilm) == pruned.teacher_ids
    saved = json.loads((tmp_path / "tokenizer.json").read_text())
    assert saved["padding"] is None and saved["truncation"] is None and len(saved["model"]["vocab"]) == pruned.size


def test_a_byte_level_bpe_is_not_pruned():
    assert prune_wordpiece(train_bpe(["a few words", "and a few more words"] * 20, 300), ["a few words"]) is None


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The toy project with the MiniLM probe as its teacher (answers stored, never computed), one
    unlabeled row with words no other split has, and a variant."""
    path = tmp_path_factory.mktemp("vocab") / "p.kdproj"
    project, teacher_id = build_toy_project(path, teacher_spec="embed:minilm")
    with project.transaction():
        project.insert_examples([
            (ONLY_UNLABELED, None, None, "unlabeled", "x", 99, hashlib.sha256(b"u").hexdigest()),
            ("the storm variant rephrased", None, None, "unlabeled", "augment", 100, hashlib.sha256(b"v").hexdigest()),
        ])
    new = project.examples("unlabeled")[-2:]
    project.save_outputs(teacher_id, [TeacherOutput(example=i, probs=[0.2, 0.3, 0.5]) for i, _, _ in new])
    project.close()
    fast = {"epochs": 1, "batch_size": 16, "num_threads": 1}
    runs = {(s, v): run_to_end(train(path, TrainConfig(student=s, vocab=v, **fast))).run
            for s in ("cnn", "transformer-tiny") for v in ("pruned", "full")}
    return path, runs


def test_training_keeps_the_pieces_of_every_split_and_starts_them_from_the_same_vectors(project, minilm):
    path, runs = project
    pruned_model, pruned_tok, meta = load_student(run_folder(path, runs["cnn", "pruned"]))
    full_model, _, full_meta = load_student(run_folder(path, runs["cnn", "full"]))
    assert meta["vocab"]["kind"] == "pruned" and full_meta["vocab"] == {"kind": "full", "size": 30522}
    rows = input_embeddings(pruned_model).weight.shape[0]
    assert rows == len(pruned_tok) == meta["vocab"]["size"] < 500
    assert input_embeddings(full_model).weight.shape[0] == 30522
    assert pruned_tok.unk_token_id not in pruned_tok(ONLY_UNLABELED)["input_ids"]
    with Project(path) as p:
        texts = list(p.texts())
    ids = teacher_ids_of(pruned_tok, minilm)
    assert [[ids[i] for i in row] for row in pruned_tok(texts)["input_ids"]] == minilm(texts)["input_ids"]


def test_a_pruned_run_computes_what_the_full_run_computes_on_the_projects_texts(project):
    """Pruning only drops rows no text of the project reaches; the student starts and trains alike."""
    path, runs = project
    for student in ("cnn", "transformer-tiny"):
        pruned, full = (load_student(run_folder(path, runs[student, v])) for v in ("pruned", "full"))
        with Project(path) as p:
            texts = list(p.texts())
        a = predict_probs(pruned[0], pruned[1], texts)
        b = predict_probs(full[0], full[1], texts)
        assert np.allclose(a, b, atol=1e-4), student
        assert (a.argmax(1) == b.argmax(1)).all()


def test_the_first_vectors_are_the_teachers_rows_whether_pruned_or_not(project, minilm):
    import copy

    from kdstudio.core.students import build_student, init_embeddings_from_teacher

    source = teacher_model_path("embed:minilm")
    with Project(project[0]) as p:
        pruned = prune_wordpiece(minilm, p.texts())
    full = build_student("cnn", 3, minilm)
    init_embeddings_from_teacher(full, source)
    small = copy.deepcopy(full)
    keep_embedding_rows(small, pruned.teacher_ids)
    expected = input_embeddings(full).weight[pruned.teacher_ids].detach()
    got = input_embeddings(small).weight.detach()
    assert got.shape == (pruned.size, 128) and torch.equal(got, expected)
    assert small.config["vocab_size"] == pruned.size and small.config["pad_id"] == pruned.tokenizer.pad_token_id
    assert input_embeddings(small).padding_idx == pruned.tokenizer.pad_token_id
    # the full table's rows came from the teacher (a piece starts from the same vector either way)
    assert float(got[1:].std()) > 0 and not torch.equal(got[1:], torch.zeros_like(got[1:]))


def test_a_pruned_teacher_layers_student_computes_what_the_full_one_does(project, minilm):
    from kdstudio.core.students import build_student

    source = teacher_model_path("embed:minilm")
    with Project(project[0]) as p:
        texts = list(p.texts())
        pruned = prune_wordpiece(minilm, texts)
    torch.manual_seed(0)
    full = build_student("teacher-layers:2", 3, minilm, teacher_path=source).eval()
    torch.manual_seed(0)
    small = build_student("teacher-layers:2", 3, minilm, teacher_path=source).eval()
    keep_embedding_rows(small, pruned.teacher_ids)
    assert small.model.config.vocab_size == pruned.size
    a = predict_probs(full, minilm, texts[:40])
    b = predict_probs(small, pruned.tokenizer, texts[:40])
    assert np.allclose(a, b, atol=1e-5)


def test_hidden_state_distillation_reads_the_teachers_own_ids(project, minilm):
    from kdstudio.core.train.runtime import Runtime
    from kdstudio.core.train.task import ClassificationTask

    with Project(project[0]) as p:
        texts = list(p.texts())[:10]
        pruned = prune_wordpiece(minilm, p.texts())
    task = ClassificationTask(TrainConfig(student="cnn"), ["a", "b", "c"], Runtime("cpu"))
    task.teacher_ids = pruned.teacher_ids
    for text in texts:
        mine = torch.tensor([pruned.tokenizer(text)["input_ids"]])
        assert task._to_teacher_ids(mine).tolist() == [minilm(text)["input_ids"]]


def test_onnx_and_transformers_get_the_pruned_ids_and_kd_studios_predictions(project, tmp_path):
    import onnxruntime as ort
    from transformers import AutoTokenizer, pipeline

    from kdstudio.core.export import export

    path, runs = project
    with Project(path) as p:
        texts = [t for _, t, _ in p.examples("test")] + [ONLY_UNLABELED, "a sentence of brand new words"]
    run_to_end(export(path, runs["cnn", "pruned"], "onnx", tmp_path / "onnx"))
    model, tok, _ = load_student(run_folder(path, runs["cnn", "pruned"]))
    exported = AutoTokenizer.from_pretrained(str(tmp_path / "onnx"))
    assert exported(texts)["input_ids"] == tok(texts)["input_ids"]
    assert max(max(row) for row in exported(texts)["input_ids"]) < len(tok)
    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = predict_probs(model, tok, texts)
    for text, probs in zip(texts, expected, strict=True):
        enc = exported([text], return_tensors="np")
        logits = session.run(None, {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})[0]
        assert int(logits.argmax()) == int(probs.argmax())

    run_to_end(export(path, runs["transformer-tiny", "pruned"], "hf", tmp_path / "hf"))
    model, tok, meta = load_student(run_folder(path, runs["transformer-tiny", "pruned"]))
    classify = pipeline("text-classification", model=str(tmp_path / "hf"))
    expected = predict_probs(model, tok, texts)
    assert [r["label"] for r in classify(texts)] == [meta["labels"][int(i)] for i in expected.argmax(1)]


def test_resuming_a_pruned_run_keeps_its_vocabulary_and_ends_as_a_straight_run(project):
    from kdstudio.core.errors import Cancelled
    from kdstudio.core.events import CancelToken, Progress

    path, _ = project
    config = TrainConfig(student="cnn", epochs=2, batch_size=8, num_threads=1)
    straight = run_to_end(train(path, config))
    token = CancelToken()
    with pytest.raises(Cancelled):
        for event in train(path, config, cancel=token):
            if isinstance(event, Progress) and event.done == 3:
                token.cancel()
    with Project(path) as p:
        run_id = p.runs()[-1]["id"]
    resumed = run_to_end(train(path, TrainConfig(num_threads=1), resume_run=run_id))
    _, tok, meta = load_student(run_folder(path, resumed.run))
    assert meta["vocab"]["kind"] == "pruned" and len(tok) == meta["vocab"]["size"]
    assert resumed.valid_kl == straight.valid_kl and resumed.steps == straight.steps
