"""The reliability suite: kills, API faults, storage faults, bad input files, security, GUI robustness.

Each module injects one kind of fault and checks the same three things afterwards: nothing paid
for or computed is lost, the user sees one clear line (never a traceback), and the project file is
consistent (``PRAGMA integrity_check``). The fixtures of ``tests/conftest.py`` apply here too.
"""

from gui.conftest import project_path, window  # noqa: F401 - the GUI tests' small project, and the window on it
