"""The Train tab: hyperparameters, Train Teacher / Train Student / Distill / Stop, live plots and results.

Run it alone for a quick look: ``python -m app.gui.train_tab``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QFontMetrics, QKeySequence, QTextBlockFormat, QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.gui.data_panel import DataPanel
from app.gui.plots import TrainingPlots
from app.gui.results_table import ResultsPanel
from app.gui.train_form import TrainForm
from app.gui.train_jobs import TrainJob, latest_results, run_training_job
from app.gui.window import Tab
from app.gui.workers import JobRunner
from core.runs import default_runs_root

ROLE_NAMES = {"teacher": "teacher", "student": "student (normal)", "distilled": "distilled student"}
MAX_LOG_LINES = 2000


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class LogView(QTextEdit):
    """A read-only log: one block per line, wrapped lines indented under the text, following the end.

    Scrolls by pixels (a ``QPlainTextEdit`` scrolls by lines and leaves the last line half hidden), keeps at
    most ``max_lines`` lines, and jumps to the newest line unless the person scrolled up to read.
    """

    def __init__(self, max_lines: int = MAX_LOG_LINES, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setAcceptRichText(False)
        self.setLineWrapMode(QTextEdit.LineWrapMode.WidgetWidth)
        self.document().setMaximumBlockCount(max_lines)
        self.document().setDocumentMargin(4)

    def append_line(self, text: str, indent_like: str = "") -> None:
        """Add ``text`` as a new line; its wrapped parts start under ``text[len(indent_like):]``."""
        bar = self.verticalScrollBar()
        follow = bar.value() >= bar.maximum() - 4
        indent = QFontMetrics(self.font()).horizontalAdvance(indent_like)
        block = QTextBlockFormat()
        block.setLeftMargin(indent)
        block.setTextIndent(-indent)
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if not self.document().isEmpty():
            cursor.insertBlock()
        cursor.setBlockFormat(block)
        cursor.insertText(text)
        if follow:
            bar.setValue(bar.maximum())


class TrainTab(Tab):
    """Train the teacher, the student and the distilled student, watch them learn, compare with the paper.

    Signals
    -------
    error_occurred(str)
        A readable message for the person (the main window shows it).
    status_message(str)
        A short status line.
    models_ready(object, object)
        ``(teacher_onnx, student_onnx)`` paths (either may be None) to load in the Draw tab.
    job_finished(dict)
        A finished or stopped training job's result row.
    """

    error_occurred = Signal(str)
    status_message = Signal(str)
    models_ready = Signal(object, object)
    job_finished = Signal(dict)

    def __init__(self, parent: QWidget | None = None, runs_root: Path | None = None):
        super().__init__(parent)
        self.runs_root = Path(runs_root) if runs_root else default_runs_root()
        self.runner = JobRunner(self)
        self.results_runner = JobRunner(self)  # reads earlier runs; never trains
        self._role = ""
        self._job_epochs = 1
        self._job_t0 = 0.0
        self._refresh_pending = False
        self._build_widgets()
        self._build_actions()
        self._layout()
        self._connect()
        self.form.load_settings()
        self._update_buttons()
        QTimer.singleShot(0, self.refresh_results)

    # -- construction ---------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.data_panel = DataPanel()
        self.form = TrainForm()

        self.teacher_button = QPushButton("Train Teacher")
        self.student_button = QPushButton("Train Student")
        self.distill_button = QPushButton("Distill")
        self.stop_button = QPushButton("Stop")
        # The text sits beside the bar, not on it: on the bar the fill splits it into two unreadable halves.
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(12)
        self.progress_label = QLabel()
        self.progress_label.setMinimumWidth(
            QFontMetrics(self.font()).horizontalAdvance("epoch 20/20 · 100% · ETA 00:00")
        )
        self.progress_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self._set_progress_text("idle")
        self.log = LogView(MAX_LOG_LINES)
        self.log.setPlaceholderText("Training log")
        self.log.setToolTip("What the trainer reports; errors appear here and in the status bar")
        self.plots = TrainingPlots()
        self.results = ResultsPanel()

    def _build_actions(self) -> None:
        def action(text: str, shortcut: str, tip: str, slot) -> QAction:
            act = QAction(text, self)
            act.setShortcut(QKeySequence(shortcut))
            act.setToolTip(
                f"{tip} ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})"
            )
            act.setStatusTip(tip)
            act.triggered.connect(slot)
            return act

        self.teacher_action = action(
            "Train &Teacher", "Ctrl+T", "Train the teacher network", lambda: self.start_job("teacher")
        )
        self.student_action = action(
            "Train &Student",
            "Ctrl+Shift+T",
            "Train the student normally, on labels only",
            lambda: self.start_job("student"),
        )
        self.distill_action = action(
            "&Distill",
            "Ctrl+D",
            "Train the student from the teacher's softened outputs and the labels",
            lambda: self.start_job("distilled"),
        )
        self.stop_action = action("St&op", "Ctrl+.", "Stop the job after the current batch", self.stop)
        for button, act in (
            (self.teacher_button, self.teacher_action),
            (self.student_button, self.student_action),
            (self.distill_button, self.distill_action),
            (self.stop_button, self.stop_action),
        ):
            button.setToolTip(act.toolTip())
            button.clicked.connect(act.trigger)

    def actions_for_menu(self) -> list[QAction]:
        """The tab's actions with their shortcuts, for the main window's menu."""
        return [self.teacher_action, self.student_action, self.distill_action, self.stop_action]

    def _layout(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.teacher_button, self.student_button, self.distill_button, self.stop_button):
            buttons.addWidget(button)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 6, 0)
        left_layout.addWidget(self.data_panel)
        left_layout.addWidget(self.form)
        left_layout.addLayout(buttons)
        progress = QHBoxLayout()
        progress.addWidget(self.progress, 1)
        progress.addWidget(self.progress_label)
        left_layout.addLayout(progress)
        left_layout.addWidget(self.log, 1)

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.plots)
        right.addWidget(self.results)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([400, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(self.splitter)

    def _connect(self) -> None:
        self.runner.started.connect(self._on_started)
        self.runner.batches.connect(self.plots.add_batches)
        self.runner.batches.connect(self._on_batches)
        self.runner.epoch.connect(self.plots.add_epoch)
        self.runner.message.connect(self.append_log)
        self.runner.succeeded.connect(self._on_succeeded)
        self.runner.failed.connect(self._on_failed)
        self.runner.finished.connect(self._on_finished)
        self.results_runner.succeeded.connect(self._on_results_loaded)
        self.results_runner.finished.connect(self._on_results_finished)
        self.results_runner.failed.connect(
            lambda e: self.append_log(f"could not read earlier runs: {e['message']}")
        )
        self.results.send_to_draw.connect(self.models_ready)
        self.form.preset_changed.connect(self._on_preset_changed)
        self.form.teacher_changed.connect(self._update_buttons)
        self.data_panel.error_occurred.connect(self.error_occurred)
        self.data_panel.data_dir_changed.connect(lambda d: self.append_log(f"MNIST folder: {d}"))

    # -- jobs -----------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        """True while a training job runs."""
        return self.runner.is_running()

    def make_job(self, role: str) -> TrainJob:
        """Build the job from the form; raises ValueError with a readable message for bad values."""
        config = self.form.train_config()
        kd = teacher_run = None
        if role == "distilled":
            kd, teacher_run = self.form.kd_config(), self.form.teacher_run()
            if teacher_run is None:
                raise ValueError("Distillation needs a trained teacher: train one first (Ctrl+T).")
        preset = self.form.preset.currentData()
        return TrainJob(role, preset, config, kd, teacher_run, self.data_panel.data_dir(), self.runs_root)

    def start_job(self, role: str) -> bool:
        """Start training ``role``; False (with a message) when refused or the form is invalid."""
        if self.is_running():
            self.status_message.emit(f"A job is running ({self.runner.name}); stop it first.")
            return False
        if not self.data_panel.is_ready():
            self.data_panel.offer(f"MNIST files missing in {self.data_panel.data_dir()}.")
            return False
        try:
            job = self.make_job(role)
        except ValueError as exc:
            self.report_error(str(exc))
            return False
        self.form.save_settings()
        self._role = role
        self._job_epochs = job.config.epochs
        self.plots.start_run(distill=role == "distilled")
        return self.runner.start(f"Train {ROLE_NAMES[role]}", lambda state: run_training_job(job, state))

    def stop(self) -> None:
        """Ask the running job to stop after its current batch (finished epochs are kept)."""
        if self.is_running():
            self.runner.stop()
            self.append_log("stopping after the current batch…")
            self._set_progress_text("stopping…")
            self._update_buttons()

    def is_busy(self) -> bool:
        """True while a training job runs."""
        return self.is_running()

    def splitters(self) -> dict[str, QSplitter]:
        """The form | plots splitter and the plots / results splitter."""
        return {"train": self.splitter, "train-right": self.splitter.widget(1)}

    def shutdown(self, timeout_ms: int = 15_000) -> bool:
        """Stop any job and wait for it (window closing); saves the hyperparameters."""
        self.form.save_settings()
        self.data_panel.shutdown()
        self.results_runner.stop_and_wait(timeout_ms)
        return self.runner.stop_and_wait(timeout_ms)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Opened on its own (tests, previews): closing stops the job like the main window does."""
        self.shutdown()
        super().closeEvent(event)

    def refresh_results(self) -> None:
        """Read the newest finished runs of the current preset into the table (in the background)."""
        preset, root = self.form.preset.currentData(), self.runs_root
        self.form.refresh_teachers(root)
        started = self.results_runner.start("Read earlier runs", lambda state: latest_results(preset, root))
        self._refresh_pending = not started  # still reading for another preset: read again when done

    # -- slots ----------------------------------------------------------------------------------------
    def append_log(self, text: str) -> None:
        """Add a time-stamped line to the log pane."""
        stamp = f"{time.strftime('%H:%M:%S')}  "
        self.log.append_line(stamp + text, indent_like=stamp)

    def _set_progress_text(self, text: str) -> None:
        self.progress_label.setText(text)
        self.progress.setToolTip(text)

    def report_error(self, message: str) -> None:
        """Log an error and pass it to whoever shows errors (the main window)."""
        self.append_log(f"ERROR: {message}")
        self.error_occurred.emit(message)

    def _on_started(self, name: str) -> None:
        self._job_t0 = time.monotonic()
        self.progress.setValue(0)
        self._set_progress_text("starting…")
        self.append_log(f"{name}: started")
        self.status_message.emit(f"{name}…")
        self._update_buttons()

    def _on_batches(self, items: list) -> None:
        info = items[-1]
        batches = max(1, int(info["batches"]))
        done = (info["epoch"] - 1) * batches + info["batch"]
        fraction = min(1.0, done / (self._job_epochs * batches))
        self.progress.setValue(int(fraction * 1000))
        if self.runner.stop_requested():
            return
        elapsed = time.monotonic() - self._job_t0
        parts = [f"epoch {info['epoch']}/{self._job_epochs}", f"{fraction:.0%}"]
        if fraction > 0:
            parts.append(f"ETA {_format_seconds(elapsed * (1 - fraction) / fraction)}")
        self._set_progress_text(" · ".join(parts))

    def _on_succeeded(self, row: dict) -> None:
        if row["epochs_done"] == 0:
            self.append_log("stopped before the first epoch finished: nothing to keep")
            return
        self.results.set_row(row)
        acc = row["test_accuracy"]
        what = ROLE_NAMES[row["role"]]
        if row.get("stopped"):
            text = f"{what} stopped after {row['epochs_done']} epoch(s): test accuracy {acc:.2%} (kept)"
        else:
            text = f"{what} done: test accuracy {acc:.2%} in {_format_seconds(row.get('seconds', 0))}"
        self.append_log(f"{text}; run {row['name']}")
        self.status_message.emit(text)
        if row.get("export_error"):
            self.report_error(
                f"The {what} was trained and saved, but its ONNX export failed: {row['export_error']}"
            )
        self.job_finished.emit(row)

    def _on_failed(self, error: dict) -> None:
        if error["kind"] == "MissingDataError":
            self.append_log(f"ERROR: {error['message']}")
            self.data_panel.refresh()
            self.data_panel.offer(error["message"])
        else:
            self.report_error(error["message"])

    def _on_finished(self, name: str) -> None:
        self._set_progress_text("idle" if self.progress.value() < 1000 else "done")
        self.form.refresh_teachers(self.runs_root, select_newest=self._role == "teacher")
        self._update_buttons()

    def _on_results_loaded(self, rows: list) -> None:
        if self.is_running():  # a job started meanwhile: fill only the rows it leaves empty, draw no curves
            for row in rows:
                if self.results.row(row["role"]) is None:
                    self.results.set_row(row)
            return
        self.results.set_rows(rows)
        self.plots.clear_earlier()
        for row in rows:
            self.plots.add_earlier_run(row["history"])
        if rows:
            names = ", ".join(ROLE_NAMES[r["role"]] for r in rows)
            self.append_log(f"earlier results: {names} ({self.runs_root})")

    def _on_results_finished(self, name: str) -> None:
        if self._refresh_pending:
            self.refresh_results()

    def _on_preset_changed(self) -> None:
        if not self.is_running():
            self.refresh_results()

    def _update_buttons(self) -> None:
        running = self.is_running()
        has_teacher = self.form.teacher_run() is not None
        for widget in (self.teacher_button, self.teacher_action, self.student_button, self.student_action):
            widget.setEnabled(not running)
        for widget in (self.distill_button, self.distill_action):
            widget.setEnabled(not running and has_teacher)
        for widget in (self.stop_button, self.stop_action):
            widget.setEnabled(running and not self.runner.stop_requested())
        self.form.setEnabled(not running)
        self.data_panel.setEnabled(not running)


def main() -> int:
    """Open the Train tab alone in a window."""
    from app.gui.window import run_tab_alone

    return run_tab_alone(TrainTab, "Train")


if __name__ == "__main__":
    sys.exit(main())
