"""The Draw tab's answer views: probability bar charts and one model's result panel.

:class:`ProbabilityChart` paints ten bars straight with ``fillRect`` (it repaints on every pen event);
:class:`ResultPanel` shows one model's digit, confidence, time and chart. The Draw tab shows three of them
(teacher, student, Atlas board).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

BAR = QColor(120, 144, 180)
BAR_TOP = QColor(33, 102, 172)
_GRID = QColor(225, 225, 225)
_AXIS = QColor(90, 90, 90)
_AXIS_TEXT = QColor(60, 60, 60)
#: The longest texts a result panel shows under its digit (they set the panel's fixed label width).
_PANEL_TEXTS = (
    "confidence 100.0%",
    "inference 99,999 µs",
    "no model chosen",
    "waiting for the board…",
    "no answer from the board",
    "not sure: 4 or 9?",
)
UNSURE_STYLE = "color: #b35806;"
NOT_A_DIGIT_STYLE = "color: #7f7f7f;"
ERROR_STYLE = "color: #b2182b;"
INFO_STYLE = "color: #4d4d4d;"


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``softmax(z / T)`` of one row of logits, float64 for a stable sum."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = np.exp(z - z.max())
    return z / z.sum()


class ProbabilityChart(QWidget):
    """Ten bars, one per digit, on a fixed 0..1 axis; the most likely digit is highlighted.

    Painted straight with ``fillRect`` in :meth:`paintEvent` (it repaints on every pen event): digits 0-9 under
    the bars, 0%, 50% and 100% on the left with faint lines at 50% and 100%. Plain Qt, so the Draw tab needs no
    plotting library.
    """

    _BAR_WIDTH = 0.7  # of a digit's slot

    def __init__(self, parent: QWidget | None = None, color: QColor = BAR, top_color: QColor = BAR_TOP):
        super().__init__(parent)
        self._color, self._top_color = QColor(color), QColor(top_color)
        self._heights = np.zeros(10)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(160, 110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_probabilities(self, probs: np.ndarray | None) -> None:
        """Show ``probs`` (10 values); ``None`` empties the chart."""
        self._heights = np.zeros(10) if probs is None else np.asarray(probs, dtype=float).reshape(10)
        self.update()

    def heights(self) -> np.ndarray:
        """The bar heights shown (for tests and screenshots)."""
        return self._heights.copy()

    def _plot_area(self) -> QRectF:
        metrics = self.fontMetrics()
        left = metrics.horizontalAdvance("100%") + 8
        top = metrics.height() / 2 + 2
        bottom = metrics.height() + 6
        return QRectF(left, top, max(1.0, self.width() - left - 6), max(1.0, self.height() - top - bottom))

    def paintEvent(self, event) -> None:  # noqa: D102, N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.white)
        area = self._plot_area()
        metrics = self.fontMetrics()
        painter.setPen(_AXIS_TEXT)
        for level in (0.0, 0.5, 1.0):
            y = area.bottom() - level * area.height()
            if level:
                painter.fillRect(QRectF(area.left(), y, area.width(), 1.0), _GRID)
            label = f"{level:.0%}"
            painter.drawText(
                QRectF(0, y - metrics.height() / 2, area.left() - 5, metrics.height()),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
        painter.fillRect(QRectF(area.left(), area.bottom(), area.width(), 1.0), _AXIS)
        slot = area.width() / 10
        top = int(np.argmax(self._heights)) if self._heights.any() else -1
        for digit, height in enumerate(self._heights):
            x = area.left() + digit * slot
            if height > 0:
                bar = QRectF(x + slot * (1 - self._BAR_WIDTH) / 2, 0, slot * self._BAR_WIDTH, 0)
                bar.setTop(area.bottom() - min(float(height), 1.0) * area.height())
                bar.setBottom(area.bottom())
                painter.fillRect(bar, self._top_color if digit == top else self._color)
            painter.drawText(
                QRectF(x, area.bottom() + 3, slot, metrics.height()),
                Qt.AlignmentFlag.AlignHCenter,
                str(digit),
            )
        painter.end()


class ResultPanel(QGroupBox):
    """One model's answer: the predicted digit, its confidence, the ten probabilities and the inference time."""

    def __init__(self, title: str, parent: QWidget | None = None, header: QWidget | None = None):
        super().__init__(title, parent)
        self.digit_label = QLabel("–")
        font = QFont(self.font())
        font.setPointSize(34)
        font.setBold(True)
        self.digit_label.setFont(font)
        self.digit_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.confidence_label = QLabel("")
        self.time_label = QLabel("")
        self.time_label.setToolTip(
            "Time of this model's forward pass in onnxruntime for the current drawing (one image, one thread)"
        )
        # Fixed sizes: a label whose text changes on every pen event would otherwise re-run the tab's layout.
        metrics = self.confidence_label.fontMetrics()
        width = max(metrics.horizontalAdvance(text) for text in _PANEL_TEXTS) + 8
        for label in (self.confidence_label, self.time_label):
            label.setStyleSheet(INFO_STYLE)
            label.setFixedSize(width, metrics.height() + 4)
        digit_metrics = self.digit_label.fontMetrics()
        self.digit_label.setFixedSize(digit_metrics.horizontalAdvance("8") + 16, digit_metrics.height())
        self.chart = ProbabilityChart(self)

        texts = QVBoxLayout()
        texts.addStretch(1)
        texts.addWidget(self.confidence_label)
        texts.addWidget(self.time_label)
        texts.addStretch(1)
        numbers = QHBoxLayout()
        numbers.addWidget(self.digit_label)
        numbers.addLayout(texts)
        numbers.addStretch(1)
        layout = QVBoxLayout(self)
        if header is not None:
            layout.addWidget(header)
        layout.addLayout(numbers)
        layout.addWidget(self.chart, 1)
        self.show_empty()

    def show_result(
        self, probs: np.ndarray, micros: float | None = None, time_text: str | None = None
    ) -> None:
        """Show a prediction; the time as ``micros`` microseconds or a ready-made ``time_text``."""
        digit = int(np.argmax(probs))
        self.digit_label.setText(str(digit))
        self.digit_label.setStyleSheet("")
        self.confidence_label.setText(f"confidence {probs[digit]:.1%}")
        if time_text is None:
            time_text = f"inference {micros:,.0f} µs" if micros is not None else ""
        self.time_label.setText(time_text)
        self.chart.set_probabilities(probs)

    def show_verdict(self, verdict, micros: float | None = None) -> None:
        """Show a calibrated answer (:class:`core.trust.Verdict`) instead of a confident wrong digit.

        A sure digit shows as usual; otherwise "?" with "not sure: 4 or 9?", or "×" with "not a digit".
        """
        self.show_result(verdict.probabilities, micros)
        if verdict.not_a_digit:
            self.digit_label.setText("×")
            self.digit_label.setStyleSheet(NOT_A_DIGIT_STYLE)
            self.confidence_label.setText("not a digit")
        elif verdict.unsure:
            self.digit_label.setText("?")
            self.digit_label.setStyleSheet(UNSURE_STYLE)
            self.confidence_label.setText(verdict.text)
        else:
            self.confidence_label.setText(f"confidence {verdict.confidence:.1%}")
        self.confidence_label.setToolTip(
            f"Calibrated probabilities (temperature scaling): best {verdict.digit} at "
            f"{verdict.confidence:.1%}, next {verdict.runner_up}"
        )

    def show_empty(self, message: str = "") -> None:
        """No prediction: a dash, an optional one-line reason, an empty chart."""
        self.digit_label.setText("–")
        self.digit_label.setStyleSheet("color: #9a9a9a;")
        self.confidence_label.setText(message)
        self.time_label.setText("")
        self.chart.set_probabilities(None)

    def digit(self) -> int | None:
        """The digit shown, ``None`` when the panel is empty."""
        text = self.digit_label.text()
        return int(text) if text.isdigit() else None
