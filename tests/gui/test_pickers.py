"""The teacher and student pickers run their core jobs in a worker and show what the typed
results hold: the Claude models with their prices, the connection test's line, the students'
measured size and speed."""

from __future__ import annotations

from fakes import anthropic_server
from PySide6.QtWidgets import QLabel

from kdstudio.core.students import STUDENTS
from kdstudio.gui import student_picker
from kdstudio.gui.student_picker import StudentPicker
from kdstudio.gui.teacher_picker import ClaudeOptions

fake_anthropic = anthropic_server.fake_anthropic  # the fixture: a started fake API per test


def test_the_claude_options_list_the_models_with_prices_and_test_the_connection(qtbot, fake_anthropic,
                                                                               monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
    options = ClaudeOptions()
    qtbot.addWidget(options)
    options.load_models()
    qtbot.waitUntil(lambda: options.result.text() == "Model list updated.", timeout=20_000)
    items = {options.model_box.itemData(i): options.model_box.itemText(i) for i in range(options.model_box.count())}
    assert items["claude-haiku-5-5"] == "Claude Haiku 5.5 — $0.10 in · $0.50 out / MTok"

    options.set_model("claude-haiku-5-5")
    options.test_connection()
    assert not options.test.isEnabled()
    qtbot.waitUntil(options.test.isEnabled, timeout=20_000)
    assert options.result.text().startswith("✓ Connected") and "claude-haiku-5-5" in options.result.text()

    monkeypatch.setenv("ANTHROPIC_API_KEY", "nope")
    options.test_connection()
    qtbot.waitUntil(options.test.isEnabled, timeout=20_000)
    assert options.result.text().startswith("✗ ") and "rejected" in options.result.text()


def card_text(picker: StudentPicker, name: str) -> str:
    return " | ".join(w.text() for w in picker.cards[name].findChildren(QLabel))


def test_the_student_cards_show_each_presets_measured_size_and_speed(qtbot, monkeypatch):
    monkeypatch.setattr(student_picker, "PRESET_FIGURES", {})
    picker = StudentPicker()
    qtbot.addWidget(picker)
    assert "measuring size and speed…" in card_text(picker, "bilstm")
    picker.show()  # measures the presets in a worker, once per session
    qtbot.waitUntil(lambda: picker._measuring is None and bool(student_picker.PRESET_FIGURES), timeout=120_000)
    presets = student_picker.preset_names("classification")
    assert set(student_picker.PRESET_FIGURES) == set(presets) and set(presets) <= {i.name for i in STUDENTS.values()}
    bilstm = student_picker.PRESET_FIGURES["bilstm"]
    text = card_text(picker, "bilstm")
    assert f"{bilstm.params / 1e6:.1f}M params" in text and f"≈ {bilstm.size_mb:.0f} MB · speed" in text
    assert "measuring" not in text
