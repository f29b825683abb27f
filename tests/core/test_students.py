"""Students: the registry, building each architecture, saving/loading and prediction."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes.tiny_models import LABELS, save_tiny_bert, tiny_tokenizer

from kdstudio.core.errors import ConfigError
from kdstudio.core.students import (
    STUDENTS,
    build_student,
    count_parameters,
    default_lr,
    load_student,
    measure_students,
    parse_student_spec,
    predict_probs,
    save_student,
)
from kdstudio.core.students.tokenizer import teacher_model_path, train_wordpiece

TEXTS = [
    "the team won the match",
    "rain and storm today",
    "bank loan fee",
    "a big new card price again",
    "coach",
    "snow snow snow cold wind and a storm again today",
]


@pytest.mark.parametrize(
    "spec, parsed",
    [
        ("bilstm", ("bilstm", "")),
        ("cnn", ("cnn", "")),
        ("transformer-mini", ("transformer", "mini")),
        ("hf:./some/model", ("hf", "./some/model")),
        ("teacher-layers:3", ("teacher-layers", "3")),
    ],
)
def test_every_registered_spec_parses(spec, parsed):
    assert parse_student_spec(spec) == parsed


@pytest.mark.parametrize(
    "spec", ["lstm", "transformer-huge", "hf:", "teacher-layers:0", "teacher-layers:x", ""]
)
def test_unknown_student_spec_is_a_config_error_naming_the_choices(spec):
    with pytest.raises(ConfigError, match="bilstm, cnn"):
        parse_student_spec(spec)


def _documented_specs() -> list[str]:
    """The student specs the README's ``kdstudio train`` section lists, placeholders filled in."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    paragraph = readme[readme.index("Students: `bilstm`"):].split("The tokenizer is")[0]
    specs = []
    for written in re.findall(r"`([\w:|-]+)`", paragraph):
        stem, _, variants = written.rpartition("-") if "|" in written else ("", "", written)
        for name in variants.split("|"):
            specs.append((f"{stem}-{name}" if stem else name).replace("PATH_OR_ID", "./m").replace(":K", ":2"))
    return specs


def test_the_registry_resolves_every_documented_spec_and_documents_every_entry():
    from kdstudio.core.students.registry import resolve_student

    specs = _documented_specs()
    assert {"bilstm", "cnn", "transformer-tiny", "transformer-small", "hf:./m", "teacher-layers:2"} <= set(specs)
    entries = {resolve_student(spec)[0].name for spec in specs}
    assert entries == {info.name for info in STUDENTS.values()}
    for spec in specs:
        info, _arg = resolve_student(spec)
        assert info.build is not None and info.description
    assert resolve_student("transformer-mini")[1] == "mini" and resolve_student("hf:./m")[1] == "./m"


def test_registry_and_default_learning_rates():
    assert {"bilstm", "cnn", "transformer-tiny", "transformer-mini", "transformer-small"} <= set(
        STUDENTS
    )
    assert default_lr("bilstm") > default_lr("transformer-tiny") > default_lr("hf:x")


@pytest.mark.parametrize("spec", ["bilstm", "cnn", "transformer-tiny"])
def test_scratch_students_map_token_ids_to_logits(spec):
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    model = build_student(spec, 3, tok, labels=LABELS).eval()
    enc = tok(TEXTS[:3], padding=True, return_tensors="pt")
    logits = model(enc["input_ids"], enc["attention_mask"])
    assert logits.shape == (3, 3)
    assert count_parameters(model) > 1000


@pytest.mark.parametrize("spec", ["bilstm", "cnn"])
def test_predictions_do_not_depend_on_how_texts_are_batched(spec):
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    model = build_student(spec, 3, tok)
    alone = predict_probs(model, tok, TEXTS, batch_size=1)
    together = predict_probs(model, tok, TEXTS, batch_size=64)
    assert alone.shape == (len(TEXTS), 3)
    np.testing.assert_allclose(alone, together, atol=1e-5)
    np.testing.assert_allclose(together.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("spec", ["cnn", "transformer-tiny"])
def test_saved_student_loads_back_with_the_same_predictions(tmp_path, spec):
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    model = build_student(spec, 3, tok, labels=LABELS)
    before = predict_probs(model, tok, TEXTS)
    save_student(
        model, tok, tmp_path / "run" / "best", {"spec": spec, "labels": LABELS, "max_length": 64}
    )
    loaded, loaded_tok, meta = load_student(tmp_path / "run")  # a run folder resolves to best/
    assert meta["spec"] == spec and meta["labels"] == LABELS and meta["arch"] in ("cnn", "hf")
    np.testing.assert_allclose(predict_probs(loaded, loaded_tok, TEXTS), before, atol=1e-6)


def test_hf_student_gets_a_head_sized_to_the_project_labels(tmp_path):
    folder = save_tiny_bert(tmp_path / "pretrained", n_labels=5)
    model = build_student(f"hf:{folder}", 3, None, labels=LABELS)
    assert model.model.config.num_labels == 3
    assert model.model.config.id2label[2] == "money"


def test_missing_pretrained_student_is_a_clear_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot load the pretrained student"):
        build_student(f"hf:{tmp_path / 'nothing-here'}", 3, None)


def test_teacher_layers_keeps_alternate_layers_of_the_teacher(tmp_path):
    teacher = save_tiny_bert(tmp_path / "teacher", n_labels=3, layers=4)
    student = build_student("teacher-layers:2", 3, None, teacher_path=str(teacher))
    from transformers import AutoModelForSequenceClassification

    original = AutoModelForSequenceClassification.from_pretrained(str(teacher))
    kept = student.model.bert.encoder.layer
    assert len(kept) == 2 and student.model.config.num_hidden_layers == 2
    for mine, theirs in zip(
        kept, [original.bert.encoder.layer[0], original.bert.encoder.layer[2]], strict=True
    ):
        for a, b in zip(mine.parameters(), theirs.parameters(), strict=True):
            assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="teacher has 4 layers"):
        build_student("teacher-layers:5", 3, None, teacher_path=str(teacher))


def test_teacher_layers_without_a_local_teacher_is_a_config_error():
    with pytest.raises(ConfigError, match="local transformer teacher"):
        build_student("teacher-layers:2", 3, None, teacher_path=None)


def test_wordpiece_is_trained_on_the_project_texts():
    tok = train_wordpiece(TEXTS * 3, vocab_size=200)
    ids = tok("the storm")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "the", "storm", "[SEP]"]
    assert tok.pad_token_id == 0


def test_teacher_model_path_resolves_local_teachers_only():
    assert teacher_model_path("hf:./m") == "./m"
    assert teacher_model_path("claude:claude-haiku-5-5") is None
    assert teacher_model_path(None) is None
    assert teacher_model_path("embed:minilm").endswith("model")


def test_wordpiece_vocabulary_is_the_same_every_time():
    texts = [f"{w} unbelievable storming bankers {i}" for i, w in enumerate(TEXTS * 5)]
    assert train_wordpiece(texts, 300).get_vocab() == train_wordpiece(texts, 300).get_vocab()


@pytest.mark.parametrize("spec, teacher_hidden", [("bilstm", 32), ("transformer-tiny", 256)])
def test_student_embeddings_start_from_the_teachers_principal_directions(tmp_path, spec, teacher_hidden):
    from transformers import AutoModel

    from kdstudio.core.students import init_embeddings_from_teacher, input_embeddings

    teacher = save_tiny_bert(tmp_path / "teacher", hidden=teacher_hidden)
    torch.manual_seed(0)
    student = build_student(spec, 3, tiny_tokenizer(), labels=LABELS)
    table = input_embeddings(student)
    fresh_std = float(table.weight.detach().std())
    line = init_embeddings_from_teacher(student, str(teacher))
    width = table.weight.shape[1]
    kept = min(width, teacher_hidden)
    assert f"{teacher_hidden} → {kept}" in line

    source = AutoModel.from_pretrained(str(teacher)).get_input_embeddings().weight.detach()
    centred = source - source.mean(0)
    mine = table.weight.detach()[:, :kept]
    rows = [i for i in range(len(source)) if i != table.padding_idx]
    # the projection keeps the leading directions: column variances come in decreasing order
    variances = mine[rows].var(0)
    assert torch.all(variances[:-1] >= variances[1:] - 1e-6)
    if kept == teacher_hidden:  # nothing dropped: the same geometry, up to one scale factor
        gram_student, gram_teacher = mine @ mine.T, centred @ centred.T
        scale = gram_student[rows][:, rows].trace() / gram_teacher[rows][:, rows].trace()
        assert torch.allclose(gram_student[rows][:, rows], scale * gram_teacher[rows][:, rows], atol=1e-4)
    else:  # the spread of the student's own initialisation is kept
        assert float(mine.std()) == pytest.approx(fresh_std, rel=0.05)
    if table.padding_idx is not None:
        assert torch.count_nonzero(table.weight[table.padding_idx]) == 0


@pytest.mark.parametrize("saved_with", ["plain", "padding and truncation"])
def test_encoding_matches_the_tokenizer_wrapper_cut_at_max_length(saved_with):
    from kdstudio.core.students.tokenizer import encode

    tok = tiny_tokenizer()
    if saved_with != "plain":  # as many hub tokenizers are saved: the fast path must not pad or cut early
        tok.backend_tokenizer.enable_padding(length=40)
        tok.backend_tokenizer.enable_truncation(6)
    texts = [*TEXTS, "team " * 80, "", "goal"]
    for max_length in (4, 9, 128):
        expected = tok(texts, truncation=True, max_length=max_length)["input_ids"]
        assert encode(tok, texts, max_length) == expected
        assert [encode(tok, [t], max_length)[0] for t in texts] == expected


def test_measuring_students_gives_each_ones_parameters_size_and_latency():
    from kdstudio.core.events import Progress, run_to_end
    from kdstudio.core.students import StudentFigures

    events = list(measure_students(["cnn", "bilstm"]))
    assert [e.done for e in events if isinstance(e, Progress)] == [1, 2]
    figures = run_to_end(iter(events))
    assert isinstance(figures, StudentFigures)
    assert [f.name for f in figures.students] == ["cnn", "bilstm"]
    cnn = figures.students[0]
    assert cnn.params == count_parameters(build_student("cnn", 2, tiny_vocabulary(8000)))
    assert cnn.size_mb == pytest.approx(cnn.params * 4 / 1e6) and cnn.latency_ms > 0
    assert figures.to_json()["students"][1].keys() == {"name", "params", "size_mb", "latency_ms"}


def tiny_vocabulary(size: int):
    """A stand-in tokenizer of ``size`` pieces (what ``measure_students`` builds presets with)."""

    class Vocabulary:
        pad_token_id = 0

        def __len__(self) -> int:
            return size

    return Vocabulary()
