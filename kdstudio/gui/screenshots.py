"""Render each main screen of the sample project to PNG: ``python -m kdstudio.gui.screenshots OUTDIR``.

Builds the sample project first when it is missing (offline, the same as ``kdstudio demo``), then
shows the welcome screen, the wizard's four steps, and the project's Overview, Harvest, Training,
Evaluate (the dashboard) and Compare (the viewer, one example selected) tabs, and saves each as
``OUTDIR/<screen>.png``; then the same for the generation sample (``kdstudio demo --task generation``,
E2E restaurants) as ``generation-<screen>.png``, where this version has it. Runs without a display.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _settle(app, seconds: float = 0.3, until=None) -> None:
    """Let timers, workers and paints run for a while (or until ``until()`` is true)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or (until is not None and not until() and time.monotonic() < deadline + 30):
        app.processEvents()
        time.sleep(0.01)


def ensure_sample(path: Path) -> Path:
    """Build the sample project with ``kdstudio.core.demo`` when it has no finished run yet."""
    from kdstudio.core.demo import demo, sample_is_ready
    from kdstudio.core.events import Log

    if not sample_is_ready(path):
        print(f"building the sample project in {path.parent} (first time only)…", file=sys.stderr)
        for event in demo(path.parent):
            if isinstance(event, Log):
                print(f"  {event.message}", file=sys.stderr)
    return path


def render(out_dir: Path, *, theme: str = "light", size: tuple[int, int] = (1280, 860)) -> list[Path]:
    """Save the screens to ``out_dir``; return the files written."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from kdstudio.gui.settings import (
        add_recent_project,
        init_application_names,
        sample_project_path,
    )
    from kdstudio.gui.theme import ThemeManager

    init_application_names()
    app = QApplication.instance() or QApplication(["kdstudio-screenshots"])
    ThemeManager.instance().apply(theme)
    from kdstudio.gui.main_window import MainWindow

    out_dir.mkdir(parents=True, exist_ok=True)
    sample = ensure_sample(sample_project_path())
    add_recent_project(sample)
    written: list[Path] = []

    def save(widget, name: str) -> None:
        _settle(app, 0.4)
        path = out_dir / f"{name}.png"
        widget.grab().save(str(path))
        written.append(path)

    window = MainWindow()
    window.resize(*size)
    window.show()
    window.set_device_text("CPU")
    window.welcome.refresh()
    save(window, "welcome")

    window.new_project()
    wizard = window._wizard
    wizard.resize(1040, 720)
    page = wizard.data_page
    page.name.setText("banking-intents")
    from kdstudio.core.paths import resources_dir

    data = resources_dir() / "sample" / "train.csv"
    page.add_file(str(data))
    _settle(app, 0.3, until=lambda: str(data.resolve()) in page.previews and page.plan is not None)
    _settle(app, 0.2)
    wizard.pages.currentWidget().ensureWidgetVisible(page.preview, 0, 0)
    save(wizard, "wizard-data")
    for name in ("wizard-teacher", "wizard-student", "wizard-settings"):
        wizard.go_to(wizard.index + 1)
        if name == "wizard-student":
            _settle(app, 0.5, until=lambda: wizard.student_page._measuring is None)
        save(wizard, name)
    wizard.reject()

    window.open_project(sample)
    view = window.project_view
    training = view.training
    _settle(app, 0.5, until=lambda: not training._loaders)
    for index, name in enumerate(("overview", "harvest", "training", "evaluate", "compare")):
        view.tabs.setCurrentIndex(index)
        if name == "training":
            training.view.redraw()
        if name == "evaluate":
            _settle(app, 0.3, until=lambda: view.evaluate.data is not None)
        if name == "compare":
            _settle(app, 0.3, until=lambda: view.compare.model is not None)
            if view.compare.model is not None and view.compare.model.total > 1:
                view.compare.table.selectRow(1)
        save(window, name)
    view.close_project()
    _generation_screens(window, app, save)
    window.close()
    return written


def _generation_screens(window, app, save) -> None:
    """The generation sample's screens (E2E restaurants): the wizard's teacher step for a generation
    project, then Harvest, Training, Evaluate and Compare (the sample is built first when missing)."""
    from kdstudio.core.demo import sample_is_ready
    from kdstudio.core.demo_generation import demo_generation
    from kdstudio.core.events import Log
    from kdstudio.gui.settings import generation_sample_path

    path = generation_sample_path()
    if not sample_is_ready(path):
        print(f"building the generation sample in {path.parent} (first time only)…", file=sys.stderr)
        for event in demo_generation(path.parent):
            if isinstance(event, Log):
                print(f"  {event.message}", file=sys.stderr)

    window.new_project()
    wizard = window._wizard
    wizard.resize(1040, 720)
    wizard.data_page.set_task("generation")
    wizard.go_to(1)
    wizard.teacher_page.instructions.setPlainText("Write a one-sentence description of the restaurant from "
                                                  "its attributes.")
    save(wizard, "generation-wizard-teacher")
    wizard.reject()

    window.open_project(path)
    view = window.project_view
    _settle(app, 0.5, until=lambda: not view.training._loaders)
    for index, name in ((1, "harvest"), (2, "training"), (3, "evaluate"), (4, "compare")):
        view.tabs.setCurrentIndex(index)
        if name == "training":
            view.training.view.redraw()
        if name == "evaluate":
            _settle(app, 0.3, until=lambda: view.evaluate.data is not None)
        if name == "compare":
            _settle(app, 0.3, until=lambda: view.compare.model is not None)
            if view.compare.model is not None and view.compare.model.rowCount() > 1:
                view.compare.table.selectRow(1)
        save(window, f"generation-{name}")
    view.close_project()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdstudio.gui.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for the PNG files")
    parser.add_argument("--theme", choices=("light", "dark"), default="light")
    parser.add_argument("--size", default="1280x860", help="window size, WIDTHxHEIGHT (default 1280x860)")
    args = parser.parse_args(argv)
    width, _, height = args.size.partition("x")
    for path in render(args.out_dir, theme=args.theme, size=(int(width), int(height))):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
