"""Latency of live recognition in the Draw tab: from a pen event to both predictions painted.

Drives the Draw tab's canvas with real mouse events (offscreen Qt by default), replaying digits from the
drawn-digits set. For every move event it measures the time from sending the event until the event loop has
classified the drawing (render, ``to_mnist``, teacher, student) and repainted both result charts, i.e. until
the teacher's and the student's bar charts have each received a paint event and the loop has returned.
Prints p50/p95/max of that, and the median cost of each step measured on its own.

Models: the bundled ``core/bundled/{teacher,student}.onnx``, or ``--teacher``/``--student`` files. Where
none exist yet, the paper's architectures (784-2000-2000-10 and 784-50-50-10) are exported with random
weights: inference time depends on the architecture, not on the weight values.

Usage::

    python bench/gui_latency.py [--samples 20] [--teacher T.onnx --student S.onnx] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEvent, QObject, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.gui.canvas import CANVAS_SIZE  # noqa: E402
from app.gui.draw_tab import DrawTab  # noqa: E402
from bench.report import verdict  # noqa: E402
from core.bundled import BUNDLED_DIR  # noqa: E402
from core.preprocess import to_mnist  # noqa: E402
from core.strokes import canvas_transform, load_drawn  # noqa: E402

DRAWN = ROOT.parent / "shared" / "data" / "drawn-digits-dev" / "strokes.npz"
LEFT, NO_BUTTON = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton


class PaintWatch(QObject):
    """Notes when a widget receives a paint event."""

    def __init__(self, widget):
        super().__init__(widget)
        self.painted = False
        widget.installEventFilter(self)

    def eventFilter(self, obj, event):  # noqa: N802
        if event.type() == QEvent.Type.Paint:
            self.painted = True
        return False


def prepare_models(teacher: Path | None, student: Path | None, folder: Path) -> str:
    """Put teacher.onnx and student.onnx into ``folder``; return where they came from."""
    if teacher is None and student is None and (BUNDLED_DIR / "teacher.onnx").exists():
        teacher, student = BUNDLED_DIR / "teacher.onnx", BUNDLED_DIR / "student.onnx"
    if teacher is not None and student is not None:
        shutil.copy(teacher, folder / "teacher.onnx")
        shutil.copy(student, folder / "student.onnx")
        return f"{teacher}, {student}"
    import torch

    from core.export import export_onnx
    from core.models import build_model, get_preset

    torch.manual_seed(0)
    preset = get_preset("paper")
    for role, cfg in (("teacher", preset.teacher), ("student", preset.student)):
        export_onnx(build_model(cfg), folder / f"{role}.onnx", metadata={"role": role, "preset": "paper"})
    return "paper-preset architectures with random weights (no bundled models yet)"


def send(widget, kind, point, button, buttons) -> None:
    pos = widget.map_to_widget(QPointF(float(point[0]), float(point[1])))  # canvas units -> widget pixels
    QApplication.sendEvent(
        widget,
        QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier),
    )


def measure(
    tab: DrawTab, strokes_list: list[list[np.ndarray]], timeout_s: float = 1.0
) -> tuple[list[float], list[float]]:
    """Milliseconds from each move event to both charts repainted with the new predictions.

    Returns the wall-clock latencies and the CPU time this process spent on each (on a busy machine the
    difference is time spent waiting for a core).
    """
    app = QApplication.instance()
    watches = [PaintWatch(panel.chart) for panel in (tab.teacher_panel, tab.student_panel)]
    shown, changed = [], []
    tab.predictions_shown.connect(lambda: shown.append(True))
    tab.canvas.changed.connect(lambda: changed.append(True))
    latencies, cpu = [], []
    for strokes in strokes_list:
        tab.canvas.clear()
        app.processEvents()
        scale, offset = canvas_transform(strokes, CANVAS_SIZE)
        for stroke in strokes:
            points = np.asarray(stroke, dtype=float) * scale + offset
            send(tab.canvas, QEvent.Type.MouseButtonPress, points[0], LEFT, LEFT)
            app.processEvents()
            for p in points[1:]:
                shown.clear()
                changed.clear()
                for watch in watches:
                    watch.painted = False
                start, start_cpu = time.perf_counter(), time.process_time()
                send(tab.canvas, QEvent.Type.MouseMove, p, NO_BUTTON, LEFT)
                if not changed:  # the pen did not move far enough to add a point: nothing to classify
                    continue
                while not (shown and all(w.painted for w in watches)):
                    app.processEvents()
                    if time.perf_counter() - start > timeout_s:
                        break
                else:
                    latencies.append((time.perf_counter() - start) * 1000)
                    cpu.append((time.process_time() - start_cpu) * 1000)
            send(tab.canvas, QEvent.Type.MouseButtonRelease, points[-1], LEFT, NO_BUTTON)
            app.processEvents()
    return latencies, cpu


def step_costs(tab: DrawTab, repeats: int = 200) -> dict[str, float]:
    """Median microseconds of each step of one classification, on the drawing left on the canvas."""
    canvas = tab.canvas
    image = canvas.to_array()
    x = to_mnist(image).reshape(1, 1, 28, 28)
    steps = {
        "render 280x280 (to_array)": canvas.to_array,
        "to_mnist": lambda: to_mnist(image),
        "teacher inference": lambda: tab.teacher_picker.classifier().logits(x),
        "student inference": lambda: tab.student_picker.classifier().logits(x),
        "whole classify() without painting": tab.classify,
    }
    costs = {}
    for name, step in steps.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter_ns()
            step()
            times.append((time.perf_counter_ns() - start) / 1000)
        costs[name] = float(np.median(times))
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20, help="drawn digits to replay (default 20)")
    parser.add_argument("--teacher", type=Path, help="teacher ONNX file (default: bundled)")
    parser.add_argument("--student", type=Path, help="student ONNX file (default: bundled)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args(argv)
    if (args.teacher is None) != (args.student is None):
        parser.error("give both --teacher and --student, or neither")

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        models = prepare_models(args.teacher, args.student, Path(tmp))
        tab = DrawTab(models_dir=Path(tmp), runs_root=Path(tmp) / "no-runs")
        tab.resize(1100, 680)
        tab.show()
        app.processEvents()

        samples = load_drawn(DRAWN)
        picks = np.linspace(0, len(samples) - 1, args.samples).round().astype(int)
        latencies, cpu = map(np.array, measure(tab, [samples[i].strokes for i in picks]))
        costs = step_costs(tab)
        tab.close()

    result = {
        "events": int(latencies.size),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p95_ms": float(np.percentile(latencies, 95)),
        "max_ms": float(latencies.max()),
        "cpu_p50_ms": float(np.percentile(cpu, 50)),
        "cpu_p95_ms": float(np.percentile(cpu, 95)),
        "target_p95_ms": 16.0,
        "step_median_us": costs,
        "models": models,
        "platform": QApplication.platformName(),
        "load_average_1min": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"Draw tab latency, pen event -> both predictions painted ({result['platform']} Qt, {models})")
    print(f"  {result['events']} move events over {args.samples} drawn digits")
    print(
        f"  p50 {result['p50_ms']:.2f} ms   p95 {result['p95_ms']:.2f} ms   max {result['max_ms']:.2f} ms"
        f"   (target p95 <= 16 ms: {verdict(result['p95_ms'] <= 16)})"
    )
    print(
        f"  CPU time of this process per event: p50 {result['cpu_p50_ms']:.2f} ms   p95 {result['cpu_p95_ms']:.2f} ms"
    )
    print("  median cost of each step:")
    for name, us in costs.items():
        print(f"    {name:<36} {us:8.0f} us")
    print(f"  machine: {result['cpus']} CPUs, 1-min load average {result['load_average_1min']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
