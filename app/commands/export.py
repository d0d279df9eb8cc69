"""``digit-distill export``: a run or checkpoint to ONNX (opset 11), verified against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.commands.common import add_data_args, add_json_arg, add_runs_dir_arg, load_data, print_json, run_path
from core import runs


def register(subparsers) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        description="Export to ONNX at opset 11 (what the Atlas 200 DK's ATC accepts): input 'input' "
        "(batch, 1, 28, 28) in [0, 1], output 'logits'; onnxruntime is checked against PyTorch on 1,000 test images.",
    )
    p.add_argument("model", help="run (a name from `digit-distill runs` or a folder) or checkpoint.pt")
    p.add_argument("-o", "--output", type=Path, help="ONNX file to write (default: <run>/model.onnx)")
    add_runs_dir_arg(p)
    add_data_args(p)
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export and print where the file went and how well it matches PyTorch."""
    model = run_path(args.model, args.runs_dir)
    runs.read_checkpoint(model)  # a wrong file fails here, before MNIST is loaded (or downloaded)
    data = load_data(args)
    report = runs.export_run(model, data, args.output)
    result = {
        "onnx": str(report.path),
        "bytes": report.bytes,
        "opset": report.opset,
        "max_abs_diff": report.max_abs_diff,
        "verified_images": report.n_verified,
    }
    if args.json:
        print_json(result)
    else:
        print(
            f"wrote {report.path} ({report.bytes:,} bytes, opset {report.opset}); onnxruntime vs PyTorch on "
            f"{report.n_verified} images: max |diff| {report.max_abs_diff:.2e}"
        )
    return 0
