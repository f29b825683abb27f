"""Augmenting the transfer set: what variants look like, where they go, that a rerun or an
interrupted run ends the same, and that training takes them once the teacher has answered."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from fakes.tiny_models import KEYWORDS, LABELS, build_toy_project, fake_teacher_probs

from kdstudio.core.data import augment as augment_module
from kdstudio.core.data.augment import (
    AugmentConfig,
    augment,
    example_rng,
    remove_variants,
    variants,
    vocabulary,
)
from kdstudio.core.errors import Cancelled, ConfigError
from kdstudio.core.events import CancelToken, Progress, run_to_end
from kdstudio.core.store import Project, TeacherOutput
from kdstudio.core.train import TrainConfig, train


@pytest.fixture
def toy(tmp_path):
    project, _ = build_toy_project(tmp_path / "toy.kdproj")
    project.close()
    return tmp_path / "toy.kdproj"


def snapshot(path) -> list[tuple]:
    with Project(path) as project:
        return project.conn.execute("SELECT id, text, label, split, source, line FROM examples ORDER BY id").fetchall()


def test_variants_differ_from_the_text_and_from_each_other_and_repeat_for_a_seed():
    text = "the parcel from the courier came three days late and the box was broken"
    vocab = vocabulary([text, "refund my money back please", "the money came back"])
    assert vocab[0] == "the" and "money" in vocab and "parcel" not in vocab  # seen twice or more
    cfg = AugmentConfig(per_example=6, seed=3)
    first = variants(text, vocab, cfg, example_rng(3, 17))
    assert len(first) == 6 and len(set(first)) == 6 and text not in first
    assert first == variants(text, vocab, cfg, example_rng(3, 17))
    assert first != variants(text, vocab, cfg, example_rng(3, 18))
    words = set(text.split()) | set(vocab) | {cfg.mask_token}
    assert all(set(v.split()) <= words for v in first)
    assert any(cfg.mask_token in v.split() for v in first)


def test_ngram_sampling_keeps_a_contiguous_run_of_words():
    text = " ".join(f"w{i}" for i in range(20))
    cfg = AugmentConfig(per_example=20, p_mask=0.0, p_replace=0.0, p_ngram=1.0, max_ngram=4)
    for v in variants(text, [], cfg, random.Random(0)):
        parts = v.split()
        assert 1 <= len(parts) <= 4 and v in text
        first = int(parts[0][1:])
        assert parts == [f"w{i}" for i in range(first, first + len(parts))]


def test_a_one_word_text_yields_no_all_mask_variant():
    cfg = AugmentConfig(per_example=5, p_mask=1.0, p_replace=0.0)
    assert variants("refund", ["refund"], cfg, random.Random(0)) == []


def test_augment_adds_unlabeled_variants_of_train_and_unlabeled_only(toy):
    before = snapshot(toy)
    result = run_to_end(augment(toy, AugmentConfig(per_example=3)))
    after = snapshot(toy)
    assert after[: len(before)] == before  # nothing the user had is changed
    new = after[len(before):]
    assert len(new) == result.added == result.augmented_total > 0
    by_id = {row[0]: row for row in before}
    assert all(split == "unlabeled" and label is None and source == "augment" for _, _, label, split, source, _ in new)
    assert {by_id[parent][3] for *_, parent in new} == {"train", "unlabeled"}
    assert result.sources == 36 + 12
    with Project(toy) as project:
        assert project.info()["augmented"] == len(new)
        assert project.augmented_sources() <= {row[0] for row in before if row[3] in ("train", "unlabeled")}


def test_a_rerun_adds_nothing_and_an_interrupted_run_ends_like_an_uninterrupted_one(toy, tmp_path, monkeypatch):
    other, _ = build_toy_project(tmp_path / "other.kdproj")
    other.close()
    whole = run_to_end(augment(toy))
    assert run_to_end(augment(toy)).added == 0

    monkeypatch.setattr(augment_module, "CHUNK", 10)
    token = CancelToken()
    with pytest.raises(Cancelled):
        for event in augment(tmp_path / "other.kdproj", cancel=token):
            if isinstance(event, Progress) and event.done >= 20:
                token.cancel()
    partial = len(snapshot(tmp_path / "other.kdproj")) - 60
    assert 0 < partial < whole.added
    rest = run_to_end(augment(tmp_path / "other.kdproj"))
    assert rest.skipped_already_augmented >= 20
    assert snapshot(tmp_path / "other.kdproj") == snapshot(toy)


def test_a_variant_equal_to_a_test_text_is_dropped(tmp_path):
    project, _ = build_toy_project(tmp_path / "p.kdproj", sizes={"train": 6, "valid": 0, "test": 0, "unlabeled": 0},
                                   with_teacher=False)
    cfg = AugmentConfig(per_example=30, p_mask=0.0, p_replace=0.0, p_ngram=1.0, max_ngram=1)
    text = project.examples("train")[0][1]
    word = variants(text, [], cfg, example_rng(0, 1))[0]
    with project.transaction():  # one of the variants the first text will get is a test text
        project.insert_examples([(word, 0, None, "test", "toy", 1, "h-test")])
    project.close()
    result = run_to_end(augment(tmp_path / "p.kdproj", cfg))
    with Project(tmp_path / "p.kdproj") as project:
        texts = [t for _, t, _ in project.examples(ids=sorted(project.augmented_ids()))]
    assert result.duplicates_dropped >= 1 and word not in texts


def test_remove_deletes_the_variants_and_the_answers_on_them(toy):
    before = snapshot(toy)
    run_to_end(augment(toy))
    with Project(toy) as project:
        teacher = project.teachers()[0]["id"]
        n_answers = project.count_outputs(teacher)["n"]
        rng = random.Random(0)
        project.save_outputs(teacher, [TeacherOutput(example=i, probs=fake_teacher_probs(0, rng))
                                       for i in sorted(project.augmented_ids())])
        assert project.count_outputs(teacher)["n"] > n_answers
    assert run_to_end(remove_variants(toy)).removed > 0
    assert snapshot(toy) == before
    with Project(toy) as project:
        assert project.count_outputs(teacher)["n"] == n_answers


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (AugmentConfig(per_example=0), "--per-example"),
        (AugmentConfig(p_mask=1.5), "--p-mask"),
        (AugmentConfig(p_mask=0.6, p_replace=0.6), "together"),
        (AugmentConfig(splits=("test",)), "never augmented"),
        (AugmentConfig(splits=("everything",)), "train and/or unlabeled"),
    ],
)
def test_bad_settings_are_one_line_errors_and_change_nothing(toy, config, message):
    before = snapshot(toy)
    with pytest.raises(ConfigError, match=message):
        run_to_end(augment(toy, config))
    assert snapshot(toy) == before


def test_a_kd_run_trains_on_the_variants_the_teacher_answered(toy):
    base = run_to_end(train(toy, TrainConfig(student="cnn", epochs=1, batch_size=8, num_threads=1)))
    run_to_end(augment(toy, AugmentConfig(per_example=2)))
    with Project(toy) as project:
        teacher = project.teachers()[0]["id"]
        rng = random.Random(1)
        outputs = []
        for ex_id, text, _ in project.examples(ids=sorted(project.augmented_ids())):
            hits = [i for i, lab in enumerate(LABELS) if any(w in text.split() for w in KEYWORDS[lab])]
            outputs.append(TeacherOutput(example=ex_id, probs=fake_teacher_probs(hits[0] if hits else 0, rng)))
        project.save_outputs(teacher, outputs)
        n_variants = len(outputs)
    grown = run_to_end(train(toy, TrainConfig(student="cnn", epochs=1, batch_size=8, num_threads=1)))
    assert grown.n_train == base.n_train + n_variants
    with Project(toy) as project:  # the viewer's predictions cover the user's own texts only
        predicted = {p["example"] for p in project.predictions(grown.run, split="unlabeled")}
        assert predicted and not predicted & project.augmented_ids()


def test_cli_augment_prints_json_and_a_bad_value_in_one_line(toy):
    done = subprocess.run([sys.executable, "-m", "kdstudio", "augment", str(toy), "--per-example", "2", "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"sources", "added", "duplicates_dropped", "augmented_total", "settings"} <= set(result)
    assert result["settings"]["per_example"] == 2
    bad = subprocess.run([sys.executable, "-m", "kdstudio", "augment", str(toy), "--p-ngram", "7"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--p-ngram" in bad.stderr
    removed = subprocess.run([sys.executable, "-m", "kdstudio", "augment", str(toy), "--remove", "--json"],
                             capture_output=True, text=True)
    assert json.loads(removed.stdout) == {"removed": result["augmented_total"]}
