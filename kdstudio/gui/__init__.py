"""The desktop application: the only package that imports PySide6 and pyqtgraph.

Every long job runs a ``kdstudio.core`` generator in :mod:`kdstudio.gui.worker`; widgets hold
no pipeline logic. Start it with ``kdstudio`` or ``kdstudio PROJECT``.
"""

from kdstudio.gui import qtcompat as _qtcompat  # noqa: F401 - patches a PySide6 6.12 bug on import
