"""``digit-distill sweep``: temperature and alpha for the distilled student, chosen on a validation split.

A sweep is an Optuna study (:mod:`core.sweep`): a grid (default) or ``--search N`` trials. Its storage is a
SQLite file in ``--out DIR`` unless ``--storage URL`` names a database; running the same command again, here or
on other machines against the same storage, continues the same study. ``--report DIR`` prints a study's table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.commands import CommandError
from app.commands.common import (
    ConsoleProgress,
    add_data_args,
    add_json_arg,
    add_runs_dir_arg,
    load_data,
    print_results,
    recorded_command,
    run_path,
)
from core import validation as fields
from core.recipes import RECIPES

# Defaults repeated from core.sweep would import optuna and torch at start-up; the help text names them instead.
_GRID_HELP = "default: 1,2,4,6,10,20"
_ALPHAS_HELP = "default: 0.1,0.5,0.9"


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _range(text: str) -> tuple[float, float]:
    values = _floats(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX, got {text!r}")
    return values[0], values[1]


def register(subparsers) -> None:
    """Add the ``sweep`` subcommand."""
    p = subparsers.add_parser(
        "sweep",
        description=(
            "Distil the student with several temperatures and alphas and choose them on a validation split held "
            "out from the training set (the last --validation images); the test accuracy of the chosen settings "
            "is reported separately. Each trial is one training job (run folders in DIR/runs) and the plain "
            "student of the same recipe is trained per seed as the baseline. The sweep is an Optuna study in "
            "DIR/study.db (or --storage URL): the same command run again continues it, and the same command "
            "run on several machines against one PostgreSQL/MySQL storage shares it (no cell runs twice). "
            "optuna-dashboard URL shows a study live (a separate install)."
        ),
    )
    p.add_argument(
        "--teacher", metavar="RUN", help="trained teacher run (a name from `digit-distill runs` or a path)"
    )
    p.add_argument(
        "--recipe", default="strong", choices=sorted(RECIPES), help="students' recipe (default: strong)"
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="sweep folder: run folders, study.db, sweep.json")
    p.add_argument("--temperatures", type=_floats, help=f"grid, comma-separated ({_GRID_HELP})")
    p.add_argument("--alphas", type=_floats, help=f"grid, comma-separated ({_ALPHAS_HELP})")
    p.add_argument("--seeds", type=fields.SEEDS.argtype, default=1, help="seeds per grid cell (default: 1)")
    p.add_argument(
        "--search",
        type=fields.SEARCH_TRIALS.argtype,
        metavar="N",
        help="instead of the grid: N trials of Optuna's default sampler over T in [1, 20] (log) and alpha in "
        "[0, 1], with pruning on the per-epoch validation accuracy",
    )
    p.add_argument(
        "--search-lr", type=_range, metavar="MIN,MAX", help="with --search: also the learning rate (log)"
    )
    p.add_argument("--search-epochs", type=_range, metavar="MIN,MAX", help="with --search: also the epochs")
    p.add_argument("--epochs", type=int, help="epochs per run (default: the recipe's)")
    p.add_argument("--max-train-samples", type=int, help="quick mode: train on a fixed random subset")
    p.add_argument(
        "--validation",
        type=fields.VALIDATION_IMAGES.argtype,
        default=5000,
        metavar="N",
        help="validation images held out from the end of the training set (default: 5000)",
    )
    p.add_argument(
        "--storage",
        metavar="URL",
        help="study database (default: sqlite in DIR), e.g. postgresql://user:password@host/db for many machines",
    )
    p.add_argument(
        "--study", default="sweep", metavar="NAME", help="study name in the storage (default: sweep)"
    )
    p.add_argument(
        "--workers", type=fields.WORKERS.argtype, default=1, help="Optuna worker processes here (default: 1)"
    )
    p.add_argument(
        "--threads",
        type=fields.THREADS.argtype,
        default=0,
        help="torch threads per worker (default: cores / workers)",
    )
    p.add_argument(
        "--heartbeat",
        type=fields.HEARTBEAT.argtype,
        default=20,
        metavar="SECONDS",
        help="a trial whose process is silent for 3x this long is taken over by another worker (default: 20)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, ...")
    p.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="only print the study of DIR (or of --storage/--study) and write DIR/sweep.json; trains nothing",
    )
    add_runs_dir_arg(p)
    add_data_args(p)
    add_json_arg(p)
    p.set_defaults(func=run)


class TrialLines(ConsoleProgress):
    """The sweep's progress on stderr: one line per finished trial; Ctrl+C stops as :class:`ConsoleProgress` does.

    ``--workers`` processes report to a copy of it (pickled without the saved Ctrl+C handler).
    """

    def on_batch(self, info: dict[str, Any]) -> None:  # noqa: D102
        pass

    def on_epoch(self, info: dict[str, Any]) -> None:  # noqa: D102
        from core.sweep import is_trial_event

        if is_trial_event(info):
            print_trial(info)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_previous"}


def print_trial(row: dict[str, Any]) -> None:
    """One line per finished trial on stderr."""
    params = ", ".join(
        f"{'T' if k == 'temperature' else k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in row["params"].items()
    )
    what = "student" if row["role"] == "student" else "distilled"
    acc = ""
    if row.get("val_acc") is not None:
        acc = f": validation {row['val_acc']:.2%}, test {row['test_acc']:.2%}"
    print(
        f"[{row['study']} #{row['number']}] {what} {params} {row['status']}{acc} ({row['seconds']:.0f} s)",
        file=sys.stderr,
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    """Run (or continue, or report) the sweep as the arguments say."""
    import os

    from core import sweep as sw
    from core.studies import default_storage_url

    if args.report is not None:
        url = args.storage or default_storage_url(args.report)
        if not args.storage and not (args.report / "study.db").exists():
            raise CommandError(
                f"no study in {args.report} (no study.db there); give --storage URL for another"
            )
        result = sw.sweep_report(url, args.study)
        args.report.mkdir(parents=True, exist_ok=True)
        from core.fileio import atomic_write_json

        atomic_write_json(args.report / sw.SWEEP_RESULTS, result)
        print_results(args, result, sw.format_sweep, args.report / sw.SWEEP_RESULTS)
        return 0
    if args.out is None or args.teacher is None:
        raise CommandError("a sweep needs --teacher RUN and --out DIR (or --report DIR to show one)")
    if args.search is None and (args.search_lr or args.search_epochs):
        raise CommandError("--search-lr and --search-epochs go with --search N")
    if args.search is not None and (args.temperatures or args.alphas):
        raise CommandError("--search chooses temperatures and alphas itself; drop --temperatures/--alphas")
    teacher = run_path(args.teacher, args.runs_dir)
    load_data(args)  # download MNIST if needed (with progress) before the workers start
    try:
        options = sw.SweepOptions(
            teacher=teacher,
            out_dir=args.out,
            recipe=args.recipe,
            temperatures=tuple(args.temperatures or sw.DEFAULT_TEMPERATURES),
            alphas=tuple(args.alphas or sw.DEFAULT_ALPHAS),
            seeds=args.seeds,
            search=args.search,
            search_lr=args.search_lr,
            search_epochs=args.search_epochs,
            epochs=args.epochs,
            max_train_samples=args.max_train_samples,
            validation=args.validation,
            device=args.device,
            threads=args.threads or max(1, (os.cpu_count() or 1) // args.workers),
            data_dir=args.data_dir,
            storage=args.storage,
            study=args.study,
            heartbeat=args.heartbeat,
            command=recorded_command("sweep"),
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    try:
        with TrialLines() as progress:
            result = sw.sweep(options, args.workers, progress)
    except sw.SweepStopped as exc:
        print(str(exc), file=sys.stderr)
        return 130
    print_results(args, result, sw.format_sweep, args.out / sw.SWEEP_RESULTS)
    return 0
