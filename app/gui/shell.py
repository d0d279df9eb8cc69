"""The main window: the tabs listed in :data:`TABS`, menus, Help > Keyboard shortcuts, a fast start.

``digit-distill`` without a subcommand calls :func:`run_app`. The window is painted before anything heavy is
imported: the Draw tab is built at once (Qt and numpy only) and loads its models (onnxruntime) right after the
first paint; the Train tab (PyTorch, pyqtgraph) and the Deploy tab (paramiko) are imported in a background
thread once the window is up, and built when that is done or when they are first opened, whichever comes
first. Each tab's ``build`` function below imports its module, creates the tab and wires it to the window
and to the other tabs with plain signal connections.

Kept in one module: the window, its menus and the tab list it builds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from PySide6.QtCore import QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence, QPaintEvent, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QLabel,
    QMenu,
    QMessageBox,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui.settings import app_settings, read_value
from app.gui.window import Tab, ToolWindow, run_window
from core.runs import default_runs_root

log = logging.getLogger(__name__)

ABOUT = """<h3>digit-distill</h3>
<p>A workbench for handwritten-digit recognition by knowledge distillation: train a large teacher
(MLP 784-2000-2000-10) and a small student (784-50-50-10), distil the teacher into the student, compare with
the paper, draw digits to test them, and deploy the student to a Huawei Atlas 200 DK board.</p>
<p>Help &gt; Keyboard shortcuts (F1) lists every shortcut.</p>"""


@dataclass(frozen=True)
class TabSpec:
    """One tab of the main window.

    Attributes
    ----------
    key
        Stable name (settings, :meth:`MainWindow.tab`).
    title
        Tab text with its mnemonic.
    tooltip
        What the tab is for.
    build
        Creates the tab and wires it into the window (called once, in the GUI thread).
    preload
        Imports the tab's heavy modules; run in a background thread after the first paint, the tab is built
        when that is done. ``None``: built in the GUI thread right after the first paint.
    """

    key: str
    title: str
    tooltip: str
    build: Callable[[MainWindow], Tab]
    preload: Callable[[], None] | None = None


def _build_draw(window: MainWindow) -> Tab:
    from app.gui.draw_tab import DrawTab

    tab = DrawTab(runs_root=window.runs_root, load_models=False)
    window.when_settled(tab.load_models)  # onnxruntime and the models: once the window is up
    return tab


def _preload_train() -> None:
    import app.gui.train_tab  # noqa: F401 - torch and pyqtgraph: seconds


def _build_train(window: MainWindow) -> Tab:
    from app.gui.train_tab import TrainTab

    tab = TrainTab(runs_root=window.runs_root)
    tab.models_ready.connect(window.send_to_draw)
    window.choose_data_action.triggered.connect(tab.data_panel.choose_folder)
    window.download_action.triggered.connect(tab.data_panel.start_download)
    window.train_menu.clear()
    for action in tab.actions_for_menu():
        window.train_menu.addAction(action)
        action.triggered.connect(lambda _=False: window.show_tab("train"))
    return tab


def _preload_deploy() -> None:
    import app.gui.deploy_tab  # noqa: F401 - paramiko and cryptography


def _build_deploy(window: MainWindow) -> Tab:
    from app.gui.deploy_tab import DeployTab

    tab = DeployTab()
    draw = window.draw_tab
    draw.board_request.connect(tab.predict_on_board)
    tab.board_prediction.connect(draw.show_board_result)
    tab.board_ready.connect(draw.set_board_available)
    tab.board_error.connect(draw.show_board_error)
    tab.deployed.connect(draw.show_deployed)
    return tab


TABS: tuple[TabSpec, ...] = (
    TabSpec("draw", "&Draw", "Draw a digit and watch the teacher and the student classify it", _build_draw),
    TabSpec(
        "train",
        "&Train",
        "Train the teacher and the students; compare with the paper",
        _build_train,
        _preload_train,
    ),
    TabSpec(
        "deploy",
        "De&ploy",
        "Convert a model with ATC and run it on an Atlas 200 DK board",
        _build_deploy,
        _preload_deploy,
    ),
)
"""The main window's tabs, in order. The first one is built before the window is shown."""


class _Preloader(QObject):
    """Runs the tabs' ``preload`` functions one after the other in a daemon thread; ``done(key)`` after each.

    A daemon thread, so that closing the window within the first seconds does not wait for the imports; an
    import cut off by the interpreter's exit stops the thread quietly.
    """

    done = Signal(str)

    def start(self, specs: list[TabSpec]) -> None:
        thread = threading.Thread(target=self._run, args=(specs,), name="digit-distill preload", daemon=True)
        thread.start()

    def _run(self, specs: list[TabSpec]) -> None:
        for spec in specs:
            if spec.preload is None:  # nothing to import ahead: the tab is built when shown
                self.done.emit(spec.key)
                continue
            try:
                spec.preload()
            except Exception:  # noqa: BLE001 - building the tab in the GUI thread reports it properly
                if not threading.main_thread().is_alive():
                    return  # the app is exiting
                log.exception("preloading the %s tab failed", spec.key)
            self.done.emit(spec.key)


def _loading_page(spec: TabSpec) -> QWidget:
    page = QWidget()
    label = QLabel(f"Loading the {spec.title.replace('&', '')} tab…")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    QVBoxLayout(page).addWidget(label)
    return page


def _scrolling(page: QWidget) -> QScrollArea:
    """``page`` in a scroll area that scrolls only in a window smaller than the page needs.

    In a window at least as large, the page fills it; a smaller one (on an 800x600 screen, the Draw tab does not
    fit) scrolls instead of being held larger than the screen.
    """
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(page)
    return area


class MainWindow(ToolWindow):
    """Draw, Train and Deploy in one window.

    Signals
    -------
    first_painted()
        The window has been painted for the first time (emitted from the event loop right after that paint).
    settled()
        Right after ``first_painted`` and after the tabs without a ``preload`` are built: time to load what
        waits for the window to be up (see :meth:`when_settled`).
    ready()
        After ``settled``: the Draw tab has loaded its models and classifies.

    Parameters
    ----------
    runs_root
        Folder of the training runs (default: ``core.runs.default_runs_root()``).
    tabs
        The tabs to show (default :data:`TABS`).
    preload
        Import the other tabs' modules in the background after the first paint and build them when ready;
        with False they are built when first opened (or asked for).
    """

    first_painted = Signal()
    settled = Signal()
    ready = Signal()

    def __init__(self, runs_root: Path | None = None, tabs: tuple[TabSpec, ...] = TABS, preload: bool = True):
        super().__init__("window")
        self._painted = self._settled = self._ready = False
        self.setWindowTitle("digit-distill — knowledge distillation workbench")
        self.runs_root = Path(runs_root) if runs_root else default_runs_root()
        self._specs = {spec.key: spec for spec in tabs}
        self._built: dict[str, Tab] = {}
        self._preload = preload
        self._preloader: _Preloader | None = None
        self._preloaded: set[str] = set()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for index, spec in enumerate(tabs):
            self.tabs.addTab(_loading_page(spec), spec.title)
            self.tabs.setTabToolTip(index, spec.tooltip)
        self.setCentralWidget(self.tabs)
        self._build_menus()
        self.restore_geometry((1400, 900))
        self.tabs.setCurrentIndex(read_value(app_settings(), "window/tab", 0))
        self.tabs.currentChanged.connect(self._on_tab_shown)
        self.show_status("Ready")

    # ------------------------------------------------------------------------------------------- tabs
    def tab(self, key: str) -> Tab:
        """The tab called ``key``, built now if it was not yet."""
        if key not in self._built:
            spec = self._specs[key]
            index = list(self._specs).index(key)
            tab = spec.build(self)
            self._built[key] = tab
            current = self.tabs.currentIndex()
            placeholder = self.tabs.widget(index)
            self.tabs.blockSignals(True)
            self.tabs.removeTab(index)
            self.tabs.insertTab(index, _scrolling(tab), spec.title)
            self.tabs.setTabToolTip(index, spec.tooltip)
            self.tabs.setCurrentIndex(current)
            self.tabs.blockSignals(False)
            if placeholder is not None:
                placeholder.deleteLater()
            self.connect_tab(tab)
        return self._built[key]

    def tab_at(self, index: int) -> Tab | None:
        """The tab shown at ``index`` of the tab bar (None while it is still loading)."""
        page = self.tabs.widget(index)
        return cast("Tab", page.widget()) if isinstance(page, QScrollArea) else None

    def show_tab(self, key: str) -> Tab:
        """Bring the tab called ``key`` to the front (built now if it was not yet)."""
        self.tabs.setCurrentIndex(list(self._specs).index(key))
        return self.tab(key)

    def is_built(self, key: str) -> bool:
        """Whether the tab called ``key`` exists yet."""
        return key in self._built

    @property
    def draw_tab(self):  # -> app.gui.draw_tab.DrawTab (not imported here: see the module's docstring)
        """The Draw tab."""
        return self.tab("draw")

    @property
    def train_tab(self):  # -> app.gui.train_tab.TrainTab
        """The Train tab (built now if needed: imports PyTorch)."""
        return self.tab("train")

    @property
    def deploy_tab(self):  # -> app.gui.deploy_tab.DeployTab
        """The Deploy tab (built now if needed)."""
        return self.tab("deploy")

    def built_tabs(self) -> list[Tab]:
        """The tabs built so far (the others have nothing to stop or save)."""
        return list(self._built.values())

    def _on_tab_shown(self, index: int) -> None:
        key = list(self._specs)[index]
        if key in self._built or not self._settled:
            return  # built already, or the window is not up yet (done in _after_first_paint)
        if self._preloader is not None and key not in self._preloaded:
            return  # its modules are being imported in the background: built as soon as they are
        QTimer.singleShot(0, lambda: self.tab(key))  # let the "Loading…" page paint first

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        """At the first paint, schedule what waits for the window to be up (:meth:`_after_first_paint`)."""
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            QTimer.singleShot(0, self._after_first_paint)

    def _after_first_paint(self) -> None:
        self.first_painted.emit()
        for spec in self._specs.values():
            if spec.preload is None:
                self.tab(spec.key)
        self._settled = True
        self.settled.emit()  # the Draw tab loads its models
        self._ready = True
        self.ready.emit()
        if self._preload:
            pending = [s for s in self._specs.values() if s.preload is not None and s.key not in self._built]
            self._preloader = _Preloader(self)
            self._preloader.done.connect(self._on_preloaded)
            self._preloader.start(pending)
        self._on_tab_shown(self.tabs.currentIndex())  # a remembered Train or Deploy tab

    def _on_preloaded(self, key: str) -> None:
        self._preloaded.add(key)
        self.tab(key)

    def when_settled(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` once the window is up (see ``settled``): now if it already is."""
        if self._settled:
            callback()
        else:
            self.settled.connect(callback)

    def is_ready(self) -> bool:
        """Whether the window has been painted and the Draw tab has loaded its models."""
        return self._ready

    # ------------------------------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.choose_data_action = file_menu.addAction("Choose MNIST &folder…")
        self.download_action = file_menu.addAction("&Download MNIST…")
        for action in (self.choose_data_action, self.download_action):
            action.triggered.connect(lambda _=False: self.show_tab("train"))
        file_menu.addAction("Open &runs folder", self.open_runs_folder)
        file_menu.addSeparator()
        self.quit_action = file_menu.addAction("&Quit", self.close)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.train_menu = menu.addMenu("&Train")
        loading = self.train_menu.addAction("Loading the training tools…")
        loading.setEnabled(False)
        view_menu = menu.addMenu("&View")
        for index, spec in enumerate(self._specs.values()):
            action = QAction(f"{spec.title} tab", self)
            action.setShortcut(QKeySequence(f"Ctrl+{index + 1}"))
            action.triggered.connect(lambda _=False, i=index: self.tabs.setCurrentIndex(i))
            view_menu.addAction(action)
        help_menu = menu.addMenu("&Help")
        self.shortcuts_action = help_menu.addAction("&Keyboard shortcuts", self.show_shortcuts)
        self.shortcuts_action.setShortcut(QKeySequence("F1"))
        self.about_action = help_menu.addAction("&About digit-distill", self.show_about)

    def shortcuts(self) -> list[tuple[str, str]]:
        """Every keyboard shortcut as ``(keys, what it does)``: the menus' and the tabs' own."""
        rows = []
        for menu_action in self.menuBar().actions():
            menu = menu_action.menu()
            for action in menu.actions() if isinstance(menu, QMenu) else []:
                if not action.shortcut().isEmpty():
                    what = f"{menu_action.text()} > {action.text()}".replace("&", "")
                    rows.append((action.shortcut().toString(QKeySequence.SequenceFormat.NativeText), what))
        for tab in self.built_tabs():
            for shortcut in tab.findChildren(QShortcut):
                if shortcut.whatsThis():
                    keys = shortcut.key().toString(QKeySequence.SequenceFormat.NativeText)
                    rows.append((keys, shortcut.whatsThis()))
        return rows

    def show_shortcuts(self) -> QDialog:
        """Help > Keyboard shortcuts: a table of every shortcut (non-blocking)."""
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        rows = self.shortcuts()
        table = QTableWidget(len(rows), 2, dialog)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (keys, what) in enumerate(rows):
            table.setItem(row, 0, QTableWidgetItem(keys))
            table.setItem(row, 1, QTableWidgetItem(what))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dialog)
        buttons.rejected.connect(dialog.close)
        layout = QVBoxLayout(dialog)
        if not self.is_built("train"):
            layout.addWidget(
                QLabel("The Train tab is still loading: its shortcuts are listed once it is ready.")
            )
        layout.addWidget(table)
        layout.addWidget(buttons)
        dialog.resize(520, 460)
        dialog.open()
        return dialog

    def show_about(self) -> QMessageBox:
        """The About box (non-blocking)."""
        box = QMessageBox(
            QMessageBox.Icon.Information, "About digit-distill", ABOUT, QMessageBox.StandardButton.Ok, self
        )
        box.setTextFormat(Qt.TextFormat.RichText)
        box.open()
        return box

    # ---------------------------------------------------------------------------------------- actions
    def send_to_draw(self, teacher_onnx: Path | None, student_onnx: Path | None) -> None:
        """Load a finished run's ONNX models into the Draw tab and switch to it."""
        try:
            self.draw_tab.use_models(teacher_onnx, student_onnx)
        except Exception as exc:  # noqa: BLE001 - a bad model file becomes a message
            self.report_error(f"Could not load the models into the Draw tab: {exc}")
            return
        self.show_tab("draw")
        names = [p.parent.name for p in (teacher_onnx, student_onnx) if p]
        self.show_status(f"Draw tab now uses {' and '.join(names)}")

    def open_runs_folder(self) -> None:
        """Open the folder holding the training runs in the file manager."""
        self.runs_root.mkdir(parents=True, exist_ok=True)
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.runs_root))):
            self.report_error(f"Could not open a file manager; the runs are in {self.runs_root}")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        """Remember the open tab, then ask about running jobs, stop them and close (see :class:`ToolWindow`)."""
        app_settings().setValue("window/tab", self.tabs.currentIndex())
        super().closeEvent(event)


def run_app(smoke: bool = False) -> int:
    """Open the main window and run the event loop until it closes; returns the exit code.

    With ``smoke`` (``digit-distill --smoke``) it prints "main window painted" at the first paint and "draw tab
    ready" once the Draw tab classifies, then closes: a check that the app starts, and what
    ``bench/startup.py`` times.
    """

    def create() -> MainWindow:
        window = MainWindow()
        if smoke:
            window.first_painted.connect(lambda: print("digit-distill: main window painted", flush=True))
            window.ready.connect(lambda: print("digit-distill: draw tab ready", flush=True))
            window.ready.connect(window.close, Qt.ConnectionType.QueuedConnection)
        return window

    return run_window(create)
