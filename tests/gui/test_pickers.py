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
    assert f"{bilstm.params / 1e6:.1f}M params" in text and f"≈ {student_picker.format_mb(bilstm.size_mb)} · speed" in text
    assert "measuring" not in text
    assert picker.basis.text().startswith("Sizes for a vocabulary of 8,000 pieces and 2 labels")
    fastest = [n for n in presets if "(fastest)" in card_text(picker, n)]
    assert len(fastest) == 1  # only the one fastest preset says so


def test_only_the_single_fastest_preset_is_called_fastest_and_ties_go_to_the_first_listed():
    from kdstudio.core.students import StudentFigure

    figures = {"bilstm": StudentFigure("bilstm", 1, 0.1, 2.0), "cnn": StudentFigure("cnn", 1, 0.1, 2.0),
               "transformer-tiny": StudentFigure("transformer-tiny", 1, 0.1, 2.9)}
    names = ["bilstm", "cnn", "transformer-tiny"]
    assert student_picker.fastest_preset(figures, names) == "bilstm"
    assert student_picker.fastest_preset(figures, names[::-1]) == "cnn"
    assert student_picker.relative_speed(2.0, 2.0, False) == "1.0× the fastest"
    assert student_picker.relative_speed(2.9, 2.0, False) == "1.4× the fastest"


def test_a_picker_given_a_project_shows_the_parameters_its_run_will_train(qtbot, tmp_path):
    from fakes.tiny_models import build_toy_project

    from kdstudio.core.events import run_to_end
    from kdstudio.core.train import TrainConfig, train

    project, _ = build_toy_project(tmp_path / "toy.kdproj")
    project.close()
    config = {"student": "cnn", "vocab_size": 500, "epochs": 1, "batch_size": 8, "num_threads": 1}
    picker = StudentPicker()
    qtbot.addWidget(picker)
    picker.set_project(tmp_path / "toy.kdproj", config)
    picker.show()
    qtbot.waitUntil(lambda: picker._measuring is None and "cnn" in picker.figures(), timeout=120_000)
    run = run_to_end(train(tmp_path / "toy.kdproj", TrainConfig.from_dict(config)))
    assert picker.figures()["cnn"].params == run.params
    assert f"{run.params / 1e6:.1f}M params" in card_text(picker, "cnn")
    assert picker.basis.text().startswith("Sizes for this project: a WordPiece vocabulary of ")
    assert "cnn" not in student_picker.PRESET_FIGURES or student_picker.PRESET_FIGURES["cnn"] is not picker.figures()["cnn"]
