"""The Deploy tab against the board emulator: trust dialog, live steps, results, predictions for the Draw tab."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.gui.deploy_tab import AUTO_SOC, DeployTab

pytestmark = pytest.mark.slow


@pytest.fixture()
def settings_dir(tmp_path):
    return tmp_path / "config"  # XDG_CONFIG_HOME of every test (tests/conftest.py)


@pytest.fixture()
def tab(qtbot, isolated_home, settings_dir, board, remote_dir, student_onnx):
    widget = DeployTab()
    qtbot.addWidget(widget)
    widget.host_edit.setText(board.host)
    widget.port_spin.setValue(board.port)
    widget.user_edit.setText(board.user)
    widget.auth_combo.setCurrentIndex(widget.auth_combo.findData("password"))
    widget.password_edit.setText(board.password)
    widget.remote_edit.setText(remote_dir)
    widget.evaluate_spin.setValue(25)
    assert widget.model_picker.choose_file(student_onnx)
    yield widget
    widget.shutdown()


def test_deploy_from_the_tab_then_classify_a_drawing(qtbot, tab, board, student_onnx, test_images):
    asked = []
    tab.ask_trust = lambda info: asked.append(info) or True
    tab.soc_combo.setCurrentText(AUTO_SOC)
    with qtbot.waitSignal(tab.board_ready, timeout=90_000) as ready, qtbot.waitSignal(tab.deployed, timeout=90_000) as done:
        qtbot.mouseClick(tab.deploy_button, Qt.MouseButton.LeftButton)
    assert ready.args == [True]
    assert [info.fingerprint for info in asked] == [board.host_key_fingerprint]
    result = done.args[0]
    assert result["agreement"] >= 0.95 and result["evaluated"] == 25 and result["soc_version"] == "Ascend310"
    assert [tab.steps_tree.topLevelItem(i).text(1) for i in range(5)] == ["done"] * 5
    view = tab.results_view
    agree = sum(b == loc for b, loc in zip(result["board_predictions"], result["local_predictions"], strict=True))
    assert view.note() == "" and f"of the digits ({agree} of 25)" in view.agreement_label.text()
    assert "largest probability difference" in view.agreement_label.text()
    assert view.figures.item(0, 0).text() == f"{result['board_accuracy']:.2%}"
    assert view.figures.item(1, 1).text().endswith(" ms")
    assert view.predictions.columnCount() == 25
    row = {
        name: [view.predictions.item(i, c).text() for c in range(25)]
        for i, name in enumerate(("y", "b", "l"))
    }
    assert row["b"] == [str(d) for d in result["board_predictions"]]
    assert row["l"] == [str(d) for d in result["local_predictions"]]
    assert row["y"] == [str(d) for d in result["labels"]]
    assert "agree on" in tab.format_result(result)
    assert "ATC run success, welcome to the next use." in tab.log_view.toPlainText()
    qtbot.waitUntil(tab.deploy_button.isEnabled, timeout=5_000)
    assert tab.error_label.text() == ""

    from core.inference import OnnxClassifier

    image = test_images[0][3, 0]
    with qtbot.waitSignal(tab.board_prediction, timeout=60_000) as answer:
        tab.predict_on_board(image)
    local = OnnxClassifier(student_onnx).probabilities(image[None, None])[0]
    assert answer.args[0]["digit"] == int(local.argmax())
    np.testing.assert_allclose(answer.args[0]["probabilities"], local, atol=2e-2)


def test_refused_fingerprint_and_wrong_password_are_shown(qtbot, tab, board):
    tab.ask_trust = lambda info: False
    with qtbot.waitSignal(tab.runner.finished, timeout=60_000):
        tab.deploy()
    assert board.host_key_fingerprint in tab.error_label.text()
    assert tab.steps_tree.topLevelItem(0).text(1) == "FAILED"
    assert "Deploy failed" in tab.results_view.note()
    assert not tab.is_board_ready()

    tab.ask_trust = lambda info: True
    tab.password_edit.setText("wrong")
    with qtbot.waitSignal(tab.runner.finished, timeout=60_000):
        tab.deploy()
    assert "Login to" in tab.error_label.text() and "password" in tab.error_label.text()
    with (
        qtbot.waitSignal(tab.board_error, timeout=5_000) as err,
        qtbot.waitSignal(tab.error_occurred) as shown,
    ):
        tab.predict_on_board(np.zeros((28, 28), np.float32))
    assert "deploy one" in err.args[0] and shown.args == err.args


def test_incomplete_form_is_refused_without_starting(qtbot, tab):
    tab.host_edit.setText("")
    tab.deploy()
    assert not tab.runner.is_running()
    assert "host" in tab.error_label.text()


def test_runs_alone_as_a_module():
    code = ("import sys; from PySide6.QtCore import QTimer; from PySide6.QtWidgets import QApplication; "
            "app = QApplication(sys.argv); QTimer.singleShot(300, app.quit); "
            "import runpy; sys.argv = ['deploy_tab']; runpy.run_module('app.gui.deploy_tab', run_name='__main__')")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_form_is_remembered_without_the_password(qtbot, tab, board, settings_dir):
    tab.ask_trust = lambda info: False
    with qtbot.waitSignal(tab.runner.finished, timeout=60_000):
        tab.deploy()
    stored = "".join(p.read_text() for p in settings_dir.rglob("*.ini"))
    assert str(board.port) in stored and board.user in stored
    assert board.password not in stored
    again = DeployTab()
    qtbot.addWidget(again)
    assert (again.host_edit.text(), again.port_spin.value(), again.user_edit.text()) == (board.host, board.port,
                                                                                         board.user)  # fmt: skip
    assert again.password_edit.text() == "" and again.evaluate_spin.value() == 25


def test_step_names_are_not_cut_and_only_needed_rows_show(qtbot, isolated_home, settings_dir):
    widget = DeployTab()
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    tree = widget.steps_tree
    longest = max(tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount()))
    assert tree.columnWidth(0) >= tree.fontMetrics().horizontalAdvance(longest)
    widget._on_step("check", "done", "board reachable\nsecond line in the tooltip")
    assert tree.topLevelItem(0).text(2) == "board reachable" and "second line" in tree.topLevelItem(
        0
    ).toolTip(2)
    assert tree.columnWidth(1) >= tree.fontMetrics().horizontalAdvance("FAILED")

    widget.auth_combo.setCurrentIndex(widget.auth_combo.findData("key"))
    assert widget.key_edit.isVisible() and not widget.password_edit.isVisible()
    assert not widget.convert_host_edit.isVisible()
    widget.convert_combo.setCurrentIndex(1)
    assert widget.convert_host_edit.isVisible() and widget.convert_host_edit.isEnabled()


def test_results_view_marks_disagreements_and_errors(qtbot):
    from app.gui.deploy_results import DeployResultsView

    view = DeployResultsView()
    qtbot.addWidget(view)
    assert "No deploy yet" in view.note()
    result = {
        "om_path": "~/dd/student/model.om", "om_bytes": 190_123, "soc_version": "Ascend310", "model_dir": "~/dd",
        "set_env": "/s", "cann_version": "5.0.4", "reused_om": True, "evaluated": 4, "agreement": 0.75,
        "max_probability_difference": 0.4, "board_accuracy": 0.5, "local_accuracy": 0.75,
        "board_ms_per_image": 0.4123, "local_ms_per_image": 0.0111,
        "board_predictions": [7, 2, 6, 0], "local_predictions": [7, 2, 1, 0], "labels": [7, 2, 1, 4],
    }  # fmt: skip
    view.show_result(result)
    assert view.note() == ""
    assert "190.1 kB" in view.model_label.text() and "reused" in view.model_label.text()
    assert [view.figures.item(r, c).text() for r in range(2) for c in range(2)] == [
        "50.00%", "75.00%", "0.412 ms", "0.011 ms"]  # fmt: skip
    assert "75.00% of the digits (3 of 4)" in view.agreement_label.text()
    assert "1 board/local disagreement, 2 board errors against" in view.predictions_caption.text()
    shaded = [
        c for c in range(4) if view.predictions.item(1, c).background().style() != Qt.BrushStyle.NoBrush
    ]
    assert shaded == [2]
    red = [c for c in range(4) if view.predictions.item(1, c).foreground().style() != Qt.BrushStyle.NoBrush]
    assert red == [2, 3]
    view.show_note("Deploying…")
    assert view.note() == "Deploying…" and not view.figures.isVisibleTo(view)
