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
