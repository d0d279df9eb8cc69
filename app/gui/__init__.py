"""The desktop app: main window with the Draw, Train and Deploy tabs (PySide6 + pyqtgraph).

Long work runs through :class:`app.gui.workers.JobRunner`; settings live in :mod:`app.gui.settings`.
"""
