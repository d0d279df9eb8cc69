"""README screenshots of the honest answers, the personal set, Personalize and the "What fails" gallery.

Usage::

    python scripts/screenshots_trust.py [--out docs/screenshots] [--skip-personalize]

Uses the bundled models (calibrated with ``digit-distill calibrate``) on a Draw tab of its own, replaying real pen
strokes with mouse events: a generated non-digit, a dev-set digit the student is unsure about, a correction saved
to a personal set in a temporary folder, the review dialog, the gallery on the dev set, and a real Personalize on
one dev writer's digits (minutes on a shared CPU). Nothing is faked: every text comes from the models.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("DIGIT_DISTILL_DATA", str(ROOT.parent / "shared" / "data" / "mnist"))

import numpy as np  # noqa: E402
from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

DRAWN = ROOT.parent / "shared" / "data" / "drawn-digits-dev" / "strokes.npz"
LEFT, NO_BUTTON = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton


def pump(app, seconds: float = 0.3) -> None:
    """Let the event loop run for a while."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def wait_for(app, done, timeout: float) -> None:
    """Run the event loop until ``done()`` or the timeout."""
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise SystemExit("timed out")
        app.processEvents()
        time.sleep(0.05)


def draw(app, tab, strokes) -> None:
    """Replay strokes (any units) on the canvas with mouse events, scaled like the drawn-digits protocol."""
    from core.strokes import canvas_transform

    tab.canvas.clear()
    scale, offset = canvas_transform(strokes, 280)
    for stroke in strokes:
        pts = np.asarray(stroke, dtype=float) * scale + offset
        for kind, p, button, buttons in (
            [(QEvent.Type.MouseButtonPress, pts[0], LEFT, LEFT)]
            + [(QEvent.Type.MouseMove, p, NO_BUTTON, LEFT) for p in pts[1:]]
            + [(QEvent.Type.MouseButtonRelease, pts[-1], LEFT, NO_BUTTON)]
        ):
            pos = tab.canvas.map_to_widget(QPointF(float(p[0]), float(p[1])))  # canvas units -> widget
            event = QMouseEvent(
                kind, pos, tab.canvas.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier
            )
            QApplication.sendEvent(tab.canvas, event)
    tab.classify()
    pump(app, 0.2)


def draw_first(app, tab, samples, candidates, wanted) -> int:
    """Replay candidates in turn until the student's answer *on the canvas* is ``wanted(verdict, sample)``.

    The canvas's pen (22 px) is a little wider than the drawn-digits protocol's (18 px), so an answer computed
    offline can differ from the one the tab shows; the shot must show what its caption says.
    """
    for i in candidates:
        draw(app, tab, samples[i].strokes)
        verdict = tab.verdicts.get("student")
        if verdict is not None and wanted(verdict, samples[i]):
            return i
    raise SystemExit("no candidate drawing gives the wanted answer on the canvas")


def save(widget, path: Path) -> None:
    """Grab a widget into a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not widget.grab().save(str(path)):
        raise SystemExit(f"could not write {path}")
    print("wrote", path, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Make the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--skip-personalize", action="store_true")
    parser.add_argument(
        "--correct",
        type=int,
        metavar="INDEX",
        help="dev-set sample shown being corrected (default: the first the student misreads, sure of itself, "
        "and the teacher reads right; plain digits before European-styled zeros, ones and sevens)",
    )
    args = parser.parse_args(argv)

    app = QApplication.instance() or QApplication(sys.argv)
    from app.gui.draw_tab import DrawTab
    from app.gui.personal import PersonalSetDialog
    from core.nondigits import generate
    from core.personal import PersonalSet
    from core.strokes import load_drawn, render_inputs

    tmp = Path(tempfile.mkdtemp(prefix="dd-shots-"))
    store = PersonalSet(tmp / "personal" / "strokes.npz")
    tab = DrawTab(runs_root=tmp / "runs", personal_set=store)
    tab.resize(1280, 820)
    tab.show()
    pump(app, 0.5)

    scribble, _ = generate(1, ["hatch"], seed=4)
    draw(app, tab, scribble[0])
    save(tab, args.out / "draw-not-a-digit.png")

    samples = load_drawn(DRAWN)
    student = tab.student_picker.classifier()
    from core.trust import Trust

    trust = Trust.from_metadata(student.metadata)
    x = render_inputs(samples)
    verdicts = trust.assess(x, student.logits(x))
    unsure = [i for i, v in enumerate(verdicts) if v.unsure and not v.not_a_digit]
    wrong_sure = [
        i
        for i, v in enumerate(verdicts)
        if v.digit != samples[i].label and not v.unsure and not v.not_a_digit
    ]
    draw_first(app, tab, samples, unsure, lambda v, _: v.unsure and not v.not_a_digit)
    save(tab, args.out / "draw-not-sure.png")

    # A digit the student reads wrong: the person clicks the right digit; it goes to the personal set. The
    # teacher reading it right is the sign that the drawing is a fair example of its digit, not a mislabel.
    teacher_reads = tab.teacher_picker.classifier().predict(x)
    # Plain digits first: a European-styled one or zero can look odd to readers used to other styles.
    fair = sorted(
        (j for j in wrong_sure if teacher_reads[j] == samples[j].label),
        key=lambda j: samples[j].label in (0, 1, 7),
    )
    i = draw_first(
        app,
        tab,
        samples,
        [args.correct] if args.correct is not None else fair + wrong_sure,
        lambda v, sample: v.digit != sample.label and not v.unsure and not v.not_a_digit,
    )
    print(
        f"correcting dev sample {i}: a {samples[i].label} the student reads as {tab.verdicts['student'].digit}",
        flush=True,
    )
    tab.personal_panel.digit_buttons[samples[i].label].click()
    pump(app, 0.2)
    save(tab, args.out / "draw-corrected.png")

    writer = [s for s in samples if s.writer == "pe_3828"]
    for sample in writer[::2]:
        store.add(sample.strokes, sample.label)
    tab.personal_panel.refresh()
    dialog = PersonalSetDialog(store, tab)
    dialog.resize(640, 460)
    dialog.show()
    pump(app, 0.3)
    for row in (1, 4):
        dialog.list.item(row).setSelected(True)
    pump(app, 0.2)
    save(dialog, args.out / "personal-review.png")
    dialog.close()

    gallery = tab.failure_gallery()
    gallery.resize(900, 700)
    gallery.show()
    gallery.check()
    wait_for(app, lambda: gallery.outcome is not None, 900)
    pump(app, 0.5)
    save(gallery, args.out / "gallery.png")
    gallery.close()

    if not args.skip_personalize:
        panel = tab.personal_panel
        reports = []
        panel.personalized.connect(lambda path: reports.append(path))
        panel.start_personalize(tmp / "model", runs_root=tmp / "runs")
        wait_for(app, lambda: panel.progress.value() >= 1, 1800)
        pump(app, 0.3)
        save(tab, args.out / "personalize-running.png")
        wait_for(app, lambda: reports or not panel.runner.is_running(), 3600)
        pump(app, 0.5)
        draw(app, tab, samples[i].strokes)
        save(tab, args.out / "personalize-done.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
