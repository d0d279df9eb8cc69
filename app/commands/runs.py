"""``digit-distill runs``: list the run folders with their results."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.commands.common import add_json_arg, print_json
from core import runs


def register(subparsers) -> None:
    """Add the ``runs`` subcommand."""
    p = subparsers.add_parser("runs", description="List run folders, newest first.")
    p.add_argument(
        "--runs-dir",
        type=Path,
        help="folder holding the runs (default: $DIGIT_DISTILL_RUNS or the user data dir)",
    )
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print a table (or JSON lines) of the runs."""
    infos = runs.list_runs(args.runs_dir)
    if args.json:
        for r in infos:
            print_json(
                {
                    "run_dir": str(r.path),
                    "role": r.role,
                    "preset": r.preset,
                    "created": r.created,
                    "test_accuracy": r.test_accuracy,
                    "params": r.params,
                    "epochs_done": r.epochs_done,
                    "epochs": r.epochs,
                    "finished": r.finished,
                    "onnx": str(r.onnx_path) if r.onnx_path else None,
                    "kd": r.kd,
                }
            )
        return 0
    if not infos:
        print(f"no runs in {args.runs_dir or runs.default_runs_root()}")
        return 0
    print(f"{'run':<40} {'role':<10} {'accuracy':>9} {'params':>10} {'epochs':>7}  onnx")
    for r in infos:
        acc = f"{r.test_accuracy:.2%}" if r.test_accuracy is not None else "-"
        state = f"{r.epochs_done}/{r.epochs}" + ("" if r.finished else "*")
        print(
            f"{r.name:<40} {r.role:<10} {acc:>9} {r.params:>10,} {state:>7}  {'yes' if r.onnx_path else 'no'}"
        )
    if any(not r.finished for r in infos):
        print("* unfinished: resume with `digit-distill <command> --resume RUN_DIR`")
    return 0
