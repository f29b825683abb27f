"""kdstudio demo --task generation: the E2E sample end to end, offline, and a rerun that redoes nothing."""

from __future__ import annotations

import json

from kdstudio.core.store import Project


def test_generation_demo_runs_end_to_end_and_a_rerun_skips_what_is_done(tmp_path, capsys):
    from kdstudio.cli import main

    out = tmp_path / "demo"
    args = ["demo", "--task", "generation", "--out", str(out), "--rows", "40", "--epochs", "1"]
    assert main([*args, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["task"] == "generation" and first["student"] == "gpt-tiny" and first["n_test"] == 10
    assert 0.0 <= first["rouge_l_reference"] <= 1.0 and first["rouge_l"] is not None
    assert first["identical"] == first["checked"] > 0  # the exported folder writes what KD Studio wrote
    assert (out / "student-generation-hf" / "generation_config.json").is_file()
    with Project(out / "sample-generation.kdproj") as project:
        assert project.split_counts()["train"] == 40
        assert [r["status"] for r in project.runs()] == ["finished"]
    assert main(args) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err  # the steps are logged on stderr, the summary printed on stdout
    assert "run #1 already finished" in text and "evaluation already stored" in text
    assert "Demo finished in" in text and "vs all references" in text
    with Project(out / "sample-generation.kdproj") as project:
        assert len(project.runs()) == 1
