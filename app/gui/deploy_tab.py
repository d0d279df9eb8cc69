"""The Deploy tab: one button to convert a model on an Atlas board, run it there and compare with the local run.

Runs :class:`atlas_bridge.pipeline.Deployer` in the app's worker thread (:class:`app.gui.workers.JobRunner`).
The pipeline's step states and log lines cross to the GUI thread as signals; an unknown host key is shown in a
dialog from the GUI thread while the worker waits for the answer. Once deployed, :meth:`DeployTab.predict_on_board`
classifies a drawing on the board (the Draw tab connects ``board_request`` to it and ``board_prediction`` to its
``show_board_result``). Run alone with ``python -m app.gui.deploy_tab``.
"""

from __future__ import annotations

import queue
import sys

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
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
from app.gui.workers import JobRunner
from atlas_bridge.atc import SOC_VERSIONS
from atlas_bridge.connection import ConnectionConfig
from atlas_bridge.hostkeys import HostKeyInfo
from atlas_bridge.pipeline import STEPS, Deployer, DeployTarget, predict_on_board
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
}
_STATE_COLOR = {
    "waiting": QColor(140, 140, 140), "running": QColor(33, 102, 172), "done": QColor(27, 120, 55),
    "failed": QColor(178, 24, 43), "skipped": QColor(140, 140, 140),
}  # fmt: skip
_ERROR_STYLE = "color: #b00020;"


class _PipelineSignals(QObject):
    """Carries the pipeline's reports from the worker thread to the tab (queued connections)."""

    step = Signal(str, str, str)
    log = Signal(str)
    trust_request = Signal(object, object)  # HostKeyInfo, queue.Queue for the answer


class _Reporter:
    """``DeployProgress`` + trust callback for the worker thread: emits signals, waits for the trust answer."""

    def __init__(self, signals: _PipelineSignals):
        self.signals = signals

    def step(self, name: str, state: str, detail: str = "") -> None:
        self.signals.step.emit(name, state, detail)

    def log(self, line: str) -> None:
        self.signals.log.emit(line)

    def trust(self, info: HostKeyInfo) -> bool:
        answer: queue.Queue = queue.Queue(maxsize=1)
        self.signals.trust_request.emit(info, answer)
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
    board_prediction(dict)
        The board's answer to :meth:`predict_on_board`: ``{"digit", "probabilities", "ms"}``.
    board_error(str)
        :meth:`predict_on_board` failed (the message says why); also sent as ``error_occurred``.
    deployed(dict)
        A deploy finished: :meth:`atlas_bridge.pipeline.DeployResult.to_dict`.
    error_occurred(str)
        A failure that did not start in this tab (classifying a drawing on the board) for the window to show;
        deploy failures are shown in the tab itself, beside the failed step.
    status_message(str)
        Short progress notes for the window's status bar.
    """

    board_ready = Signal(bool)
    board_prediction = Signal(dict)
    board_error = Signal(str)
    deployed = Signal(dict)
    error_occurred = Signal(str)
    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._deployment: tuple[ConnectionConfig, str, str] | None = None
        self._signals = _PipelineSignals(self)
        self._signals.step.connect(self._on_step)
        self._signals.log.connect(self.append_log)
        self._signals.trust_request.connect(self._on_trust_request)
        self.runner = JobRunner(self)
        self.runner.succeeded.connect(self._on_deployed)
        self.runner.failed.connect(self._on_failed)
        self.runner.finished.connect(self._on_finished)
        self.board_runner = JobRunner(self)
        self.board_runner.succeeded.connect(self._on_board_answer)
        self.board_runner.failed.connect(self._on_board_failed)
        self._build()
        self.restore_settings()
        report = self.model_picker.sanity()
        if (
            report is not None and report.warning
        ):  # the model chosen before the picker's signals were connected
            self.show_error(f"Warning: {report.warning}")

    # ------------------------------------------------------------------------------------------ settings
    def _form_values(self) -> dict:
        """The form's non-secret fields (the password is never stored)."""
        return {
            "host": self.host_edit.text(), "port": self.port_spin.value(), "user": self.user_edit.text(),
            "auth": self.auth_combo.currentData(), "key_file": self.key_edit.text(),
            "soc_version": self.soc_combo.currentText(), "remote_dir": self.remote_edit.text(),
            "convert_on_host": self.convert_combo.currentIndex() == 1,
            "convert_host": self.convert_host_edit.text(), "convert_port": self.convert_port_spin.value(),
            "convert_user": self.convert_user_edit.text(), "evaluate": self.evaluate_spin.value(),
        }  # fmt: skip

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

        self.board_form = _form()
        self.board_form.addRow("Host", self.host_edit)
        self.board_form.addRow("Port", self.port_spin)
        self.board_form.addRow("User", self.user_edit)
        self.board_form.addRow("Authentication", self.auth_combo)
        self.board_form.addRow("Password", self.password_edit)
        self.board_form.addRow("Key file", key_row)
        self.convert_form = _form()
        self.convert_form.addRow("Chip (soc_version)", self.soc_combo)
        self.convert_form.addRow("Remote folder", self.remote_edit)
        self.convert_form.addRow("Convert", self.convert_combo)
        self.convert_form.addRow("Conversion host", self.convert_host_edit)
        self.convert_form.addRow("Conversion port", self.convert_port_spin)
        self.convert_form.addRow("Conversion user", self.convert_user_edit)
        model_form = _form()
        model_form.addRow("Model", self.model_picker)
        model_form.addRow("Compare on", self.evaluate_spin)
        self._key_row = key_row

        self.deploy_button = QPushButton("Deploy to the board")
        self.deploy_button.setToolTip("Check the board, upload the model, convert it, run it and compare")
        self.deploy_button.setMinimumHeight(32)
        self.deploy_button.clicked.connect(self.deploy)
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
        for title, form in (("Board", self.board_form), ("Conversion", self.convert_form),
                            ("Model", model_form)):  # fmt: skip
            box = QGroupBox(title)
            box.setLayout(form)
            left.addWidget(box)
        left.addWidget(self.deploy_button)
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
                host=self.convert_host_edit.text().strip(), port=self.convert_port_spin.value(),
                user=self.convert_user_edit.text().strip() or None, auth=board.auth, key_file=board.key_file,
                password=board.password,
            )  # fmt: skip
        soc = self.soc_combo.currentText()
        return DeployTarget(board=board, soc_version=None if soc == AUTO_SOC else soc,
                            remote_dir=self.remote_edit.text().strip() or "~/digit-distill",
                            converter=converter)  # fmt: skip

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
        self._set_ready(None)
        for item in self._step_items.values():
            self._show_state(item, "waiting", "")
        self.log_view.clear()
        self.results_view.show_note(f"Deploying {source.path.name} to {target.board.host}…")
        reporter = _Reporter(self._signals)
        count = self.evaluate_spin.value()
        onnx_path = source.path

        def job(state):
            from atlas_bridge.local import mnist_test_images

            images, labels = mnist_test_images(count)
            result = Deployer(target, reporter, reporter.trust).deploy(onnx_path, images, labels)
            return target.board, result.to_dict()

        self.deploy_button.setEnabled(False)
        self.runner.start("Deploy", job)
        self.status_message.emit(f"Deploying {onnx_path.name} to {target.board.host}…")

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
        reply = QMessageBox.question(self, "Unknown host key", text, QMessageBox.StandardButton.Yes
                                     | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)  # fmt: skip
        return reply == QMessageBox.StandardButton.Yes

    @Slot(object)
    def _on_deployed(self, outcome) -> None:
        board, result = outcome
        self._deployment = (board, result["set_env"], result["model_dir"])
        self.results_view.show_result(result)
        self.deployed.emit(result)
        self._set_ready(True)
        self.status_message.emit(f"Deployed to the board: agreement with local {result['agreement']:.2%}")

    @staticmethod
    def format_result(result: dict) -> str:
        """The results as a few lines of text (see :func:`app.gui.deploy_results.summary_text`)."""
        return summary_text(result)

    @Slot(dict)
    def _on_failed(self, error: dict) -> None:
        self.results_view.show_note("Deploy failed: the failed step and the log say why.")
        self.show_error(error["message"])
        self.status_message.emit("Deploy failed: see the Deploy tab")

    @Slot(str)
    def _on_finished(self, _name: str) -> None:
        self.deploy_button.setEnabled(True)

    @Slot(str)
    def show_error(self, message: str) -> None:
        """The one place errors are shown ("" clears it)."""
        self.error_label.setText(message)

    def _set_ready(self, ready: bool | None) -> None:
        if not ready:
            was_ready = self._deployment is not None
            self._deployment = None
            if was_ready or ready is False:
                self.board_ready.emit(False)
            return
        self.board_ready.emit(True)

    # ------------------------------------------------------------------------------------------ board
    def is_board_ready(self) -> bool:
        """True when a deployed model can classify drawings."""
        return self._deployment is not None

    @Slot(object)
    def predict_on_board(self, image28: np.ndarray) -> None:
        """Classify a ``(28, 28)`` float32 image on the board; the answer arrives in ``board_prediction``."""
        if self._deployment is None:
            self._report_board_error("No model is deployed: deploy one in the Deploy tab first")
            return
        if self.board_runner.is_running():
            self._report_board_error("The board is still busy with the previous drawing")
            return
        board, set_env, model_dir = self._deployment
        image = np.array(image28, dtype=np.float32).reshape(28, 28)
        self.board_runner.start(
            "Classify on board", lambda state: predict_on_board(board, set_env, model_dir, image)
        )

    @Slot(object)
    def _on_board_answer(self, answer) -> None:
        self.board_prediction.emit(dict(answer))

    @Slot(dict)
    def _on_board_failed(self, error: dict) -> None:
        self._report_board_error(f"Classifying on the board failed: {error['message']}")

    def _report_board_error(self, message: str) -> None:
        self.board_error.emit(message)
        self.error_occurred.emit(message)

    def is_busy(self) -> bool:
        """True while a deploy runs."""
        return self.runner.is_running()

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Wait for running jobs (call before the window closes)."""
        self.runner.stop_and_wait(timeout_ms)
        self.board_runner.stop_and_wait(timeout_ms)

    def closeEvent(self, event) -> None:  # noqa: D102, N802
        self.shutdown()
        super().closeEvent(event)


def _form() -> QFormLayout:
    """A form whose fields grow to the box's width, labels right-aligned like the other tabs."""
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
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
