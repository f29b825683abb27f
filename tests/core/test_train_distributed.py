"""The same training runs under ``accelerate launch`` with two CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.tiny_models import build_toy_project

from kdstudio.core.store import Project

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, sys
from kdstudio.core.events import run_to_end
from kdstudio.core.train import TrainConfig, train
config = TrainConfig(student="transformer-tiny", epochs=2, batch_size=4, device="cpu", num_threads=1)
print("RESULT", json.dumps(run_to_end(train(sys.argv[1], config)).to_json()), flush=True)
"""


@pytest.mark.slow
def test_two_cpu_processes_under_accelerate_launch_train_one_run(tmp_path):
    pytest.importorskip("accelerate")
    project, _ = build_toy_project(tmp_path / "toy.kdproj")
    project.close()
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            "0",
            str(script),
            str(tmp_path / "toy.kdproj"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = [
        json.loads(line[len("RESULT ") :])
        for line in done.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    assert len(results) == 2
    assert results[0]["run"] == results[1]["run"] == 1
    assert results[0]["steps"] == 2 * 48 // (
        4 * 2
    )  # each step takes 4 rows on each of the 2 processes
    assert results[0]["valid_kl"] == results[1]["valid_kl"]  # the replicas stay identical
    with Project(tmp_path / "toy.kdproj") as project:
        assert [r["status"] for r in project.runs()] == ["finished"]
        test_ids = {r[0] for r in project.examples("test")}
        assert test_ids <= {p["example"] for p in project.predictions(1)}
