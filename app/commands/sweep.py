"""``digit-distill sweep``: the distilled student over a temperature x alpha grid, beside the plain student."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.commands import CommandError
from app.commands.common import (
    ConsoleProgress,
    add_data_args,
    add_json_arg,
    existing_path,
    print_json,
    recorded_command,
)
from core import validation as fields
from core.experiments import (
    DEFAULT_ALPHAS,
    DEFAULT_TEMPERATURES,
    ExperimentStopped,
    SweepSpec,
    format_sweep,
    sweep,
)
from core.recipes import RECIPES


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def register(subparsers) -> None:
    """Add the ``sweep`` subcommand."""
    p = subparsers.add_parser(
        "sweep",
        description=(
            "Train the student trained normally and one distilled student per (temperature, alpha), without "
            "augmentation and with the teacher's logits computed once; write DIR/sweep.json and print the grid. "
            "--workers N fans the runs out over N processes."
        ),
    )
    p.add_argument(
        "--teacher", type=existing_path, required=True, metavar="RUN_DIR", help="trained teacher run"
    )
    p.add_argument(
        "--recipe", default="strong", choices=sorted(RECIPES), help="students' recipe (default: strong)"
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="results folder")
    p.add_argument(
        "--temperatures",
        type=_floats,
        default=list(DEFAULT_TEMPERATURES),
        help="comma-separated (default: %(default)s)",
    )
    p.add_argument(
        "--alphas", type=_floats, default=list(DEFAULT_ALPHAS), help="comma-separated (default: %(default)s)"
    )
    p.add_argument("--seeds", type=fields.SEEDS.argtype, default=1, help="seeds per cell (default: 1)")
    p.add_argument("--epochs", type=int, help="epochs per run (default: the recipe's)")
    p.add_argument("--max-train-samples", type=int, help="quick mode: train on a fixed random subset")
    p.add_argument(
        "--workers", type=fields.WORKERS.argtype, default=1, help="processes to run jobs in (default: 1)"
    )
    p.add_argument(
        "--threads",
        type=fields.THREADS.argtype,
        default=0,
        help="torch threads per worker (default: cores / workers)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, ...")
    add_data_args(p)
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the sweep as the arguments say."""
    import os

    if args.workers < 1 or args.seeds < 1:
        raise CommandError("--workers and --seeds must be at least 1")
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    spec = SweepSpec(
        recipe=args.recipe,
        teacher=args.teacher,
        data_dir=args.data_dir,
        out_dir=args.out,
        epochs=args.epochs,
        max_train_samples=args.max_train_samples,
        device=args.device,
        threads=threads,
    )

    def on_job(row: dict, done: int, total: int) -> None:
        what = "student" if row["alpha"] is None else f"T={row['temperature']:g} alpha={row['alpha']:g}"
        print(
            f"[{done}/{total}] {what} seed {row['seed']}: {row['accuracy']:.2%} ({row['seconds']:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    command = recorded_command("sweep")
    try:
        with ConsoleProgress(quiet=True) as progress:
            result = sweep(
                spec, args.temperatures, args.alphas, args.seeds, args.workers, progress, on_job, command
            )
    except ExperimentStopped as exc:
        print(str(exc), file=sys.stderr)
        return 130
    if args.json:
        print_json(result)
    else:
        print(format_sweep(result))
        print(f"results: {args.out / 'sweep.json'}")
    return 0
