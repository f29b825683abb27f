"""Training runs end to end on a toy project: records, checkpoints, resume, cancel, failures."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes.tiny_models import LABELS, build_toy_project, save_tiny_bert, tiny_tokenizer

from kdstudio.core.errors import Cancelled, ConfigError
from kdstudio.core.events import CancelToken, Finished, Log, Metric, Progress, run_to_end
from kdstudio.core.store import Project
from kdstudio.core.students import load_student, predict_probs
from kdstudio.core.train import TrainConfig, TrainingError, TrainResult, run_folder, train

README = Path(__file__).resolve().parents[2] / "README.md"

FAST = {"epochs": 2, "batch_size": 8, "num_threads": 1}


@pytest.fixture
def toy(tmp_path):
    project, _teacher_id = build_toy_project(tmp_path / "toy.kdproj")
    project.close()
    return tmp_path / "toy.kdproj"


def _weights(project_path, run_id, which="last"):
    model, _, _ = load_student(run_folder(project_path, run_id) / which)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_kd_run_records_metrics_checkpoints_and_test_predictions(toy):
    events = list(train(toy, TrainConfig(student="bilstm", **FAST)))
    result = events[-1].result
    assert isinstance(events[-1], Finished)
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.done for p in progress] == list(range(1, result.steps + 1))
    names = {e.name for e in events if isinstance(e, Metric)}
    assert {
        "train/loss",
        "train/kd",
        "train/ce",
        "train/lr",
        "valid/accuracy",
        "valid/agreement",
        "valid/kl",
        "valid/loss",
    } <= names
    assert {
        "run",
        "best_step",
        "valid_accuracy",
        "valid_agreement",
        "seconds",
        "reviews_used",
    } <= set(result.to_json())
    with Project(toy) as project:
        run = project.run(result.run)
        assert run["status"] == "finished" and run["summary"]["best_step"] == result.best_step
        assert run["config"]["temperature"] == 3.0 and run["config"]["lr"] == 2e-3
        assert {r[4] for r in project.metrics(result.run)} >= names
        predictions = project.predictions(result.run, split="test")
        assert len(predictions) == len(project.examples("test"))
        # the transfer set is predicted too, for the comparison viewer
        assert len(project.predictions(result.run, split="train")) == len(project.examples("train"))
        p = predictions[0]
        assert len(p["probs"]) == 3 and p["label"] == int(np.argmax(p["probs"]))
        assert p["confidence"] == pytest.approx(max(p["probs"]), abs=1e-5)
        assert p["margin"] >= 0 and p["entropy"] >= 0 and p["kl"] is not None
    folder = run_folder(toy, result.run)
    assert (folder / "best" / "trainer_state.pt").is_file() and (
        folder / "last" / "student.json"
    ).is_file()
    model, tok, meta = load_student(folder)
    assert meta["step"] == result.best_step and meta["tokenizer_source"] == "wordpiece"
    assert predict_probs(model, tok, ["the team won"]).shape == (1, 3)


def test_hard_label_run_trains_on_gold_only(toy):
    result = run_to_end(train(toy, TrainConfig(student="cnn", hard_labels=True, **FAST)))
    assert result.hard_labels and result.n_train == 36  # the 12 unlabeled rows have no gold
    assert result.valid_accuracy is not None


def test_seeded_runs_on_cpu_are_identical(toy):
    a = run_to_end(train(toy, TrainConfig(student="transformer-tiny", **FAST)))
    b = run_to_end(train(toy, TrainConfig(student="transformer-tiny", **FAST)))
    assert a.valid_accuracy == b.valid_accuracy and a.valid_kl == b.valid_kl
    wa, wb = _weights(toy, a.run), _weights(toy, b.run)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_cancel_keeps_the_last_checkpoint_and_resume_continues_exactly(toy):
    config = TrainConfig(
        student="bilstm", epochs=3, batch_size=8, grad_accum=2, num_threads=1, eval_every=2
    )
    straight = run_to_end(train(toy, config))
    token = CancelToken()
    seen = []
    with pytest.raises(Cancelled):
        for event in train(toy, config, cancel=token):
            if isinstance(event, Progress):
                seen.append(event.done)
                if event.done == 3:  # mid-epoch, between evaluations
                    token.cancel()
    assert seen[-1] == 3
    with Project(toy) as project:
        run_id = project.runs()[-1]["id"]
        assert project.run(run_id)["status"] == "cancelled"
    assert load_student(run_folder(toy, run_id) / "last")[2]["step"] == 3
    resumed = run_to_end(train(toy, TrainConfig(num_threads=1), resume_run=run_id))
    assert resumed.run == run_id and resumed.steps == straight.steps
    assert (
        resumed.valid_kl == straight.valid_kl
        and resumed.best_step == straight.best_step
    )
    wa, wb = _weights(toy, straight.run), _weights(toy, run_id)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    with Project(toy) as project:
        steps = [r[1] for r in project.metrics(run_id, "train/loss")]
        assert steps == sorted(set(steps))  # no step logged twice after the resume
        assert project.run(run_id)["status"] == "finished"
    with pytest.raises(ConfigError, match="already finished"):
        next(train(toy, TrainConfig(), resume_run=run_id))


def test_a_checkpoint_round_trip_restores_optimizer_schedule_rng_and_loop_position(tmp_path):
    from kdstudio.core.students import build_student
    from kdstudio.core.train.checkpoint import (
        TRAINER_STATE,
        LoopState,
        load_checkpoint,
        rng_state,
        save_checkpoint,
    )

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    model = build_student("cnn", 3, tok)

    def optimizer_and_schedule():
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (step + 1))

    optimizer, schedule = optimizer_and_schedule()
    enc = tok(["the team won", "rain today"], padding=True, return_tensors="pt")
    model(enc["input_ids"], enc["attention_mask"]).sum().backward()
    optimizer.step()
    schedule.step()
    loop = LoopState(step=1, group=1, micro=8, seen=2, best_score=-0.5, best_metrics={"valid/loss": 0.5})
    rng = rng_state()
    next_draw = torch.rand(4)  # what the generator gives right after the saved state
    folder = tmp_path / "7" / "last"
    save_checkpoint(folder, model=model, tokenizer=tok, meta={"spec": "cnn", "labels": LABELS, "max_length": 32},
                    config={"student": "cnn"}, loop=loop, optimizer=optimizer, scheduler=schedule, rng=rng)
    saved = torch.load(folder / TRAINER_STATE, weights_only=True)
    assert set(saved) == {"config", "loop", "optimizer", "scheduler", "rng", "scaler", "projection"}
    assert (folder / "student.json").is_file() and not folder.with_name("last.partial").exists()
    torch.manual_seed(123)
    fresh_optimizer, fresh_schedule = optimizer_and_schedule()
    assert load_checkpoint(folder, optimizer=fresh_optimizer, scheduler=fresh_schedule) == loop
    assert torch.equal(torch.rand(4), next_draw)
    assert fresh_schedule.last_epoch == 1 and fresh_schedule.get_last_lr() == schedule.get_last_lr()
    restored = fresh_optimizer.state_dict()["state"]
    assert all(torch.equal(restored[k]["exp_avg"], v["exp_avg"]) for k, v in optimizer.state_dict()["state"].items())


def test_train_json_prints_exactly_the_documented_keys(toy):
    row = next(line for line in README.read_text().splitlines()
               if line.startswith("| `--json` | print the run's summary"))
    documented = re.findall(r"`(\w+)`", row.split("|")[2])
    assert documented == [f.name for f in dataclasses.fields(TrainResult)]
    out = subprocess.run(
        [sys.executable, "-m", "kdstudio", "train", str(toy), "--student", "cnn", "--epochs", "1",
         "--batch-size", "8", "--num-threads", "1", "--json"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    printed = json.loads(out.stdout)
    assert list(printed) == documented and printed["test_accuracy"] is not None
    with Project(toy) as project:
        assert project.run(printed["run"])["summary"] == printed


def test_closing_the_generator_marks_the_run_cancelled(toy):
    events = train(toy, TrainConfig(student="cnn", **FAST))
    for event in events:
        if isinstance(event, Progress):
            break
    events.close()
    with Project(toy) as project:
        run = project.runs()[-1]
        assert run["status"] == "cancelled" and run["last_checkpoint"]


def test_nan_loss_stops_the_run_with_a_clear_message(toy, monkeypatch):
    from kdstudio.core.train.losses import LOSSES

    real = LOSSES["kd"]

    def diverging(*args, **kwargs):
        return real(*args, **kwargs) * float("nan")

    monkeypatch.setitem(LOSSES, "kd", diverging)  # the loop takes its terms from the registry
    with pytest.raises(TrainingError, match=r"loss became nan at step 1.*lower --lr"):
        run_to_end(train(toy, TrainConfig(student="cnn", **FAST)))
    with Project(toy) as project:
        run = project.runs()[-1]
        assert run["status"] == "failed" and "nan" in run["error"]


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_batch(toy, monkeypatch):
    from kdstudio.core.students.encoders import CNNStudent

    real_forward = CNNStudent.forward
    sizes = []

    def small_memory(self, input_ids, attention_mask):
        if self.training and input_ids.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        if self.training:
            sizes.append(input_ids.shape[0])
        return real_forward(self, input_ids, attention_mask)

    monkeypatch.setattr(CNNStudent, "forward", small_memory)
    events = list(train(toy, TrainConfig(student="cnn", epochs=1, batch_size=8, num_threads=1)))
    logs = [e.message for e in events if isinstance(e, Log)]
    assert any("micro-batch halved to 4" in m for m in logs) and any(
        "halved to 2" in m for m in logs
    )
    assert events[-1].result.steps == 6  # 48 rows / 8 per step: the step size is unchanged
    assert max(sizes) <= 2


def test_reviews_replace_teacher_answers_and_exclude_rows(toy):
    with Project(toy) as project:
        train_ids = [r[0] for r in project.examples("train")]
        project.set_review(train_ids[0], exclude=True)
        project.set_review(train_ids[1], corrected_label=2)
    result = run_to_end(
        train(toy, TrainConfig(student="cnn", epochs=1, batch_size=8, num_threads=1))
    )
    assert result.reviews_used == 2 and result.n_train == 36 + 12 - 1


def test_early_stopping_after_patience_evaluations(toy):
    config = TrainConfig(
        student="cnn", epochs=5, batch_size=8, num_threads=1, lr=1e-12, eval_every=1, patience=2
    )
    events = list(train(toy, config))
    result = events[-1].result
    assert result.stopped_early and result.steps == 3 and result.best_step == 1
    assert any("early stop" in e.message for e in events if isinstance(e, Log))
    assert result.stop_reason == (
        "stopped at epoch 1 of 5: validation loss did not improve for 2 evaluations (best at step 1)"
    )


def test_a_run_that_trains_to_its_last_epoch_has_no_stop_reason(toy):
    result = run_to_end(train(toy, TrainConfig(student="cnn", epochs=1, batch_size=8, num_threads=1)))
    assert not result.stopped_early and result.stop_reason is None


def test_the_checkpoint_metric_picks_what_counts_as_better():
    from kdstudio.core.train.loop import selection_score

    better = {"valid/loss": 0.5, "valid/accuracy": 0.70, "valid/agreement": 0.80}
    worse = {"valid/loss": 0.6, "valid/accuracy": 0.75, "valid/agreement": 0.78}
    kd, hard = TrainConfig(), TrainConfig(hard_labels=True)
    assert selection_score(better, kd) > selection_score(worse, kd)  # auto: loss for KD
    assert selection_score(better, hard) < selection_score(worse, hard)  # auto: gold accuracy
    by_agreement = TrainConfig(checkpoint_metric="agreement")
    assert selection_score(better, by_agreement) == 0.80
    # A valid split without gold labels falls back from accuracy to agreement.
    no_gold = {"valid/loss": 0.5, "valid/agreement": 0.9}
    assert selection_score(no_gold, TrainConfig(checkpoint_metric="accuracy")) == 0.9


def test_local_teacher_tokenizer_and_teacher_layers_with_hidden_mse(tmp_path):
    teacher = save_tiny_bert(tmp_path / "teacher", n_labels=3, layers=2)
    project, _ = build_toy_project(tmp_path / "p.kdproj", teacher_spec=f"hf:{teacher}")
    project.close()
    config = TrainConfig(
        student="teacher-layers:1", hidden_mse=1.0, epochs=1, batch_size=16, num_threads=1
    )
    events = list(train(tmp_path / "p.kdproj", config))
    assert any(isinstance(e, Metric) and e.name == "train/hidden_mse" for e in events)
    meta = load_student(run_folder(tmp_path / "p.kdproj", events[-1].result.run))[2]
    assert meta["tokenizer_source"] == "teacher" and meta["arch"] == "hf"
    logs = {}
    for init in ("teacher", "random"):
        events = list(train(tmp_path / "p.kdproj",
                            TrainConfig(student="bilstm", epochs=1, num_threads=1, embed_init=init)))
        logs[init] = " ".join(e.message for e in events if isinstance(e, Log))
        run = events[-1].result.run
        assert load_student(run_folder(tmp_path / "p.kdproj", run))[2]["tokenizer_source"] == "teacher"
    assert "embeddings start from the teacher's" in logs["teacher"]
    assert "embeddings start from the teacher's" not in logs["random"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"temperature": 0}, "--temperature must be > 0"),
        ({"alpha": 1.5}, "--alpha"),
        ({"schedule": "step"}, "--schedule"),
        ({"student": "lstm"}, "unknown student"),
        ({"device": "tpu"}, "--device"),
        ({"embed_init": "glove"}, "--embed-init"),
        ({"checkpoint_metric": "f1"}, "--checkpoint-metric"),
        ({"hard_labels": True, "hidden_mse": 1.0}, "--hidden-mse"),
    ],
)
def test_bad_settings_are_one_line_config_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**change).validate()


def test_a_project_without_teacher_outputs_says_what_to_do(tmp_path):
    project, _ = build_toy_project(tmp_path / "bare.kdproj", with_teacher=False)
    project.close()
    with pytest.raises(ConfigError, match="harvest a teacher first, or train with --hard-labels"):
        next(train(tmp_path / "bare.kdproj", TrainConfig()))
    result = run_to_end(
        train(tmp_path / "bare.kdproj", TrainConfig(student="cnn", hard_labels=True, **FAST))
    )
    assert result.valid_agreement is None and result.valid_accuracy is not None


def test_config_round_trips_through_a_dict_and_imports_no_torch():
    import subprocess
    import sys

    config = TrainConfig(student="cnn", lr=1e-3)
    assert TrainConfig.from_dict({**config.to_dict(), "unknown": 1}) == config
    code = "import sys, kdstudio.core.train; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_kd_run_never_validates_on_training_rows_its_teacher_may_have_been_fitted_on(tmp_path):
    """No valid split: a KD run on gold training rows is refused (CLI: exit 2, one line that says how
    to make one) and no run is recorded; a hard-label run, and a KD run on rows no teacher can have
    been fitted on (no gold label), hold out training rows as before."""
    path = tmp_path / "no-valid.kdproj"
    build_toy_project(path, sizes={"train": 60, "test": 12})[0].close()
    with pytest.raises(ConfigError, match="no valid split") as refused:
        next(train(path, TrainConfig(student="cnn", **FAST)))
    assert "--split valid" in str(refused.value) and "--valid-fraction" in str(refused.value)
    out = subprocess.run(
        [sys.executable, "-m", "kdstudio", "train", str(path), "--student", "cnn", "--epochs", "1",
         "--num-threads", "1"],
        capture_output=True, text=True,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "no valid split" in out.stderr and "kdstudio import PROJECT FILE --split valid" in out.stderr
    with Project(path) as project:
        assert project.runs() == []

    events = list(train(path, TrainConfig(student="cnn", hard_labels=True, **FAST)))
    assert any(isinstance(e, Log) and "holding out 6 training examples" in e.message for e in events)
    assert events[-1].result.n_valid == 6

    unlabelled = tmp_path / "unlabelled.kdproj"
    build_toy_project(unlabelled, sizes={"unlabeled": 60, "test": 12})[0].close()
    result = run_to_end(train(unlabelled, TrainConfig(student="cnn", **FAST)))
    assert result.n_valid == 6 and result.valid_accuracy is None and result.valid_agreement is not None


def test_a_project_imported_through_the_cli_validates_on_its_own_split(tmp_path):
    """The CLI path end to end: ``kdstudio import`` holds out --valid-fraction of the training file,
    and a KD run then validates on exactly those rows, none of them a training row."""
    import random

    from fakes.tiny_models import fake_teacher_probs

    from kdstudio.core.store import TeacherOutput

    path = tmp_path / "cli.kdproj"
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f"{LABELS[i % 3]} words number {i},{LABELS[i % 3]}\n"
                                              for i in range(60)))
    for args in (["new", str(path)], ["import", str(path), str(data), "--valid-fraction", "0.2", "--json"]):
        out = subprocess.run([sys.executable, "-m", "kdstudio", *args], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["splits"] == {"train": 48, "valid": 12, "test": 0, "unlabeled": 0}
    rng = random.Random(0)
    with Project(path) as project:
        teacher = project.upsert_teacher("fake:teacher", "fake", "teacher", "f" * 16, {})
        project.save_outputs(teacher, [TeacherOutput(example=i, probs=fake_teacher_probs(gold, rng))
                                       for i, _, gold in project.examples()])
        valid_ids = {i for i, _, _ in project.examples("valid")}
    result = run_to_end(train(path, TrainConfig(student="cnn", **FAST)))
    assert result.n_train == 48 and result.n_valid == 12
    with Project(path) as project:
        assert valid_ids.isdisjoint(i for i, _, _ in project.examples("train"))

    every_row = tmp_path / "all-train.kdproj"  # --split train holds nothing out, and says so
    for args in (["new", str(every_row)], ["import", str(every_row), str(data), "--split", "train"]):
        out = subprocess.run([sys.executable, "-m", "kdstudio", *args], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    assert "no valid split yet" in out.stderr and "--split valid" in out.stderr


def test_a_runs_stored_metrics_are_read_back_in_order_and_from_a_given_row(tmp_path):
    from kdstudio.core.train import RunMetrics, load_metrics

    path = tmp_path / "m.kdproj"
    with Project.create(path, "classification") as project:
        run = project.create_run("bilstm", None, {"student": "bilstm"})
        other = project.create_run("cnn", None, {"student": "cnn"})
        project.add_metrics(run, [(1, 0.5, 0.1, "train/loss", 1.0), (2, 1.0, 0.2, "train/loss", 0.5)])
        project.add_metrics(other, [(1, 0.5, 0.1, "train/loss", 9.0)])
        project.add_metrics(run, [(2, 1.0, 0.2, "valid/accuracy", 0.75)])
    metrics = run_to_end(load_metrics(path, run))
    assert isinstance(metrics, RunMetrics) and metrics.run == run
    assert [(step, name, value) for _rowid, step, _e, _w, name, value in metrics.rows] == [
        (1, "train/loss", 1.0), (2, "train/loss", 0.5), (2, "valid/accuracy", 0.75)]
    newer = run_to_end(load_metrics(path, run, after_rowid=metrics.rows[1][0]))
    assert newer.after_rowid == metrics.rows[1][0] and newer.rows == metrics.rows[2:]


def test_a_kill_between_the_checkpoint_renames_leaves_a_checkpoint_that_resumes_exactly(toy, monkeypatch):
    config = TrainConfig(
        student="bilstm", epochs=3, batch_size=8, grad_accum=2, num_threads=1, eval_every=2
    )
    straight = run_to_end(train(toy, config))
    real_rename = Path.rename
    saves = []

    def dies_after_the_first_rename(self, target):
        # The save of a checkpoint renames `last` to `last.old`, then `last.partial` to `last`.
        if self.name == "last.partial" and Path(target).name == "last":
            saves.append(self)
            if len(saves) >= 3:  # a later save of `last` (and any after: the process is dead)
                raise KeyboardInterrupt("killed between the two renames")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", dies_after_the_first_rename)
    with pytest.raises(KeyboardInterrupt):
        run_to_end(train(toy, config))
    monkeypatch.undo()
    with Project(toy) as project:
        run_id = project.runs()[-1]["id"]
        assert project.run(run_id)["status"] != "finished"
    folder = run_folder(toy, run_id)
    assert not (folder / "last").exists() and (folder / "last.old").is_dir()  # the state a kill leaves
    assert (folder / "last.partial").is_dir()
    resumed = run_to_end(train(toy, TrainConfig(num_threads=1), resume_run=run_id))
    assert resumed.run == run_id and resumed.steps == straight.steps
    assert resumed.valid_kl == straight.valid_kl and resumed.best_step == straight.best_step
    wa, wb = _weights(toy, straight.run), _weights(toy, run_id)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["best", "last"]  # no stale leftovers
    with Project(toy) as project:
        steps = [r[1] for r in project.metrics(run_id, "train/loss")]
        assert steps == sorted(set(steps))
        assert project.run(run_id)["status"] == "finished"


def test_a_run_folder_killed_mid_save_still_loads_its_student(tmp_path):
    from kdstudio.core.students import build_student, save_student, student_folder

    tok = tiny_tokenizer()
    model = build_student("cnn", 3, tok)
    folder = tmp_path / "3"
    save_student(model, tok, folder / "best.old", {"step": 4})
    save_student(model, tok, folder / "best.partial", {"step": 6})
    assert student_folder(folder) == folder / "best"
    assert load_student(folder)[2]["step"] == 4 and not (folder / "best.old").exists()
