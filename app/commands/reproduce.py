"""``digit-distill reproduce``: the paper's experiment (teacher, plain student, distilled student) over seeds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.commands import CommandError
from app.commands.common import (
    DEFAULT_DRAWN,
    ConsoleProgress,
    add_data_args,
    add_json_arg,
    existing_path,
    load_data,
    print_results,
    recorded_command,
)
from core import validation as fields
from core.experiments import ExperimentStopped
from core.experiments.report import format_table
from core.experiments.reproduce import ReproduceOptions, reproduce
from core.recipes import RECIPES


def register(subparsers) -> None:
    """Add the ``reproduce`` subcommand."""
    p = subparsers.add_parser(
        "reproduce",
        description=(
            "Train the teacher once, then for each seed the student trained normally and the distilled student "
            "with the same epochs, optimiser and augmentation; write DIR/results.json and print the table beside "
            "the paper's numbers. Job folders go to DIR/runs; running the same command again continues an "
            "interrupted reproduction."
        ),
    )
    p.add_argument("--recipe", default="strong", choices=sorted(RECIPES), help="recipe (default: strong)")
    p.add_argument("--seeds", type=fields.SEEDS.argtype, default=3, help="student seeds (default: 3)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="results folder")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, ...")
    p.add_argument(
        "--teacher",
        type=existing_path,
        metavar="RUN_DIR",
        help="reuse this trained teacher instead of training one",
    )
    p.add_argument("-T", "--temperature", type=float, help="distillation temperature (default: the recipe's)")
    p.add_argument("--alpha", type=float, help="soft-loss weight (default: the recipe's)")
    p.add_argument("--max-train-samples", type=int, help="quick mode: train on a fixed random subset")
    p.add_argument(
        "--epochs-scale",
        type=fields.EPOCHS_SCALE.argtype,
        default=1.0,
        help="quick mode: multiply every job's epochs",
    )
    p.add_argument(
        "--drawn",
        type=Path,
        default=DEFAULT_DRAWN,
        metavar="NPZ",
        help="drawn-digits set to measure every model on (default: ../shared/data/drawn-digits-dev; "
        "skipped when missing)",
    )
    p.add_argument("--no-drawn", action="store_true", help="do not measure accuracy on drawn digits")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    add_data_args(p)
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Reproduce the experiment as the arguments say."""
    if args.seeds < 1:
        raise CommandError(f"--seeds must be at least 1, got {args.seeds}")
    drawn = None if args.no_drawn or not args.drawn.is_file() else args.drawn
    if drawn is None and not args.no_drawn:
        print(f"note: no drawn digits at {args.drawn}; skipping that measure", file=sys.stderr)
    options = ReproduceOptions(
        seeds=args.seeds,
        device=args.device,
        epochs_scale=args.epochs_scale,
        max_train_samples=args.max_train_samples,
        teacher=args.teacher,
        temperature=args.temperature,
        alpha=args.alpha,
        drawn_path=drawn,
        command=recorded_command("reproduce"),
    )
    data = load_data(args)
    print(f"results folder: {args.out}", file=sys.stderr)
    try:
        with ConsoleProgress(quiet=args.quiet) as progress:
            results = reproduce(args.recipe, args.out, data, options, progress)
    except ExperimentStopped as exc:
        print(str(exc), file=sys.stderr)
        return 130
    print_results(args, results, format_table, args.out / "results.json")
    return 0
