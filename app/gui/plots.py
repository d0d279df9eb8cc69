"""Live training plots: loss per batch and accuracy per epoch, the current job over earlier runs.

Points go into preallocated arrays (doubling when full); the curves are redrawn with ``setData`` at most every
``REDRAW_MS`` milliseconds, however fast the batches come (pyqtgraph's scrollingPlots pattern).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QWidget

REDRAW_MS = 100
MAX_EARLIER = 6
LOSS_FLOOR = 1e-6  # the loss axis is logarithmic

COLORS = {
    "total": (31, 119, 180),
    "soft": (255, 127, 14),
    "hard": (44, 160, 44),
    "train": (31, 119, 180),
    "test": (214, 39, 40),
    "earlier": (150, 150, 150, 110),
}


class SeriesBuffer:
    """Growing x/y arrays of float64 with amortised O(1) append and zero-copy views."""

    def __init__(self, capacity: int = 1024):
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, x: float, y: float) -> None:
        """Add one point."""
        if self._n == len(self._x):
            self._x = np.resize(self._x, 2 * len(self._x))
            self._y = np.resize(self._y, 2 * len(self._y))
        self._x[self._n] = x
        self._y[self._n] = y
        self._n += 1

    def clear(self) -> None:
        """Forget all points (keeps the memory)."""
        self._n = 0

    @property
    def x(self) -> np.ndarray:
        """The x values so far (a view)."""
        return self._x[: self._n]

    @property
    def y(self) -> np.ndarray:
        """The y values so far (a view)."""
        return self._y[: self._n]


class EpochAxis(pg.AxisItem):
    """A bottom axis whose ticks fall on whole epochs."""

    def tickSpacing(self, minVal, maxVal, size):  # noqa: D102, N802, N803 - pyqtgraph API
        return [(max(1.0, spacing), offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size)]


def _plot(title: str, left: str, legend_offset: tuple[int, int] = (-10, 10)) -> pg.PlotWidget:
    widget = pg.PlotWidget(background="w", axisItems={"bottom": EpochAxis("bottom")})
    item = widget.getPlotItem()
    item.setTitle(title, color="#333", size="10pt")
    item.setLabel("left", left, color="#333")
    item.setLabel("bottom", "epoch", color="#333")
    item.showGrid(x=True, y=True, alpha=0.25)
    for axis in ("left", "bottom"):
        item.getAxis(axis).setTextPen("#333")
        item.getAxis(axis).setPen("#888")
        # Grid lines on major ticks only: the minor-tick grid (dozens of blended lines) tripled paint time.
        item.getAxis(axis).setStyle(maxTickLevel=0)
        # Values as they are: no "epoch (x0.001)" while the first epoch's batches come in.
        item.getAxis(axis).enableAutoSIPrefix(False)
    item.setLimits(
        xMin=-0.05, minXRange=1.1
    )  # at least one whole epoch wide: the axis reads 0 .. 1 from the start
    item.setClipToView(True)
    item.setDownsampling(auto=True, mode="peak")
    item.addLegend(offset=legend_offset, labelTextColor="#333", brush=pg.mkBrush(255, 255, 255, 200))
    return widget


class TrainingPlots(QWidget):
    """Two plots side by side: loss per batch (total, soft, hard) and train/test accuracy per epoch."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.loss_plot = _plot("Loss per batch  (grey: earlier runs)", "loss (log scale)")
        self.loss_plot.getPlotItem().setLogMode(y=True)
        # Accuracy rises towards the top right, so its legend sits bottom right, off the curves.
        self.acc_plot = _plot(
            "Accuracy per epoch  (grey: earlier runs, test)", "accuracy (%)", legend_offset=(-10, -10)
        )
        # Empty, the axis reads 0-100 %, not pyqtgraph's default 0-1; the first points take over (auto range).
        self.acc_plot.getPlotItem().setYRange(0, 100, padding=0)
        self.acc_plot.getPlotItem().enableAutoRange(axis="y")
        self.loss_plot.setToolTip("Training loss as reported during the epoch; grey: earlier runs")
        self.acc_plot.setToolTip(
            "Accuracy on the training batches and on the 10,000 test images; grey: earlier runs"
        )
        self._series = {key: SeriesBuffer() for key in ("total", "soft", "hard", "train", "test")}
        loss_item, acc_item = self.loss_plot.getPlotItem(), self.acc_plot.getPlotItem()
        self._curves = {
            "total": loss_item.plot(pen=pg.mkPen(COLORS["total"], width=1.5), name="total"),
            "soft": loss_item.plot(pen=pg.mkPen(COLORS["soft"], width=1.2), name="soft (T²·KL)"),
            "hard": loss_item.plot(pen=pg.mkPen(COLORS["hard"], width=1.2), name="hard (CE)"),
            "train": acc_item.plot(
                pen=pg.mkPen(COLORS["train"], width=2), symbol="o", symbolSize=6, name="train"
            ),
            "test": acc_item.plot(
                pen=pg.mkPen(COLORS["test"], width=2), symbol="s", symbolSize=6, name="test"
            ),
        }
        for key in ("train", "test"):
            self._curves[key].setSymbolBrush(pg.mkBrush(COLORS[key]))
            self._curves[key].setSymbolPen(pg.mkPen(COLORS[key]))
        self._earlier: list[list[tuple[pg.PlotItem, pg.PlotDataItem]]] = []
        self._distill = False
        self._dirty: set[str] = set()  # series with points not drawn yet
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._on_timer)
        self.redraws = 0

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.acc_plot)
        self._update_legend_visibility()

    # -- data in ---------------------------------------------------------------------------------------
    def start_run(self, distill: bool) -> None:
        """Begin a new job: the previous job's curves turn grey and stay for comparison."""
        if len(self._series["total"]) or len(self._series["test"]):
            self._keep_as_earlier(
                {key: (s.x.copy(), s.y.copy()) for key, s in self._series.items() if key in ("total", "test")}
            )
        for series in self._series.values():
            series.clear()
        self._distill = distill
        self._update_legend_visibility()
        self.redraw()

    def add_batches(self, items: list[dict[str, Any]]) -> None:
        """Append batch reports (``on_batch`` dicts); the plot redraws soon, not now."""
        for info in items:
            batches = max(1, int(info.get("batches") or 1))
            x = info["epoch"] - 1 + info["batch"] / batches
            self._series["total"].append(x, max(float(info["loss"]), LOSS_FLOOR))
            if info.get("hard") is not None:
                self._series["hard"].append(x, max(float(info["hard"]), LOSS_FLOOR))
            if info.get("soft") is not None:
                self._series["soft"].append(x, max(float(info["soft"]), LOSS_FLOOR))
        self._schedule("total", "hard", "soft")

    def add_epoch(self, info: dict[str, Any]) -> None:
        """Append one epoch's train and test accuracy (fractions in, percent shown)."""
        if info.get("train_acc") is not None:
            self._series["train"].append(info["epoch"], 100.0 * info["train_acc"])
        if info.get("test_acc") is not None:
            self._series["test"].append(info["epoch"], 100.0 * info["test_acc"])
        self._schedule("train", "test")

    def add_earlier_run(self, history: list[dict[str, Any]]) -> None:
        """Show a saved run's per-epoch loss and test accuracy in grey (from its metrics.json history)."""
        if not history:
            return
        epochs = np.array([h["epoch"] for h in history], dtype=float)
        loss = np.maximum(np.array([h["loss"] for h in history], dtype=float), LOSS_FLOOR)
        test = 100.0 * np.array([h["test_acc"] for h in history], dtype=float)
        self._keep_as_earlier({"total": (epochs, loss), "test": (epochs, test)})

    def clear_earlier(self) -> None:
        """Remove all grey curves."""
        while self._earlier:
            self._drop_oldest_earlier()

    # -- view ------------------------------------------------------------------------------------------
    def point_counts(self) -> dict[str, int]:
        """How many points each current series holds (for tests and the status line)."""
        return {key: len(series) for key, series in self._series.items()}

    def curve_counts(self) -> dict[str, int]:
        """How many points each current curve displays (what was last drawn)."""
        counts = {}
        for key, curve in self._curves.items():
            x, _ = curve.getOriginalDataset()
            counts[key] = 0 if x is None else len(x)
        return counts

    def earlier_count(self) -> int:
        """Number of earlier runs shown in grey."""
        return len(self._earlier)

    def redraw(self, keys=None) -> None:
        """Push buffered points to the curves (all of them, or only ``keys``); the timer calls it throttled."""
        for key in self._curves if keys is None else keys:
            series = self._series[key]
            self._curves[key].setData(series.x, series.y)
        self._dirty.clear()
        self.redraws += 1

    def _on_timer(self) -> None:
        # Only curves with new points are touched, so a batch update repaints the loss plot alone.
        self.redraw(sorted(self._dirty))

    def _schedule(self, *keys: str) -> None:
        self._dirty.update(keys)
        if not self._timer.isActive():
            self._timer.start()

    def _update_legend_visibility(self) -> None:
        self._curves["soft"].setVisible(self._distill)
        legend = self.loss_plot.getPlotItem().legend
        for key in ("soft",):
            if self._distill:
                if legend.getLabel(self._curves[key]) is None:
                    legend.addItem(self._curves[key], "soft (T²·KL)")
            else:
                legend.removeItem(self._curves[key])

    def _keep_as_earlier(self, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        pen = pg.mkPen(COLORS["earlier"], width=1, style=Qt.PenStyle.DashLine)
        curves = []
        for key, (x, y) in data.items():
            if not len(x):
                continue
            plot = (self.loss_plot if key == "total" else self.acc_plot).getPlotItem()
            curve = pg.PlotDataItem(x, y, pen=pen)
            curve.setZValue(-10)
            plot.addItem(curve)
            curves.append((plot, curve))
        if curves:
            self._earlier.append(curves)
        while len(self._earlier) > MAX_EARLIER:
            self._drop_oldest_earlier()

    def _drop_oldest_earlier(self) -> None:
        for plot, curve in self._earlier.pop(0):
            plot.removeItem(curve)
