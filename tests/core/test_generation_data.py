"""Generation data: prompts from JSON arrays and two columns, and completions a teacher already
wrote imported as a recorded teacher (good files and bad ones)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest

from kdstudio.core.data import import_file, sniff_format
from kdstudio.core.errors import ConfigError, DataError
from kdstudio.core.events import Log, run_to_end
from kdstudio.core.harvest import HarvestConfig, harvest
from kdstudio.core.harvest.recorded import import_completions
from kdstudio.core.store import Project


def new_project(tmp_path: Path, task: str = "generation") -> Path:
    path = tmp_path / "g.kdproj"
    Project.create(path, task).close()
    return path


def snapshot(path: Path) -> str:
    with Project(path) as project:
        return hashlib.sha256("\n".join(project.conn.iterdump()).encode()).hexdigest()


def write(tmp_path: Path, name: str, content: str) -> Path:
    f = tmp_path / name
    f.write_text(content, encoding="utf-8")
    return f


def gpteacher(datasets: Path) -> list[dict]:
    return json.loads((datasets / "gpteacher_toolformer" / "toolformer-similarity-0.9-dataset.json").read_text())


def prompt_of(row: dict) -> str:
    return row["instruction"] + ("\n" + row["input"] if row["input"] else "")


def test_the_gpteacher_json_array_imports_with_instruction_and_input_as_the_prompt(tmp_path, datasets):
    project = new_project(tmp_path)
    file = datasets / "gpteacher_toolformer" / "toolformer-similarity-0.9-dataset.json"
    assert sniff_format(file) == "json"
    result = run_to_end(import_file(project, file, seed=1))
    assert (result.format, result.text_col, result.label_col) == ("json", "instruction+input", "response")
    assert result.rows == result.inserted == result.references == 5959
    assert result.splits["train"] + result.splits["valid"] == 5959 and result.splits["valid"] == 596
    rows = gpteacher(datasets)
    with Project(project) as p:
        stored = {text: ref for _, text, ref in p.references("train") + p.references("valid")}
    assert all(stored[prompt_of(r)] == r["response"] for r in rows)
    with_input = next(r for r in rows if r["input"])
    assert prompt_of(with_input).endswith("\n" + with_input["input"])
    assert sum(1 for r in rows if r["input"]) == 5959 - 4851  # 4,851 rows have an empty input


def test_a_prompt_from_two_named_columns_and_bad_json_arrays(tmp_path):
    project = new_project(tmp_path)
    f = write(tmp_path, "pairs.json", json.dumps([{"q": "Name a colour", "ctx": "", "a": "red"},
                                                  {"q": "Translate", "ctx": "chat", "a": "cat", "n": 3}]))
    result = run_to_end(import_file(project, f, text_col="q+ctx", label_col="a", split="train"))
    assert result.text_col == "q+ctx" and result.inserted == 2
    with Project(project) as p:
        assert [t for _, t, _ in p.references("train")] == ["Name a colour", "Translate\nchat"]
    with pytest.raises(DataError, match="no column 'nope' for --text-col"):
        run_to_end(import_file(project, f, text_col="q+nope", split="train"))
    with pytest.raises(DataError, match="element 2 of the array is not a JSON object"):
        run_to_end(import_file(project, write(tmp_path, "bad.json", '[{"q": "x"}, 3]'), split="train"))
    with pytest.raises(DataError, match="for one array of objects pass --format json"):
        run_to_end(import_file(project, write(tmp_path, "arr.jsonl", '[{"q": "x"}]\n'), split="train"))


# -- recorded completions ------------------------------------------------------------------------

@pytest.fixture
def project_with_prompts(tmp_path, datasets):
    """A generation project with the first 200 gpteacher prompts (train) and their completions."""
    rows = gpteacher(datasets)[:200]
    project = new_project(tmp_path)
    prompts = write(tmp_path, "prompts.jsonl", "".join(json.dumps({"prompt": prompt_of(r)}) + "\n" for r in rows))
    run_to_end(import_file(project, prompts, split="train"))
    return project, rows


def test_a_chat_log_becomes_a_recorded_teacher_that_training_and_harvest_see(tmp_path, project_with_prompts):
    project, rows = project_with_prompts
    lines = [{"messages": [{"role": "system", "content": "Use tools."}, {"role": "user", "content": prompt_of(r)},
                           {"role": "assistant", "content": r["response"]}]} for r in rows[:150]]
    lines.append({"messages": [{"role": "user", "content": "a prompt the project lacks"},
                               {"role": "assistant", "content": [{"type": "text", "text": "an answer"}]}]})
    lines.append({"messages": [{"role": "user", "content": "two"}, {"role": "user", "content": "users"}]})
    log = write(tmp_path, "distillation_train.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    result = run_to_end(import_completions(project, log, teacher="gpt4-log"))
    assert (result.spec, result.prompt_col, result.rows, result.prompts) == ("recorded:gpt4-log", "messages", 152, 151)
    assert (result.matched, result.unmatched, result.unusable, result.recorded) == (150, 1, 1, 150)
    with Project(project) as p:
        outputs = {r["id"]: r for r in p.teacher_outputs(result.teacher)}
        texts = {ex: text for ex, text, _ in p.references("train")}
        assert p.default_teacher() == result.teacher and p.teacher(result.teacher)["kind"] == "recorded"
    assert len(outputs) == 150 and all(o["cost_usd"] == 0 and o["method"] == "recorded" for o in outputs.values())
    by_prompt = {prompt_of(r): r["response"] for r in rows}
    assert all(by_prompt[texts[ex]] == o["completion"] for ex, o in outputs.items())

    again = run_to_end(import_completions(project, log, teacher="recorded:gpt4-log"))  # idempotent
    assert (again.teacher, again.recorded, again.replaced, again.recorded_total) == (result.teacher, 150, 0, 150)

    events = list(harvest(project, HarvestConfig(teacher="recorded:gpt4-log")))
    done = events[-1].result  # the same teacher: nothing asked, nothing paid
    assert (done.teacher, done.n_ok, done.n_failed, done.cost_usd, done.n_unanswered) == (result.teacher, 0, 0, 0, 50)
    assert "50 without an answer from recorded:gpt4-log" in done.summary()
    assert any(isinstance(e, Log) and "asks nobody" in e.message for e in events)
    estimate = run_to_end(harvest(project, HarvestConfig(teacher="recorded:gpt4-log", dry_run=True)))
    assert (estimate.n, estimate.cost_usd, estimate.requests) == (50, 0.0, 0)


def test_csv_completions_add_missing_prompts_and_keep_the_first_of_conflicting_ones(tmp_path, project_with_prompts):
    project, rows = project_with_prompts
    table = [["instruction", "input", "response"]] + [[r["instruction"], r["input"], r["response"]] for r in rows[:20]]
    table += [[rows[0]["instruction"], rows[0]["input"], rows[0]["response"]],  # the same row again
              [rows[1]["instruction"], rows[1]["input"], "another answer"],  # a conflicting completion
              [rows[2]["instruction"], rows[2]["input"], "  "],  # empty
              ["New prompt", "", "New answer"], [",", "", ""]]
    out = io.StringIO()
    csv.writer(out).writerows(table)
    body = out.getvalue()
    f = write(tmp_path, "log.csv", body)
    events = list(import_completions(project, f, teacher="prod", add_prompts="unlabeled"))
    result = events[-1].result
    assert (result.prompt_col, result.completion_col) == ("instruction+input", "response")
    assert (result.matched, result.added_prompts, result.add_split, result.unmatched) == (20, 1, "unlabeled", 0)
    assert (result.duplicates, result.conflicts, result.empty_completions, result.recorded) == (1, 1, 2, 21)
    assert any(isinstance(e, Log) and e.level == "warning" and "first completion is kept" in e.message
               for e in events)
    with Project(project) as p:
        outs = {r["id"]: r["completion"] for r in p.teacher_outputs(result.teacher)}
        assert p.split_counts()["unlabeled"] == 1
        added = p.examples("unlabeled")
    assert outs[added[0][0]] == "New answer"
    assert "another answer" not in outs.values() and rows[1]["response"] in outs.values()


@pytest.mark.parametrize(("content", "kwargs", "message"), [
    ("prompt,answer_text\nhi,hello\n", {"completion_col": "answer"},
     "no column 'answer' for --completion-col; did you mean 'answer_text'"),
    ("prompt,notes\nhi,hello\n", {}, "cannot tell which column holds the completions; pass --completion-col "
                                     "(columns: prompt, notes)"),
    ("prompt,completion\nhi,\nbye,  \n", {}, "no usable rows: 2 read, 0 with an empty prompt, 2 with an empty "
                                             "completion"),
    ("prompt,completion\nnot here,hello\n", {}, "none of the file's 1 prompts is an example of the project"),
    ("prompt,completion\nhi,hello\n", {"teacher": "bad name"}, "recorded teacher name 'bad name'"),
])
def test_bad_completion_files_are_one_clear_error_and_change_nothing(tmp_path, project_with_prompts, content, kwargs,
                                                                     message):
    project, _ = project_with_prompts
    before = snapshot(project)
    f = write(tmp_path, "bad.csv", content)
    with pytest.raises((DataError, ConfigError)) as info:
        run_to_end(import_completions(project, f, **{"teacher": "log", **kwargs}))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert snapshot(project) == before


def test_a_classification_project_has_no_recorded_teacher(tmp_path):
    project = new_project(tmp_path, "classification")
    f = write(tmp_path, "c.csv", "prompt,completion\nhi,hello\n")
    with pytest.raises(DataError, match="generation project"):
        run_to_end(import_completions(project, f, teacher="log"))
    with Project(project) as p:
        p.add_labels(["a", "b"])
    with pytest.raises(ConfigError, match="recorded:log holds completions"):
        run_to_end(harvest(project, HarvestConfig(teacher="recorded:log")))
