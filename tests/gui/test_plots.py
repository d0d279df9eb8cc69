"""The Train tab's plots read in epochs from the first batch on (no "epoch (x0.001)")."""

from __future__ import annotations

from app.gui.plots import TrainingPlots


def test_axes_read_in_whole_epochs_from_the_first_batches(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(1000, 340)
    plots.show()
    plots.start_run(True)
    plots.add_batches(
        [{"epoch": 1, "batch": b, "batches": 235, "loss": 2.0, "soft": 1.0, "hard": 1.0} for b in range(1, 6)]
    )
    plots.redraw()
    qtbot.wait(50)
    for widget in (plots.loss_plot, plots.acc_plot):
        item = widget.getPlotItem()
        label = item.getAxis("bottom").labelString()
        assert "epoch" in label and "(x" not in label, label  # no SI prefix such as "epoch (x0.001)"
        (x_min, x_max), _ = item.viewRange()
        assert x_min <= 0.0 and x_max >= 1.0  # at least epoch 0 to 1 in view


def test_the_empty_accuracy_plot_reads_in_percent_then_follows_the_points(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(1000, 340)
    plots.show()
    item = plots.acc_plot.getPlotItem()
    _, (y_min, y_max) = item.viewRange()
    assert (y_min, y_max) == (0.0, 100.0)  # not pyqtgraph's 0-1 under an "accuracy (%)" label
    plots.start_run(False)
    for epoch, acc in ((1, 0.95), (2, 0.97), (3, 0.98)):
        plots.add_epoch({"epoch": epoch, "train_acc": acc, "test_acc": acc - 0.005})
    plots.redraw()
    qtbot.wait(50)
    _, (y_min, y_max) = item.viewRange()
    assert 90 < y_min < 94.5 and 98 < y_max < 100  # zoomed on the points
