"""See what fails: per-digit accuracy and a gallery of misclassified drawn digits (dev set or the personal set).

:class:`FailureGallery` classifies a set of pen-drawn digits with a chosen model (rendered like the canvas and
preprocessed like the app, in the background), then shows the share of each digit read right as ten bars and
every drawing read wrong as a thumbnail captioned "true → read" (the writer in its tooltip).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.charts import BAR, INFO_STYLE, ProbabilityChart
from app.gui.personal import thumbnail, thumbnail_grid
from app.gui.workers import JobRunner
from core.strokes import DrawnSample, load_drawn, render_inputs

DEV_SET = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "drawn-digits-dev" / "strokes.npz"


def classify_samples(classifier, samples: list[DrawnSample], state=None) -> dict[str, Any]:
    """Predictions, per-digit accuracy and the confusion matrix of ``classifier`` on drawn ``samples``."""
    inputs = np.empty((len(samples), 1, 28, 28), dtype=np.float32)
    for start in range(0, len(samples), 100):
        inputs[start : start + 100] = render_inputs(samples[start : start + 100])
        if state is not None:
            state.set_fraction((start + 100) / max(1, len(samples)))
            if state.should_stop():
                raise InterruptedError("stopped")
    labels = np.array([s.label for s in samples], dtype=np.int64)
    predictions = np.asarray(classifier.logits(inputs)).argmax(axis=1) if len(samples) else labels
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    totals = confusion.sum(axis=1)
    per_digit = np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), np.nan)
    return {"predictions": predictions, "labels": labels, "per_digit": per_digit, "confusion": confusion}


class FailureGallery(QDialog):
    """Per-digit accuracy and the misclassified drawings of a set, for one model.

    Parameters
    ----------
    sources
        ``{name: callable returning list[DrawnSample]}``: the sets offered (e.g. the dev set, the personal set).
    classifiers
        ``{name: callable returning a classifier or None}``: the models offered (the Draw tab's teacher, student).
    """

    checked = Signal(dict)  # the check's result (not "done" or "result": QDialog has both)

    def __init__(
        self,
        sources: dict[str, Callable[[], list[DrawnSample]]],
        classifiers: Mapping[str, Callable[[], object]],
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle("What fails")
        self._sources, self._classifiers = sources, classifiers
        self.samples: list[DrawnSample] = []
        self.outcome: dict[str, Any] | None = None
        self.source_combo = QComboBox()
        self.source_combo.addItems(list(sources))
        self.model_combo = QComboBox()
        self.model_combo.addItems(list(classifiers))
        self.check_button = QPushButton("Check")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.summary = QLabel("Choose the drawings and the model, then Check.")
        self.summary.setStyleSheet(INFO_STYLE)
        self.summary.setWordWrap(True)
        self.chart = ProbabilityChart(self, color=BAR, top_color=BAR)  # no digit singled out
        self.chart.setMinimumHeight(150)
        self.chart.setToolTip("Share of each digit read right")
        self.gallery = thumbnail_grid()
        top = QHBoxLayout()
        top.addWidget(QLabel("Drawings"))
        top.addWidget(self.source_combo, 1)
        top.addWidget(QLabel("Model"))
        top.addWidget(self.model_combo)
        top.addWidget(self.check_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.progress)
        layout.addWidget(self.summary)
        layout.addWidget(QLabel("Per-digit accuracy"))
        layout.addWidget(self.chart)
        layout.addWidget(QLabel("Read wrong (true → read)"))
        layout.addWidget(self.gallery, 1)
        self.runner = JobRunner(self)
        self.runner.fraction.connect(lambda f: self.progress.setValue(int(f * 1000)))
        self.runner.succeeded.connect(self._show)
        self.runner.failed.connect(lambda info: self.summary.setText(f"Could not check: {info['message']}"))
        self.runner.finished.connect(self._finished)
        self.check_button.clicked.connect(self.check)
        self.resize(760, 620)

    def check(self) -> bool:
        """Classify the chosen set with the chosen model in the background; False if it cannot start."""
        classifier = self._classifiers[self.model_combo.currentText()]()
        if classifier is None:
            self.summary.setText("No model chosen in the Draw tab for this slot.")
            return False
        try:
            samples = self._sources[self.source_combo.currentText()]()
        except (OSError, ValueError) as exc:
            self.summary.setText(f"Cannot read these drawings: {exc}")
            return False
        if not samples:
            self.summary.setText("This set holds no drawings yet.")
            return False
        self.samples = samples
        if not self.runner.start(
            "Check drawings", lambda state: classify_samples(classifier, samples, state)
        ):
            return False
        self.check_button.setEnabled(False)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.summary.setText(f"Rendering and classifying {len(samples):,} drawings…")
        return True

    def _finished(self, _name: str) -> None:
        self.check_button.setEnabled(True)
        self.progress.setVisible(False)

    def _show(self, result: dict[str, Any]) -> None:
        self.outcome = result
        labels, predictions = result["labels"], result["predictions"]
        wrong = np.flatnonzero(labels != predictions)
        accuracy = 1 - len(wrong) / len(labels)
        worst = int(np.nanargmin(result["per_digit"]))
        self.summary.setText(
            f"{accuracy:.1%} of {len(labels):,} drawings read right, {len(wrong)} wrong; the hardest digit is "
            f"{worst} ({result['per_digit'][worst]:.0%})."
        )
        self.chart.set_probabilities(np.nan_to_num(result["per_digit"]))
        self.gallery.clear()
        for i in wrong:
            sample = self.samples[i]
            item = QListWidgetItem(QIcon(thumbnail(sample.strokes)), f"{labels[i]} → {predictions[i]}")
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            who = f"{sample.writer} ({sample.institution})" if sample.writer else "unknown writer"
            item.setToolTip(f"a {labels[i]} read as {predictions[i]}; written by {who}")
            self.gallery.addItem(item)
        self.checked.emit(result)


def dev_set_source(path: Path = DEV_SET) -> Callable[[], list[DrawnSample]]:
    """A source reading the drawn-digits development set."""
    return lambda: load_drawn(path)
