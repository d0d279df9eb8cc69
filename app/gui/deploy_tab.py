"""The Deploy tab: one button to convert a model on an Atlas board, run it there and compare with the local run.

Runs :class:`atlas_bridge.pipeline.Deployer` in the app's worker thread (:class:`app.gui.workers.JobRunner`),
whose task state is the trainer's progress protocol: step changes arrive as ``epoch`` dicts
(:class:`atlas_bridge.results.StepEvent`), log lines as ``message``, upload progress as ``batches``; the Cancel
button asks the deploy to stop (what runs on the board is ended by PID, partial files removed). An unknown host
key and an encrypted key's passphrase are asked in dialogs from the GUI thread.

Once deployed, :meth:`DeployTab.predict_on_board` classifies a drawing through a board session
(:class:`atlas_bridge.session.BoardSession`: one SSH connection, one runner holding the model), opened on the
first drawing and closed on the next deploy or when the app quits; while the board is busy only the newest drawing
waits, so the Draw tab can send every change and show the board's answer live. Run alone with
``python -m app.gui.deploy_tab``.

Kept in one module: one tab's form, deploy and board session, wired to each other (what it renders is in
app/gui/deploy_results.py).
"""

from __future__ import annotations

import queue
import sys
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLayout,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.deploy_results import DeployResultsView, summary_text
from app.gui.fields import apply_range
from app.gui.model_choice import ModelPicker
from app.gui.settings import app_settings, read_value, write_values
from app.gui.window import Tab, run_tab_alone
from app.gui.workers import JobFailure, JobRunner
from atlas_bridge.atc import SOC_VERSIONS
from atlas_bridge.connection import ConnectionConfig
from atlas_bridge.hostkeys import HostKeyInfo
from atlas_bridge.pipeline import Deployer, DeployTarget
from atlas_bridge.results import (
    STEPS,
    BoardPrediction,
    BoardState,
    BoardStatus,
    DeployResult,
    StepEvent,
    is_step_event,
)
from core import validation as fields

AUTO_SOC = "Read from the board (npu-smi)"
AUTH_CHOICES = (("Password", "password"), ("Key file", "key"), ("SSH agent", "agent"))
TRUST_TIMEOUT_S = 600
SETTINGS_GROUP = "deploy"
_STATE_TEXT = {
    "waiting": "waiting",
    "running": "running…",
    "done": "done",
    "failed": "FAILED",
    "skipped": "skipped",
    "cancelled": "cancelled",
}
_STATE_COLOR = {
    "waiting": QColor(140, 140, 140),
    "running": QColor(33, 102, 172),
    "done": QColor(27, 120, 55),
    "failed": QColor(178, 24, 43),
    "skipped": QColor(140, 140, 140),
    "cancelled": QColor(140, 140, 140),
}
_ERROR_STYLE = "color: #b00020;"


class _Questions(QObject):
    """Questions the worker thread asks the person (queued to the GUI thread; the worker waits for the answer)."""

    trust_request = Signal(object, object)  # HostKeyInfo, queue.Queue for the answer

    def trust(self, info: HostKeyInfo) -> bool:
        """Ask (from a worker thread) whether to trust an unknown host key; False after TRUST_TIMEOUT_S."""
        answer: queue.Queue = queue.Queue(maxsize=1)
        self.trust_request.emit(info, answer)
        try:
            return bool(answer.get(timeout=TRUST_TIMEOUT_S))
        except queue.Empty:
            return False


class DeployTab(Tab):
    """Board login, target and model choice, the Deploy button, live steps, the log and the results.

    Signals
    -------
    board_ready(bool)
        True once a model is deployed and the board can classify drawings; False when that stops being so.
    board_state(BoardState)
        The board session's state (offline, connecting, ready, failed) with the model, chip and a message.
    board_prediction(BoardPrediction)
        The board's answer to :meth:`predict_on_board` (digit, probabilities, NPU and round-trip times).
    board_error(str)
        :meth:`predict_on_board` failed (the message says why); also sent as ``error_occurred``.
    deployed(DeployResult)
        A deploy finished.
    error_occurred(str)
        A failure that did not start in this tab (classifying a drawing on the board) for the window to show;
        deploy failures are shown in the tab itself, beside the failed step.
    status_message(str)
        Short progress notes for the window's status bar.
    """

    board_ready = Signal(bool)
    board_state = Signal(object)
    board_prediction = Signal(object)
    board_error = Signal(str)
    deployed = Signal(object)
    error_occurred = Signal(str)
    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._deployment: DeployResult | None = None
        self._board_login: ConnectionConfig | None = None
        self._session = None  # atlas_bridge.session.BoardSession, used only inside board_runner jobs
        self._pending_image: np.ndarray | None = None
        self._passphrase: str | None = None  # an encrypted key's passphrase, memory only
        self._retry_deploy = False
        self._questions = _Questions(self)
        self._questions.trust_request.connect(self._on_trust_request)
        self.runner = JobRunner(self)
        self.runner.epoch.connect(self._on_progress_epoch)
        self.runner.message.connect(self.append_log)
        self.runner.batches.connect(self._on_progress_batches)
        self.runner.succeeded.connect(self._on_deployed)
        self.runner.failed.connect(self._on_failed)
        self.runner.finished.connect(self._on_finished)
        self.board_runner = JobRunner(self)
        self.board_runner.succeeded.connect(self._on_board_answer)
        self.board_runner.failed.connect(self._on_board_failed)
        self.board_runner.finished.connect(self._on_board_finished)
        self._build()
        self.restore_settings()
        report = self.model_picker.sanity()
        if (
            report is not None and report.warning
        ):  # the model chosen before the picker's signals were connected
            self.show_error(f"Warning: {report.warning}")

    # ------------------------------------------------------------------------------------------ settings
    def _form_values(self) -> dict[str, Any]:
        """The form's non-secret fields (the password is never stored)."""
        return {
            "host": self.host_edit.text(),
            "port": self.port_spin.value(),
            "user": self.user_edit.text(),
            "auth": self.auth_combo.currentData(),
            "key_file": self.key_edit.text(),
            "soc_version": self.soc_combo.currentText(),
            "remote_dir": self.remote_edit.text(),
            "convert_on_host": self.convert_combo.currentIndex() == 1,
            "convert_host": self.convert_host_edit.text(),
            "convert_port": self.convert_port_spin.value(),
            "convert_user": self.convert_user_edit.text(),
            "evaluate": self.evaluate_spin.value(),
        }

    def save_settings(self) -> None:
        """Remember the form (except the password) for the next session."""
        write_values(app_settings(), SETTINGS_GROUP, self._form_values())

    def restore_settings(self) -> None:
        """Fill the form from the saved settings (unknown or bad values keep the defaults)."""
        settings, saved = app_settings(), self._form_values()
        values = {
            key: read_value(settings, f"{SETTINGS_GROUP}/{key}", default) for key, default in saved.items()
        }
        self.host_edit.setText(values["host"])
        self.port_spin.setValue(values["port"])
        self.user_edit.setText(values["user"])
        index = self.auth_combo.findData(values["auth"])
        self.auth_combo.setCurrentIndex(max(index, 0))
        self.key_edit.setText(values["key_file"])
        if self.soc_combo.findText(values["soc_version"]) >= 0:
            self.soc_combo.setCurrentText(values["soc_version"])
        self.remote_edit.setText(values["remote_dir"])
        self.convert_combo.setCurrentIndex(1 if values["convert_on_host"] else 0)
        self.convert_host_edit.setText(values["convert_host"])
        self.convert_port_spin.setValue(values["convert_port"])
        self.convert_user_edit.setText(values["convert_user"])
        self.evaluate_spin.setValue(values["evaluate"])

    # ------------------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.host_edit = QLineEdit("192.168.1.2")
        self.port_spin = QSpinBox()
        apply_range(self.port_spin, fields.PORT)
        self.port_spin.setValue(22)
        self.user_edit = QLineEdit("HwHiAiUser")
        self.auth_combo = QComboBox()
        for label, value in AUTH_CHOICES:
            self.auth_combo.addItem(label, value)
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setToolTip("Kept in memory only, never saved")
        self.key_edit = QLineEdit()
        key_button = QPushButton("…")
        key_button.clicked.connect(self._browse_key)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(key_button)
        self.soc_combo = QComboBox()
        self.soc_combo.addItems([*SOC_VERSIONS, AUTO_SOC])
        self.remote_edit = QLineEdit("~/digit-distill")
        self.convert_combo = QComboBox()
        self.convert_combo.addItems(["On the board", "On a conversion host (x86 with the CANN toolkit)"])
        self.convert_host_edit = QLineEdit()
        self.convert_port_spin = QSpinBox()
        apply_range(self.convert_port_spin, fields.PORT)
        self.convert_port_spin.setValue(22)
        self.convert_user_edit = QLineEdit()
        self.outside_home_box = QCheckBox("Allow a remote folder outside the home")
        self.outside_home_box.setToolTip(
            "Needed for a remote folder such as /data/models (/ is always refused)"
        )
        self.skip_check_box = QCheckBox("Skip the ATC operator check")
        self.skip_check_box.setToolTip(
            "Upload even a model with operators or opsets outside ATC's table (core/atc_ops.py); ATC will judge"
        )
        self.model_picker = ModelPicker("student", self)
        self.model_picker.error.connect(self.show_error)
        self.model_picker.warning.connect(self.show_error)
        self.evaluate_spin = QSpinBox()
        apply_range(self.evaluate_spin, fields.DEPLOY_IMAGES)
        self.evaluate_spin.setValue(200)

        self.port_spin.setMaximumWidth(110)
        self.convert_port_spin.setMaximumWidth(110)
        self.evaluate_spin.setMaximumWidth(110)
        self.evaluate_spin.setSuffix(" images")
        self.evaluate_spin.setToolTip(
            "How many MNIST test images run on the board and locally for the comparison"
        )
        self.soc_combo.setToolTip(
            "The board's chip, as ATC's --soc_version takes it (Atlas 200 DK: Ascend310)"
        )
        self.remote_edit.setToolTip("Folder on the board for the model and its runner (relative to the home)")

        self.board_form = _form(
            ("Host", self.host_edit),
            ("Port", self.port_spin),
            ("User", self.user_edit),
            ("Authentication", self.auth_combo),
            ("Password", self.password_edit),
            ("Key file", key_row),
        )
        self.convert_form = _form(
            ("Chip (soc_version)", self.soc_combo),
            ("Remote folder", self.remote_edit),
            ("Convert", self.convert_combo),
            ("Conversion host", self.convert_host_edit),
            ("Conversion port", self.convert_port_spin),
            ("Conversion user", self.convert_user_edit),
            ("", self.skip_check_box),
            ("", self.outside_home_box),
        )
        model_form = _form(("Model", self.model_picker), ("Compare on", self.evaluate_spin))
        self._key_row = key_row

        self.deploy_button = QPushButton("Deploy to the board")
        self.deploy_button.setToolTip("Check the board, upload the model, convert it, run it and compare")
        self.deploy_button.setMinimumHeight(32)
        self.deploy_button.clicked.connect(self.deploy)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip(
            "Stop the deploy: what runs on the board is ended and partial files removed"
        )
        self.cancel_button.setMinimumHeight(32)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(_ERROR_STYLE)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.steps_tree = QTreeWidget()
        self.steps_tree.setHeaderLabels(["Step", "Status", "Details"])
        self.steps_tree.setRootIsDecorated(False)
        self.steps_tree.setUniformRowHeights(True)
        self.steps_tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long paths keep both ends
        self.steps_tree.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.steps_tree.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.steps_tree.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self._step_items = {}
        for name, title in STEPS:
            item = QTreeWidgetItem([title, _STATE_TEXT["waiting"], ""])
            item.setForeground(1, QBrush(_STATE_COLOR["waiting"]))
            self.steps_tree.addTopLevelItem(item)
            self._step_items[name] = item
        rows = self.steps_tree.sizeHintForRow(0) * len(STEPS)
        self.steps_tree.setFixedHeight(
            rows + header.sizeHint().height() + 2 * self.steps_tree.frameWidth() + 4
        )
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.log_view.setPlaceholderText("The board's answers to each step appear here.")
        self.results_view = DeployResultsView(self)

        left = QVBoxLayout()
        for title, form in (
            ("Board", self.board_form),
            ("Conversion", self.convert_form),
            ("Model", model_form),
        ):
            box = QGroupBox(title)
            box.setLayout(form)
            left.addWidget(box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.deploy_button, 1)
        buttons.addWidget(self.cancel_button)
        left.addLayout(buttons)
        left.addWidget(self.error_label)
        how = QLabel(
            "A deploy checks the board, uploads the ONNX model, converts it with ATC, runs the MNIST test images "
            "on the board with pyACL and compares every answer with onnxruntime on this computer. Afterwards "
            "the Draw tab's \u201cClassify on board\u201d sends a drawing to the board."
        )
        how.setWordWrap(True)
        how.setStyleSheet("color: #4d4d4d;")
        left.addWidget(how)
        left.addStretch(1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setMaximumWidth(540)
        left.setContentsMargins(0, 0, 0, 0)
        steps_box = QGroupBox("Steps")
        QVBoxLayout(steps_box).addWidget(self.steps_tree)
        log_box = QGroupBox("Log")
        QVBoxLayout(log_box).addWidget(self.log_view)
        right = QVBoxLayout()
        right.addWidget(steps_box)
        right.addWidget(log_box, 1)
        right.addWidget(self.results_view)
        layout = QHBoxLayout(self)
        layout.addWidget(left_widget, 2)
        layout.addLayout(right, 3)

        _align_labels((self.board_form, self.convert_form, model_form))
        self.auth_combo.currentIndexChanged.connect(self._update_enabled)
        self.convert_combo.currentIndexChanged.connect(self._update_enabled)
        self._update_enabled()

    def _update_enabled(self) -> None:
        """Show only the rows the chosen authentication and conversion place need."""
        auth = self.auth_combo.currentData()
        self.password_edit.setEnabled(auth == "password")
        self.key_edit.setEnabled(auth == "key")
        self.board_form.setRowVisible(self.password_edit, auth == "password")
        self.board_form.setRowVisible(self._key_row, auth == "key")
        separate = self.convert_combo.currentIndex() == 1
        for widget in (self.convert_host_edit, self.convert_port_spin, self.convert_user_edit):
            widget.setEnabled(separate)
            self.convert_form.setRowVisible(widget, separate)

    def _browse_key(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SSH private key")
        if path:
            self.key_edit.setText(path)

    # ------------------------------------------------------------------------------------------ deploy
    def _login(self) -> ConnectionConfig:
        auth = self.auth_combo.currentData()
        return ConnectionConfig(
            host=self.host_edit.text().strip(),
            port=self.port_spin.value(),
            user=self.user_edit.text().strip() or None,
            auth=auth,
            key_file=self.key_edit.text().strip() or None if auth == "key" else None,
            password=self.password_edit.text() if auth == "password" else None,
            passphrase=self._passphrase if auth == "key" else None,
        )

    def target(self) -> DeployTarget:
        """The deploy target the form describes (raises ``ValueError`` for an incomplete form)."""
        board = self._login()
        if not board.host:
            raise ValueError("Enter the board's host name or address")
        converter = None
        if self.convert_combo.currentIndex() == 1:
            if not self.convert_host_edit.text().strip():
                raise ValueError("Enter the conversion host, or choose to convert on the board")
            converter = ConnectionConfig(
                host=self.convert_host_edit.text().strip(),
                port=self.convert_port_spin.value(),
                user=self.convert_user_edit.text().strip() or None,
                auth=board.auth,
                key_file=board.key_file,
                password=board.password,
                passphrase=board.passphrase,
            )
        soc = self.soc_combo.currentText()
        return DeployTarget(
            board=board,
            soc_version=None if soc == AUTO_SOC else soc,
            remote_dir=self.remote_edit.text().strip(),
            converter=converter,
            skip_op_check=self.skip_check_box.isChecked(),
            allow_outside_home=self.outside_home_box.isChecked(),
        )

    @Slot()
    def deploy(self) -> None:
        """Start the deploy in the worker thread (ignored while one runs)."""
        if self.runner.is_running():
            return
        source = self.model_picker.source()
        try:
            if source is None:
                raise ValueError("Choose a model to deploy")
            target = self.target()
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.show_error("")
        self.save_settings()
        self._close_session()
        self._set_ready(None)
        for item in self._step_items.values():
            self._show_state(item, "waiting", "")
        self.log_view.clear()
        self.results_view.show_note(f"Deploying {source.path.name} to {target.board.host}…")
        count = self.evaluate_spin.value()
        onnx_path = source.path
        trust = self._questions.trust

        def job(state):
            from atlas_bridge.local import mnist_test_images

            images, labels = mnist_test_images(count)
            result = Deployer(target, state, trust).deploy(onnx_path, images, labels)
            return target.board, result

        self.deploy_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.runner.start("Deploy", job)
        self.status_message.emit(f"Deploying {onnx_path.name} to {target.board.host}…")

    @Slot()
    def cancel(self) -> None:
        """Ask the running deploy to stop (it ends what runs on the board and removes partial files)."""
        if self.runner.is_running():
            self.runner.stop()
            self.cancel_button.setEnabled(False)
            self.append_log("Cancelling: ending what runs on the board…")

    @Slot(dict)
    def _on_progress_epoch(self, info: dict[str, Any]) -> None:
        if is_step_event(info):
            event = StepEvent.from_dict(info)
            self._on_step(event.step, event.state.value, event.detail)

    @Slot(list)
    def _on_progress_batches(self, batches: list) -> None:
        last = batches[-1] if batches else None
        if last and last.get("step") in self._step_items and last.get("total"):
            percent = 100 * last["done"] // last["total"]
            item = self._step_items[last["step"]]
            item.setText(2, f"{last.get('file', '')} {percent}% of {last['total']:,} bytes")

    @Slot(str, str, str)
    def _on_step(self, name: str, state: str, detail: str) -> None:
        item = self._step_items.get(name)
        if item is not None:
            self._show_state(item, state, detail)

    @staticmethod
    def _show_state(item: QTreeWidgetItem, state: str, detail: str) -> None:
        item.setText(1, _STATE_TEXT.get(state, state))
        item.setForeground(1, QBrush(_STATE_COLOR.get(state, QColor(0, 0, 0))))
        font = item.font(1)
        font.setBold(state == "failed")
        item.setFont(1, font)
        item.setText(2, detail.splitlines()[0] if detail else "")
        item.setToolTip(2, detail)

    @Slot(str)
    def append_log(self, line: str) -> None:
        """Add one line to the log view."""
        self.log_view.appendPlainText(line)

    @Slot(object, object)
    def _on_trust_request(self, info: HostKeyInfo, answer: queue.Queue) -> None:
        answer.put(self.ask_trust(info))

    def ask_trust(self, info: HostKeyInfo) -> bool:
        """Ask whether to trust an unknown host key (a modal dialog; tests replace this method)."""
        text = (
            f"The host key of {info.host} is not known yet.\n\n{info.key_type} key fingerprint:\n"
            f"{info.fingerprint}\n\nCompare it with the board's own (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub "
            "on the board). Trust this key and remember it?"
        )
        reply = QMessageBox.question(
            self,
            "Unknown host key",
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return reply == QMessageBox.StandardButton.Yes

    def ask_passphrase(self, key_file: str, wrong: bool) -> str | None:
        """Ask for an encrypted key's passphrase (a dialog; tests replace this method); ``None``: cancelled."""
        text = (
            f"The passphrase for {key_file} was wrong. Passphrase:"
            if wrong
            else f"The key {key_file} is encrypted. Passphrase:"
        )
        value, ok = QInputDialog.getText(self, "Key passphrase", text, QLineEdit.EchoMode.Password)
        return value if ok and value else None

    @Slot(object)
    def _on_deployed(self, outcome) -> None:
        board, result = outcome
        self._deployment, self._board_login = result, board
        self.results_view.show_result(result)
        self.deployed.emit(result)
        self._set_ready(True)
        self.status_message.emit(f"Deployed to the board: agreement with local {result.agreement:.2%}")

    @staticmethod
    def format_result(result: DeployResult) -> str:
        """The results as a few lines of text (see :func:`app.gui.deploy_results.summary_text`)."""
        return summary_text(result)

    @Slot(dict)
    def _on_failed(self, error: JobFailure) -> None:
        if error.get("kind") == "KeyPassphraseError":
            key = self.key_edit.text().strip() or "your SSH key"
            passphrase = self.ask_passphrase(key, wrong=self._passphrase is not None)
            if passphrase is not None:
                self._passphrase = passphrase
                self._retry_deploy = True  # once this job has finished
                return
        if error.get("kind") == "CancelledError":
            self.results_view.show_note("Deploy cancelled: nothing is left running on the board.")
            self.show_error(error["message"])
            self.status_message.emit("Deploy cancelled")
            return
        self.results_view.show_note("Deploy failed: the failed step and the log say why.")
        self.show_error(error["message"])
        self.status_message.emit("Deploy failed: see the Deploy tab")

    @Slot(str)
    def _on_finished(self, _name: str) -> None:
        self.deploy_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self._retry_deploy:
            self._retry_deploy = False
            self.deploy()

    @Slot(str)
    def show_error(self, message: str) -> None:
        """The one place errors are shown ("" clears it)."""
        self.error_label.setText(message)

    def _set_ready(self, ready: bool | None) -> None:
        if not ready:
            was_ready = self._deployment is not None
            self._deployment = None
            self._board_login = None
            if was_ready or ready is False:
                self.board_ready.emit(False)
                self.board_state.emit(BoardState(BoardStatus.OFFLINE))
            return
        self.board_ready.emit(True)
        self.board_state.emit(self._state(BoardStatus.READY, "deployed; the first drawing opens the session"))

    def _state(self, status: BoardStatus, message: str = "") -> BoardState:
        result = self._deployment
        return BoardState(
            status, result.model_name if result else "", result.soc_version if result else "", message
        )

    # ------------------------------------------------------------------------------------------ board
    def is_board_ready(self) -> bool:
        """True when a deployed model can classify drawings."""
        return self._deployment is not None

    @Slot(object)
    def predict_on_board(self, image28: np.ndarray) -> None:
        """Classify a ``(28, 28)`` float32 image on the board; the answer arrives in ``board_prediction``.

        Goes through the board session (opened on first use). While the board works on a drawing, only the newest
        of the drawings sent meanwhile waits, and is sent as soon as the board answers.
        """
        if self._deployment is None or self._board_login is None:  # set together when a deploy ends
            self._report_board_error("No model is deployed: deploy one in the Deploy tab first")
            return
        image = np.array(image28, dtype=np.float32).reshape(28, 28)
        if self.board_runner.is_running():
            self._pending_image = image
            return
        login, result = self._board_login, self._deployment
        trust = self._questions.trust
        if self._session is None:
            self.board_state.emit(self._state(BoardStatus.CONNECTING, f"connecting to {login.host}…"))

        def job(state):
            from atlas_bridge.errors import BridgeError
            from atlas_bridge.session import BoardSession

            if self._session is None:
                self._session = BoardSession(login, result.set_env, result.model_dir, trust).open()
            try:
                return self._session.classify(image)
            except BridgeError:
                session, self._session = self._session, None
                session.close()
                raise

        self.board_runner.start("Classify on board", job)

    @Slot(object)
    def _on_board_answer(self, answer: BoardPrediction) -> None:
        self.board_prediction.emit(answer)
        note = "runner restarted; " if answer.restarted else ""
        self.board_state.emit(
            self._state(
                BoardStatus.READY,
                f"{note}NPU {answer.npu_ms:.2f} ms, round trip {answer.round_trip_ms:.0f} ms",
            )
        )

    @Slot(dict)
    def _on_board_failed(self, error: JobFailure) -> None:
        message = f"Classifying on the board failed: {error['message']}"
        self.board_state.emit(self._state(BoardStatus.FAILED, message))
        self._report_board_error(message)

    @Slot(str)
    def _on_board_finished(self, _name: str) -> None:
        image, self._pending_image = self._pending_image, None
        if image is not None and self._deployment is not None:
            self.predict_on_board(image)

    def _report_board_error(self, message: str) -> None:
        self.board_error.emit(message)
        self.error_occurred.emit(message)

    def is_busy(self) -> bool:
        """True while a deploy runs."""
        return self.runner.is_running()

    def _close_session(self, timeout_ms: int = 10_000) -> None:
        """Stop the board session's runner and close its connection (waits for a drawing in progress)."""
        self._pending_image = None
        self.board_runner.stop_and_wait(timeout_ms)
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def session(self):
        """The open board session, or ``None`` (for tests and diagnostics)."""
        return self._session

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Stop the deploy (ending what it runs on the board), close the board session (call before closing)."""
        self.runner.stop_and_wait(timeout_ms)
        self._close_session(timeout_ms)

    def closeEvent(self, event) -> None:  # noqa: D102, N802
        self.shutdown()
        super().closeEvent(event)


def _form(*rows: tuple[str, QWidget | QLayout]) -> QFormLayout:
    """A form of ``(label, field)`` rows whose fields grow to the box's width, labels right-aligned like the other tabs."""
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    for label, field in rows:
        form.addRow(label, field)
    return form


def _align_labels(forms) -> None:
    """Give the labels of several stacked forms one width, so their fields line up."""
    labels = [
        form.itemAt(row, QFormLayout.ItemRole.LabelRole) for form in forms for row in range(form.rowCount())
    ]
    widgets = [item.widget() for item in labels if item is not None and item.widget() is not None]
    width = max(widget.sizeHint().width() for widget in widgets)
    for widget in widgets:
        widget.setMinimumWidth(width)


def main() -> int:
    """Show the tab alone (``python -m app.gui.deploy_tab``)."""
    return run_tab_alone(DeployTab, "Deploy")


if __name__ == "__main__":
    sys.exit(main())
