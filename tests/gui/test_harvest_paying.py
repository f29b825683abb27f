"""Where a person pays for a Claude harvest, tried through the window against the loopback API: the
cheapest model by default, the estimated cost of the whole harvest beside the choice (tokens in and
out, cost per example, what it assumes), the answer's size, a budget that never becomes "no limit",
a budget stop that says what was spent and saved, failures listed as they arrive, and an API key
whose source is told truthfully."""

from __future__ import annotations

import keyring
import pytest
from fakes import anthropic_server
from fakes.anthropic_server import FakeAnthropic, project_with_texts
from fakes.keyrings import MemoryKeyring
from fakes.label_sets import banking77, banking77_texts
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QAbstractButton, QDialog, QLabel, QMessageBox

from kdstudio.core import secrets
from kdstudio.core.events import run_to_end
from kdstudio.core.harvest import HarvestConfig, harvest
from kdstudio.core.store import Project
from kdstudio.core.teachers import pricing
from kdstudio.gui import harvest_panel
from kdstudio.gui.claude_options import ClaudeOptions
from kdstudio.gui.harvest_panel import HarvestPanel
from kdstudio.gui.job_host import JobHost
from kdstudio.gui.teacher_picker import TeacherPicker

fake_anthropic = anthropic_server.fake_anthropic  # the fixture: a started fake API per test
HAIKU = "claude:claude-haiku-5-5"


@pytest.fixture
def api(fake_anthropic, monkeypatch):
    """The app's Claude client pointed at the loopback API, with a key it accepts."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
    return fake_anthropic


def open_panel(qtbot, path, spec: str = HAIKU) -> HarvestPanel:
    project = Project(path)
    panel = HarvestPanel(path, JobHost(), project)
    qtbot.addWidget(panel)
    panel.destroyed.connect(project.close)
    panel.spec.setText(spec)
    return panel


def banking_project(tmp_path, n: int = 120, marks: dict[int, str] | None = None):
    texts = [t + (marks or {}).get(i, "") for i, t in enumerate(banking77_texts(n))]
    path = tmp_path / "bank.kdproj"
    project_with_texts(path, texts, labels=tuple(banking77())).close()
    return path


def wait_for_estimate(qtbot, panel: HarvestPanel, previous=None):
    qtbot.waitUntil(lambda: panel.estimate_view.result is not None and panel.estimate_view.result is not previous
                    and not panel.live.busy, timeout=30_000)
    return panel.estimate_view.result


def run_harvest(qtbot, panel: HarvestPanel, **kw) -> str:
    with qtbot.waitSignal(panel.harvest_finished, timeout=120_000) as blocker:
        assert panel.start(confirm_cost=False, **kw)
    return blocker.args[0]


# -- the model picker ------------------------------------------------------------------------------
def test_the_picker_starts_cheapest_first_on_the_recommended_model_and_a_refresh_picks_the_cheapest_offered(
        qtbot, monkeypatch):
    options = ClaudeOptions()
    qtbot.addWidget(options)
    assert options.model() == pricing.RECOMMENDED_MODEL == "claude-haiku-5-5"
    ids = [options.model_box.itemData(i) for i in range(options.model_box.count())]
    outputs = [pricing.price(m).output for m in ids]
    assert outputs == sorted(outputs) and ids[-1] == "claude-fable-5-1"  # the dearest last, not chosen

    listed = [("claude-opus-5-5", "Claude Opus 5.5", "2026-09-22T00:00:00Z"),
              ("claude-mystery-1", "Claude Mystery", "2026-10-01T00:00:00Z"),
              ("claude-sonnet-5-5", "Claude Sonnet 5.5", "2026-10-07T00:00:00Z")]
    with FakeAnthropic(models=listed) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        options.load_models()
        qtbot.waitUntil(lambda: options.result.text() == "Model list updated.", timeout=20_000)
        assert options.model() == "claude-sonnet-5-5"  # haiku is not offered: the cheapest priced one is
        assert [options.model_box.itemData(i) for i in range(3)] == ["claude-sonnet-5-5", "claude-opus-5-5",
                                                                     "claude-mystery-1"]
        assert options.model_box.itemText(2) == "Claude Mystery — price unknown"
        options.set_model("claude-opus-5-5")  # a person's choice stays when the API offers it
        options.load_models()
        qtbot.waitUntil(lambda: options.result.text() == "Model list updated.", timeout=20_000)
        assert options.model() == "claude-opus-5-5"


# -- the estimate beside the choice ------------------------------------------------------------------
def test_the_estimate_of_the_whole_harvest_shows_tokens_cost_per_example_and_what_it_assumes(qtbot, api, tmp_path):
    panel = open_panel(qtbot, banking_project(tmp_path, 60))
    first = wait_for_estimate(qtbot, panel)
    assert first.n == 60 and first.teacher is None  # a dry run stores no teacher
    shown = panel.estimate_view
    assert shown.headline.text().startswith(f"≈ {pricing.usd(first.cost_usd)} for 60 examples (≈ $0.0000")
    assert "per example)" in shown.headline.text()
    assert "In: " in shown.details.text() and "cache reads" in shown.details.text()
    assert "Out: " in shown.details.text() and f"max_tokens {first.max_tokens}" in shown.details.text()
    assert shown.assumptions.text().startswith("Assumes answers of ~") and "cached" in shown.assumptions.text()
    with Project(panel.project_path) as project:
        assert project.teachers() == []

    panel.answer.set_values(0, None)  # every label's probability: longer answers, a higher limit
    every = wait_for_estimate(qtbot, panel, first)
    assert every.max_tokens > first.max_tokens and every.cost_usd > first.cost_usd
    panel.limit.setValue(10)
    ten = wait_for_estimate(qtbot, panel, every)
    assert ten.n == 10 and "for 10 examples" in shown.headline.text()


def test_the_teacher_dialog_prices_the_projects_rows_and_the_wizard_says_after_import(qtbot, api, tmp_path,
                                                                                    monkeypatch):
    panel = open_panel(qtbot, banking_project(tmp_path, 40))
    seen = {}

    def choose(dialog):
        claude = dialog.picker.claude
        assert claude.model() == "claude-haiku-5-5"
        qtbot.waitUntil(lambda: claude.estimate.result is not None, timeout=30_000)
        seen["haiku"] = claude.estimate.result
        assert claude.estimate.headline.text().startswith("≈ $") and "for 40 examples" in claude.estimate.text()
        claude.set_model("claude-sonnet-5-5")
        qtbot.waitUntil(lambda: claude.estimate.result is not seen["haiku"] and claude.estimate.result is not None
                        and claude.estimate.result.model == "claude-sonnet-5-5", timeout=30_000)
        seen["sonnet"] = claude.estimate.result
        dialog.picker.set_answer_options(3, 700)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(harvest_panel.TeacherDialog, "exec", choose)
    panel.choose_teacher()
    assert seen["sonnet"].cost_usd > 10 * seen["haiku"].cost_usd
    assert panel.spec.text() == "claude:claude-sonnet-5-5"
    assert (panel.answer.top_k(), panel.answer.max_tokens()) == (3, 700)

    wizard_page = TeacherPicker()  # no project yet: no figure is made up
    qtbot.addWidget(wizard_page)
    wizard_page.set_kind("claude")
    assert wizard_page.claude.estimate.headline.text().startswith("Estimated after import: the Harvest tab prices")
    assert wizard_page.claude.estimate.result is None and not wizard_page.claude.answer.isVisibleTo(wizard_page)


def test_start_confirms_with_the_estimate_on_screen_without_counting_again(qtbot, api, tmp_path, monkeypatch):
    panel = open_panel(qtbot, banking_project(tmp_path, 20))
    wait_for_estimate(qtbot, panel)
    counts = [r for r in api.requests if r.path == "/v1/messages/count_tokens"]
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a: asked.append(a[2]) or QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(panel.harvest_finished, timeout=120_000) as blocker:
        assert panel.start()
    assert blocker.args == ["finished"]
    assert asked[0].startswith("20 examples to ask the teacher about. Estimated cost: $0.00")
    assert "per example" in asked[0] and "Assumes answers of ~" in asked[0]
    assert [r for r in api.requests if r.path == "/v1/messages/count_tokens"] == counts


# -- the answer's size ----------------------------------------------------------------------------------
def test_labels_per_answer_and_max_tokens_are_set_in_the_window_and_reach_the_harvest(qtbot, api, tmp_path):
    panel = open_panel(qtbot, banking_project(tmp_path, 12))
    answer = panel.answer
    assert answer.k_mode.currentText() == "auto (5 of 77)" and answer.tokens_mode.currentText() == "auto (222)"
    assert (panel.config().top_k, panel.config().max_tokens) == (None, None)
    answer.k_mode.setCurrentIndex(2)
    answer.k.setValue(3)
    answer.tokens_mode.setCurrentIndex(1)
    answer.tokens.setValue(400)
    config = panel.config()
    assert (config.top_k, config.max_tokens) == (3, 400)
    assert "3 most likely of 77 labels" in answer.hint.text() and "400 output tokens" in answer.hint.text()
    assert run_harvest(qtbot, panel) == "finished"
    bodies = [r.body for r in api.message_requests()]
    assert {b["max_tokens"] for b in bodies} == {400}
    with Project(panel.project_path) as project:
        assert project.teachers()[0]["settings"]["answer"] == "top-3"
    assert panel.done_tile.value.text() == "12"  # the counts are this teacher's (top-3) answers
    answer.set_values(None, None)
    assert panel.done_tile.value.text() == "0"  # auto is top-5: another teacher, nothing answered yet


def test_retry_failed_says_when_it_raises_the_limit_of_cut_off_answers(qtbot, api, tmp_path):
    path = banking_project(tmp_path, 10, {2: " [[fault:max_tokens*1]]", 5: " [[fault:max_tokens*1]]"})
    panel = open_panel(qtbot, path)
    assert run_harvest(qtbot, panel) == "finished"
    assert panel.failures.rowCount() == 2 and "cut off at max_tokens=222" in panel.failures.item(0, 2).text()
    assert run_harvest(qtbot, panel, retry_failed=True) == "finished"
    assert "2 answer(s) were cut off at max_tokens=222; asking again with max_tokens=444" in panel.notice.text()
    assert panel.notice.isVisibleTo(panel) and panel.failures_stack.currentWidget() is panel.no_failures


# -- the budget ------------------------------------------------------------------------------------------
def test_a_budget_under_a_cent_is_kept_and_an_empty_one_is_never_no_limit(qtbot, api, tmp_path, monkeypatch):
    panel = open_panel(qtbot, banking_project(tmp_path, 12))
    assert panel.budget.value() is None and panel.config().budget_usd is None  # "No limit" is ticked
    panel.budget.no_limit.setChecked(False)
    asked = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a: asked.append(a[2]))
    assert not panel.start(confirm_cost=False) and panel.worker is None  # no amount: nothing starts
    assert "tick No limit" in asked[0]
    qtbot.keyClicks(panel.budget.amount, "0.001")
    assert panel.budget.value() == 0.001 and panel.config().budget_usd == 0.001
    assert panel.cost_tile.caption.text() == "spent of $0.001 budget"
    panel._show_counts(3, 0, 0.0009, 100, 10)
    assert panel.cost_tile.value.text() == "$0.0009"


def test_a_budget_stop_reads_budget_reached_with_the_money_spent_and_the_answers_saved(qtbot, api, tmp_path):
    panel = open_panel(qtbot, banking_project(tmp_path, 200))
    estimate = wait_for_estimate(qtbot, panel)
    budget = round(estimate.cost_usd * 0.4, 6)  # a $0.05 budget on a $0.125 harvest, at the fake's prices
    panel.budget.setValue(budget)
    assert run_harvest(qtbot, panel) == "failed"  # the job stopped: BudgetExceeded
    with Project(panel.project_path) as project:
        counts = project.count_outputs(project.teachers()[0]["id"])
    assert 0.8 * budget <= counts["cost_usd"] <= budget  # most of the budget is spent before the stop
    assert panel.progress_text.text() == "Budget reached"
    assert panel.notice.text().startswith(f"Budget reached: {pricing.usd(counts['cost_usd'])} of "
                                          f"{pricing.usd(budget)} spent, {counts['n_ok']} answers saved this run")
    assert panel.notice.objectName() == "warning" and panel.notice.isVisibleTo(panel)
    assert panel.cost_tile.caption.text() == f"spent of {pricing.usd(budget)} budget"


# -- failures as they arrive -----------------------------------------------------------------------------
def test_failures_are_listed_while_the_harvest_runs(qtbot, tmp_path, monkeypatch):
    marks = {i: " [[fault:refusal]]" for i in range(0, 30, 3)}
    path = banking_project(tmp_path, 30, marks)
    with FakeAnthropic(latency_s=0.15) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        panel = open_panel(qtbot, path)
        panel.concurrency.setValue(2)
        seen = []

        def listed_while_running() -> bool:
            running = panel.worker is not None
            if running and panel.failures_stack.currentWidget() is panel.failures and panel.failures.rowCount():
                seen.append((panel.failures.rowCount(), panel.failed_tile.value.text()))
            return bool(seen) or not running

        with qtbot.waitSignal(panel.harvest_finished, timeout=120_000):
            assert panel.start(confirm_cost=False)
            qtbot.waitUntil(listed_while_running, timeout=60_000)
        assert seen, "the failures appeared only after the harvest"
        assert "refusal" in panel.failures.item(0, 2).text()
        assert panel.failures.rowCount() == 10 and panel.failed_tile.value.text() == "10"
        assert panel.failures_title.text() == "Failures (10)"


# -- the API key -----------------------------------------------------------------------------------------
def test_a_key_typed_without_a_keyring_is_said_to_be_for_this_session_and_can_be_replaced(qtbot):
    options = ClaudeOptions()  # the test setup has no working keyring and no ANTHROPIC_API_KEY
    qtbot.addWidget(options)
    text = options.key_status.text()
    assert text.startswith("No API key yet") and "ANTHROPIC_API_KEY" in text and "system keyring" in text
    assert "settings" not in text
    options.key_edit.setText("sk-ant-typed-000001")
    options.save_key.click()
    assert secrets.key_source() == "session" and secrets.get_api_key() == "sk-ant-typed-000001"
    said = options.key_result.text()
    assert "until KD Studio closes" in said and "ANTHROPIC_API_KEY" in said and options.key_result.objectName() == "warning"
    status = options.key_status.text()
    assert status.startswith("Using the key you typed (sk-ant-…0001)") and "environment variable (" not in status
    assert options.key_row.isVisibleTo(options) and options.key_edit.isEnabled()
    options.key_edit.setText("sk-ant-typed-000002")  # a mistyped key is replaced the same way
    options.save_key.click()
    assert secrets.get_api_key() == "sk-ant-typed-000002" and "…0002" in options.key_status.text()


def test_the_key_status_names_the_environment_or_the_keyring_and_a_typed_key_wins(qtbot, monkeypatch):
    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env-1234")
        options = ClaudeOptions()
        qtbot.addWidget(options)
        assert options.key_status.text().startswith("Using the key from the ANTHROPIC_API_KEY environment variable")
        assert options.key_row.isVisibleTo(options)  # the field stays: another key can be given
        options.key_edit.setText("sk-ant-typed-5678")
        options.save_key.click()
        assert backend.store[("kdstudio", "anthropic_api_key")] == "sk-ant-typed-5678"
        assert secrets.get_api_key() == "sk-ant-typed-5678"  # not hidden behind the environment variable
        assert "also saved in the system keyring" in options.key_status.text()
        monkeypatch.delenv("ANTHROPIC_API_KEY")
        secrets.forget_session_key()
        options.update_key_status()
        assert options.key_status.text().startswith("Using the key saved in the system keyring (service kdstudio)")
    finally:
        keyring.set_keyring(previous)


def test_without_a_key_the_harvest_says_where_to_put_one(qtbot, fake_anthropic, monkeypatch, tmp_path):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
    panel = open_panel(qtbot, banking_project(tmp_path, 5))
    assert run_harvest(qtbot, panel) == "failed"
    assert panel.progress_text.text() == "Failed" and not panel.failure.isHidden()
    message = panel.failure.reason.text()
    assert message.startswith("no Anthropic API key") and "ANTHROPIC_API_KEY" in message
    assert "OS keyring" in message and "settings" not in message


# -- the screen at 1280×800 -----------------------------------------------------------------------------
def test_nothing_in_the_claude_harvest_panel_is_cut_off_at_1280_px(qtbot, api, tmp_path):
    path = banking_project(tmp_path, 40, {1: " [[fault:refusal]]"})
    run_to_end(harvest(path, HarvestConfig(teacher=HAIKU, limit=5)))
    panel = open_panel(qtbot, path)
    panel.resize(1280, 660)  # the tab's share of a 1280×800 window
    panel.show()
    wait_for_estimate(qtbot, panel)
    qtbot.wait(100)
    for widget in panel.findChildren(QAbstractButton) + panel.findChildren(QLabel):
        if not widget.isVisibleTo(panel) or not widget.text():
            continue
        if isinstance(widget, QLabel) and widget.wordWrap():
            lines = widget.fontMetrics().boundingRect(QRect(0, 0, widget.width(), 10**6), Qt.TextFlag.TextWordWrap,
                                                      widget.text())
            assert widget.height() >= lines.height(), widget.text()
        else:
            assert widget.width() >= widget.sizeHint().width(), widget.text()
    assert panel.batch_api.text() == "Batch API (50% off, slower)"
    assert panel.batch_api.width() >= panel.batch_api.fontMetrics().horizontalAdvance(panel.batch_api.text())
