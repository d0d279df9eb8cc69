"""The Draw tab: draw a digit and watch the teacher and the student recognise it live.

Every change of the drawing restarts a zero-interval single-shot timer, so a burst of mouse moves is classified
once, after the burst, in the GUI thread: the whole path (render 280x280, ``to_mnist``, both models, charts)
takes a few milliseconds, well under a frame (``bench/gui_latency.py`` measures it).

Run ``python -m app.gui.draw_tab`` to show the tab on its own.

Kept in one module: one tab's layout and the classification path it drives.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.gui.canvas import DEFAULT_PEN_WIDTH, MAX_PEN_WIDTH, MIN_PEN_WIDTH, DrawingCanvas
from app.gui.charts import ERROR_STYLE, INFO_STYLE, ProbabilityChart, ResultPanel, softmax
from app.gui.gallery import DEV_SET, FailureGallery, dev_set_source
from app.gui.model_choice import ModelPicker
from app.gui.personal import PersonalPanel
from app.gui.window import Tab, run_tab_alone
from atlas_bridge.results import BoardPrediction, DeployResult
from core.inference import OnnxClassifier
from core.personal import PersonalSet
from core.preprocess import INK_THRESHOLD, EmptyImageError, ImageReadError, ink_map, load_image, to_mnist
from core.trust import Trust, TrustError, Verdict

MAX_TEMPERATURE = 20.0
PREVIEW_SCALE = 4  # the 28x28 model input is shown at 112x112, pixels kept square

_BAR_SOFT = QColor(214, 96, 77)
_BAR_SOFT_REST = QColor(240, 170, 150)


class DrawTab(Tab):
    """Canvas, live teacher/student recognition, soft targets at a temperature, and the board slot.

    Parameters
    ----------
    parent
        Parent widget.
    models_dir
        Folder of the bundled models (default: :data:`core.bundled.BUNDLED_DIR`).
    runs_root
        Folder of training runs listed as model choices (default: ``core.runs.default_runs_root()``).

    Signals
    -------
    board_request(numpy.ndarray)
        "Classify on board" was pressed, or the drawing changed with "Live" on: the ``(28, 28)`` float32 input
        the local models see.
    predictions_shown()
        Both panels were updated for the current drawing (or emptied when nothing is drawn).
    status_message(str)
        A neutral note (file opened or saved) for a status bar.
    error_occurred(str)
        A problem (a refused model file, a model that fails, an unreadable image or board answer), shown under
        the canvas and sent once per distinct message for the window's error sink.
    """

    board_request = Signal(object)
    predictions_shown = Signal()

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        models_dir: Path | None = None,
        runs_root=None,
        load_models: bool = True,
        personal_set: PersonalSet | None = None,
    ):
        super().__init__(parent)
        self._input: np.ndarray | None = None  # the (28, 28) image the models saw last
        self._teacher_logits: np.ndarray | None = None
        self._board_available = False
        self._last_error = (
            ""  # the last message sent as error_occurred (a failing model repeats it per stroke)
        )

        self.canvas = DrawingCanvas(self)
        #: The calibrated answer per role ("teacher", "student") for the current drawing (None: uncalibrated).
        self.verdicts: dict[str, Verdict | None] = {}
        self._trusts: dict[int, tuple[OnnxClassifier, Trust | None]] = {}
        self.personal_panel = PersonalPanel(self.canvas.strokes, personal_set, self)
        self.teacher_picker, self.student_picker = (
            ModelPicker(role, self, models_dir=models_dir, runs_root=runs_root, load_default=False)
            for role in ("teacher", "student")
        )
        self.teacher_panel = ResultPanel("Teacher", self, header=self.teacher_picker)
        self.student_panel = ResultPanel("Student", self, header=self.student_picker)
        self.board_header = QLabel("the model deployed in the Deploy tab")
        self.board_header.setStyleSheet(INFO_STYLE)
        # As high as the model pickers above the other panels, so the three digits and charts line up.
        self.board_header.setFixedHeight(self.teacher_picker.sizeHint().height())
        self.board_panel = ResultPanel("Atlas board", self, header=self.board_header)
        self.board_panel.setVisible(False)

        self._coalesce = QTimer(self)
        self._coalesce.setSingleShot(True)
        self._coalesce.setInterval(0)
        self._coalesce.timeout.connect(self.classify)

        self.setLayout(self._build_layout())
        self._connect()
        if load_models:
            self.load_models()
        else:
            for panel in (self.teacher_panel, self.student_panel):
                panel.show_empty("loading the model…")

    def load_models(self) -> None:
        """Load the default teacher and student (bundled, else the newest suitable runs) and classify.

        The main window calls this right after its first paint (onnxruntime and the models take a moment);
        ``DrawTab()`` on its own does it at once.
        """
        for picker in (self.teacher_picker, self.student_picker):
            picker.choose_default()  # emits model_changed: classified as soon as it is loaded
        self.temperature_slider.setValue(round(10 * self._initial_temperature()))
        self.classify()
        if self.teacher_picker.classifier() is None or self.student_picker.classifier() is None:
            self.message_label.setStyleSheet(INFO_STYLE)
            self.message_label.setText(
                "No bundled model found for every slot: open ONNX files with the … buttons, "
                "or train models in the Train tab and pick the finished runs."
            )

    # ------------------------------------------------------------------------------------------- layout
    def _build_canvas_column(self) -> QVBoxLayout:
        self.pen_slider = QSlider(Qt.Orientation.Horizontal)
        self.pen_slider.setRange(int(MIN_PEN_WIDTH), int(MAX_PEN_WIDTH))
        self.pen_slider.setValue(round(DEFAULT_PEN_WIDTH))
        self.pen_slider.setToolTip(
            f"Width of new strokes. The default, {DEFAULT_PEN_WIDTH:.0f} px, gives MNIST's stroke thickness "
            "for a digit about 60% of the canvas high."
        )
        self.pen_label = QLabel()
        self.pen_label.setMinimumWidth(42)
        self._show_pen_width(self.pen_slider.value())
        pen_row = QHBoxLayout()
        pen_row.addWidget(QLabel("Pen"))
        pen_row.addWidget(self.pen_slider, 1)
        pen_row.addWidget(self.pen_label)

        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Remove the last stroke (Ctrl+Z)")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Start again (Esc or Delete)")
        self.open_button = QPushButton("Open image…")
        self.open_button.setToolTip("Classify a digit from a PNG or JPEG file")
        self.save_button = QPushButton("Save PNG…")
        self.save_button.setToolTip("Save the drawing as a 280x280 PNG image")
        self.board_button = QPushButton("Classify on board")
        self.board_button.setEnabled(False)
        self.board_button.setToolTip("Connect to an Atlas board in the Deploy tab first")
        self.board_live_check = QCheckBox("Live")
        self.board_live_check.setChecked(True)
        self.board_live_check.setEnabled(False)
        self.board_live_check.setToolTip(
            "Send every change of the drawing to the board and show its answer live"
        )
        board_row = QHBoxLayout()
        board_row.addWidget(self.board_button, 1)
        board_row.addWidget(self.board_live_check)

        buttons = QGridLayout()
        buttons.addWidget(self.undo_button, 0, 0)
        buttons.addWidget(self.clear_button, 0, 1)
        buttons.addWidget(self.open_button, 1, 0)
        buttons.addWidget(self.save_button, 1, 1)
        buttons.addLayout(board_row, 2, 0, 1, 2)

        hint = QLabel(
            "Draw one digit, about two thirds of the canvas high. Ctrl+Z undoes the last stroke, "
            "Esc or Delete clears."
        )
        hint.setWordWrap(True)
        hint.setStyleSheet(INFO_STYLE)
        column = QVBoxLayout()
        column.addWidget(self.canvas, 1)  # grows with the window; the model input stays 28x28
        column.addLayout(pen_row)
        column.addLayout(buttons)
        column.addWidget(hint)
        column.addWidget(self.personal_panel)
        return column

    def _build_soft_targets(self) -> QGroupBox:
        self.temperature_slider = QSlider(Qt.Orientation.Horizontal)
        self.temperature_slider.setRange(10, int(MAX_TEMPERATURE * 10))
        self.temperature_slider.setToolTip("Temperature T of softmax(z / T) over the teacher's logits z")
        self.temperature_label = QLabel()
        self.temperature_label.setMinimumWidth(56)
        self.soft_chart = ProbabilityChart(self, color=_BAR_SOFT_REST, top_color=_BAR_SOFT)
        explanation = QLabel(
            "The teacher's answer softened, softmax(z / T): the small probabilities it gives to the other "
            "digits are the \u201cdark knowledge\u201d distillation teaches the student."
        )
        explanation.setWordWrap(True)
        explanation.setStyleSheet(INFO_STYLE)
        slider_row = QHBoxLayout()
        slider_row.addWidget(QLabel("Temperature"))
        slider_row.addWidget(self.temperature_slider, 1)
        slider_row.addWidget(self.temperature_label)
        box = QGroupBox("Soft targets")
        layout = QVBoxLayout(box)
        layout.addLayout(slider_row)
        layout.addWidget(self.soft_chart, 1)
        layout.addWidget(explanation)
        return box

    def _build_preview(self) -> QGroupBox:
        side = 28 * PREVIEW_SCALE
        self.preview = QLabel()
        self.preview.setFixedSize(side, side)
        self.preview.setFrameShape(QFrame.Shape.Box)
        self.preview.setToolTip("The 28x28 image the models receive (ink bright on black, like MNIST)")
        box = QGroupBox("What the models see")
        layout = QVBoxLayout(box)
        layout.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignCenter)
        caption = QLabel("28 x 28, centred like MNIST")
        caption.setStyleSheet(INFO_STYLE)
        layout.addWidget(caption, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(1)
        return box

    def _build_layout(self) -> QVBoxLayout:
        answers = QHBoxLayout()
        answers.addWidget(self.teacher_panel, 1)
        answers.addWidget(self.student_panel, 1)
        answers.addWidget(self.board_panel, 1)
        lower = QHBoxLayout()
        lower.addWidget(self._build_soft_targets(), 1)
        lower.addWidget(self._build_preview())
        right = QVBoxLayout()
        right.addLayout(answers, 3)
        right.addLayout(lower, 2)

        top = QHBoxLayout()
        top.addLayout(self._build_canvas_column(), 2)
        top.addLayout(right, 3)
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer = QVBoxLayout()
        outer.addLayout(top, 1)
        outer.addWidget(self.message_label)
        return outer

    def _connect(self) -> None:
        self.canvas.changed.connect(self._drawing_changed)
        self.pen_slider.valueChanged.connect(self._pen_width_changed)
        self.undo_button.clicked.connect(self.canvas.undo)
        self.clear_button.clicked.connect(self.canvas.clear)
        self.open_button.clicked.connect(self._ask_open_image)
        self.save_button.clicked.connect(self._ask_save_drawing)
        self.board_button.clicked.connect(self.request_board)
        self.temperature_slider.valueChanged.connect(self._show_soft_targets)
        for picker in (self.teacher_picker, self.student_picker):
            picker.model_changed.connect(self._model_changed)
            picker.error.connect(self.show_error)
            picker.warning.connect(self.show_error)
            report = picker.sanity()
            if report is not None and report.warning:  # the model chosen before this connection
                self.show_error(f"Warning: {report.warning}")
        self.personal_panel.message.connect(self._personal_message)
        self.personal_panel.personalized.connect(self.student_picker.choose_file)
        self.personal_panel.gallery_button.clicked.connect(self.show_failures)
        for digit in range(10):  # typing a digit corrects the answer, like clicking its button
            shortcut = QShortcut(QKeySequence(str(digit)), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.setWhatsThis(f"Draw: save the drawing as a {digit} in your personal set")
            shortcut.activated.connect(lambda d=digit: self.personal_panel.correct(d))
        for keys, slot, what in (
            (QKeySequence.StandardKey.Undo, self.canvas.undo, "Draw: undo the last stroke"),
            (QKeySequence(Qt.Key.Key_Escape), self.canvas.clear, "Draw: clear the canvas"),
            (QKeySequence.StandardKey.Delete, self.canvas.clear, "Draw: clear the canvas"),
        ):
            shortcut = QShortcut(keys, self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.setWhatsThis(what)  # listed in Help > Keyboard shortcuts
            shortcut.activated.connect(slot)

    # ------------------------------------------------------------------------------------ recognition
    def _initial_temperature(self) -> float:
        """The T the chosen student was distilled at, when its file records it; else the default recipe's T."""
        student = self.student_picker.classifier()
        try:
            t = float(student.metadata["temperature"]) if student is not None else math.nan
        except (KeyError, ValueError):
            t = math.nan
        if not math.isfinite(t):  # no student, a model trained normally, or a hand-edited/foreign model
            from core.recipes import DEFAULT_RECIPE, get_recipe  # imports torch: only on this rare path

            t = get_recipe(DEFAULT_RECIPE).kd.temperature
        return min(max(t, 1.0), MAX_TEMPERATURE)

    @property
    def temperature(self) -> float:
        """The soft-target temperature T chosen with the slider."""
        return self.temperature_slider.value() / 10

    def current_input(self) -> np.ndarray | None:
        """The ``(28, 28)`` float32 image the models saw last, ``None`` when nothing is drawn."""
        return None if self._input is None else self._input.copy()

    def _drawing_changed(self) -> None:
        self._coalesce.start()
        if self.board_panel.isVisible() and self.board_panel.digit() is not None:
            self.board_panel.setTitle("Atlas board (for an earlier drawing)")

    def _model_changed(self, classifier) -> None:
        self.message_label.clear()
        self._last_error = ""
        if classifier is not None:
            # onnxruntime's first run allocates its buffers: do it now so the times shown are steady ones.
            try:
                classifier.logits(np.zeros((1, 1, 28, 28), dtype=np.float32))
            except Exception:  # noqa: BLE001 - classify() below reports a model that fails to run
                pass
        self.classify()

    @Slot()
    def classify(self) -> None:
        """Classify the drawing now with both models and update every view."""
        self._coalesce.stop()
        try:
            x = None if self.canvas.is_empty() else to_mnist(self.canvas.to_array())
        except EmptyImageError:
            x = None
        self._input = x
        self._show_preview(x)
        self._teacher_logits = None
        for panel, picker in (
            (self.teacher_panel, self.teacher_picker),
            (self.student_panel, self.student_picker),
        ):
            logits = self._run_model(panel, picker, x)
            if panel is self.teacher_panel:
                self._teacher_logits = logits
        self._show_soft_targets()
        self.board_button.setEnabled(self._board_available and x is not None)
        if x is not None and self._board_available and self.board_live_check.isChecked():
            self.request_board()
        self.predictions_shown.emit()

    def _run_model(self, panel: ResultPanel, picker: ModelPicker, x: np.ndarray | None) -> np.ndarray | None:
        """Run one model on ``x`` and show its answer; returns its logits (``None`` when nothing is shown)."""
        classifier = picker.classifier()
        if classifier is None:
            panel.show_empty("no model chosen")
            return None
        if x is None:
            panel.show_empty("draw a digit")
            return None
        batch = x.reshape(1, 1, 28, 28)
        try:
            start = time.perf_counter_ns()
            logits = classifier.logits(batch)[0]
            micros = (time.perf_counter_ns() - start) / 1000
        except Exception as exc:  # onnxruntime's own error types; a loaded model that fails at run time
            panel.show_empty("this model failed")
            self.show_error(f"The {picker.role} model failed on this drawing: {exc}")
            return None
        trust = self._trust_of(classifier)
        if trust is None:
            panel.show_result(softmax(logits), micros)
            self.verdicts[picker.role] = None
        else:
            verdict = trust.assess(batch, logits.reshape(1, -1))[0]
            panel.show_verdict(verdict, micros)
            self.verdicts[picker.role] = verdict
        return logits

    def _trust_of(self, classifier: OnnxClassifier):
        """The calibration stored in the model's file (:mod:`core.trust`), read once per model."""
        key = id(classifier)
        if key not in self._trusts or self._trusts[key][0] is not classifier:
            try:
                trust = Trust.from_metadata(classifier.metadata)
            except TrustError as exc:
                self.show_error(f"{classifier.path}: {exc}; showing uncalibrated answers")
                trust = None
            self._trusts[key] = (classifier, trust)
        return self._trusts[key][1]

    def _show_soft_targets(self) -> None:
        t = self.temperature
        self.temperature_label.setText(f"T = {t:.1f}")
        if self._teacher_logits is None:
            self.soft_chart.set_probabilities(None)
        else:
            self.soft_chart.set_probabilities(softmax(self._teacher_logits, t))

    def soft_targets(self) -> np.ndarray | None:
        """The softened teacher distribution shown, ``None`` when there is none."""
        return None if self._teacher_logits is None else softmax(self._teacher_logits, self.temperature)

    def _show_preview(self, x: np.ndarray | None) -> None:
        side = 28 * PREVIEW_SCALE
        if x is None:
            pixmap = QPixmap(side, side)
            pixmap.fill(Qt.GlobalColor.black)
        else:
            grey = np.round(x * 255).astype(np.uint8)
            big = np.ascontiguousarray(grey.repeat(PREVIEW_SCALE, axis=0).repeat(PREVIEW_SCALE, axis=1))
            # copy(): the QImage must not keep pointing into the numpy buffer, which is freed on return.
            image = QImage(big.data, side, side, side, QImage.Format.Format_Grayscale8).copy()
            pixmap = QPixmap.fromImage(image)
        self.preview.setPixmap(pixmap)

    def use_models(self, teacher: Path | None, student: Path | None) -> None:
        """Use these ONNX files (e.g. the models of finished runs) as the teacher and/or the student.

        ``None`` leaves that model as it is. Both files are loaded before either is used.

        Raises
        ------
        core.inference.InvalidModelError
            A file is not a valid digit model; neither model is changed.
        """
        loaded = []
        for picker, path in ((self.teacher_picker, teacher), (self.student_picker, student)):
            if path is not None:
                loaded.append((picker, picker.source_for(path), OnnxClassifier(path)))
        for picker, source, classifier in loaded:
            picker.set_model(source, classifier)

    # ------------------------------------------------------------------------------------------ board
    @Slot(bool)
    def set_board_available(self, available: bool) -> None:
        """Enable "Classify on board" (the Deploy tab calls this when a board is connected and ready)."""
        self._board_available = bool(available)
        self.board_button.setEnabled(self._board_available and self._input is not None)
        self.board_live_check.setEnabled(self._board_available)
        self.board_button.setToolTip(
            "Send this drawing to the Atlas board and show its answer beside the local ones"
            if available
            else "Connect to an Atlas board in the Deploy tab first"
        )
        if not available:
            self.board_panel.setVisible(False)

    @Slot()
    def request_board(self) -> None:
        """Emit ``board_request`` with the current 28x28 input (if a board is available and a digit drawn)."""
        if not self._board_available or self._input is None:
            return
        if self.board_panel.digit() is None:
            self.board_panel.setTitle("Atlas board")
            self.board_panel.show_empty("waiting for the board…")
        self.board_panel.setVisible(True)
        self.board_request.emit(self._input.copy())

    @Slot(object)
    def show_deployed(self, result: DeployResult) -> None:
        """Name the model the board runs (the Deploy tab's ``deployed`` result) above the board's answer."""
        name, soc = result.model_name, result.soc_version
        self.board_header.setText(f"{name} on {soc}" if soc else name)
        self.board_header.setToolTip(result.om_path)

    @Slot(str)
    def show_board_error(self, message: str) -> None:
        """The board could not classify the drawing (the Deploy tab's ``board_error``): say so in its panel.

        The message is shown under the canvas but not sent on as ``error_occurred``: the Deploy tab already
        reports it to the window.
        """
        self.board_panel.setTitle("Atlas board")
        self.board_panel.show_empty("no answer from the board")
        self.board_panel.setVisible(True)
        self.message_label.setStyleSheet(ERROR_STYLE)
        self.message_label.setText(message)

    @Slot(object)
    def show_board_result(self, answer: BoardPrediction) -> None:
        """Show the board's answer beside the local ones, with the NPU's and the round trip's times."""
        self.board_panel.setTitle("Atlas board")
        self.board_panel.setVisible(True)
        if not isinstance(answer, BoardPrediction):
            self.board_panel.show_empty("unreadable answer")
            self.show_error(f"The board's answer could not be read: {answer!r}")
            return
        probs = np.asarray(answer.probabilities, dtype=float)
        self.board_panel.show_result(
            probs, time_text=f"NPU {answer.npu_ms:,.2f} of {answer.round_trip_ms:,.0f} ms"
        )
        self.board_panel.time_label.setToolTip(
            f"The NPU's execute time on the board ({answer.npu_ms:,.3f} ms) of the whole round trip from this "
            f"computer and back ({answer.round_trip_ms:,.1f} ms)"
            + (" (the board's runner was restarted)" if answer.restarted else "")
        )
        if answer.digit != int(np.argmax(probs)):  # trust the board's own digit, keep its probabilities
            self.board_panel.digit_label.setText(str(answer.digit))

    # ---------------------------------------------------------------------------------- personal set
    def failure_gallery(self) -> FailureGallery:
        """The "What fails" window for the dev set and the personal set, with the models chosen here."""
        sources = {}
        if DEV_SET.is_file():
            sources["Dev set (drawn-digits-dev)"] = dev_set_source()
        sources["My personal set"] = self.personal_panel.personal_set.samples
        classifiers = {"Student": self.student_picker.classifier, "Teacher": self.teacher_picker.classifier}
        return FailureGallery(sources, classifiers, self)

    def show_failures(self) -> None:
        """Open the "What fails" window (non-modal)."""
        self._gallery = self.failure_gallery()
        self._gallery.show()

    def _personal_message(self, text: str, error: bool) -> None:
        if error:
            self.show_error(text)
        else:
            self.show_info(text)

    # ----------------------------------------------------------------------------------- files, errors
    @Slot(str)
    def show_error(self, message: str) -> None:
        """Show a problem under the canvas until the next one or until a model is chosen; pass it on once."""
        self.message_label.setStyleSheet(ERROR_STYLE)
        self.message_label.setText(message)
        if message and message != self._last_error:
            self._last_error = message
            self.error_occurred.emit(message)

    def show_info(self, message: str) -> None:
        """Show a neutral note under the canvas (and pass it on to a status bar)."""
        self._last_error = ""
        self.message_label.setStyleSheet(INFO_STYLE)
        self.message_label.setText(message)
        self.status_message.emit(message)

    def message(self) -> str:
        """The text under the canvas (errors and notes)."""
        return self.message_label.text()

    def _show_pen_width(self, value: int) -> None:
        self.pen_label.setText(f"{value} px")

    def _pen_width_changed(self, value: int) -> None:
        self.canvas.set_pen_width(value)
        self._show_pen_width(value)

    def _ask_open_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open a digit image",
            "",
            "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff);;All files (*)",
        )
        if path:
            self.open_image(Path(path))

    def open_image(self, path: Path) -> bool:
        """Put the digit in an image file on the canvas and classify it; False with a message if it cannot."""
        try:
            ink = ink_map(load_image(path))
        except (ImageReadError, ValueError) as exc:
            self.show_error(f"Cannot open this image. {exc}")
            return False
        mask = ink > INK_THRESHOLD
        if not mask.any():
            self.show_error(f"{path}: no digit found in this image (it looks blank)")
            return False
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        digit = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        # Centre the digit in a square with a margin so it fills about 60% of the canvas, like a drawing.
        side = max(digit.shape) * 5 // 3 + 2
        field = np.zeros((side, side), dtype=np.float32)
        top, left = (side - digit.shape[0]) // 2, (side - digit.shape[1]) // 2
        field[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
        grey = np.ascontiguousarray(255 - np.round(field * 255).astype(np.uint8))
        image = QImage(grey.data, side, side, side, QImage.Format.Format_Grayscale8).copy()
        self.canvas.set_image(image)
        self.show_info(f"Opened {path}")
        self.classify()
        return True

    def _ask_save_drawing(self) -> None:
        if self.canvas.is_empty():
            self.show_error("Nothing to save: draw a digit first")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the drawing", "digit.png", "PNG images (*.png)")
        if path:
            self.save_drawing(Path(path))

    def save_drawing(self, path: Path) -> bool:
        """Save the drawing as a PNG file; False with a message if it cannot be written."""
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_name(path.name + ".png")
        try:
            self.canvas.save_png(path)
        except OSError as exc:
            self.show_error(f"Cannot save the drawing: {exc}")
            return False
        self.show_info(f"Saved the drawing to {path}")
        return True


def main() -> int:
    """Show the Draw tab on its own (``python -m app.gui.draw_tab``)."""
    return run_tab_alone(DrawTab, "Draw")


if __name__ == "__main__":
    sys.exit(main())
