"""Learn the person's handwriting: correct a wrong answer, keep the drawing in the personal set, review it.

:class:`PersonalPanel` sits under the Draw tab's canvas: ten digit buttons ("the right digit is ...", or type
the digit on the keyboard), an undo for the last saved drawing, and "Review…" which opens
:class:`PersonalSetDialog` (thumbnails with their labels; select and delete). The drawings go to
:class:`core.personal.PersonalSet` (a drawn-digits ``.npz`` in the user data folder, rewritten atomically).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.charts import ERROR_STYLE, INFO_STYLE
from app.gui.workers import JobRunner
from core.personal import PersonalSet, default_personal_model_dir
from core.strokes import CANVAS_SIZE, PEN_WIDTH, render_strokes

THUMB = 56


def thumbnail(strokes: list[np.ndarray], side: int = THUMB) -> QPixmap:
    """A drawing rendered like the canvas (black on white) at ``side`` pixels."""
    grey = np.ascontiguousarray(render_strokes(strokes, size=side, pen_width=PEN_WIDTH * side / CANVAS_SIZE))
    image = QImage(grey.data, side, side, side, QImage.Format.Format_Grayscale8).copy()
    return QPixmap.fromImage(image)


def thumbnail_grid(parent: QWidget | None = None) -> QListWidget:
    """A list that lays drawings out as a grid of :func:`thumbnail` icons with short captions, reflowed on resize."""
    grid = QListWidget(parent)
    grid.setViewMode(QListView.ViewMode.IconMode)
    grid.setIconSize(QSize(THUMB, THUMB))
    grid.setGridSize(QSize(THUMB + 16, THUMB + 28))
    grid.setResizeMode(QListView.ResizeMode.Adjust)
    grid.setMovement(QListView.Movement.Static)
    return grid


class PersonalPanel(QGroupBox):
    """Correct the answer with the right digit; the drawing is saved to the personal set.

    Parameters
    ----------
    strokes
        Returns the current drawing's strokes (``DrawingCanvas.strokes``).
    personal_set
        Where corrected drawings go (default: the user's :class:`core.personal.PersonalSet`).
    parent
        Parent widget.

    Signals
    -------
    saved(int)
        A drawing was saved with this digit.
    changed()
        The personal set changed (saved, undone or deleted).
    message(str, bool)
        A note for the person (text, is_error).
    personalized(pathlib.Path)
        Personalize finished: the personal model's ONNX file.
    """

    saved = Signal(int)
    personalized = Signal(object)
    changed = Signal()
    message = Signal(str, bool)

    def __init__(
        self,
        strokes: Callable[[], list[np.ndarray]],
        personal_set: PersonalSet | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__("Wrong? The right digit is", parent)
        self._strokes = strokes
        self.personal_set = personal_set if personal_set is not None else PersonalSet()
        self._last_added: int | None = None

        self.digit_buttons = []
        row = QHBoxLayout()
        row.setSpacing(2)
        for digit in range(10):
            button = QPushButton(str(digit))
            button.setFixedWidth(26)
            button.setToolTip(f"Save this drawing as a {digit} in your personal set (or type {digit})")
            button.clicked.connect(lambda _=False, d=digit: self.correct(d))
            self.digit_buttons.append(button)
            row.addWidget(button)
        self.undo_button = QPushButton("Undo save")
        self.undo_button.setEnabled(False)
        self.undo_button.setToolTip("Remove the drawing just saved from your personal set")
        self.review_button = QPushButton()
        self.review_button.setToolTip(f"See, and delete, the drawings in {self.personal_set.path}")
        self.personalize_button = QPushButton("Personalize")
        self.personalize_button.setToolTip(
            "Fine-tune the student on your saved digits (mixed with MNIST, distilled from the teacher) in the "
            "background; half of your digits are kept aside to show accuracy before and after"
        )
        self.gallery_button = QPushButton("What fails…")
        self.gallery_button.setToolTip(
            "Per-digit accuracy and the drawings read wrong, on the dev set or on your personal set"
        )
        self.stop_button = QPushButton("Stop")
        self.stop_button.setVisible(False)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress.setTextVisible(True)
        self.runner = JobRunner(self)
        self.last_report: dict[str, Any] | None = None
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet(INFO_STYLE)
        actions = QGridLayout()
        actions.addWidget(self.undo_button, 0, 0)
        actions.addWidget(self.review_button, 0, 1)
        actions.addWidget(self.personalize_button, 1, 0)
        actions.addWidget(self.gallery_button, 1, 1)
        actions.addWidget(self.stop_button, 2, 0, 1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addLayout(actions)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

        self.undo_button.clicked.connect(self.undo)
        self.review_button.clicked.connect(self.review)
        self.personalize_button.clicked.connect(self.start_personalize)
        self.stop_button.clicked.connect(self.runner.stop)
        self.runner.epoch.connect(self._on_epoch)
        self.runner.message.connect(lambda text: self.status.setText(text))
        self.runner.succeeded.connect(self._on_personalized)
        self.runner.failed.connect(
            lambda info: self._say(f"Personalize failed: {info['message']}", error=True)
        )
        self.runner.finished.connect(self._on_finished)
        self.refresh()

    def refresh(self) -> None:
        """Show how many drawings the personal set holds."""
        try:
            n = len(self.personal_set)
        except ValueError as exc:  # an unreadable file: say so, keep the app running
            self.review_button.setText("Review…")
            self._say(f"Your personal set cannot be read: {exc}", error=True)
            return
        self.review_button.setText(f"Review ({n})…")

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet(ERROR_STYLE if error else INFO_STYLE)
        self.status.setText(text)
        self.message.emit(text, error)

    def correct(self, digit: int) -> bool:
        """Save the current drawing as ``digit``; False (with a message) when there is nothing to save."""
        strokes = self._strokes()
        if not strokes:
            self._say("Draw a digit first: only pen drawings can be saved to your personal set.", error=True)
            return False
        try:
            self._last_added = self.personal_set.add(strokes, digit)
        except (OSError, ValueError) as exc:
            self._say(f"Could not save the drawing: {exc}", error=True)
            return False
        self.undo_button.setEnabled(True)
        self.refresh()
        self._say(f"Saved as a {digit} to your personal set ({self._last_added + 1} drawings).")
        self.saved.emit(digit)
        self.changed.emit()
        return True

    def undo(self) -> bool:
        """Remove the drawing saved last (once)."""
        if self._last_added is None:
            return False
        try:
            removed = self.personal_set.delete([self._last_added])
        except (OSError, ValueError) as exc:
            self._say(f"Could not undo: {exc}", error=True)
            return False
        self._last_added = None
        self.undo_button.setEnabled(False)
        self.refresh()
        self._say("Removed the drawing just saved." if removed else "Nothing to undo.")
        self.changed.emit()
        return bool(removed)

    # ---------------------------------------------------------------------------------- personalize
    def start_personalize(self, out_dir: Path | None = None, **options) -> bool:
        """Fine-tune the student on the personal set in the background (``core.personalize``, one job).

        ``options`` go to :func:`core.personalize.personalize` (``base``, ``teacher``, ``data``, ``runs_root``,
        ``calibrate``). Returns False (with a message) when there are too few digits or a job runs already.
        """
        from core.personalize import MIN_SAMPLES

        n = len(self.personal_set)
        if n < MIN_SAMPLES:
            self._say(
                f"Save at least {MIN_SAMPLES} of your digits first (you have {n}): draw, then click the right "
                "digit above.",
                error=True,
            )
            return False
        out_dir = Path(out_dir) if out_dir is not None else default_personal_model_dir()
        source = self.personal_set.path

        def job(state):
            from core.personalize import personalize  # torch is imported only when personalising

            return personalize(source, out_dir, progress=state, **options)

        if not self.runner.start("Personalize", job):
            return False
        self.progress.setRange(0, 0)  # busy until the first epoch reports
        self.progress.setVisible(True)
        self.stop_button.setVisible(True)
        self.personalize_button.setEnabled(False)
        self._say(f"Personalizing on your {n} digits…")
        return True

    def _on_epoch(self, info: dict[str, Any]) -> None:
        self.progress.setRange(0, int(info["epochs"]))
        self.progress.setValue(int(info["epoch"]))
        self.progress.setFormat(f"epoch %v of %m, MNIST test {info['test_acc']:.2%}")

    def _on_personalized(self, report: dict[str, Any]) -> None:
        self.last_report = report
        if report.get("status") != "complete":
            self._say(f"Personalize {report.get('status')}: {report.get('message', '')}", error=True)
            return
        b, a = report["before"], report["after"]
        self._say(
            f"Your personal model: {b['personal']:.0%} → {a['personal']:.0%} on {report['test']} of your digits "
            f"kept aside; MNIST test {b['mnist']:.2%} → {a['mnist']:.2%}. It is now the student."
        )
        self.personalized.emit(Path(report["model"]))

    def _on_finished(self, _name: str) -> None:
        self.progress.setVisible(False)
        self.stop_button.setVisible(False)
        self.personalize_button.setEnabled(True)

    def review(self) -> None:
        """Open the review dialog (modal)."""
        dialog = PersonalSetDialog(self.personal_set, self)
        dialog.exec()
        if dialog.deleted:
            self._last_added = None
            self.undo_button.setEnabled(False)
            self.refresh()
            self.changed.emit()


class PersonalSetDialog(QDialog):
    """Thumbnails of the personal set with their digits; select some and delete them."""

    def __init__(self, personal_set: PersonalSet, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Your personal set")
        self.personal_set = personal_set
        self.deleted = 0
        self.list = thumbnail_grid(self)
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.summary = QLabel("")
        self.summary.setStyleSheet(INFO_STYLE)
        self.delete_button = QPushButton("Delete selected")
        self.delete_button.setEnabled(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.delete_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Stored in {personal_set.path}"))
        layout.addWidget(self.list, 1)
        layout.addWidget(self.summary)
        layout.addWidget(buttons)
        self.list.itemSelectionChanged.connect(
            lambda: self.delete_button.setEnabled(bool(self.list.selectedItems()))
        )
        self.delete_button.clicked.connect(self.delete_selected)
        self.resize(560, 420)
        self.reload()

    def reload(self) -> None:
        """List the samples again."""
        self.list.clear()
        samples = self.personal_set.samples()
        for i, sample in enumerate(samples):
            item = QListWidgetItem(QIcon(thumbnail(sample.strokes)), str(sample.label))
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.list.addItem(item)
        counts = np.bincount([s.label for s in samples], minlength=10)
        per_digit = ", ".join(f"{d}: {c}" for d, c in enumerate(counts) if c)
        self.summary.setText(f"{len(samples)} drawings" + (f" ({per_digit})" if per_digit else ""))

    def delete_selected(self) -> int:
        """Delete the selected samples from the file; returns how many."""
        indices = [item.data(Qt.ItemDataRole.UserRole) for item in self.list.selectedItems()]
        removed = self.personal_set.delete(indices)
        self.deleted += removed
        self.reload()
        return removed
