"""Start the desktop application: ``kdstudio`` or ``kdstudio PROJECT``.

Only Qt and the welcome screen load before the window appears; pyqtgraph, the project store,
torch and transformers load later, when a screen or a job needs them. With ``KDSTUDIO_TIMING=1``
the time from process start to the first painted window is printed on stderr.
"""

from __future__ import annotations

import os
import sys
import time

_T0 = time.perf_counter()


def _process_age_s() -> float:
    """Seconds since this process started (Linux), else since this module was imported."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - _T0


def main(argv: list[str] | None = None) -> int:
    """Create the QApplication, show the main window (opening ``argv[0]`` as a project when
    given) and run the event loop. Returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    project = next((a for a in argv if not a.startswith("-")), None)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from kdstudio.gui.settings import app_settings, init_application_names
    from kdstudio.gui.theme import ThemeManager

    init_application_names()
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "kdstudio"])
    app.setApplicationDisplayName("KD Studio")
    app.setDesktopFileName("io.github.kdstudio.KDStudio")
    ThemeManager.instance().apply(str(app_settings().value("theme", "system")))

    from kdstudio.gui.icons import app_icon
    from kdstudio.gui.main_window import MainWindow

    app.setWindowIcon(app_icon())
    window = MainWindow()
    window.show()

    def first_paint() -> None:
        if os.environ.get("KDSTUDIO_TIMING"):
            print(f"kdstudio: first window after {_process_age_s() * 1000:.0f} ms "
                  f"({(time.perf_counter() - _T0) * 1000:.0f} ms after the GUI module loaded)",
                  file=sys.stderr, flush=True)
        if os.environ.get("KDSTUDIO_EXIT_AFTER_FIRST_WINDOW"):
            QTimer.singleShot(0, window.close)

    QTimer.singleShot(0, first_paint)
    if project:
        QTimer.singleShot(0, lambda: window.open_project(project))
    window.start_background_tasks()
    from kdstudio.gui.worker import stop_all

    app.aboutToQuit.connect(stop_all)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
