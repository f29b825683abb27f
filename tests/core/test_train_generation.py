"""Training a generation student end to end on a toy project: sequence-level KD, references only,
token-level KD with a local lm: teacher, the batches' loss masks, resume, cancel, the stored
held-out completions and the one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from fakes.gen_project import build_gen_project, gen_texts
from fakes.tiny_models import save_tiny_causal_lm, tiny_bpe_tokenizer

from kdstudio.core.errors import Cancelled, ConfigError
from kdstudio.core.events import CancelToken, Metric, Progress, run_to_end
from kdstudio.core.generate import format_prompt
from kdstudio.core.store import Project
from kdstudio.core.students import load_student, resolve_student, students_for
from kdstudio.core.text_metrics import primary_score, score_completion
from kdstudio.core.train import TrainConfig, run_folder, train
from kdstudio.core.train.generation import GenerationRows, GenerationTask
from kdstudio.core.train.runtime import Runtime

FAST = {"student": "gpt-tiny", "epochs": 2, "batch_size": 8, "num_threads": 1}


@pytest.fixture
def gen(tmp_path):
    return build_gen_project(tmp_path / "gen.kdproj")[0]


def _metrics(events, name):
    return [e.value for e in events if isinstance(e, Metric) and e.name == name]


def _weights(path, run_id):
    model, _, _ = load_student(run_folder(path, run_id) / "last")
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_registry_keeps_each_task_to_its_students():
    assert [s.name for s in students_for("generation")] == ["hf:PATH_OR_ID", "gpt-tiny", "gpt-mini", "gpt-small"]
    assert "gpt-tiny" not in [s.name for s in students_for("classification")]
    with pytest.raises(ConfigError, match=r"^student 'bilstm' is for classification projects; for a generation "
                                          r"project choose one of: hf:PATH_OR_ID, gpt-tiny, gpt-mini, gpt-small$"):
        resolve_student("bilstm", "generation")
    assert resolve_student("hf:gpt2", "generation")[1] == "gpt2"


def test_a_classification_student_is_refused_for_a_generation_project(gen):
    with pytest.raises(ConfigError, match="is for classification projects"):
        next(train(gen, TrainConfig(student="cnn", num_threads=1)))


def test_sequence_kd_learns_the_teachers_completions_and_stores_scored_completions(gen):
    events = list(train(gen, TrainConfig(**{**FAST, "epochs": 4})))
    result = events[-1].result
    assert result.task == "generation" and result.kd == "sequence" and result.n_train == 32
    losses = _metrics(events, "train/loss")
    assert losses[-1] < losses[0] * 0.7
    valid = _metrics(events, "valid/loss")
    assert result.valid_loss == min(valid) and result.valid_perplexity == pytest.approx(np.exp(result.valid_loss))
    assert {"valid/ce", "valid/perplexity", "valid/token_accuracy", "train/ce"} <= {
        e.name for e in events if isinstance(e, Metric)}
    predicting = [e for e in events if isinstance(e, Progress) and e.stage == "predict"]
    assert [p.done for p in predicting] == list(range(1, 17)) and predicting[-1].total == 16
    assert result.n_test == 8 and 0 <= result.test_rouge_l_teacher <= 1 and 0 <= result.test_chrf_references <= 1
    assert result.test_latency_ms > 0 and result.test_tokens_per_s > 0
    assert result.valid_accuracy is None and result.test_accuracy is None
    with Project(gen) as project:
        rows = project.predictions(result.run)
        assert len(rows) == 16 and {r["example"] for r in rows} == {
            ex for split in ("valid", "test") for ex, _, _ in project.examples(split)}
        teacher = {o["id"]: o["completion"] for o in project.teacher_outputs(project.default_teacher())}
        refs = project.references_of()
        for row in rows:
            assert row["scores"] == score_completion(row["completion"], teacher=teacher[row["example"]],
                                                     references=refs[row["example"]])
            assert row["score"] == primary_score(row["scores"]) and row["confidence"] <= 0
        assert project.run(result.run)["summary"]["test_rouge_l_teacher"] == result.test_rouge_l_teacher
    _model, tokenizer, meta = load_student(result.checkpoint)
    assert meta["task"] == "generation" and meta["template"] == "{prompt}\n" and 8 <= meta["max_new_tokens"] <= 256
    assert meta["tokenizer_source"] == "bpe" and tokenizer.eos_token_id == tokenizer.pad_token_id == 0


def test_batches_put_the_loss_on_completion_tokens_only(tmp_path):
    tokenizer = tiny_bpe_tokenizer(gen_texts())
    task = GenerationTask(TrainConfig(max_length=40), [], Runtime("cpu"))
    rows = GenerationRows([1, 2], [", ".join(["name[Cotto], food[Chinese], area[riverside]"] * 3), "name[Zizzi]"],
                          ["Cotto serves Chinese food in the riverside.", "Zizzi is a place."])
    task.encode(rows, tokenizer)
    batch = task.batch(rows, np.array([0, 1]), "cpu")
    ids, labels = batch["input_ids"], batch["labels"]
    for row in range(2):
        n = int(batch["attention_mask"][row].sum())
        start = rows.starts[row]
        assert (labels[row, :start] == -100).all() and (labels[row, n:] == -100).all()
        assert torch.equal(labels[row, start:n], ids[row, start:n])
        assert int(ids[row, n - 1]) == tokenizer.eos_token_id
    # the second row is whole: prompt exactly as generate() feeds it, then the completion
    prompt = tokenizer(format_prompt("name[Zizzi]"), add_special_tokens=False)["input_ids"]
    assert rows.tokens[1][: rows.starts[1]] == prompt
    assert tokenizer.decode(rows.tokens[1][rows.starts[1]:-1]) == "Zizzi is a place."
    # the first is longer than --max-length 40: its prompt keeps its end
    full = tokenizer(format_prompt(rows.prompts[0]), add_special_tokens=False)["input_ids"]
    assert len(full) > 40 and len(rows.tokens[0]) == 40 and rows.tokens[0][: rows.starts[0]] == full[len(full) - rows.starts[0]:]
    out = task.forward(lambda input_ids, attention_mask, use_cache: type("O", (), {
        "logits": torch.zeros((*input_ids.shape, len(tokenizer)))}), batch)
    assert torch.equal(out["gold"], labels[:, 1:]) and out["logits"].shape[1] == labels.shape[1] - 1


def test_references_only_trains_on_every_reference(gen):
    result = run_to_end(train(gen, TrainConfig(**FAST, hard_labels=True)))
    assert result.kd == "references" and result.hard_labels
    assert result.n_train == 64 and result.n_valid == 16  # two references per prompt
    assert result.valid_perplexity is not None and result.test_rouge_l_references is not None


def test_reviews_replace_the_teacher_and_leave_excluded_prompts_out(gen):
    with Project(gen) as project:
        (first, _, _), (second, _, _) = project.examples("train")[:2]
        project.set_review(first, corrected_completion="A corrected description.")
        project.set_review(second, exclude=True)
        task = GenerationTask(TrainConfig(student="gpt-tiny"), [], Runtime("cpu"))
        data = task.load(project, teacher_id=project.default_teacher())
    assert second not in data.train.ids and data.reviews_used == 2
    assert data.train.targets[data.train.ids.index(first)] == "A corrected description."


def test_cancel_keeps_the_last_checkpoint_and_resume_equals_an_uninterrupted_run(gen):
    config = TrainConfig(**{**FAST, "epochs": 3}, eval_every=2)
    straight = run_to_end(train(gen, config))
    token = CancelToken()
    with pytest.raises(Cancelled):
        for event in train(gen, config, cancel=token):
            if isinstance(event, Progress) and event.done == 5:
                token.cancel()
    with Project(gen) as project:
        run_id = project.runs()[-1]["id"]
        assert project.run(run_id)["status"] == "cancelled"
    assert load_student(run_folder(gen, run_id) / "last")[2]["step"] == 5
    resumed = run_to_end(train(gen, TrainConfig(num_threads=1), resume_run=run_id))
    assert resumed.run == run_id and resumed.steps == straight.steps and resumed.best_step == straight.best_step
    assert resumed.valid_loss == straight.valid_loss
    assert resumed.test_rouge_l_teacher == straight.test_rouge_l_teacher
    wa, wb = _weights(gen, straight.run), _weights(gen, run_id)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def lm_project(tmp_path_factory):
    """A toy project whose second teacher is a local lm: teacher: a gpt-tiny trained on it (its run
    folder, as a user would name it), with that teacher's completions stored."""
    from kdstudio.core.store import TeacherOutput

    path = build_gen_project(tmp_path_factory.mktemp("lm") / "lm.kdproj")[0]
    first = run_to_end(train(path, TrainConfig(**{**FAST, "epochs": 6})))
    spec = f"lm:{run_folder(path, first.run)}"
    with Project(path) as project:
        teacher = project.upsert_teacher(spec, "lm", spec[3:], "lm-teacher-0001", {})
        project.save_outputs(teacher, [TeacherOutput(example=o["id"], completion=o["completion"])
                                       for o in project.teacher_outputs(project.default_teacher())])
    return path, teacher


def test_token_kd_matches_a_local_teachers_distribution(lm_project):
    path, teacher = lm_project
    events = list(train(path, TrainConfig(**{**FAST, "epochs": 3}, teacher=teacher, kd="token", temperature=2.0)))
    result = events[-1].result
    assert result.kd == "token"
    kd, kl = _metrics(events, "train/token_kd"), _metrics(events, "valid/kl")
    assert kd[-1] < kd[0] / 2 and kl[-1] < kl[0]
    assert _metrics(events, "train/ce") and _metrics(events, "valid/token_kd")
    _model, _tokenizer, meta = load_student(result.checkpoint)
    assert meta["tokenizer_source"] == "teacher" and meta["kd"] == "token"


def test_token_kd_refuses_different_vocabularies_in_one_line(lm_project, tmp_path):
    path, teacher = lm_project
    other = save_tiny_causal_lm(tmp_path / "other", texts=["quite other words here"] * 4)
    with Project(path) as project:
        runs = len(project.runs())
    with pytest.raises(ConfigError) as caught:
        next(train(path, TrainConfig(student=f"hf:{other}", teacher=teacher, kd="token", num_threads=1)))
    message = str(caught.value)
    assert "\n" not in message and f"hf:{other}" in message and "lm:" in message and "share a vocabulary" in message
    with Project(path) as project:
        assert len(project.runs()) == runs  # refused before a run was recorded


def test_token_kd_needs_a_local_lm_teacher(gen):
    with pytest.raises(ConfigError, match=r"--kd token needs a local causal LM teacher \(lm:PATH\); the run's "
                                          r"teacher is fake:writer"):
        next(train(gen, TrainConfig(**FAST, kd="token")))
    with pytest.raises(ConfigError, match="cannot go with --hard-labels"):
        TrainConfig(kd="token", hard_labels=True).validate()


def test_a_finished_run_serves_as_an_lm_teacher(gen):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kdstudio.core.teachers.local import resolve_model

    result = run_to_end(train(gen, TrainConfig(**{**FAST, "epochs": 1})))
    for given in (run_folder(gen, result.run), run_folder(gen, result.run) / "best"):
        source = resolve_model(str(given))
        assert source == str(run_folder(gen, result.run) / "best" / "model")
        assert AutoTokenizer.from_pretrained(source).eos_token_id == 0
        assert AutoModelForCausalLM.from_pretrained(source).config.model_type == "gpt2"


def test_cli_trains_a_generation_student_with_json(gen):
    out = subprocess.run([sys.executable, "-m", "kdstudio", "train", str(gen), "--student", "gpt-tiny", "--epochs",
                          "1", "--batch-size", "16", "--num-threads", "1", "--max-new-tokens", "12", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["task"] == "generation" and result["kd"] == "sequence" and result["n_test"] == 8
    assert {"test_rouge_l_teacher", "test_chrf_references", "valid_perplexity", "valid_accuracy"} <= set(result)
    assert load_student(result["checkpoint"])[2]["max_new_tokens"] == 12


def test_student_cards_measure_the_generation_students_with_the_runs_vocabulary(gen):
    from kdstudio.core.student_sizes import measure_for_project, run_vocabulary

    vocabulary = run_vocabulary(gen, TrainConfig(student="gpt-tiny"))
    assert vocabulary.tokenizer == "bpe" and 256 < vocabulary.size < 1000
    figures = run_to_end(measure_for_project(["gpt-tiny"], gen))
    assert figures.students[0].name == "gpt-tiny" and figures.students[0].params > 0
