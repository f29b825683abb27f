"""CI check: on a fresh user profile, "Open sample project" on the welcome screen builds the sample
in the app's worker and opens it with a finished run. Runs offscreen; exits 0 or 1 with one line."""

from __future__ import annotations

import os
import sys
import tempfile
import time

LIMIT_S = 1800


def main() -> int:
    profile = tempfile.mkdtemp(prefix="kdstudio-profile-")
    os.environ["KDSTUDIO_HOME"] = os.path.join(profile, "data")
    os.environ["XDG_CONFIG_HOME"] = os.path.join(profile, "config")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from kdstudio.gui.settings import init_application_names

    init_application_names()
    app = QApplication([sys.argv[0]])
    from kdstudio.gui.main_window import MainWindow

    window = MainWindow()
    window.resize(1280, 800)
    window.show()
    t0 = time.monotonic()
    outcome: dict[str, object] = {}
    # A message box would wait for a click that never comes: keep its text as the reason instead.
    QMessageBox.warning = lambda _parent, title, text, *a, **k: outcome.setdefault("message", f"{title}: {text}")

    def poll() -> None:
        view = window.project_view
        if view is not None:
            from kdstudio.core.store import Project

            with Project(window.project_path) as project:
                run = project.latest_run()
            outcome["ok"] = run is not None
            outcome["line"] = (f"the sample project is open with finished run #{run} after "
                               f"{time.monotonic() - t0:.0f} s" if run else "the sample project has no finished run")
            app.quit()
        elif not window.jobs.busy and time.monotonic() - t0 > 5:
            outcome["ok"] = False
            outcome["line"] = f"the sample job ended without opening the project ({outcome.get('message', '')})"
            app.quit()
        elif time.monotonic() - t0 > LIMIT_S:
            outcome["ok"], outcome["line"] = False, f"the sample project was not open after {LIMIT_S} s"
            app.quit()

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(500)
    QTimer.singleShot(0, window.welcome.sample_card.clicked.emit)
    app.exec()
    print(f"open sample: {outcome.get('line', 'no result')}", file=sys.stderr if not outcome.get("ok") else sys.stdout)
    return 0 if outcome.get("ok") else 1


if __name__ == "__main__":
    raise SystemExit(main())
