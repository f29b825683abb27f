"""The student cards' parameter counts are the run's: the presets are measured with the
vocabulary and labels a training run on the project uses."""

from __future__ import annotations

from fakes.tiny_models import build_toy_project, save_tiny_bert

from kdstudio.core.events import run_to_end
from kdstudio.core.harvest import HarvestConfig, harvest
from kdstudio.core.student_sizes import measure_for_project, run_vocabulary
from kdstudio.core.train import TrainConfig, train

FAST = {"epochs": 1, "batch_size": 8, "num_threads": 1}


def test_the_card_counts_the_parameters_a_wordpiece_run_trains(tmp_path):
    project, _teacher = build_toy_project(tmp_path / "toy.kdproj")
    project.close()
    config = TrainConfig(student="cnn", vocab_size=500, **FAST)
    figures = run_to_end(measure_for_project(["cnn", "bilstm"], tmp_path / "toy.kdproj", config))
    assert figures.tokenizer == "wordpiece" and figures.vocabulary < 500  # a small project: fewer pieces
    run = run_to_end(train(tmp_path / "toy.kdproj", config))
    assert figures.students[0].params == run.params
    assert figures.students[0].size_mb == run.params * 4 / 1e6


def test_the_card_counts_the_parameters_of_a_run_on_the_teachers_tokenizer(tmp_path):
    project, _teacher = build_toy_project(tmp_path / "toy.kdproj", sizes={"train": 40, "valid": 20, "test": 10,
                                                                          "unlabeled": 0})
    project.close()
    encoder = save_tiny_bert(tmp_path / "enc")
    teacher = run_to_end(harvest(tmp_path / "toy.kdproj",
                                 HarvestConfig(teacher=f"embed:{encoder}", splits=("train", "valid")))).teacher
    config = TrainConfig(student="cnn", teacher=teacher, **FAST)
    vocabulary = run_vocabulary(tmp_path / "toy.kdproj", config)
    assert vocabulary.tokenizer == "pruned" and vocabulary.size < vocabulary.teacher_size
    figures = run_to_end(measure_for_project(["cnn"], tmp_path / "toy.kdproj", config))
    run = run_to_end(train(tmp_path / "toy.kdproj", config))
    assert figures.students[0].params == run.params and figures.vocabulary == vocabulary.size


def test_the_card_counts_the_pruned_vocabulary_a_run_keeps_and_the_full_one_when_asked(tmp_path):
    project, teacher = build_toy_project(tmp_path / "toy.kdproj", teacher_spec="embed:minilm")
    project.close()
    for vocab, kind in (("pruned", "pruned"), ("full", "teacher")):
        config = TrainConfig(student="cnn", teacher=teacher, vocab=vocab, **FAST)
        figures = run_to_end(measure_for_project(["cnn"], tmp_path / "toy.kdproj", config))
        run = run_to_end(train(tmp_path / "toy.kdproj", config))
        assert figures.tokenizer == kind and figures.students[0].params == run.params
    assert figures.vocabulary == 30522
