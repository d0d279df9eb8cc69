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
    with (
        qtbot.waitSignal(tab.board_ready, timeout=90_000) as ready,
        qtbot.waitSignal(tab.deployed, timeout=90_000) as done,
    ):
        qtbot.mouseClick(tab.deploy_button, Qt.MouseButton.LeftButton)
    assert ready.args == [True]
    assert [info.fingerprint for info in asked] == [board.host_key_fingerprint]
    result = done.args[0]
    assert result.agreement >= 0.95 and result.evaluated == 25 and result.soc_version == "Ascend310"
    assert [tab.steps_tree.topLevelItem(i).text(1) for i in range(5)] == ["done"] * 5
    view = tab.results_view
    agree = sum(b == loc for b, loc in zip(result.board_predictions, result.local_predictions, strict=True))
    assert view.note() == "" and f"of the digits ({agree} of 25)" in view.agreement_label.text()
    assert "largest probability difference" in view.agreement_label.text()
    assert view.figures.item(0, 0).text() == f"{result.board_accuracy:.2%}"
    assert "(NPU " in view.figures.item(1, 0).text() and view.figures.item(1, 1).text().endswith(" ms")
    assert view.predictions.columnCount() == 25
    row = {
        name: [view.predictions.item(i, c).text() for c in range(25)]
        for i, name in enumerate(("y", "b", "l"))
    }
    assert row["b"] == [str(d) for d in result.board_predictions]
    assert row["l"] == [str(d) for d in result.local_predictions]
    assert row["y"] == [str(d) for d in result.labels]
    assert "agree on" in tab.format_result(result)
    assert "ATC run success, welcome to the next use." in tab.log_view.toPlainText()
    qtbot.waitUntil(tab.deploy_button.isEnabled, timeout=5_000)
    assert tab.error_label.text() == "" and not tab.cancel_button.isEnabled()

    from core.inference import OnnxClassifier

    image = test_images[0][3, 0]
    with qtbot.waitSignal(tab.board_prediction, timeout=60_000) as answer:
        tab.predict_on_board(image)
    local = OnnxClassifier(student_onnx).probabilities(image[None, None])[0]
    prediction = answer.args[0]
    assert prediction.digit == int(local.argmax()) and 0 < prediction.npu_ms < prediction.round_trip_ms
    np.testing.assert_allclose(prediction.probabilities, local, atol=2e-2)
    session = tab.session()
    assert session is not None and session.is_open and board.processes("acl_runner.py")
    with qtbot.waitSignal(tab.board_prediction, timeout=60_000):
        tab.predict_on_board(test_images[0][4, 0])
    assert tab.session() is session  # the same connection and runner for the next drawing
    tab.shutdown()
    assert tab.session() is None and board.processes("acl_runner.py") == []


def test_the_draw_tab_shows_the_board_live(qtbot, tab, board, test_images):
    """Deploy, then every change of the drawing goes to the board through one session; the answers show up."""
    from app.gui.draw_tab import DrawTab
    from atlas_bridge.results import BoardStatus

    draw = DrawTab()
    qtbot.addWidget(draw)
    draw.resize(1100, 680)
    draw.show()
    draw.board_request.connect(tab.predict_on_board)
    tab.board_prediction.connect(draw.show_board_result)
    tab.board_ready.connect(draw.set_board_available)
    tab.board_error.connect(draw.show_board_error)
    tab.deployed.connect(draw.show_deployed)
    states = []
    tab.board_state.connect(states.append)
    tab.ask_trust = lambda info: True
    with qtbot.waitSignal(tab.board_ready, timeout=90_000):
        tab.deploy()
    assert draw.board_live_check.isChecked() and draw.board_header.text() == "model.om on Ascend310"
    logins = (board.dir / "sshd.log").read_text().count("Accepted password")
    with qtbot.waitSignal(tab.board_prediction, timeout=60_000):
        draw.canvas.set_image(_digit_image(test_images[0][0, 0]))  # the canvas changes: live request
    qtbot.waitUntil(lambda: draw.board_panel.digit() is not None, timeout=10_000)
    for i in (1, 2, 3):  # a burst: only the newest waits while the board is busy
        draw.canvas.set_image(_digit_image(test_images[0][i, 0]))
    qtbot.waitUntil(lambda: not tab.board_runner.is_running() and tab._pending_image is None, timeout=30_000)
    qtbot.wait(200)
    assert draw.board_panel.isVisible() and "NPU" in draw.board_panel.time_label.text()
    assert "round trip" in draw.board_panel.time_label.toolTip()
    assert (board.dir / "sshd.log").read_text().count("Accepted password") == logins + 1  # one session login
    assert [s.status for s in states][-1] is BoardStatus.READY and states[-1].model == "model.om"
    draw.grab().save("/tmp/atlas-draw-live.png")


def _digit_image(image28):
    """A 280x280 QImage of an MNIST digit drawn dark on white, like the canvas."""
    from PySide6.QtGui import QImage

    big = np.kron(image28, np.ones((10, 10), np.float32))
    grey = np.ascontiguousarray(255 - np.round(big * 255).astype(np.uint8))
    return QImage(grey.data, 280, 280, 280, QImage.Format.Format_Grayscale8).copy()


def test_cancel_stops_atc_on_the_board(qtbot, tab, board):
    board.configure(atc_delay_s=60)
    tab.ask_trust = lambda info: True
    tab.deploy()
    assert tab.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: bool(board.processes("latest/bin/atc")), timeout=60_000)
    with qtbot.waitSignal(tab.runner.finished, timeout=30_000):
        qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)
    assert "Cancelled" in tab.error_label.text() and "cancelled" in tab.results_view.note()
    assert tab.steps_tree.topLevelItem(2).text(1) == "cancelled"
    assert not board.processes("latest/bin/atc") and not tab.is_board_ready()


def test_an_encrypted_key_asks_for_its_passphrase(qtbot, tab, board, tmp_path):
    key = tmp_path / "enc"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret", "-f", str(key)], check=True)
    board.authorize_key((tmp_path / "enc.pub").read_text())
    tab.auth_combo.setCurrentIndex(tab.auth_combo.findData("key"))
    tab.key_edit.setText(str(key))
    tab.ask_trust = lambda info: True
    asked = []
    tab.ask_passphrase = lambda key_file, wrong: (
        asked.append((key_file, wrong)) or ("wrong" if not asked[1:] else "s3cret")
    )
    with qtbot.waitSignal(tab.board_ready, timeout=120_000):
        tab.deploy()
    assert asked == [(str(key), False), (str(key), True)]
    assert "s3cret" not in "".join(p.read_text() for p in tmp_path.rglob("*.ini"))


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
    code = (
        "import sys; from PySide6.QtCore import QTimer; from PySide6.QtWidgets import QApplication; "
        "app = QApplication(sys.argv); QTimer.singleShot(300, app.quit); "
        "import runpy; sys.argv = ['deploy_tab']; runpy.run_module('app.gui.deploy_tab', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
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
    assert (again.host_edit.text(), again.port_spin.value(), again.user_edit.text()) == (
        board.host,
        board.port,
        board.user,
    )
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
    from atlas_bridge.results import DeployResult

    result = DeployResult.from_dict(
        {
            "om_path": "~/dd/student/model.om",
            "om_bytes": 190_123,
            "soc_version": "Ascend310",
            "model_dir": "~/dd",
            "set_env": "/s",
            "cann_version": "5.0.4",
            "reused_om": True,
            "evaluated": 4,
            "agreement": 0.75,
            "max_probability_difference": 0.4,
            "board_accuracy": 0.5,
            "local_accuracy": 0.75,
            "board_ms_per_image": 0.4123,
            "local_ms_per_image": 0.0111,
            "board_npu_ms_per_image": 0.1,
            "board_predictions": [7, 2, 6, 0],
            "local_predictions": [7, 2, 1, 0],
            "labels": [7, 2, 1, 4],
        }
    )
    view.show_result(result)
    assert view.note() == ""
    assert "190.1 kB" in view.model_label.text() and "reused" in view.model_label.text()
    assert [view.figures.item(r, c).text() for r in range(2) for c in range(2)] == [
        "50.00%",
        "75.00%",
        "0.412 ms (NPU 0.100 ms)",
        "0.011 ms",
    ]
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
