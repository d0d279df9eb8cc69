"""``digit-distill quantize``: INT8 versions of an ONNX model (dynamic and static), with size, latency, accuracy."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from app.commands import CommandError
from app.commands.common import (
    add_data_args,
    add_json_arg,
    existing_path,
    load_data,
    print_results,
    recorded_command,
)
from core import validation as fields
from core.fileio import atomic_write_json
from core.inference import InvalidModelError, OnnxClassifier
from core.quantize import QuantizationError, compare, format_rows


def register(subparsers) -> None:
    """Add the ``quantize`` subcommand."""
    p = subparsers.add_parser(
        "quantize",
        description=(
            "Write dynamic and static (calibrated on training images) INT8 versions of an ONNX digit model to "
            "DIR and measure size, single-image latency (1 thread), throughput and test accuracy of all three."
        ),
    )
    p.add_argument("model", type=existing_path, metavar="MODEL.onnx", help="float32 ONNX model")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the INT8 files")
    p.add_argument(
        "--calibration-samples",
        type=fields.CALIBRATION_SAMPLES.argtype,
        default=500,
        help="training images for static calibration",
    )
    p.add_argument(
        "--test-samples",
        type=fields.TEST_SAMPLES.argtype,
        help="measure accuracy on the first N test images only",
    )
    p.add_argument(
        "--repeats",
        type=fields.LATENCY_REPEATS.argtype,
        default=500,
        help="single-image calls timed for the latency",
    )
    p.add_argument("--drawn", type=existing_path, metavar="NPZ", help="also measure on this drawn-digits set")
    add_data_args(p)
    add_json_arg(p)
    p.set_defaults(func=run)


def _drawn_inputs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from core.drawn import DrawnDigits

    drawn = DrawnDigits(path)
    return drawn.render(), drawn.labels


def run(args: argparse.Namespace) -> int:
    """Quantize and measure."""
    if args.calibration_samples < 1:
        raise CommandError("--calibration-samples must be at least 1")
    try:
        OnnxClassifier(args.model)  # a clear error before loading any data
    except InvalidModelError as exc:
        raise CommandError(str(exc)) from None
    data = load_data(args)
    drawn = _drawn_inputs(args.drawn) if args.drawn else None
    try:
        rows = compare(
            args.model,
            args.out,
            data,
            calibration_samples=args.calibration_samples,
            drawn=drawn,
            test_samples=args.test_samples,
            repeats=args.repeats,
        )
    except (QuantizationError, InvalidModelError) as exc:
        raise CommandError(str(exc)) from None
    command = getattr(args, "command_line", "") or recorded_command("quantize")
    result = {"model": str(args.model), "command": command, "rows": rows}
    atomic_write_json(args.out / "quantize.json", result)
    print_results(
        args,
        result,
        lambda r: format_rows(r["rows"], args.model.stem),
        args.out / "quantize.json",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m app.commands.quantize MODEL --out DIR ...``: the same command without the CLI front end."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m app.commands.quantize")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["quantize", *argv])
    args.command_line = "python -m app.commands.quantize " + shlex.join(argv)
    try:
        return run(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
