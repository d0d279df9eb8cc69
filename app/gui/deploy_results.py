"""The Deploy tab's results view: board against local onnxruntime, as figures and digit by digit.

:class:`DeployResultsView` renders an :class:`atlas_bridge.results.DeployResult`:

* the compiled model (``.om`` path, size, chip, CANN version, reused or converted),
* a small table: accuracy on the MNIST test images and latency per image (with the NPU's execute time), board
  beside local,
* the agreement of the two runs and their largest probability difference,
* every evaluated image's label, board prediction and local prediction (disagreements and errors marked).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from atlas_bridge.results import DeployResult

_WRONG = QColor(178, 24, 43)  # a prediction that differs from the label
_DISAGREE = QColor(253, 219, 199)  # board and local differ on this image
_MUTED = "color: #4d4d4d;"
_OK = "color: #1b7837;"
_BAD = "color: #b2182b;"
PREDICTION_ROWS = ("Label", "Board", "Local")


def percent(value: float | None) -> str:
    """``0.9712`` -> ``"97.12%"``; ``None`` (no labels) -> ``"n/a"``."""
    return "n/a" if value is None else f"{value:.2%}"


def size_text(n_bytes: int) -> str:
    """A file size for people: ``170.6 kB``, ``22.4 MB``."""
    if n_bytes >= 1_000_000:
        return f"{n_bytes / 1_000_000:.1f} MB"
    if n_bytes >= 1_000:
        return f"{n_bytes / 1_000:.1f} kB"
    return f"{n_bytes} bytes"


def latency_text(ms: float) -> str:
    """Milliseconds per image with enough digits for sub-millisecond times."""
    return f"{ms:.3f} ms" if ms < 10 else f"{ms:,.1f} ms"


def summary_text(result: DeployResult) -> str:
    """The results as a few lines of plain text (tooltips, copying, the CLI-like view)."""
    reused = " (reused)" if result.reused_om else ""
    return "\n".join(
        [
            f"Model on the board: {result.om_path} ({result.om_bytes:,} bytes, {result.soc_version}){reused}",
            f"{result.evaluated} MNIST test images: board accuracy {percent(result.board_accuracy)}, "
            f"local accuracy {percent(result.local_accuracy)}",
            f"Board and local agree on {percent(result.agreement)} of the digits{_agreeing(result)}; largest "
            f"probability difference {result.max_probability_difference:.2e}",
            f"Latency: board {latency_text(result.board_ms_per_image)} per image (NPU execute "
            f"{latency_text(result.board_npu_ms_per_image)}), local onnxruntime "
            f"{latency_text(result.local_ms_per_image)} per image",
        ]
    )


def _agreeing(result: DeployResult) -> str:
    board, local = result.board_predictions, result.local_predictions
    if not board or len(board) != len(local):
        return ""
    same = sum(b == loc for b, loc in zip(board, local, strict=True))
    return f" ({same:,} of {len(board):,})"


def _count(n: int, noun: str) -> str:
    """``3 errors``, ``1 error``."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _cell(text: str, bold: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if bold:
        font = item.font()
        font.setBold(True)
        item.setFont(font)
    return item


def _fixed_height(table: QTableWidget) -> None:
    """Make a table exactly as high as its rows (plus header and a horizontal scroll bar when needed)."""
    height = table.horizontalHeader().height() if table.horizontalHeader().isVisible() else 0
    height += sum(table.rowHeight(r) for r in range(table.rowCount())) + 2 * table.frameWidth()
    if table.horizontalScrollBarPolicy() != Qt.ScrollBarPolicy.ScrollBarAlwaysOff:
        height += table.horizontalScrollBar().sizeHint().height()
    table.setFixedHeight(height)


class DeployResultsView(QGroupBox):
    """Board against local results of the last deploy (empty with a note until one finishes)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Results: board vs local", parent)
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        self.note_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.figures = QTableWidget(2, 2, self)
        self.figures.setHorizontalHeaderLabels(["Atlas board", "Local onnxruntime"])
        self.figures.setVerticalHeaderLabels(["Accuracy", "Latency per image"])
        self.figures.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.figures.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.figures.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.figures.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.figures.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.figures.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.figures.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.agreement_label = QLabel()
        self.agreement_label.setWordWrap(True)
        self.agreement_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.predictions_caption = QLabel()
        self.predictions_caption.setStyleSheet(_MUTED)
        self.predictions = QTableWidget(len(PREDICTION_ROWS), 0, self)
        self.predictions.setVerticalHeaderLabels(list(PREDICTION_ROWS))
        self.predictions.horizontalHeader().setVisible(False)
        self.predictions.horizontalHeader().setMinimumSectionSize(10)
        self.predictions.horizontalHeader().setDefaultSectionSize(24)
        self.predictions.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.predictions.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.predictions.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.predictions.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.predictions.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.predictions.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.predictions.setToolTip(
            "Each evaluated MNIST test image: its label, the board's digit and the local onnxruntime digit. "
            "Red digits are wrong; a shaded column is an image where board and local disagree."
        )

        layout = QVBoxLayout(self)
        layout.addWidget(self.note_label)
        layout.addWidget(self.model_label)
        layout.addWidget(self.figures)
        layout.addWidget(self.agreement_label)
        layout.addWidget(self.predictions_caption)
        layout.addWidget(self.predictions)
        self._details = (
            self.model_label,
            self.figures,
            self.agreement_label,
            self.predictions_caption,
            self.predictions,
        )
        self.show_note("No deploy yet: fill in the board, choose a model and press Deploy.")

    def show_note(self, text: str) -> None:
        """Only a note (before the first deploy, while deploying, after a failure)."""
        self.note_label.setText(text)
        self.note_label.setVisible(True)
        for widget in self._details:
            widget.setVisible(False)
        self.setToolTip("")

    def note(self) -> str:
        """The note shown, ``""`` when results are shown."""
        return "" if self.note_label.isHidden() else self.note_label.text()

    def show_result(self, result: DeployResult) -> None:
        """Show a deploy's results."""
        self.note_label.setVisible(False)
        for widget in self._details:
            widget.setVisible(True)
        how = "reused, unchanged since the last deploy" if result.reused_om else "converted with ATC"
        cann = f", CANN {result.cann_version}" if result.cann_version else ""
        layout = f", {result.om_layout} .om header" if result.om_layout else ""
        self.model_label.setText(
            f"<b>{result.om_path}</b> — {size_text(result.om_bytes)}, {result.soc_version}{cann}{layout}, {how}"
        )
        n = result.evaluated
        self.figures.setVerticalHeaderLabels([f"Accuracy on {n:,} MNIST test images", "Latency per image"])
        board_latency = latency_text(result.board_ms_per_image)
        if result.board_npu_ms_per_image:
            board_latency += f" (NPU {latency_text(result.board_npu_ms_per_image)})"
        rows = (
            (percent(result.board_accuracy), percent(result.local_accuracy)),
            (board_latency, latency_text(result.local_ms_per_image)),
        )
        for r, values in enumerate(rows):
            for c, text in enumerate(values):
                self.figures.setItem(r, c, _cell(text))
        self.figures.resizeRowsToContents()
        _fixed_height(self.figures)

        agreement = result.agreement
        style = _OK if agreement >= 1.0 else _BAD if agreement < 0.99 else _MUTED
        self.agreement_label.setStyleSheet(style)
        self.agreement_label.setText(
            f"Board and local agree on {percent(agreement)} of the digits{_agreeing(result)}; largest "
            f"probability difference {result.max_probability_difference:.2e} (the board computes in float16)"
        )
        self._show_predictions(result)
        self.setToolTip(summary_text(result))

    def _show_predictions(self, result: DeployResult) -> None:
        board = list(result.board_predictions)
        local = list(result.local_predictions)
        labels = list(result.labels or [])
        count = max(len(board), len(local))
        self.predictions.clearContents()
        self.predictions.setColumnCount(count)
        self.predictions.setVerticalHeaderLabels(list(PREDICTION_ROWS))
        for column in range(count):
            label = labels[column] if column < len(labels) else None
            values = (
                label,
                board[column] if column < len(board) else None,
                local[column] if column < len(local) else None,
            )
            differ = values[1] != values[2]
            for row, value in enumerate(values):
                item = _cell("" if value is None else str(value), bold=row == 0)
                if row > 0 and label is not None and value is not None and value != label:
                    item.setForeground(QBrush(_WRONG))
                if differ:
                    item.setBackground(QBrush(_DISAGREE))
                self.predictions.setItem(row, column, item)
        wrong = sum(b != y for b, y in zip(board, labels, strict=False))
        disagreements = sum(b != loc for b, loc in zip(board, local, strict=False))
        self.predictions_caption.setText(
            f"Digit by digit ({count:,} images): {_count(disagreements, 'board/local disagreement')}, "
            f"{_count(wrong, 'board error')} against the labels (red)"
        )
        self.predictions.resizeRowsToContents()
        _fixed_height(self.predictions)
