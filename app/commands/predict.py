"""``digit-distill predict``: classify image files with an exported ONNX model."""

from __future__ import annotations

import argparse
import json
import sys

from core.inference import InvalidModelError, OnnxClassifier
from core.preprocess import EmptyImageError, ImageReadError, load_image, to_mnist

from . import CommandError


def register(subparsers) -> None:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="classify digit images with an ONNX model",
        description=(
            "Classify PNG/JPEG images of single handwritten digits (any size, dark ink on a light background, "
            "or light on dark) with an exported ONNX model. Each image is preprocessed like MNIST first."
        ),
    )
    parser.add_argument(
        "--model", required=True, metavar="PATH.onnx", help="ONNX model (digit-distill export)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per image and line: {"file", "digit", "probabilities"}',
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files to classify")
    parser.set_defaults(func=run)


def _format_line(file: str, probs: list[float]) -> str:
    ranked = sorted(range(10), key=lambda d: probs[d], reverse=True)
    best, second = ranked[0], ranked[1]
    return f"{file}: {best} ({probs[best]:.1%}; next {second} {probs[second]:.1%})"


def run(args: argparse.Namespace) -> int:
    """Classify each image; images that cannot be read are reported on stderr and make the exit status 1."""
    try:
        classifier = OnnxClassifier(args.model)
    except InvalidModelError as exc:
        raise CommandError(str(exc)) from None

    failed = 0
    for file in args.images:
        try:
            x = to_mnist(load_image(file))
        except ImageReadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        except EmptyImageError:
            print(f"error: {file}: blank image, no digit found", file=sys.stderr)
            failed += 1
            continue
        except ValueError as exc:
            print(f"error: {file}: {exc}", file=sys.stderr)
            failed += 1
            continue
        probs = [float(p) for p in classifier.probabilities(x)[0]]
        digit = max(range(10), key=probs.__getitem__)
        if args.json:
            print(json.dumps({"file": file, "digit": digit, "probabilities": probs}), flush=True)
        else:
            print(_format_line(file, probs), flush=True)
    if failed:
        print(f"{failed} of {len(args.images)} images could not be classified", file=sys.stderr)
        return 1
    return 0
