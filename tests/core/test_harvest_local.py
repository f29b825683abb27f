"""The harvest with local teachers (hf:, embed:, lm:) built from tiny configs, and embed:minilm."""

from __future__ import annotations

import dataclasses
import json

import pytest
from fakes.tiny_models import LABELS, build_toy_project, save_tiny_bert

from kdstudio.core.errors import Cancelled, ConfigError, TeacherError
from kdstudio.core.events import CancelToken, Progress, run_to_end
from kdstudio.core.harvest import HarvestConfig, HarvestResult, harvest
from kdstudio.core.store import Project


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    path = folder / "toy.kdproj"
    build_toy_project(path, sizes={"train": 60, "valid": 30, "test": 30, "unlabeled": 0})
    return path


def fresh_copy(src, tmp_path):
    """A copy of the toy project (it holds a fake teacher's outputs; tests look at their own teacher)."""
    dst = tmp_path / "copy.kdproj"
    with Project(src) as p:
        p.conn.execute(f"VACUUM INTO '{dst}'")
    return dst


@pytest.fixture
def classifier(tmp_path):
    """A tiny sequence classifier whose id2label names the toy labels in another case and order."""
    from transformers import AutoConfig

    folder = save_tiny_bert(tmp_path / "clf", n_labels=3)
    config = AutoConfig.from_pretrained(folder)
    config.id2label = {0: "MONEY", 1: "Sports", 2: "weather"}
    config.label2id = {v: k for k, v in config.id2label.items()}
    config.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_lm(tmp_path):
    import torch
    from fakes.tiny_models import tiny_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tok = tiny_tokenizer()
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=2, eos_token_id=3, pad_token_id=0))
    folder = tmp_path / "lm"
    model.save_pretrained(folder)
    tok.save_pretrained(str(folder))
    return folder


def test_hf_teacher_maps_labels_by_name_ignoring_case(toy, tmp_path, classifier):
    project = fresh_copy(toy, tmp_path)
    result = run_to_end(harvest(project, HarvestConfig(teacher=f"hf:{classifier}")))
    assert result.n_ok == 120 and result.n_failed == 0
    with Project(project) as p:
        rows = p.teacher_outputs(result.teacher)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(classifier).eval()
    tok = AutoTokenizer.from_pretrained(classifier)
    import torch

    with torch.no_grad():
        direct = torch.softmax(model(**tok([rows[0]["text"]], return_tensors="pt")).logits, -1)[0].tolist()
    # project order is sports, weather, money; the model's is MONEY, Sports, weather
    expected = [direct[1], direct[2], direct[0]]
    assert rows[0]["probs"] == pytest.approx(expected, abs=1e-5)
    assert all(abs(sum(r["probs"]) - 1) < 1e-5 for r in rows)


def test_hf_teacher_with_unmatched_labels_is_a_clear_error_not_a_guess(toy, tmp_path):
    folder = save_tiny_bert(tmp_path / "generic", n_labels=3)  # LABEL_0, LABEL_1, LABEL_2
    project = fresh_copy(toy, tmp_path)
    with pytest.raises(TeacherError, match=r"do not cover the project's.*--label-map"):
        run_to_end(harvest(project, HarvestConfig(teacher=f"hf:{folder}")))
    mapping = {"LABEL_0": "sports", "LABEL_1": "weather", "LABEL_2": "money"}
    result = run_to_end(harvest(project, HarvestConfig(teacher=f"hf:{folder}", options={"label_map": mapping}, limit=5)))
    assert result.n_ok == 5


def test_rerun_asks_only_for_what_is_missing(toy, tmp_path, classifier):
    project = fresh_copy(toy, tmp_path)
    first = run_to_end(harvest(project, HarvestConfig(teacher=f"hf:{classifier}", limit=50)))
    second = run_to_end(harvest(project, HarvestConfig(teacher=f"hf:{classifier}")))
    third = run_to_end(harvest(project, HarvestConfig(teacher=f"hf:{classifier}")))
    assert (first.n_ok, second.n_ok, third.n_ok) == (50, 70, 0)
    assert first.teacher == second.teacher == third.teacher
    with Project(project) as p:
        rows = p.teacher_outputs(first.teacher)
    assert len(rows) == 120 and max(r["attempts"] for r in rows) == 1


def test_cancel_keeps_every_answer_already_stored(toy, tmp_path, classifier):
    project = fresh_copy(toy, tmp_path)
    token = CancelToken()
    seen = 0
    with pytest.raises(Cancelled):
        for event in harvest(project, HarvestConfig(teacher=f"hf:{classifier}", options={"batch_size": 8}), cancel=token):
            if isinstance(event, Progress) and event.stage == "harvest":
                seen = event.done
                token.cancel()
    with Project(project) as p:
        teacher = next(t["id"] for t in p.teachers() if t["spec"].startswith("hf:"))
        stored = p.count_outputs(teacher)["n"]
    assert stored == seen and 0 < seen < 120
    assert run_to_end(harvest(project, HarvestConfig(teacher=f"hf:{classifier}"))).n_ok == 120 - seen


def test_embedding_probe_is_fitted_once_and_reused(toy, tmp_path):
    encoder = save_tiny_bert(tmp_path / "enc")
    project = fresh_copy(toy, tmp_path)
    first = run_to_end(harvest(project, HarvestConfig(teacher=f"embed:{encoder}", splits=("train", "valid"))))
    with Project(project) as p:
        counts = p.split_counts()
        assert first.n_ok == first.answered_total == counts["train"] + counts["valid"]  # each answered once
        assert first.n_ok == len(p.teacher_outputs(first.teacher))  # n_ok counts the rows stored
        teacher = p.teacher(first.teacher)
        assert teacher["settings"]["mode"] == "probe"
        state = p.teacher_state(first.teacher)
    assert state
    second = run_to_end(harvest(project, HarvestConfig(teacher=f"embed:{encoder}", splits=("test",))))
    assert second.teacher == first.teacher and second.n_ok == 30
    with Project(project) as p:
        assert p.teacher_state(first.teacher) == state


def test_zero_shot_mode_without_gold_labels(tmp_path):
    encoder = save_tiny_bert(tmp_path / "enc")
    path = tmp_path / "p.kdproj"
    with Project.create(path, labels=LABELS) as p, p.transaction():
        p.insert_examples([(f"the team won {i}", None, None, "unlabeled", "t", i, f"h{i}") for i in range(10)])
    result = run_to_end(harvest(path, HarvestConfig(teacher=f"embed:{encoder}")))
    with Project(path) as p:
        assert p.teacher(result.teacher)["settings"]["mode"] == "zero-shot"
        assert len(p.teacher_outputs(result.teacher)) == 10


def test_lm_teacher_scores_label_verbalisations_into_a_distribution(toy, tmp_path, tiny_lm):
    project = fresh_copy(toy, tmp_path)
    result = run_to_end(harvest(project, HarvestConfig(teacher=f"lm:{tiny_lm}", limit=6)))
    with Project(project) as p:
        rows = p.teacher_outputs(result.teacher)
    assert len(rows) == 6 and all(abs(sum(r["probs"]) - 1) < 1e-5 and len(r["probs"]) == 3 for r in rows)
    assert {r["method"] for r in rows} == {"label-likelihood"}


def test_lm_teacher_writes_completions_for_generation(tmp_path, tiny_lm):
    path = tmp_path / "gen.kdproj"
    with Project.create(path, "generation") as p, p.transaction():
        p.insert_examples([(f"the team {w}", None, None, "train", "t", i, f"h{i}") for i, w in
                           enumerate(["won", "lost", "played"])])
    result = run_to_end(harvest(path, HarvestConfig(teacher=f"lm:{tiny_lm}", options={"max_new_tokens": 5, "keep_cut_off": True})))
    with Project(path) as p:
        rows = p.teacher_outputs(result.teacher, status=None)
    # a random model writes special tokens only: an empty completion is stored as failed, with the reason
    assert result.n_ok + result.n_failed == 3 == len(rows)
    assert all(isinstance(r["completion"], str) if r["status"] == "ok" else "empty completion" in r["error"]
               for r in rows)


def test_bad_spec_split_and_batch_api_on_a_local_teacher_are_clear_errors(toy, tmp_path, classifier):
    project = fresh_copy(toy, tmp_path)
    with pytest.raises(ConfigError, match="KIND:MODEL"):
        run_to_end(harvest(project, HarvestConfig(teacher="gpt4")))
    with pytest.raises(ConfigError, match="unknown split"):
        run_to_end(harvest(project, HarvestConfig(teacher=f"hf:{classifier}", splits=("tests",))))
    with pytest.raises(ConfigError, match="--batch-api needs a claude"):
        run_to_end(harvest(project, HarvestConfig(teacher=f"hf:{classifier}", batch_api=True)))
    with pytest.raises(TeacherError, match="cannot load model"):
        run_to_end(harvest(project, HarvestConfig(teacher=f"hf:{tmp_path / 'nowhere'}")))


def test_dry_run_for_a_local_teacher_costs_nothing_and_writes_no_outputs(toy, tmp_path, classifier):
    project = fresh_copy(toy, tmp_path)
    result = run_to_end(harvest(project, HarvestConfig(teacher=f"hf:{classifier}", dry_run=True)))
    assert result.dry_run and result.n == 120 and result.cost_usd == 0
    with Project(project) as p:
        assert p.count_outputs(result.teacher)["n"] == 0


def test_minilm_probe_is_a_useful_teacher_on_sst2(tmp_path, datasets):
    from kdstudio.core.data import import_file

    path = tmp_path / "sst2.kdproj"
    Project.create(path).close()
    run_to_end(import_file(path, datasets / "sst2/stsa.binary.dev", split="train"))
    run_to_end(import_file(path, datasets / "sst2/stsa.binary.test", split="test"))
    result = run_to_end(harvest(path, HarvestConfig(teacher="embed:minilm", splits=("test",), limit=400)))
    with Project(path) as p:
        rows = p.teacher_outputs(result.teacher)
    accuracy = sum(r["label"] == r["gold"] for r in rows) / len(rows)
    assert accuracy > 0.72, accuracy  # ~0.8 with a probe on 872 sentences


def test_harvest_cli_prints_the_json_keys(toy, tmp_path, classifier):
    import subprocess
    import sys

    project = fresh_copy(toy, tmp_path)
    out = subprocess.run([sys.executable, "-m", "kdstudio", "harvest", str(project), "--teacher", f"hf:{classifier}",
                          "--limit", "7", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert {"n_ok", "n_failed", "input_tokens", "output_tokens", "cost_usd", "seconds"} <= set(result)
    assert list(result) == [f.name for f in dataclasses.fields(HarvestResult)]
    assert result["n_ok"] == 7


def test_token_batches_keep_every_item_once_sorted_within_the_cpu_budget():
    from fakes.tiny_models import tiny_tokenizer

    from kdstudio.core.teachers.local import CPU_TOKENS_PER_BATCH, token_batches

    tok = tiny_tokenizer()
    items = [(i, " ".join(["team"] * (1 + (i * 7) % 60))) for i in range(300)]
    batches = list(token_batches(tok, items, max_length=64, batch_size=32, device="cpu"))
    assert sorted(i for b in batches for i, _ in b) == list(range(300))
    for batch in batches:
        lengths = [len(tok(t, truncation=True, max_length=64)["input_ids"]) for _, t in batch]
        assert lengths == sorted(lengths, reverse=True)
        assert len(batch) <= 32 and (len(batch) == 1 or len(batch) * lengths[0] <= CPU_TOKENS_PER_BATCH)


def test_run_batches_keeps_order_and_stops_on_cancel():
    import torch

    from kdstudio.core.teachers.local import run_batches

    threads = torch.get_num_threads()
    batches = [[(i, str(i))] for i in range(20)]
    out = list(run_batches(lambda b: b[0][0] * 2, iter(batches), device="cpu", cancel=CancelToken()))
    assert [r for _, r in out] == [2 * i for i in range(20)] and [b for b, _ in out] == batches
    cancel, seen = CancelToken(), []
    with pytest.raises(Cancelled):
        for batch, _ in run_batches(lambda b: b, iter(batches), device="cpu", cancel=cancel):
            seen.append(batch)
            if len(seen) == 3:
                cancel.cancel()
    assert len(seen) == 3 and torch.get_num_threads() == threads
