"""``digit-distill evaluate``: accuracy of a checkpoint or ONNX model on MNIST's test set (and drawn digits)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.commands.common import (
    add_data_args,
    add_json_arg,
    add_runs_dir_arg,
    existing_path,
    load_data,
    print_json,
    run_path,
)
from core import runs
from core.inference import OnnxClassifier
from core.training import evaluate


def register(subparsers) -> None:
    """Add the ``evaluate`` subcommand."""
    p = subparsers.add_parser(
        "evaluate",
        description="Accuracy on the 10,000 MNIST test images, and optionally on digits drawn by people "
        "(a strokes .npz such as ../shared/data/drawn-digits-dev/strokes.npz).",
    )
    p.add_argument(
        "model", help="run (a name from `digit-distill runs` or a folder), checkpoint.pt or .onnx file"
    )
    p.add_argument("--drawn", type=existing_path, metavar="STROKES_NPZ", help="also evaluate on drawn digits")
    add_runs_dir_arg(p)
    add_data_args(p)
    add_json_arg(p)
    p.set_defaults(func=run)


def _onnx_path(model: Path) -> Path | None:
    if model.suffix == ".onnx":
        return model
    if model.is_dir() and (model / runs.ONNX).exists():
        return model / runs.ONNX
    return None


def run(args: argparse.Namespace) -> int:
    """Evaluate the model and print the accuracies."""
    args.model = run_path(args.model, args.runs_dir)
    data = load_data(args)
    result: dict[str, Any] = {"model": str(args.model)}
    start = time.perf_counter()
    if args.model.suffix == ".onnx":
        classifier = OnnxClassifier(args.model, threads=0)
        predictions = classifier.predict(data.test_images.numpy())
        result["accuracy"] = float(np.mean(predictions == data.test_labels.numpy()))
        result["metadata"] = classifier.metadata
    else:
        model, meta = runs.load_checkpoint(args.model)
        result["accuracy"] = evaluate(model, data.test_images, data.test_labels)
        result.update({"role": meta["role"], "preset": meta["preset"]})
    result["seconds"] = round(time.perf_counter() - start, 3)
    if args.drawn:
        from core.strokes import evaluate_drawn

        onnx_path = _onnx_path(args.model)
        if onnx_path is None:
            onnx_path = runs.export_run(args.model, data).path
        drawn = evaluate_drawn(OnnxClassifier(onnx_path), args.drawn)
        result["drawn_accuracy"] = drawn["accuracy"]
        result["drawn_samples"] = drawn["n"]
    if args.json:
        print_json(result)
    else:
        print(f"{args.model}: MNIST test accuracy {result['accuracy']:.2%}")
        if args.drawn:
            print(f"drawn digits: {result['drawn_accuracy']:.2%} of {result['drawn_samples']}")
    return 0
