"""Export of a generation student: a Hugging Face folder that transformers' text-generation
pipeline loads and that writes KD Studio's completions with no settings passed, a model card that
says how to call it (and, for a Claude teacher only, the line on Anthropic's terms), ONNX refused in
one line; and ``kdstudio compare`` rows of a generation run."""

from __future__ import annotations

import csv
import json

import pytest
from fakes.generation_project import make_generation_project

from kdstudio.cli import main
from kdstudio.core.errors import ConfigError
from kdstudio.core.events import run_to_end
from kdstudio.core.export import export
from kdstudio.core.export.compare import CompareExportConfig, export_compare
from kdstudio.core.export.compare_generation import VIEW_EXPORT_KEYS
from kdstudio.core.generate import format_prompt, generate_all
from kdstudio.core.store import Project
from kdstudio.core.students import load_student
from kdstudio.core.teachers.claude.terms import CLAUDE_TERMS_LINE


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    return make_generation_project(tmp_path_factory.mktemp("gen"), n_test=8, scores=True)


@pytest.fixture(scope="module")
def claude_gen(tmp_path_factory):
    return make_generation_project(tmp_path_factory.mktemp("claude"), n_test=4, teacher_spec="claude:claude-haiku-4-5",
                                   latency_ms=500.0, output_tokens=12, scores=True)


def test_hf_export_loads_in_a_pipeline_that_writes_what_kd_studio_wrote(gen, tmp_path):
    from transformers import pipeline

    out = tmp_path / "hf"
    result = run_to_end(export(gen.path, gen.run, "hf", out))
    assert result.checked_examples == 8 and result.identical == 8
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "README.md",
            "kdstudio.json"} <= set(result.files)
    settings = json.loads((out / "generation_config.json").read_text())
    assert settings["do_sample"] is False and settings["num_beams"] == 1 and settings["max_new_tokens"] == 8
    marker = json.loads((out / "kdstudio.json").read_text())
    assert marker["task"] == "generation" and marker["template"] == "{prompt}\n"
    # independently of the export's own check: the pipeline, told nothing, writes the stored completions
    with Project(gen.path) as project:
        stored = {p["example"]: p["completion"] for p in project.predictions(gen.run, "test")}
        prompts = project.examples("test")
    pipe = pipeline("text-generation", model=str(out), device="cpu")
    theirs = [pipe(format_prompt(t), return_full_text=False)[0]["generated_text"].strip() for _, t, _ in prompts]
    assert theirs == [stored[ex] for ex, _, _ in prompts]
    model, tok, _ = load_student(gen.student_folder)
    assert [c.text for c in generate_all(model, tok, [t for _, t, _ in prompts], max_new_tokens=8)] == theirs


def test_model_card_says_how_to_call_it_and_names_claude_terms_only_for_claude(gen, claude_gen, tmp_path):
    run_to_end(export(gen.path, gen.run, "hf", tmp_path / "lm"))
    card = (tmp_path / "lm" / "README.md").read_text()
    assert 'pipeline("text-generation"' in card and "the prompt followed by a newline" in card
    assert "student vs references" in card and "latency per completion" in card
    assert CLAUDE_TERMS_LINE not in card and "Anthropic" not in card
    run_to_end(export(claude_gen.path, claude_gen.run, "hf", tmp_path / "claude"))
    card = (tmp_path / "claude" / "README.md").read_text()
    assert card.count(CLAUDE_TERMS_LINE) == 1 and "`claude:claude-haiku-4-5`" in card


def test_onnx_export_of_a_generation_student_is_refused_in_one_line(gen, tmp_path):
    with pytest.raises(ConfigError, match=r"generation student .*\(--format hf\), not as ONNX") as info:
        run_to_end(export(gen.path, gen.run, "onnx", tmp_path / "onnx"))
    assert "\n" not in str(info.value) and not (tmp_path / "onnx").exists()


def test_compare_export_has_one_formula_safe_row_per_example_lowest_score_first(gen, tmp_path):
    with Project(gen.path) as project:
        first = project.examples("test")[0][0]
        project.set_review(first, corrected_completion="=Cotto serves food.", golden=True, note="+fixed")
        references = project.references_of(split="test")
    result = run_to_end(export_compare(gen.path, CompareExportConfig(out=str(tmp_path / "rows.csv"))))
    assert result.rows == 8 and result.format == "csv"
    with open(tmp_path / "rows.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(VIEW_EXPORT_KEYS)
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores)
    row = next(r for r in rows if int(r["example"]) == first)
    assert row["corrected_completion"] == "'=Cotto serves food." and row["note"] == "'+fixed"
    assert row["golden"] == "True" and row["references"] == " ||| ".join(references[first])
    assert all(r["prompt"] and r["teacher_completion"] for r in rows)
    run_to_end(export_compare(gen.path, CompareExportConfig(out=str(tmp_path / "rows.jsonl"))))
    records = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    record = next(r for r in records if r["example"] == first)
    assert record["references"] == references[first] and set(record["scores"]) == {"teacher", "references"}


def test_kdstudio_export_prints_the_parity(gen, tmp_path, capsys):
    assert main(["export", str(gen.path), "--run", str(gen.run), "--format", "hf", "--out", str(tmp_path / "x")]) == 0
    assert "pipeline parity: 8/8 identical" in capsys.readouterr().out
