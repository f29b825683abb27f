"""The harvest panel builds a HarvestConfig from its widgets and shows the harvest's typed results:
the examples, requests, cost and time of a dry run, and what a finished harvest answered."""

from __future__ import annotations

import pytest

from kdstudio.core.harvest import HarvestConfig, HarvestEstimate, HarvestResult
from kdstudio.core.store import Project
from kdstudio.gui.harvest_panel import HarvestPanel, estimate_text, summary_text
from kdstudio.gui.job_host import JobHost


@pytest.fixture
def panel(qtbot, project_path):
    project = Project(project_path)
    widget = HarvestPanel(project_path, JobHost(), project)
    qtbot.addWidget(widget)
    yield widget
    project.close()


def test_the_config_comes_from_the_widgets_and_claude_settings_only_for_claude(panel):
    panel.spec.setText("claude:claude-haiku-5-5")
    panel.split_boxes["valid"].setChecked(False)
    panel.limit.setValue(5)
    panel.concurrency.setValue(3)
    panel.budget.setValue(2.5)
    panel.batch_api.setChecked(True)
    assert panel.config(retry_failed=True) == HarvestConfig(
        teacher="claude:claude-haiku-5-5", splits=("train", "test", "unlabeled"), limit=5, concurrency=3,
        batch_api=True, budget_usd=2.5, retry_failed=True)
    panel.spec.setText("embed:minilm")
    assert panel.config(dry_run=True) == HarvestConfig(teacher="embed:minilm", splits=("train", "test", "unlabeled"),
                                                       limit=5, dry_run=True)


def test_estimate_text_tells_examples_from_requests_and_shows_the_cost():
    claude = HarvestEstimate(teacher=1, spec="claude:claude-haiku-5-5", n=200, requests=230, input_tokens=41_000,
                             output_tokens=14_000, cost_usd=0.0111, estimated_seconds=95.0, seconds=0.4)
    text = estimate_text(claude, budget=5.0)
    assert text.startswith("200 examples to ask the teacher about in 230 requests.")
    assert "Estimated cost: $0.011 (about 41.0k input and 14.0k output tokens)" in text
    assert "About 01:35" in text and "Budget: $5.00" in text
    local = HarvestEstimate(teacher=2, spec="embed:minilm", n=90, seconds=0.1)
    assert estimate_text(local, None) == "90 examples to ask the teacher about. The teacher runs on this computer: " \
                                         "it costs nothing."
    assert estimate_text(HarvestEstimate(teacher=2, spec="embed:minilm", n=0, seconds=0.1), None).startswith(
        "Nothing to ask")


def test_summary_text_counts_the_answers_of_this_run_and_of_earlier_ones():
    result = HarvestResult(teacher=1, spec="claude:claude-haiku-5-5", fingerprint="f", n_ok=7, n_failed=1,
                           input_tokens=900, output_tokens=300, cache_read_tokens=0, cache_write_tokens=0,
                           cost_usd=0.0004, answered_total=12, failed_total=1, cost_usd_total=0.0007, seconds=3.0)
    assert summary_text(result) == "Harvest finished: 7 answered, 1 failed, 5 answered before, $0.0004 spent"
