"""``digit-distill runs``: list the run folders with their results."""

from __future__ import annotations

import argparse

from app.commands.common import add_json_arg, add_runs_dir_arg, print_json
from core import runs


def register(subparsers) -> None:
    """Add the ``runs`` subcommand."""
    p = subparsers.add_parser("runs", description="List run folders, newest first.")
    add_runs_dir_arg(p)
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
                    "status": r.status,
                    "recipe": r.recipe,
                    "name": r.name,
                    "onnx": str(r.onnx_path) if r.onnx_path else None,
                    "kd": r.kd,
                }
            )
        return 0
    if not infos:
        print(f"no runs in {args.runs_dir or runs.default_runs_root()}")
        return 0
    print(f"{'run':<40} {'status':<9} {'accuracy':>9} {'params':>10} {'epochs':>7}  onnx")
    for r in infos:
        acc = f"{r.test_accuracy:.2%}" if r.test_accuracy is not None else "-"
        print(
            f"{r.name:<40} {r.status:<9} {acc:>9} {r.params:>10,} {f'{r.epochs_done}/{r.epochs}':>7}  "
            f"{'yes' if r.onnx_path else 'no'}"
        )
    if any(r.status == "stopped" for r in infos):
        print("stopped runs continue with `digit-distill <train-teacher|train-student|distill> --resume RUN`")
    return 0
