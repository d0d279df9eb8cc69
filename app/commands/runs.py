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
    from core import comparisons

    infos = runs.list_runs(args.runs_dir)
    complete = [r for r in infos if r.finished]
    compared = {r.path: comparisons.compare(r, complete) for r in complete if r.role == "distilled"}
    if args.json:
        for r in infos:
            c = compared.get(r.path)
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
                    "message": r.message,
                    "baseline": c.student.name if c and c.student else None,
                    "teacher_run": c.teacher.name if c and c.teacher else None,
                    "kd_gain": c.gain if c else None,
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
        if r.path in compared:
            print(f"{'':<4}{_comparison_line(compared[r.path])}")
    if any(r.status == "stopped" for r in infos):
        print("stopped runs continue with `digit-distill <train-teacher|train-student|distill> --resume RUN`")
    return 0


def _comparison_line(c) -> str:
    """A distilled run against its own teacher and its matching baseline (never an unrelated run)."""
    parts = []
    if c.teacher is not None and c.teacher.test_accuracy is not None:
        gap = c.teacher.test_accuracy - c.distilled.test_accuracy
        parts.append(f"teacher {c.teacher.name} {c.teacher.test_accuracy:.2%} (gap {100 * gap:.2f} pp)")
    if c.gain is not None:
        parts.append(f"KD gain {100 * c.gain:+.2f} pp vs {c.student.name} ({c.student.test_accuracy:.2%})")
    if c.note:
        parts.append(c.note)
    return "; ".join(parts)
