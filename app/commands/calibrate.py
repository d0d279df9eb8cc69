"""``digit-distill calibrate``: fit "not sure" and "not a digit" for ONNX models and store them in the files."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.commands import CommandError
from app.commands.common import (
    DEFAULT_DRAWN,
    ConsoleProgress,
    add_data_args,
    add_json_arg,
    existing_path,
    load_data,
    print_json,
    recorded_command,
)

EVAL_NONDIGITS = 1800
EVAL_SEED = 1


def register(subparsers) -> None:
    """Add the ``calibrate`` subcommand."""
    p = subparsers.add_parser(
        "calibrate",
        help="fit calibration and the not-a-digit check of ONNX models (stored in the files)",
        description=(
            "Fit temperature scaling on held-out MNIST training images, an 'unsure' threshold and a "
            "not-a-digit gate (trained on generated scribbles, letters and shapes), and store them in each "
            "model's ONNX metadata. Re-run it whenever a model changes. With --report, also measure the "
            "calibration error before/after on MNIST test and drawn digits, and how many drawn digits and "
            "held-out generated non-digits (another seed) are flagged."
        ),
    )
    p.add_argument("models", nargs="+", type=existing_path, metavar="MODEL.onnx", help="models to calibrate")
    p.add_argument(
        "--out",
        type=Path,
        metavar="PATH.onnx",
        help="write the calibrated model here (one model only; default: update the file in place)",
    )
    p.add_argument("--report", type=Path, metavar="FILE.json", help="measure and write the figures here")
    p.add_argument(
        "--drawn",
        type=existing_path,
        metavar="STROKES_NPZ",
        help="drawn digits for the report (default: ../shared/data/drawn-digits-dev/strokes.npz if present)",
    )
    p.add_argument(
        "--leave-one-family-out",
        action="store_true",
        help="report: also refit without each non-digit family and measure that family (unseen kinds)",
    )
    p.add_argument(
        "--measure-only",
        action="store_true",
        help="fit nothing: measure the calibration already stored in each model (needs --report)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="fit on a small sample (for trying the command; figures are rough)",
    )
    add_data_args(p)
    add_json_arg(p)
    p.set_defaults(func=run)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Fit, store, and optionally measure."""
    from core import trust as tr
    from core.inference import InvalidModelError, OnnxClassifier

    if args.out is not None and len(args.models) != 1:
        raise CommandError("--out needs exactly one model (without it each file is updated in place)")
    drawn_path = args.drawn or (DEFAULT_DRAWN if DEFAULT_DRAWN.is_file() else None)
    if args.report is not None and drawn_path is None:
        raise CommandError("--report needs drawn digits: pass --drawn STROKES_NPZ")
    classifiers = []
    for path in args.models:
        try:
            classifiers.append(OnnxClassifier(path, threads=0))
        except InvalidModelError as exc:
            raise CommandError(str(exc)) from None

    if args.measure_only and args.report is None:
        raise CommandError("--measure-only needs --report FILE.json")
    stored: dict[Path, tr.Trust] = {}
    if args.measure_only:
        for path in args.models:
            try:
                found = tr.read_trust(path)
            except tr.TrustError as exc:
                raise CommandError(f"{path}: {exc}") from None
            if found is None:
                raise CommandError(f"{path} has no calibration to measure: run digit-distill calibrate on it")
            stored[path] = found
    settings = tr.TrustSettings()
    if args.quick:
        settings = tr.TrustSettings(holdout=(59500, 60000), nondigits=270, steps=200)
    start = time.perf_counter()
    data = load_data(args)
    fit = None if args.measure_only else tr.fit_data(data, settings, progress=ConsoleProgress())

    evaluation = None
    if args.report is not None and drawn_path is not None:  # checked above: a report needs drawn digits
        from core.nondigits import FAMILIES, generate
        from core.strokes import load_drawn

        _say(f"rendering drawn digits from {drawn_path} and {EVAL_NONDIGITS} non-digits (seed {EVAL_SEED})")
        samples = load_drawn(drawn_path)
        if args.quick:
            samples = samples[:: max(1, len(samples) // 300)]
        n_eval = EVAL_NONDIGITS // (6 if args.quick else 1)
        drawings, families = generate(n_eval, list(FAMILIES), seed=EVAL_SEED)
        evaluation = {
            "test_images": data.test_images.numpy(),
            "test_labels": data.test_labels.numpy(),
            "drawn_images": tr.render_drawings([s.strokes for s in samples]),
            "drawn_labels": np.array([s.label for s in samples]),
            "nondigit_images": tr.render_drawings(drawings),
            "nondigit_families": np.asarray(families),
        }

    results = []
    for path, classifier in zip(args.models, classifiers):
        if fit is None:  # --measure-only
            fitted, out = stored[path], path
        else:
            _say(f"fitting {path}")
            fitted = tr.fit_trust(classifier, fit, settings)
            fitted.fitted["command"] = recorded_command("calibrate")
            out = tr.write_trust(path, fitted, args.out)
        entry = {"model": str(path), "written": str(out), **tr.summary(fitted)}
        if evaluation is not None:
            entry["evaluation"] = tr.evaluate_trust(classifier, fitted, **evaluation)
            if args.leave_one_family_out and fit is not None:
                entry["leave_one_family_out"] = _leave_one_out(tr, classifier, fit, settings, evaluation)
        results.append(entry)
        _say(f"  T = {fitted.temperature:.3f}, " + ("measured" if args.measure_only else f"written to {out}"))
    report = {
        "command": recorded_command("calibrate"),
        "drawn_set": str(drawn_path) if drawn_path else None,
        "eval_nondigit_seed": EVAL_SEED,
        "seconds": round(time.perf_counter() - start, 1),
        "models": results,
    }
    if args.report is not None:
        from core.fileio import atomic_write_json

        atomic_write_json(args.report, report)
    if args.json:
        print_json(report)
    return 0


def _leave_one_out(tr, classifier, fit, settings, evaluation) -> dict[str, Any]:
    """Per family: refit without it, then the share of that family flagged and of drawn digits flagged."""
    families = evaluation["nondigit_families"]
    out = {}
    for family in sorted(set(families.tolist())):
        _say(f"  leaving out {family}")
        fitted = tr.fit_trust(classifier, fit, settings, exclude_families=(family,))
        sel = families == family
        x = evaluation["nondigit_images"][sel]
        flagged = [v.not_a_digit for v in fitted.assess(x, classifier.logits(x))]
        xd = evaluation["drawn_images"]
        drawn_flagged = [v.not_a_digit for v in fitted.assess(xd, classifier.logits(xd))]
        out[family] = {"flagged": float(np.mean(flagged)), "drawn_flagged": float(np.mean(drawn_flagged))}
    return out
