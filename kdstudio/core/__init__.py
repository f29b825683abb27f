"""GUI-free core of KD Studio: every pipeline stage as a generator of typed events.

Nothing in this package imports PySide6, pyqtgraph or kdstudio.gui; heavy libraries
(torch, transformers, anthropic) are imported inside the functions that need them.
"""
