"""The main window: tabs and their wiring, shortcuts, errors in one place, settings, closing during a job, start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox, QTableWidget

from app.gui.settings import app_settings
from app.gui.shell import MainWindow
from app.gui.train_tab import TrainTab
from app.gui.window import SingleTabWindow, install_error_hook
from atlas_bridge.results import BoardPrediction
from tests.conftest import ROOT

# Fail on any Qt warning, except the offscreen platform's note that it cannot resize native windows.
pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


def open_window(qtbot, runs_root: Path) -> MainWindow:
    window = MainWindow(runs_root=runs_root, preload=False)
    window.confirm_close = lambda jobs: True  # no modal question when a test ends with a job running
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(window.is_ready, timeout=10_000)
    qtbot.waitUntil(lambda: not window.train_tab.results_runner.is_running(), timeout=10_000)
    return window


@pytest.fixture()
def window(qtbot, isolated_home, mnist):
    return open_window(qtbot, isolated_home / "runs")


def all_actions(window: MainWindow):
    for menu_action in window.menuBar().actions():
        yield from menu_action.menu().actions()


def visible_boxes(parent) -> list[QMessageBox]:
    return [box for box in parent.findChildren(QMessageBox) if box.isVisible()]


def test_tabs_draw_first_then_train_and_deploy(window):
    names = [window.tabs.tabText(i).replace("&", "") for i in range(window.tabs.count())]
    assert names == ["Draw", "Train", "Deploy"]
    assert window.tab_at(1) is window.train_tab


def test_an_800x600_window_scrolls_the_draw_tab_instead_of_growing(qtbot, window):
    # Every tab built: the window's minimum is what they need together.
    assert window.tab("deploy") is not None
    assert window.minimumSizeHint().width() <= 800 and window.minimumSizeHint().height() <= 600
    window.resize(800, 600)
    window.show_tab("draw")
    qtbot.waitUntil(lambda: window.width() == 800 and window.height() == 600, timeout=2000)
    area = window.tabs.currentWidget()
    assert area.verticalScrollBar().maximum() > 0  # the Draw tab needs more than 800x600: it scrolls
    canvas = window.draw_tab.canvas
    assert canvas.width() >= 280 and canvas.height() >= 280  # drawn at full size, not squeezed
    window.resize(1280, 800)
    # Room enough: no scrolling.
    qtbot.waitUntil(lambda: area.verticalScrollBar().maximum() == 0, timeout=2000)
    assert area.horizontalScrollBar().maximum() == 0


def test_menus_carry_the_shortcuts(window):
    shortcuts = {a.shortcut().toString(): a.text().replace("&", "") for a in all_actions(window)}
    assert shortcuts["Ctrl+T"] == "Train Teacher"
    assert shortcuts["Ctrl+Shift+T"] == "Train Student"
    assert shortcuts["Ctrl+D"] == "Distill"
    assert shortcuts["Ctrl+."] == "Stop"
    assert shortcuts["Ctrl+Q"] == "Quit"
    assert shortcuts["F1"] == "Keyboard shortcuts"
    assert {"Ctrl+1", "Ctrl+2", "Ctrl+3"} <= set(shortcuts)


def test_ctrl_t_starts_the_teacher_and_ctrl_period_stops_it(qtbot, window):
    tab = window.train_tab
    tab.form.set_values({"recipe": "paper", "epochs": 20, "samples": 5000, "batch_size": 64})
    window.tabs.setCurrentIndex(0)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert tab.is_running() and tab.runner.name == "Train teacher"
    assert window.tab_at(window.tabs.currentIndex()) is tab
    qtbot.keyClick(window, Qt.Key.Key_Period, Qt.KeyboardModifier.ControlModifier)
    assert tab.runner.stop_requested()
    # The job stops at its next check (after loading MNIST on a busy machine): no time limit but the suite's.
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=300_000)
    assert "nothing to keep" in tab.log.toPlainText()
    assert not list(tab.runs_root.glob("*-teacher"))  # no empty run folder left behind


def test_f1_lists_every_shortcut(window):
    window.shortcuts_action.trigger()
    (dialog,) = [
        d for d in window.findChildren(QDialog) if d.isVisible() and d.windowTitle() == "Keyboard shortcuts"
    ]
    table = dialog.findChild(QTableWidget)
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["Ctrl+T"] == "Train > Train Teacher"
    assert rows["Ctrl+Q"] == "File > Quit"
    assert rows["F1"] == "Help > Keyboard shortcuts"
    assert rows["Ctrl+Z"] == "Draw: undo the last stroke"
    assert rows["Esc"] == "Draw: clear the canvas"
    dialog.close()
    window.about_action.trigger()
    boxes = visible_boxes(window)
    assert len(boxes) == 1 and "knowledge distillation" in boxes[0].text()
    boxes[0].accept()


def test_error_details_are_behind_a_button(window):
    window.train_tab.error_details.emit("Training failed: boom", "Traceback (most recent call last):\n  ...")
    (box,) = visible_boxes(window)
    assert box.text() == "Training failed: boom"
    assert box.detailedText().startswith("Traceback")
    box.accept()


def test_errors_reach_the_status_bar_and_one_dialog(window):
    window.train_tab.error_occurred.emit("learning rate must be > 0")
    window.train_tab.error_occurred.emit("the loss became nan at epoch 3")
    assert "the loss became nan" in window.statusBar().currentMessage()
    boxes = visible_boxes(window)
    assert len(boxes) == 1 and boxes[0].text() == "the loss became nan at epoch 3"
    boxes[0].accept()


def test_uncaught_exceptions_are_shown(window, monkeypatch, capsys):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    install_error_hook(window)
    sys.excepthook(ValueError, ValueError("boom in a slot"), None)
    assert window.last_error == "ValueError: boom in a slot"
    assert "boom in a slot" in window.statusBar().currentMessage()
    assert "ValueError: boom in a slot" in visible_boxes(window)[0].detailedText()
    assert "ValueError" in capsys.readouterr().err  # the traceback still goes to developers
    for box in visible_boxes(window):
        box.accept()


def test_closing_during_a_job_asks_then_stops_it(qtbot, window):
    tab = window.train_tab
    tab.form.set_values({"recipe": "paper", "epochs": 50, "samples": 10000, "batch_size": 64})
    assert tab.start_job("student")
    asked = []
    window.confirm_close = lambda jobs: asked.append(jobs) or False  # "No": keep working
    window.close()
    assert asked == ["train"] and window.isVisible() and tab.is_running()
    window.confirm_close = lambda jobs: asked.append(jobs) or True  # "Yes": stop it and quit
    window.close()
    assert not window.isVisible()
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=300_000)


def test_closing_without_a_job_asks_nothing(window):
    window.confirm_close = lambda jobs: pytest.fail(f"asked although nothing runs ({jobs})")
    window.close()
    assert not window.isVisible()


def test_geometry_tab_and_hyperparameters_persist(qtbot, isolated_home):
    first = open_window(qtbot, isolated_home / "runs")
    first.setGeometry(20, 30, 790, 690)
    first.tabs.setCurrentIndex(1)
    first.train_tab.form.epochs.setValue(9)
    first.train_tab.splitter.setSizes([250, 540])
    sizes = first.train_tab.splitter.sizes()
    geometry = first.geometry()
    first.close()
    assert app_settings().value("window/geometry")
    second = open_window(qtbot, isolated_home / "runs")
    # The offscreen screen is 800x600: a window wider than it (the Train tab's minimum width) is fitted to it.
    screen_width = second.screen().availableGeometry().width()
    assert second.height() == geometry.height()
    assert second.width() == geometry.width() or geometry.width() > screen_width >= second.width()
    assert second.tabs.currentIndex() == 1
    assert second.train_tab.form.epochs.value() == 9
    assert (
        second.train_tab.splitter.sizes()[0] == sizes[0]
    )  # the right pane takes what the fitted width leaves


def test_send_to_draw_uses_the_draw_tabs_use_models(window, monkeypatch):
    calls = []
    monkeypatch.setattr(window.draw_tab, "use_models", lambda t, s: calls.append((t, s)), raising=False)
    window.tabs.setCurrentIndex(1)
    teacher, student = Path("/runs/a-teacher/model.onnx"), Path("/runs/b-distilled/model.onnx")
    window.train_tab.models_ready.emit(teacher, student)
    assert calls == [(teacher, student)]
    assert window.tabs.currentIndex() == 0
    assert "a-teacher" in window.statusBar().currentMessage()


def test_send_to_draw_failure_is_reported(window, monkeypatch):
    def refuse(teacher, student):
        raise ValueError("model.onnx: not an ONNX model")

    monkeypatch.setattr(window.draw_tab, "use_models", refuse, raising=False)
    window.send_to_draw(None, Path("/x/model.onnx"))
    assert window.last_error == "Could not load the models into the Draw tab: model.onnx: not an ONNX model"
    for box in visible_boxes(window):
        box.accept()


def test_board_signals_are_wired_between_draw_and_deploy(window, deployed):
    draw, deploy = window.draw_tab, window.deploy_tab
    deploy.board_ready.emit(True)
    assert "Send this drawing" in draw.board_button.toolTip()
    probabilities = [0.0] * 7 + [1.0, 0.0, 0.0]
    deploy.board_prediction.emit(
        BoardPrediction(digit=7, probabilities=probabilities, npu_ms=0.4, round_trip_ms=1.5)
    )
    assert draw.board_panel.digit() == 7
    deploy.deployed.emit(deployed)
    assert draw.board_header.text() == "model.om on Ascend310"
    draw.board_request.emit(np.zeros((28, 28), np.float32))  # nothing deployed: refused, answered as an error
    assert draw.board_panel.confidence_label.text() == "no answer from the board"
    deploy.board_ready.emit(False)
    assert not draw.board_panel.isVisible()
    for box in visible_boxes(window):
        box.close()


def test_draw_tab_errors_reach_the_window(window):
    window.draw_tab.show_error("Cannot use this teacher model. not an ONNX model")
    assert window.last_error == "Cannot use this teacher model. not an ONNX model"
    assert "not an ONNX model" in window.statusBar().currentMessage()
    for box in visible_boxes(window):
        box.close()


def test_a_board_failure_resets_the_draw_tabs_board_panel(window):
    draw = window.draw_tab
    draw.board_panel.show_empty("waiting for the board…")
    draw.board_panel.setVisible(True)
    window.deploy_tab.predict_on_board(np.zeros((28, 28), np.float32))  # nothing deployed: refused
    assert draw.board_panel.confidence_label.text() == "no answer from the board"
    assert "deploy one" in draw.message() and "deploy one" in window.last_error
    for box in visible_boxes(window):
        box.close()


def _run_without_event_loop(monkeypatch) -> list:
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(QApplication, "exec", lambda *args: 0)
    return []


def _close_top_levels(kind):
    windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, kind) and w.isVisible()]
    for w in windows:
        w.close()
        w.deleteLater()
    return windows


def test_cli_without_arguments_opens_the_main_window(qtbot, isolated_home, monkeypatch):
    from app.cli import main

    _run_without_event_loop(monkeypatch)
    assert main([]) == 0
    windows = _close_top_levels(MainWindow)
    assert len(windows) == 1


def test_train_tab_starts_alone(qtbot, isolated_home, monkeypatch):
    from app.gui import train_tab

    _run_without_event_loop(monkeypatch)
    _close_top_levels(SingleTabWindow)  # none left over from an earlier test may be counted as this one's
    assert train_tab.main() == 0
    windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, SingleTabWindow) and w.isVisible()]
    assert len(windows) == 1 and isinstance(windows[0].tab, TrainTab)
    assert "Ctrl+T" in [a.shortcut().toString() for a in windows[0].actions()]
    _close_top_levels(SingleTabWindow)


def test_train_and_deploy_tabs_are_built_when_first_opened(qtbot, isolated_home):
    window = MainWindow(runs_root=isolated_home / "runs", preload=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(window.is_ready, timeout=10_000)
    assert window.is_built("draw") and not window.is_built("train") and not window.is_built("deploy")
    assert window.draw_tab.teacher_picker.classifier() is not None  # the Draw tab works meanwhile
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.is_built("train"), timeout=60_000)
    assert window.tab_at(1) is window.train_tab and window.tabs.currentIndex() == 1
    assert [a.text() for a in window.train_menu.actions()][0] == "Train &Teacher"
    window.close()


def test_the_other_tabs_are_imported_in_the_background_and_built(qtbot, isolated_home):
    app_settings().setValue("window/tab", 1)  # the Train tab was open last time
    window = MainWindow(runs_root=isolated_home / "runs")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(window.is_ready, timeout=10_000)
    # "Loading…" until imported; in this test process train_tab may be imported already, so it can be built at once.
    assert window.tabs.currentIndex() == 1
    qtbot.waitUntil(lambda: window.is_built("train") and window.is_built("deploy"), timeout=120_000)
    assert window.tab_at(window.tabs.currentIndex()) is window.train_tab
    assert "Train &Teacher" in [a.text() for a in window.train_menu.actions()]
    qtbot.waitUntil(lambda: not window.train_tab.results_runner.is_running(), timeout=10_000)
    window.close()


def test_building_the_main_window_does_not_import_torch(tmp_path):
    """In a fresh process: the window painted and the Draw tab classifying, without torch or pyqtgraph."""
    code = """
import json, sys
from PySide6.QtWidgets import QApplication
from app.gui.window import application
from app.gui.shell import MainWindow
app = application()
window = MainWindow(runs_root=sys.argv[1], preload=False)
window.show()
while not window.is_ready():
    app.processEvents()
heavy = [m for m in ("torch", "pyqtgraph", "onnx", "paramiko") if m in sys.modules]
print(json.dumps({"heavy": heavy, "teacher": window.draw_tab.teacher_picker.classifier() is not None}))
"""
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"heavy": [], "teacher": True}
