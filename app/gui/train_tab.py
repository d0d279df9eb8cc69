"""The Train tab: a recipe and this job's changes, Train Teacher / Student / Distill / Resume / Stop, plots, results.

Every button describes a ``core.jobs.JobSpec`` (the same the command line builds) and runs it with
``core.jobs`` in a worker thread; the results table compares only matching complete runs (``core.comparisons``).

Run it alone for a quick look: ``python -m app.gui.train_tab``.

Kept in one module: one tab's layout and its jobs' wiring (the form is app/gui/train_form.py, the plots and table
their own modules).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QFontMetrics,
    QKeySequence,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.data_panel import DataPanel
from app.gui.plots import TrainingPlots
from app.gui.results_table import ResultsPanel
from app.gui.train_form import TrainForm
from app.gui.train_jobs import ResultRow, ResultsTable, latest_results, run_training_job, stopped_runs
from app.gui.window import Tab
from app.gui.workers import JobFailure, JobRunner
from core.runs import default_runs_root

ROLE_NAMES = {"teacher": "teacher", "student": "student (normal)", "distilled": "distilled student"}
MAX_LOG_LINES = 2000
ERROR_COLOR = QColor("#c62828")


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

    def append_line(self, text: str, indent_like: str = "", color: QColor | None = None) -> None:
        """Add ``text`` as a new line (in ``color`` if given); wrapped parts start under ``text[len(indent_like):]``."""
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
        char = QTextCharFormat()
        if color is not None:
            char.setForeground(color)
        cursor.insertText(text, char)
        if follow:
            bar.setValue(bar.maximum())


class _SettingsArea(QScrollArea):
    """The form and data panel: as tall as they need when there is room, scrolling in a small window."""

    def __init__(self, widget: QWidget):
        super().__init__()
        self.form = widget
        self.setWidget(widget)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        """The whole form (QScrollArea would cap it at a few hundred pixels)."""
        return self.form.sizeHint() + QSize(self.verticalScrollBar().sizeHint().width(), 0)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        """As wide as the form, and short: the form scrolls rather than making the window tall."""
        return QSize(self.form.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width(), 150)


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
        self.resume_button = QToolButton()
        self.resume_button.setText("Resume")
        self.resume_button.setToolTip("Continue a stopped run of this recipe from its last finished epoch")
        self.resume_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.resume_menu = QMenu(self.resume_button)
        self.resume_menu.aboutToShow.connect(self._fill_resume_menu)
        self.resume_button.setMenu(self.resume_menu)
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
        for button in (
            self.teacher_button,
            self.student_button,
            self.distill_button,
            self.resume_button,
            self.stop_button,
        ):
            buttons.addWidget(button)

        settings = QWidget()
        settings_layout = QVBoxLayout(settings)
        settings_layout.setContentsMargins(0, 0, 0, 0)
        settings_layout.addWidget(self.form)  # the recipe comes first: it decides every value below it
        settings_layout.addWidget(self.data_panel)
        self.settings_area = _SettingsArea(settings)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 6, 0)
        left_layout.addWidget(self.settings_area)
        left_layout.addLayout(buttons)
        progress = QHBoxLayout()
        progress.addWidget(self.progress, 1)
        progress.addWidget(self.progress_label)
        left_layout.addLayout(progress)
        left_layout.addWidget(self.log, 1)

        right = self.plots_splitter = QSplitter(Qt.Orientation.Vertical)
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
        self.runner.message.connect(self._show_step)
        self.runner.succeeded.connect(self._on_succeeded)
        self.runner.failed.connect(self._on_failed)
        self.runner.finished.connect(self._on_finished)
        self.results_runner.succeeded.connect(self._on_results_loaded)
        self.results_runner.finished.connect(self._on_results_finished)
        self.results_runner.failed.connect(
            lambda e: self.append_log(f"could not read earlier runs: {e['message']}")
        )
        self.results.send_to_draw.connect(self.models_ready)
        self.results.train_baseline.connect(self.train_baseline)
        self.form.recipe_changed.connect(self._on_recipe_changed)
        self.form.teacher_changed.connect(self._update_buttons)
        self.data_panel.error_occurred.connect(self.error_occurred)
        self.data_panel.data_dir_changed.connect(lambda d: self.append_log(f"MNIST folder: {d}"))

    # -- jobs -----------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        """True while a training job runs."""
        return self.runner.is_running()

    def make_job(self, role: str):
        """The :class:`core.jobs.JobSpec` the form describes; raises ValueError with a readable message."""
        if role == "distilled" and self.form.teacher_run() is None:
            raise ValueError("Distillation needs a complete teacher run: train one first (Ctrl+T).")
        return self.form.job_spec(role, self.data_panel.data_dir(), self.runs_root)

    def start_job(self, role: str) -> bool:
        """Start training ``role``; False (with a message) when refused or the form is invalid."""
        self.form.show_role(role)
        try:
            spec = self.make_job(role)
        except ValueError as exc:
            self.report_error(str(exc))
            return False
        return self.start_spec(spec)

    def start_spec(self, spec) -> bool:
        """Run a :class:`core.jobs.JobSpec` (checked first: a bad value is refused before anything starts)."""
        from core.jobs import JobError, resolve

        if not self._ready_to_start():
            return False
        try:
            config = resolve(spec)
        except (ValueError, JobError) as exc:
            self.report_error(str(exc))
            return False
        self.form.save_settings()
        self._role = spec.role
        self._job_epochs = config.train.epochs
        self.plots.start_run(distill=spec.role == "distilled")
        return self.runner.start(
            f"Train {ROLE_NAMES[spec.role]}", lambda state: run_training_job(spec, state)
        )

    def resume_run(self, run_dir: Path) -> bool:
        """Continue the stopped run ``run_dir`` from its own config.json."""
        from core import runs

        if not self._ready_to_start():
            return False
        try:
            info = runs.read_run(run_dir)
        except (ValueError, KeyError) as exc:
            self.report_error(str(exc))
            return False
        self._role = info.role
        self._job_epochs = info.epochs
        self.plots.start_run(distill=info.role == "distilled")
        data_dir = self.data_panel.data_dir()
        return self.runner.start(
            f"Resume {ROLE_NAMES[info.role]}",
            lambda state: run_training_job(None, state, resume=Path(run_dir), data_dir=data_dir),
        )

    def train_baseline(self, distilled_run: str) -> bool:
        """Train the normally trained student that matches the distilled run ``distilled_run``."""
        from core import comparisons, runs

        spec = comparisons.baseline_spec(
            runs.read_run(Path(distilled_run)), self.runs_root, self.data_panel.data_dir()
        )
        return self.start_spec(spec)

    def _ready_to_start(self) -> bool:
        if self.is_running():
            self.status_message.emit(f"A job is running ({self.runner.name}); stop it first.")
            return False
        if not self.data_panel.is_ready():
            self.data_panel.offer(f"MNIST files missing in {self.data_panel.data_dir()}.")
            return False
        return True

    def _fill_resume_menu(self) -> None:
        self.resume_menu.clear()
        found = stopped_runs(self.form.recipe_name(), self.runs_root)
        for info in found:
            act = self.resume_menu.addAction(f"{info.name}  ({info.epochs_done}/{info.epochs} epochs)")
            act.setToolTip(str(info.path))
            act.triggered.connect(lambda _=False, path=info.path: self.resume_run(path))
        if not found:
            self.resume_menu.addAction("no stopped run of this recipe").setEnabled(False)

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
        return {"train": self.splitter, "train-right": self.plots_splitter}

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
        """Read the recipe's honest comparison of complete runs into the table (in the background)."""
        recipe, root = self.form.recipe_name(), self.runs_root
        self.form.refresh_teachers(root)
        started = self.results_runner.start("Read earlier runs", lambda state: latest_results(recipe, root))
        self._refresh_pending = not started  # still reading for another recipe: read again when done

    # -- slots ----------------------------------------------------------------------------------------
    def append_log(self, text: str, error: bool = False) -> None:
        """Add a time-stamped line to the log pane (errors in red)."""
        stamp = f"{time.strftime('%H:%M:%S')}  "
        self.log.append_line(stamp + text, indent_like=stamp, color=ERROR_COLOR if error else None)

    def _set_progress_text(self, text: str, error: bool = False) -> None:
        self.progress_label.setText(text)
        self.progress_label.setStyleSheet(f"color: {ERROR_COLOR.name()};" if error else "")
        self.progress.setToolTip(text)

    def report_error(self, message: str) -> None:
        """Log an error (in red) and pass it to whoever shows errors (the main window)."""
        self.append_log(f"ERROR: {message}", error=True)
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

    def _on_succeeded(self, row: ResultRow) -> None:
        self.results.set_table(row["table"])
        what = ROLE_NAMES[row["role"]]
        if row["status"] == "diverged":
            self._set_progress_text("diverged", error=True)
            self.report_error(f"The {what} {row['message']}")
            self.job_finished.emit(row)
            return
        if row["epochs_done"] == 0:
            self.append_log("stopped before the first epoch finished: nothing to keep")
            self.job_finished.emit(row)
            return
        acc = row["test_accuracy"]
        if row.get("stopped"):
            text = f"{what} stopped after {row['epochs_done']} epoch(s): test accuracy {acc:.2%} (kept; Resume continues it)"
        else:
            text = f"{what} done: test accuracy {acc:.2%} in {_format_seconds(row.get('seconds', 0))}"
        self.append_log(f"{text}; run {row['name']}")
        self.status_message.emit(text)
        if row.get("export_error"):
            self.report_error(
                f"The {what} was trained and saved, but its ONNX export failed: {row['export_error']}"
            )
        self.job_finished.emit(row)

    def _on_failed(self, error: JobFailure) -> None:
        if error["kind"] == "MissingDataError":
            self.append_log(f"ERROR: {error['message']}", error=True)
            self.data_panel.refresh()
            self.data_panel.offer(error["message"])
        else:
            self.append_log(f"ERROR: {error['message']}")
            self.error_details.emit(error["message"], error.get("details", ""))  # traceback under Details

    def _show_step(self, text: str) -> None:
        """A preparation step (loading MNIST, the teacher's outputs, exporting) beside the progress bar."""
        if not self.runner.stop_requested():
            self._set_progress_text(f"{text}…")

    def _on_finished(self, name: str) -> None:
        if self.progress_label.text() != "diverged":
            self._set_progress_text("idle" if self.progress.value() < 1000 else "done")
        self.form.refresh_teachers(self.runs_root, select_newest=self._role == "teacher")
        self._update_buttons()

    def _on_results_loaded(self, table: ResultsTable) -> None:
        if self.is_running():  # a job started meanwhile: its own result brings a fresh table
            return
        self.results.set_table(table)
        self.plots.clear_earlier()
        for row in table["rows"]:
            self.plots.add_earlier_run(row["history"])
        if table["rows"]:
            names = ", ".join(f"{ROLE_NAMES[r['role']]} {r['name']}" for r in table["rows"])
            self.append_log(f"earlier results: {names} ({self.runs_root})")

    def _on_results_finished(self, name: str) -> None:
        if self._refresh_pending:
            self.refresh_results()

    def _on_recipe_changed(self) -> None:
        if not self.is_running():
            self.refresh_results()

    def _update_buttons(self) -> None:
        running = self.is_running()
        has_teacher = self.form.teacher_run() is not None
        for widget in (
            self.teacher_button,
            self.teacher_action,
            self.student_button,
            self.student_action,
            self.resume_button,
        ):
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
