"""Make the README screenshots: each tab of the real app in a realistic state, grabbed offscreen.

Usage (as root: the Deploy and Draw shots deploy to the board emulator, which adds a temporary login user)::

    python scripts/screenshots.py                         # trains short real runs in a temporary folder
    python scripts/screenshots.py --runs-root /work/runs  # also show the finished runs already in a folder

Without ``--runs-root`` the script trains a teacher, a normal student and a distilled student on MNIST
(``--samples`` images, 0 for all; ``--epochs``): real training, only shorter than the full 20-epoch runs. The
committed PNGs come from the defaults (all 60,000 images, 3 epochs: 3 to 10 minutes on two shared CPU cores). With a
``--runs-root`` holding finished runs, the results table and curves come from those and the script trains one
short extra student in a temporary folder only to show a job in progress. The Draw tab shows the bundled models
(``core/bundled``) when both exist, else the runs just trained. The student shown there is deployed from the
Deploy tab to the board emulator (``tests/board_emulator``: a real sshd with stand-in ATC and pyACL), then the
drawn digit is classified on that board, so both shots show a finished deploy. Nothing is faked or hard-coded.
Writes ``train-running.png``, ``train-results.png``, ``deploy.png`` and ``draw.png`` to ``--out``.
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

from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

SIZE = (1440, 900)
DEPLOY_TIMEOUT_S = 600.0
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


def wait_for(app: QApplication, done, timeout: float, what: str) -> None:
    """Process events until ``done()`` is true; stop the script if it takes longer than ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise SystemExit(f"{what} did not finish within {timeout:.0f} s")
        app.processEvents()
        time.sleep(0.01)


def bundled_models() -> tuple[Path, Path] | None:
    """The bundled teacher and student, when both exist."""
    from core.bundled import BUNDLED_DIR

    teacher, student = BUNDLED_DIR / "teacher.onnx", BUNDLED_DIR / "student.onnx"
    return (teacher, student) if teacher.is_file() and student.is_file() else None


def show_models_in_draw(window, teacher: Path | None, student: Path | None, bundled: bool) -> None:
    """Put these models in the Draw tab's slots: bundled ones directly, runs as "Use in Draw tab" does."""
    if student is None:
        raise SystemExit("no student model to show and deploy: the student runs did not finish")
    if bundled:
        window.draw_tab.use_models(teacher, student)
    else:
        window.send_to_draw(teacher, student)


def deploy_to_emulator(app: QApplication, window, board, student: Path, images: int) -> None:
    """Fill the Deploy tab's form for the emulated board and deploy ``student`` (its key trusted after a check)."""
    tab = window.deploy_tab
    tab.host_edit.setText(board.host)
    tab.port_spin.setValue(board.port)
    tab.user_edit.setText(board.user)
    tab.auth_combo.setCurrentIndex(tab.auth_combo.findData("password"))
    tab.password_edit.setText(board.password)
    tab.remote_edit.setText("~/digit-distill")
    tab.evaluate_spin.setValue(images)
    if not tab.model_picker.choose_file(student):
        raise SystemExit(f"the Deploy tab refused {student}: {tab.error_label.text()}")
    # The dialog a person answers: trust the key only if it is the emulator's own.
    tab.ask_trust = lambda info: info.fingerprint == board.host_key_fingerprint
    window.tabs.setCurrentWidget(tab)
    tab.deploy()
    wait_for(app, lambda: not tab.runner.is_running(), DEPLOY_TIMEOUT_S, "the deploy")
    pump(app, 0.5)
    if not tab.is_board_ready():
        raise SystemExit(f"the deploy failed: {tab.error_label.text()}")


def classify_on_board(app: QApplication, window) -> None:
    """Press the Draw tab's "Classify on board" and wait for the board's answer."""
    draw = window.draw_tab
    answers, errors = [], []
    window.deploy_tab.board_prediction.connect(answers.append)
    window.deploy_tab.board_error.connect(errors.append)
    window.tabs.setCurrentWidget(draw)
    pump(app, 0.3)
    if not draw.board_button.isEnabled():
        raise SystemExit("the Draw tab's Classify on board button is not enabled after the deploy")
    draw.board_button.click()
    wait_for(app, lambda: answers or errors, DEPLOY_TIMEOUT_S, "classifying the drawing on the board")
    if errors:
        raise SystemExit(f"classifying on the board failed: {errors[-1]}")


def main(argv: list[str] | None = None) -> int:
    """Build the window, drive it through the states and write the PNGs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--runs-root", type=Path, help="show the finished runs in this folder")
    parser.add_argument("--samples", type=int, default=0, help="training images per run (0: all 60,000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run")
    parser.add_argument("--digit", type=int, default=7, help="index of the drawn digit shown in the Draw tab")
    parser.add_argument(
        "--deploy-images", type=int, default=200, help="MNIST test images the deploy compares"
    )
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="digit-distill-shots-"))
    os.environ["XDG_CONFIG_HOME"] = str(scratch / "config")  # the app's settings: a fresh settings.ini
    # The emulator's host key, once trusted, goes to a known_hosts file in the scratch folder.
    os.environ["XDG_DATA_HOME"] = str(scratch / "data")
    runs_root = args.runs_root or scratch / "runs"
    os.environ["DIGIT_DISTILL_RUNS"] = str(runs_root)  # the Draw tab lists the same runs
    app = QApplication.instance() or QApplication(sys.argv)
    app.setStyle("Fusion")

    from app.gui.shell import MainWindow

    try:
        window = MainWindow(runs_root=runs_root, preload=False)
        window.resize(*SIZE)
        window.show()
        wait_for(app, window.is_ready, 60, "the window's start")
        tab = window.train_tab
        window.tabs.setCurrentWidget(tab)
        wait_idle(app, tab)
        tab.form.set_values(
            {
                "recipe": "paper",
                "epochs": args.epochs,
                "samples": args.samples,
                "batch_size": 128,
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

        bundled = bundled_models()
        teacher, student = bundled or tab.results.models_to_send()
        show_models_in_draw(window, teacher, student, bundled is not None)
        window.tabs.setCurrentWidget(window.draw_tab)
        draw_digit(window, args.digit)
        pump(app, 1.0)

        from tests.board_emulator.server import BoardEmulator

        board = BoardEmulator().start()
        try:
            deploy_to_emulator(app, window, board, student, args.deploy_images)
            save(window, args.out / "deploy.png")
            classify_on_board(app, window)
            pump(app, 1.0)
            save(window, args.out / "draw.png")
        finally:
            window.deploy_tab.shutdown()
            board.stop()
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
