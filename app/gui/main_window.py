"""The main window: Draw, Train and Deploy tabs, menus with shortcuts, one place for every error.

``digit-distill`` without a subcommand calls :func:`run_app`. Every message meant for the person goes
through :meth:`ToolWindow.report_error` (status bar plus one non-blocking dialog) or
:meth:`ToolWindow.show_status`; uncaught exceptions in Qt slots are routed there too, never only printed.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from app.gui.settings import APPLICATION, ORGANIZATION, app_settings, read_value
from app.gui.train_tab import TrainTab
from core.runs import default_runs_root

log = logging.getLogger(__name__)

ABOUT = """<h3>digit-distill</h3>
<p>A workbench for handwritten-digit recognition by knowledge distillation: train a large teacher
(MLP 784-2000-2000-10) and a small student (784-50-50-10), distil the teacher into the student, compare with
the paper, draw digits to test them, and deploy the student to a Huawei Atlas 200 DK board.</p>
<p><b>Shortcuts</b><br>
Ctrl+T train teacher · Ctrl+Shift+T train student · Ctrl+D distill · Ctrl+. stop<br>
Ctrl+1/2/3 Draw/Train/Deploy tab · F1 this help · Ctrl+Q quit</p>"""


def _placeholder(title: str, message: str) -> QWidget:
    widget = QWidget()
    label = QLabel(f"<h3>{title}</h3><p>{message}</p>")
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    QVBoxLayout(widget).addWidget(label)
    return widget


def load_tab(module: str, class_name: str) -> tuple[QWidget, str | None]:
    """Build a tab from another module; if it cannot be built, a placeholder saying why (and the reason)."""
    try:
        return getattr(importlib.import_module(module), class_name)(), None
    except ModuleNotFoundError as exc:
        if exc.name != module:
            log.exception("could not build %s.%s", module, class_name)
            reason = f"{class_name} could not be loaded: {exc}"
        else:
            reason = f"{class_name} is not part of this installation."
    except Exception as exc:  # noqa: BLE001 - one broken tab must not take the whole app down
        log.exception("could not build %s.%s", module, class_name)
        reason = f"{class_name} failed to start: {exc.__class__.__name__}: {exc}"
    return _placeholder(class_name, reason), reason


class ToolWindow(QMainWindow):
    """A main window that shows errors in one place, remembers its geometry and stops jobs on close."""

    def __init__(self, settings_key: str):
        super().__init__()
        self._settings_key = settings_key
        self._error_box: QMessageBox | None = None
        self.last_error = ""
        self.statusBar().setSizeGripEnabled(True)

    def report_error(self, message: str, title: str = "Something went wrong") -> None:
        """Show ``message`` in the status bar and in a (single, non-blocking) dialog."""
        self.last_error = message
        self.statusBar().showMessage(f"Error: {message}", 20_000)
        if self._error_box is None:
            self._error_box = QMessageBox(
                QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self
            )
            self._error_box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._error_box.setWindowTitle(title)
        self._error_box.setText(message)
        if not self._error_box.isVisible():
            self._error_box.open()

    def show_status(self, message: str) -> None:
        """A transient status-bar message."""
        self.statusBar().showMessage(message, 10_000)

    def connect_tab(self, tab: QWidget) -> None:
        """Route a tab's ``error_occurred`` / ``status_message`` signals (where it has them) here."""
        if hasattr(tab, "error_occurred"):
            tab.error_occurred.connect(self.report_error)
        if hasattr(tab, "status_message"):
            tab.status_message.connect(self.show_status)

    def tabs_to_shut_down(self) -> list[QWidget]:
        """Widgets whose ``shutdown()`` must run before the window closes."""
        return []

    def restore_geometry(self, default_size: tuple[int, int]) -> None:
        """Restore the saved window geometry, or use ``default_size``."""
        geometry = app_settings().value(f"{self._settings_key}/geometry")
        if not (isinstance(geometry, QByteArray) and self.restoreGeometry(geometry)):
            self.resize(*default_size)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        """Stop running jobs and wait for them, save the geometry, then close."""
        self.statusBar().showMessage("Stopping running jobs…")
        for tab in self.tabs_to_shut_down():
            shutdown = getattr(tab, "shutdown", None)
            if callable(shutdown):
                try:
                    shutdown()
                except Exception:  # noqa: BLE001 - closing must not fail halfway
                    log.exception("shutdown of %s failed", type(tab).__name__)
        app_settings().setValue(f"{self._settings_key}/geometry", self.saveGeometry())
        super().closeEvent(event)


class MainWindow(ToolWindow):
    """Draw, Train and Deploy in one window."""

    def __init__(self, runs_root: Path | None = None):
        super().__init__("window")
        self.setWindowTitle("digit-distill — knowledge distillation workbench")
        self.runs_root = Path(runs_root) if runs_root else default_runs_root()
        self.draw_tab, draw_problem = load_tab("app.gui.draw_tab", "DrawTab")
        self.train_tab = TrainTab(runs_root=self.runs_root)
        self.deploy_tab, deploy_problem = load_tab("app.gui.deploy_tab", "DeployTab")
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.draw_tab, "&Draw")
        self.tabs.addTab(self.train_tab, "&Train")
        self.tabs.addTab(self.deploy_tab, "De&ploy")
        self.tabs.setTabToolTip(0, "Draw a digit and watch the teacher and the student classify it")
        self.tabs.setTabToolTip(1, "Train the teacher and the students; compare with the paper")
        self.tabs.setTabToolTip(2, "Convert a model with ATC and run it on an Atlas 200 DK board")
        self.setCentralWidget(self.tabs)
        for tab in (self.draw_tab, self.train_tab, self.deploy_tab):
            self.connect_tab(tab)
        self._wire_board()
        self.train_tab.models_ready.connect(self.send_to_draw)
        self._build_menus()
        self.restore_geometry((1400, 900))
        self.tabs.setCurrentIndex(read_value(app_settings(), "window/tab", 0))
        problems = [p for p in (draw_problem, deploy_problem) if p]
        self.show_status(" ".join(problems) if problems else "Ready")

    def _wire_board(self) -> None:
        """Connect the Draw tab's board slot to the Deploy tab: requests, answers, readiness and failures."""
        draw, deploy = self.draw_tab, self.deploy_tab
        if hasattr(draw, "board_request") and hasattr(deploy, "predict_on_board"):
            draw.board_request.connect(deploy.predict_on_board)
        if hasattr(deploy, "board_prediction") and hasattr(draw, "show_board_result"):
            deploy.board_prediction.connect(draw.show_board_result)
        if hasattr(deploy, "board_ready") and hasattr(draw, "set_board_available"):
            deploy.board_ready.connect(draw.set_board_available)
        if hasattr(deploy, "board_error") and hasattr(draw, "show_board_error"):
            deploy.board_error.connect(draw.show_board_error)
        if hasattr(deploy, "deployed") and hasattr(draw, "show_deployed"):
            deploy.deployed.connect(draw.show_deployed)

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.choose_data_action = file_menu.addAction(
            "Choose MNIST &folder…", self.train_tab.data_panel.choose_folder
        )
        self.download_action = file_menu.addAction(
            "&Download MNIST…", self.train_tab.data_panel.start_download
        )
        file_menu.addAction("Open &runs folder", self.open_runs_folder)
        file_menu.addSeparator()
        quit_action = file_menu.addAction("&Quit", self.close)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        train_menu = menu.addMenu("&Train")
        for action in self.train_tab.actions_for_menu():
            train_menu.addAction(action)
            action.triggered.connect(lambda _=False: self.tabs.setCurrentWidget(self.train_tab))
        view_menu = menu.addMenu("&View")
        for index, name in enumerate(("Draw", "Train", "Deploy")):
            action = QAction(f"&{name} tab", self)
            action.setShortcut(QKeySequence(f"Ctrl+{index + 1}"))
            action.triggered.connect(lambda _=False, i=index: self.tabs.setCurrentIndex(i))
            view_menu.addAction(action)
        help_menu = menu.addMenu("&Help")
        about = help_menu.addAction("&About and shortcuts", self.show_about)
        about.setShortcut(QKeySequence("F1"))
        self.quit_action, self.about_action = quit_action, about

    def tabs_to_shut_down(self) -> list[QWidget]:
        """All three tabs (each stops its own jobs)."""
        return [self.draw_tab, self.train_tab, self.deploy_tab]

    def send_to_draw(self, teacher_onnx: Path | None, student_onnx: Path | None) -> None:
        """Load a finished run's ONNX models into the Draw tab and switch to it."""
        use_models = getattr(self.draw_tab, "use_models", None)
        if not callable(use_models):
            self.report_error("The Draw tab of this version cannot load models from the Train tab.")
            return
        try:
            use_models(teacher_onnx, student_onnx)
        except Exception as exc:  # noqa: BLE001 - a bad model file becomes a message
            self.report_error(f"Could not load the models into the Draw tab: {exc}")
            return
        self.tabs.setCurrentWidget(self.draw_tab)
        names = [p.parent.name for p in (teacher_onnx, student_onnx) if p]
        self.show_status(f"Draw tab now uses {' and '.join(names)}")

    def open_runs_folder(self) -> None:
        """Open the folder holding the training runs in the file manager."""
        self.runs_root.mkdir(parents=True, exist_ok=True)
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.runs_root))):
            self.report_error(f"Could not open a file manager; the runs are in {self.runs_root}")

    def show_about(self) -> QMessageBox:
        """The About box with the keyboard shortcuts (non-blocking)."""
        box = QMessageBox(
            QMessageBox.Icon.Information, "About digit-distill", ABOUT, QMessageBox.StandardButton.Ok, self
        )
        box.setTextFormat(Qt.TextFormat.RichText)
        box.open()
        return box

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        """Remember the open tab, then stop jobs and close (see :class:`ToolWindow`)."""
        app_settings().setValue("window/tab", self.tabs.currentIndex())
        super().closeEvent(event)


class SingleTabWindow(ToolWindow):
    """One tab in a window of its own (``python -m app.gui.train_tab``)."""

    def __init__(self, tab: QWidget, title: str):
        super().__init__(f"window-{title.lower()}")
        self.tab = tab
        self.setWindowTitle(f"digit-distill — {title}")
        self.setCentralWidget(tab)
        self.connect_tab(tab)
        if hasattr(tab, "actions_for_menu"):  # keyboard shortcuts without the main window's menus
            self.addActions(tab.actions_for_menu())
        self.restore_geometry((1300, 850))

    def tabs_to_shut_down(self) -> list[QWidget]:
        """The one tab."""
        return [self.tab]


def _application() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("digit-distill")
    return app


def install_error_hook(window: ToolWindow) -> None:
    """Show exceptions that escape Qt slots in the window (and print the traceback for developers)."""

    def hook(exc_type, exc, tb) -> None:
        traceback.print_exception(exc_type, exc, tb)
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        window.report_error(f"{exc_type.__name__}: {exc}", title="Unexpected error")

    sys.excepthook = hook


class _QuitAfterFirstPaint(QObject):
    """Event filter: at the window's first paint, print one line on stdout and quit the event loop."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Paint:
            watched.removeEventFilter(self)
            print("digit-distill: main window painted", flush=True)
            QTimer.singleShot(0, watched.close)
        return False


def _run(window_factory: Callable[[], ToolWindow], quit_after_paint: bool = False) -> int:
    app = _application()
    window = window_factory()
    install_error_hook(window)
    if quit_after_paint:
        window._quit_filter = _QuitAfterFirstPaint(window)
        window.installEventFilter(window._quit_filter)
    window.show()
    return app.exec()


def run_app(quit_after_paint: bool = False) -> int:
    """Open the main window and run the event loop until it closes; returns the exit code.

    With ``quit_after_paint`` the window closes right after its first paint (``digit-distill --smoke``).
    """
    return _run(MainWindow, quit_after_paint)


def run_single_tab(tab_factory: Callable[[], QWidget], title: str) -> int:
    """Open one tab alone in a window (for a quick look at a tab)."""
    return _run(lambda: SingleTabWindow(tab_factory(), title))
