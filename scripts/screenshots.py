"""Make the README screenshots: each tab of the real app in a realistic state, grabbed offscreen.

Usage::

    python scripts/screenshots.py                         # trains short real runs in a temporary folder
    python scripts/screenshots.py --runs-root /work/runs  # also show the finished runs already in a folder

Without ``--runs-root`` the script trains a teacher, a normal student and a distilled student on MNIST
(``--samples`` images, 0 for all; ``--epochs``): real training, only shorter than the full 20-epoch runs. The
committed PNGs come from the defaults (all 60,000 images, 3 epochs: about 10 minutes on two busy CPU cores). With a
``--runs-root`` holding finished runs, the results table and curves come from those and the script trains one
short extra student in a temporary folder only to show a job in progress. Nothing is faked or hard-coded.
Writes ``train-running.png``, ``train-results.png``, ``draw.png`` and ``deploy.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("DIGIT_DISTILL_DATA", str(ROOT.parent / "shared" / "data" / "mnist"))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

SIZE = (1440, 900)
DRAWN = ROOT.parent / "shared" / "data" / "drawn-digits-dev" / "strokes.npz"


def pump(app: QApplication, seconds: float = 0.3) -> None:
    """Let the event loop run for a while (layouts, throttled redraws)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def wait_idle(app: QApplication, tab, timeout: float = 3600.0) -> None:
    """Process events until the tab's jobs (training and result reading) are done."""
    end = time.monotonic() + timeout
    while (tab.is_running() or tab.results_runner.is_running()) and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    if tab.is_running():
        raise SystemExit("a training job did not finish in time")


def train(
    app: QApplication, window, role: str, grab_at: float | None = None, out: Path | None = None
) -> None:
    """Run one job to its end; optionally grab the window when the job is ``grab_at`` (0-1) done."""
    tab = window.train_tab
    errors: list[str] = []
    tab.error_occurred.connect(errors.append)
    if not tab.start_job(role):
        raise SystemExit(
            f"could not start the {role} job: {window.last_error or window.statusBar().currentMessage()}"
        )
    grabbed = grab_at is None
    while tab.is_running():
        app.processEvents()
        time.sleep(0.01)
        if not grabbed and tab.progress.value() >= grab_at * 1000:
            pump(app, 0.3)
            save(window, out / "train-running.png")
            grabbed = True
    pump(app, 0.3)
    if errors:
        raise SystemExit(f"{role} failed: {errors[-1]}")


def save(window, path: Path) -> None:
    """Grab the window into a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path)):
        raise SystemExit(f"could not write {path}")
    print("wrote", path)


def draw_digit(window, index: int) -> None:
    """Put a real pen-drawn digit from the drawn-digits set on the Draw tab's canvas."""
    from core.strokes import load_drawn, render_strokes

    sample = load_drawn(DRAWN)[index]
    pixels = render_strokes(sample.strokes)
    if pixels.dtype != "uint8":
        pixels = (255 * pixels.clip(0, 1)).astype("uint8")
    pixels = pixels.copy(order="C")
    image = QImage(
        pixels.data, pixels.shape[1], pixels.shape[0], pixels.strides[0], QImage.Format.Format_Grayscale8
    )
    window.draw_tab.canvas.set_image(image.copy())


def main(argv: list[str] | None = None) -> int:
    """Build the window, drive it through the states and write the PNGs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--runs-root", type=Path, help="show the finished runs in this folder")
    parser.add_argument("--samples", type=int, default=0, help="training images per run (0: all 60,000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run")
    parser.add_argument("--digit", type=int, default=7, help="index of the drawn digit shown in the Draw tab")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="digit-distill-shots-"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(scratch / "settings"))
    runs_root = args.runs_root or scratch / "runs"
    os.environ["DIGIT_DISTILL_RUNS"] = str(runs_root)  # the Draw tab lists the same runs
    app = QApplication.instance() or QApplication(sys.argv)
    app.setStyle("Fusion")

    from app.gui.main_window import MainWindow

    try:
        window = MainWindow(runs_root=runs_root)
        window.resize(*SIZE)
        window.show()
        tab = window.train_tab
        window.tabs.setCurrentWidget(tab)
        wait_idle(app, tab)
        tab.form.set_hyperparameters(
            {
                "preset": "paper",
                "epochs": args.epochs,
                "samples": args.samples,
                "batch_size": 128,
                "lr": 0.02,
                "temperature": 6,
                "alpha": 0.9,
            }
        )
        if args.runs_root is None:
            train(app, window, "teacher")
            train(app, window, "student")
            train(app, window, "distilled", grab_at=0.6, out=args.out)
        else:
            save_running_in_scratch(app, window, scratch, args)
        tab.results.models.selectRow(2)
        pump(app, 0.5)
        save(window, args.out / "train-results.png")

        teacher, student = tab.results.models_to_send()
        if hasattr(window.draw_tab, "use_models"):
            window.send_to_draw(teacher, student)
        else:  # a Draw tab without use_models: pick the same files through its model choosers
            window.tabs.setCurrentWidget(window.draw_tab)
            for picker, path in (
                (window.draw_tab.teacher_picker, teacher),
                (window.draw_tab.student_picker, student),
            ):
                if path:
                    picker.choose_file(path)
        window.tabs.setCurrentWidget(window.draw_tab)
        if hasattr(window.draw_tab, "canvas"):
            draw_digit(window, args.digit)
        pump(app, 1.0)
        save(window, args.out / "draw.png")
        window.tabs.setCurrentWidget(window.deploy_tab)
        pump(app, 0.5)
        save(window, args.out / "deploy.png")
        window.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def save_running_in_scratch(app: QApplication, window, scratch: Path, args) -> None:
    """Show a job in progress without adding runs to the user's folder: a short student job in ``scratch``."""
    tab = window.train_tab
    real_root = tab.runs_root
    tab.runs_root = scratch / "runs"
    try:
        train(app, window, "student", grab_at=0.6, out=args.out)
    finally:
        tab.runs_root = real_root
        tab.refresh_results()
        wait_idle(app, tab)


if __name__ == "__main__":
    sys.exit(main())
