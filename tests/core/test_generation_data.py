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
from kdstudio.core.errors import ConfigError, DataError, KDStudioError
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


# -- lm: teachers --------------------------------------------------------------------------------

PAIRS = [("name[Cotto], food[Chinese]", "Cotto serves Chinese food."),
         ("name[Zizzi], area[riverside]", "Zizzi is by the riverside."),
         ("name[Aromi], food[French]", "Aromi serves French food."),
         ("name[Alimentum], area[city centre]", "Alimentum is in the city centre.")]


@pytest.fixture(scope="module")
def trained_lm(tmp_path_factory):
    """A tiny GPT-2 that has learnt the four pairs laid out as a KD Studio student sees them
    (prompt, newline, completion, end-of-text), saved as a student folder (run folder layout)."""
    import torch
    from fakes.tiny_models import tiny_bpe_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    from kdstudio.core.generate import DEFAULT_TEMPLATE, format_prompt
    from kdstudio.core.students import save_student

    torch.manual_seed(0)
    tok = tiny_bpe_tokenizer([f"{p}\n{c}" for p, c in PAIRS])
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=64, n_layer=2, n_head=2,
                                       bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                                       pad_token_id=tok.eos_token_id))
    seqs = [tok(format_prompt(p) + c, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for p, c in PAIRS]
    width = max(map(len, seqs))
    ids = torch.tensor([s + [tok.eos_token_id] * (width - len(s)) for s in seqs])
    labels = torch.tensor([s + [-100] * (width - len(s)) for s in seqs])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(100):
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    run = tmp_path_factory.mktemp("run")
    save_student(model.eval(), tok, run / "best", {"template": DEFAULT_TEMPLATE, "max_new_tokens": 24})
    return run


def generation_project(tmp_path: Path, instructions: str = "") -> Path:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "lm.kdproj"
    Project.create(path, "generation", settings={"instructions": instructions} if instructions else None).close()
    f = write(tmp_path, "pairs.csv", "prompt\n" + "".join(f'"{p}"\n' for p, _ in PAIRS))
    run_to_end(import_file(path, f, split="train"))
    return path


def completions(path: Path, teacher: int) -> dict[str, dict]:
    with Project(path) as p:
        return {r["text"]: r for r in p.teacher_outputs(teacher, status=None)}


def test_an_lm_teacher_writes_what_it_learnt_greedily_from_a_student_folder_and_a_plain_folder(tmp_path, trained_lm):
    path = generation_project(tmp_path)
    result = run_to_end(harvest(path, HarvestConfig(teacher=f"lm:{trained_lm}", options={"batch_size": 3})))
    assert (result.n_ok, result.n_failed, result.cost_usd) == (4, 0, 0)
    rows = completions(path, result.teacher)
    assert {p: rows[p]["completion"] for p, _ in PAIRS} == dict(PAIRS)  # the student's own layout: it writes them
    assert {r["method"] for r in rows.values()} == {"greedy"}
    # the same weights as a plain Hugging Face folder: the default prompt "{text}\n" is the same layout
    plain = tmp_path / "plain"
    (plain).mkdir()
    for sub in ("model", "tokenizer"):
        for f in (trained_lm / "best" / sub).iterdir():
            (plain / f.name).write_bytes(f.read_bytes())
    again = run_to_end(harvest(path, HarvestConfig(teacher=f"lm:{plain}", max_tokens=24)))
    assert again.teacher != result.teacher and again.n_ok == 4
    assert {p: r["completion"] for p, r in completions(path, again.teacher).items()} == dict(PAIRS)


def test_an_lm_teacher_samples_reproducibly_and_fails_cut_off_completions(tmp_path, trained_lm):
    path = generation_project(tmp_path)
    sampled = {"temperature": 1.5, "top_p": 0.95, "seed": 3}
    first = run_to_end(harvest(path, HarvestConfig(teacher=f"lm:{trained_lm}", options={**sampled,
                                                                                       "keep_cut_off": True})))
    with Project(path) as p:
        settings = p.teacher(first.teacher)["settings"]
    assert settings["decoding"] == {"temperature": 1.5, "top_p": 0.95, "seed": 3}
    rows = completions(path, first.teacher)
    assert {r["method"] for r in rows.values()} <= {"sampled", "sampled-cut-off"} and first.n_ok + first.n_failed == 4
    path2 = generation_project(tmp_path / "b")
    second = run_to_end(harvest(path2, HarvestConfig(teacher=f"lm:{trained_lm}", options={**sampled,
                                                                                         "keep_cut_off": True})))
    assert {p: r["completion"] for p, r in completions(path2, second.teacher).items()} == {
        p: r["completion"] for p, r in rows.items()}  # same seed, same text

    # greedy with room for 3 tokens: every completion is cut off, stored as failed with the reason
    cut = run_to_end(harvest(path, HarvestConfig(teacher=f"lm:{trained_lm}", max_tokens=3)))
    assert (cut.n_ok, cut.n_failed, cut.n_cut_off, cut.max_tokens_hit) == (0, 4, 4, 3)
    reasons = {r["error"] for r in completions(path, cut.teacher).values()}
    assert reasons == {"completion cut off at max_new_tokens=3 without an end-of-text token; a partial completion "
                       "is not kept: raise --max-tokens, or --retry-failed asks again with twice the limit "
                       "(--option keep_cut_off=true keeps it)"}
    assert "4 answer(s) were cut off at max_tokens=3" in cut.summary()
    # a longer limit is the same teacher (the limit is not in the fingerprint): retrying asks again with twice the limit hit, at least the default
    events = list(harvest(path, HarvestConfig(teacher=f"lm:{trained_lm}", retry_failed=True)))
    retry = events[-1].result
    assert retry.teacher == cut.teacher and retry.n_ok == 4 and retry.n_cut_off == 0
    assert any(isinstance(e, Log) and "cut off at max_new_tokens=3; asking again with max_new_tokens=24" in e.message for e in events)


def test_instructions_go_before_the_text_of_a_plain_lm_but_not_of_a_student(tmp_path, trained_lm):
    from kdstudio.core.teachers import TeacherContext, load_teacher

    context = TeacherContext("generation", [], instructions="Describe the restaurant.")
    plain = load_teacher("lm:gpt2-like-folder", context)
    assert plain._prompt("name[Cotto]") == "Describe the restaurant.\nname[Cotto]\n"
    assert load_teacher("lm:x", TeacherContext("generation", []))._prompt("name[Cotto]") == "name[Cotto]\n"
    student = load_teacher(f"lm:{trained_lm}", context)
    assert student._prompt("name[Cotto]") == "name[Cotto]\n" and student.max_new_tokens == 24
    with pytest.raises(ConfigError, match="temperature must be >= 0"):
        load_teacher("lm:x", TeacherContext("generation", [], options={"temperature": -1}))


# -- the E2E sample -------------------------------------------------------------------------------

def test_the_e2e_files_are_shipped_unchanged_with_their_attribution():
    from kdstudio.core.generation_sample import e2e_dir

    folder = e2e_dir()
    source = (folder / "SOURCE.md").read_text(encoding="utf-8")
    for name in ("devset.csv", "testset_w_refs.csv", "README.md"):
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        assert f"`{name}` `{digest}`" in source, name
    assert "CC BY-SA 4.0" in source and "https://creativecommons.org/licenses/by-sa/4.0/" in source
    assert "Novikova" in source and "Dušek" in source and "Rieser" in source
    assert (folder / "devset.csv").read_bytes().startswith(b"mr,ref\r\n")  # CRLF kept, byte for byte


def test_the_generation_sample_splits_by_meaning_representation_with_every_reference(tmp_path):
    from kdstudio.core.generation_sample import TEACHER, build_generation_sample, e2e_dir, read_e2e

    path = tmp_path / "e2e.kdproj"
    result = build_generation_sample(path, seed=0)
    assert (result.pairs, result.meaning_representations) == (9365, 1177)
    assert result.splits == {"train": 941, "valid": 118, "test": 118}
    assert result.teacher_spec == TEACHER and result.max_references == 45
    _, refs = read_e2e(e2e_dir())
    with Project(path) as p:
        by_split = {s: {text for _ex, text, _l in p.examples(s)} for s in ("train", "valid", "test")}
        stored = p.references_of()
        texts = {ex: text for ex, text, _l in p.examples()}
        outputs = {r["text"]: r for r in p.teacher_outputs(result.teacher)}
        assert p.teacher(result.teacher)["kind"] == "recorded" and p.count_outputs(result.teacher)["cost_usd"] == 0
        assert p.settings()["instructions"]
    assert not (by_split["train"] & by_split["valid"] or by_split["train"] & by_split["test"]
                or by_split["valid"] & by_split["test"])  # no meaning representation in two splits
    assert set().union(*by_split.values()) == set(refs)
    assert {texts[ex]: r for ex, r in stored.items()} == {mr: [t for t, _f, _l in found] for mr, found in refs.items()}
    assert result.references == sum(map(len, stored.values())) == 9098  # 267 pairs repeat within their MR
    assert len(outputs) == 1177 and all(outputs[mr]["completion"] == refs[mr][0][0] for mr in refs)
    # dev had only coffee shops: split by meaning representation, pubs and restaurants reach every split
    assert all(any("eatType[pub]" in mr for mr in by_split[s]) for s in by_split)

    again = build_generation_sample(path, seed=0)  # built already: reported, not rebuilt
    assert (again.splits, again.teacher, again.references) == (result.splits, result.teacher, result.references)
    other = build_generation_sample(tmp_path / "seed1.kdproj", seed=1)
    with Project(tmp_path / "seed1.kdproj") as p:
        assert {text for _ex, text, _l in p.examples("test")} != by_split["test"]
    assert other.splits == result.splits


def test_the_sample_command_and_a_path_that_is_not_the_sample(tmp_path):
    from kdstudio.cli import main
    from kdstudio.core.generation_sample import generation_sample

    taken = new_project(tmp_path)
    with pytest.raises(KDStudioError, match="not the generation sample"):
        run_to_end(generation_sample(taken))
    assert main(["sample", str(tmp_path / "s.kdproj"), "--task", "generation", "--seed", "2", "--json"]) == 0
    assert not list(tmp_path.glob("*.part"))


def test_new_with_instructions_gives_them_to_every_teacher(tmp_path):
    from kdstudio.cli import main
    from kdstudio.core.harvest import teacher_context

    path = tmp_path / "i.kdproj"
    assert main(["new", str(path), "--task", "generation", "--instructions", "Describe the restaurant."]) == 0
    with Project(path) as p:
        assert teacher_context(p, "lm:x", {}).instructions == "Describe the restaurant."


def test_import_as_teacher_is_the_recorded_completions_job(tmp_path, capsys):
    from kdstudio.cli import main

    path = tmp_path / "p.kdproj"
    assert main(["new", str(path), "--task", "generation"]) == 0
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt\nname[Cotto]\nname[Zizzi]\n", encoding="utf-8")
    assert main(["import", str(path), str(prompts), "--split", "train"]) == 0
    log = tmp_path / "log.jsonl"
    log.write_text('{"prompt": "name[Cotto]", "completion": "Cotto is a pub."}\n'
                   '{"prompt": "name[Aromi]", "completion": "Aromi is a café."}\n', encoding="utf-8")
    capsys.readouterr()
    assert main(["import", str(path), str(log), "--as-teacher", "log", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["spec"], out["matched"], out["unmatched"], out["recorded"]) == ("recorded:log", 1, 1, 1)
    assert main(["import", str(path), str(log), "--as-teacher", "log", "--split", "test", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["matched"], out["added_prompts"], out["add_split"]) == (1, 1, "test")
