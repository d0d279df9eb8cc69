"""What every window of the app shares, and the one helper that shows a tab in a window of its own.

:class:`Tab` is the base of the Draw, Train and Deploy tabs: the signals and hooks a window needs from a tab.
:class:`ToolWindow` is the base of the main window (:mod:`app.gui.shell`) and of :class:`SingleTabWindow`:
errors as one dialog with the traceback under "Show Details…", transient notes in the status bar, window
geometry and splitter positions remembered (QSettings), and on close "a job is running: stop it and quit?".
:func:`run_tab_alone` is what ``python -m app.gui.draw_tab`` (and the other tabs) call.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable

from PySide6.QtCore import QByteArray, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QSplitter, QWidget

from app.gui.qt_platform import platform_problem
from app.gui.settings import APPLICATION, ORGANIZATION, app_settings

log = logging.getLogger(__name__)


class Tab(QWidget):
    """A page of the app: what a window needs from it (signals to show, actions, a job to stop on close).

    Signals
    -------
    error_occurred(str)
        A problem for the person: shown in the status bar and a dialog.
    error_details(str, str)
        The same with details (a traceback) the dialog shows under "Show Details…".
    status_message(str)
        A transient note for the status bar.
    """

    error_occurred = Signal(str)
    error_details = Signal(str, str)
    status_message = Signal(str)

    def actions_for_menu(self) -> list[QAction]:
        """Actions (with shortcuts) the window puts in its menus; none by default."""
        return []

    def is_busy(self) -> bool:
        """True while a job runs that closing the window would stop."""
        return False

    def shutdown(self) -> bool | None:
        """Stop this tab's jobs and wait for them (the window is closing); a tab may say whether they ended."""

    def splitters(self) -> dict[str, QSplitter]:
        """Splitters whose positions are remembered between sessions, by a stable name."""
        return {}


class ToolWindow(QMainWindow):
    """A main window that shows errors in one place, remembers its layout and stops jobs on close.

    Parameters
    ----------
    settings_key
        Group of the QSettings keys for this window's geometry and splitters.
    """

    def __init__(self, settings_key: str):
        super().__init__()
        self._settings_key = settings_key
        self._error_box: QMessageBox | None = None
        self.last_error = ""
        self.confirm_close: Callable[[str], bool] = self._ask_to_stop
        self.statusBar().setSizeGripEnabled(True)

    # ------------------------------------------------------------------------------------ messages
    def report_error(self, message: str, title: str = "Something went wrong", details: str = "") -> None:
        """Show ``message`` in the status bar and in one non-blocking dialog (``details`` behind a button)."""
        self.last_error = message
        self.statusBar().showMessage(f"Error: {message}", 20_000)
        if self._error_box is None:
            self._error_box = QMessageBox(
                QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self
            )
            self._error_box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._error_box.setWindowTitle(title)
        self._error_box.setText(message)
        self._error_box.setDetailedText(details)
        if not self._error_box.isVisible():
            self._error_box.open()

    def show_status(self, message: str) -> None:
        """A transient status-bar message."""
        self.statusBar().showMessage(message, 10_000)

    def connect_tab(self, tab: Tab) -> None:
        """Route a tab's errors and notes here and restore its splitters."""
        tab.error_occurred.connect(self.report_error)
        tab.error_details.connect(lambda message, details: self.report_error(message, details=details))
        tab.status_message.connect(self.show_status)
        settings = app_settings()
        for name, splitter in tab.splitters().items():
            state = settings.value(f"{self._settings_key}/splitter-{name}")
            if isinstance(state, QByteArray):
                splitter.restoreState(state)

    # --------------------------------------------------------------------------------------- layout
    def built_tabs(self) -> list[Tab]:
        """The tabs this window holds now."""
        return []

    def restore_geometry(self, default_size: tuple[int, int]) -> None:
        """Restore the saved window geometry, or use ``default_size``."""
        geometry = app_settings().value(f"{self._settings_key}/geometry")
        if not (isinstance(geometry, QByteArray) and self.restoreGeometry(geometry)):
            self.resize(*default_size)

    def save_layout(self) -> None:
        """Remember the window geometry and every tab's splitter positions."""
        settings = app_settings()
        settings.setValue(f"{self._settings_key}/geometry", self.saveGeometry())
        for tab in self.built_tabs():
            for name, splitter in tab.splitters().items():
                settings.setValue(f"{self._settings_key}/splitter-{name}", splitter.saveState())

    # ---------------------------------------------------------------------------------------- close
    def _ask_to_stop(self, jobs: str) -> bool:
        answer = QMessageBox.question(
            self,
            "A job is running",
            f"A job is running ({jobs}). Stop it and quit?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        """Ask before stopping a running job; then stop every tab's jobs, save the layout and close."""
        busy = [type(tab).__name__.removesuffix("Tab").lower() for tab in self.built_tabs() if tab.is_busy()]
        if busy and not self.confirm_close(", ".join(busy)):
            event.ignore()
            return
        self.statusBar().showMessage("Stopping running jobs…")
        for tab in self.built_tabs():
            try:
                tab.shutdown()
            except Exception:  # noqa: BLE001 - closing must not fail halfway
                log.exception("shutdown of %s failed", type(tab).__name__)
        self.save_layout()
        super().closeEvent(event)


class SingleTabWindow(ToolWindow):
    """One tab in a window of its own (``python -m app.gui.train_tab``)."""

    def __init__(self, tab: Tab, title: str):
        super().__init__(f"window-{title.lower()}")
        self.tab = tab
        self.setWindowTitle(f"digit-distill — {title}")
        self.setCentralWidget(tab)
        self.connect_tab(tab)
        self.addActions(tab.actions_for_menu())  # keyboard shortcuts without the main window's menus
        self.restore_geometry((1300, 850))

    def built_tabs(self) -> list[Tab]:
        """The one tab."""
        return [self.tab]


def application() -> QApplication:
    """The QApplication (created on first call), named so QSettings finds the app's settings.

    Raises
    ------
    SystemExit
        Qt could not open a window here (libraries or display missing): one line says what to do, instead of
        Qt's own abort (:func:`app.gui.qt_platform.platform_problem`).
    """
    app = QApplication.instance()
    if app is None:
        problem = platform_problem()
        if problem:
            raise SystemExit(f"digit-distill: {problem}")
        app = QApplication(sys.argv)
    if not isinstance(app, QApplication):
        raise RuntimeError("a QCoreApplication without a GUI is already running in this process")
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("digit-distill")
    return app


def install_error_hook(window: ToolWindow) -> None:
    """Show exceptions that escape Qt slots in the window, traceback under Details (and on stderr)."""

    def hook(exc_type, exc, tb) -> None:
        traceback.print_exception(exc_type, exc, tb)
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        window.report_error(f"{exc_type.__name__}: {exc}", title="Unexpected error", details=details)

    sys.excepthook = hook


def run_window(window_factory: Callable[[], ToolWindow]) -> int:
    """Create the application and the window, show it and run the event loop; returns the exit code."""
    app = application()
    window = window_factory()
    install_error_hook(window)
    window.show()
    return app.exec()


def run_tab_alone(tab_factory: Callable[[], Tab], title: str) -> int:
    """Open one tab alone in a window (``python -m app.gui.<name>_tab``)."""
    return run_window(lambda: SingleTabWindow(tab_factory(), title))
