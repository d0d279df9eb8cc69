"""``digit-distill predict``: classify image files with an exported ONNX model."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from core.bundled import bundled_model
from core.inference import InvalidModelError, OnnxClassifier
from core.preprocess import EmptyImageError, ImageReadError, load_image, to_mnist
from core.sanity import check_model
from core.trust import Trust, TrustError, Verdict, softmax

from . import CommandError


def register(subparsers) -> None:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        description=(
            "Classify PNG/JPEG images of single handwritten digits (any size, dark ink on a light background, "
            "or light on dark) with an exported ONNX model. Each image is preprocessed like MNIST first."
        ),
    )
    parser.add_argument(
        "--model",
        metavar="PATH.onnx",
        help="ONNX model (digit-distill export; default: the bundled student)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help=(
            'one JSON object per image and line: {"file", "digit", "probabilities", "confidence", "unsure", '
            '"runner_up", "not_a_digit"} or {"file", "error"}; "confidence" (calibrated), "unsure", '
            '"runner_up" and "not_a_digit" are null for a model without calibration (digit-distill calibrate)'
        ),
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files to classify")
    parser.set_defaults(func=run)


def _format_line(file: str, probs: list[float], verdict: Verdict | None) -> str:
    ranked = sorted(range(10), key=lambda d: probs[d], reverse=True)
    best, second = ranked[0], ranked[1]
    answer = str(best) if verdict is None else verdict.text
    return f"{file}: {answer} ({best} {probs[best]:.1%}; next {second} {probs[second]:.1%})"


def _classify(classifier: OnnxClassifier, file: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(28, 28)`` input and the logits for one image file.

    Raises :class:`ValueError` (with a message naming the file) when it fails.
    """
    try:
        x = to_mnist(load_image(file))
    except EmptyImageError:
        raise ValueError(f"{file}: blank image, no digit found") from None
    except ImageReadError:
        raise
    except ValueError as exc:
        raise ValueError(f"{file}: {exc}") from None
    return x, classifier.logits(x)


def run(args: argparse.Namespace) -> int:
    """Classify every image it can; each one that fails is reported on its own line; exit status 1 if any failed.

    With ``--json`` every image gives one line on stdout, ``{"file", "digit", "probabilities", "confidence",
    "unsure", "runner_up", "not_a_digit"}`` or
    ``{"file", "error"}``; without it, failures go to stderr as ``error: FILE: reason``.
    """
    model = args.model if args.model is not None else bundled_model("student")
    try:
        classifier = OnnxClassifier(model)
        sanity = check_model(classifier)
        trust = Trust.from_metadata(classifier.metadata)
    except (InvalidModelError, TrustError) as exc:
        raise CommandError(f"{model}: {exc}" if isinstance(exc, TrustError) else str(exc)) from None
    if sanity.warning:
        print(f"warning: {sanity.warning}", file=sys.stderr, flush=True)
    if trust is None:
        print(
            f"note: {model} has no calibration, so no 'not sure' or 'not a digit' "
            "(add them with digit-distill calibrate)",
            file=sys.stderr,
        )

    failed = 0
    for file in args.images:
        try:
            x, logits = _classify(classifier, file)
        except ValueError as exc:
            failed += 1
            if args.json:
                print(json.dumps({"file": file, "error": str(exc)}), flush=True)
            else:
                print(f"error: {exc}", file=sys.stderr, flush=True)
            continue
        probs = [float(p) for p in softmax(logits)[0]]
        digit = max(range(10), key=probs.__getitem__)
        verdict = None if trust is None else trust.assess(x, logits)[0]
        if args.json:
            record = {
                "file": file,
                "digit": digit,
                "probabilities": probs,
                "confidence": None if verdict is None else verdict.confidence,
                "unsure": None if verdict is None else verdict.unsure,
                "runner_up": None if verdict is None else verdict.runner_up,
                "not_a_digit": None if verdict is None else verdict.not_a_digit,
            }
            print(json.dumps(record), flush=True)
        else:
            print(_format_line(file, probs, verdict), flush=True)
    if failed:
        print(f"{failed} of {len(args.images)} images could not be classified", file=sys.stderr)
        return 1
    return 0
