"""``train-teacher``, ``train-student`` and ``distill``: one training job each, through ``core.jobs``.

The flags describe a :class:`core.jobs.JobSpec` (a recipe, a role and what the job changes); ``--resume RUN``
continues a run from its own config.json and refuses flags that contradict it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.commands import CommandError
from app.commands.common import (
    ConsoleProgress,
    add_data_args,
    add_json_arg,
    add_runs_dir_arg,
    load_data,
    print_json,
    run_path,
)
from core.recipes import RECIPES

COMMANDS = {
    "train-teacher": ("teacher", "train the large teacher network"),
    "train-student": ("student", "train the small student network normally (no teacher)"),
    "distill": ("distilled", "train the small student by distillation from a trained teacher"),
}
#: Flags that change what the job computes: (argparse dest, JobSpec/override key). All default to None.
JOB_FLAGS = {
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "optimizer": "optimizer",
    "weight_decay": "weight_decay",
    "augment": "augment",
    "temperature": "temperature",
    "alpha": "alpha",
}
EXIT_HELP = "exit status: 0 complete, 1 error, 3 diverged, 130 stopped (Ctrl+C)"


def register(subparsers) -> None:
    """Add the three training subcommands."""
    for name, (role, help_text) in COMMANDS.items():
        p = subparsers.add_parser(
            name,
            description=help_text[0].upper() + help_text[1:] + ". Defaults come from the recipe; "
            "each flag given overrides one recipe value and is recorded in the run's config.json.",
            epilog=EXIT_HELP,
        )
        p.add_argument("--recipe", choices=sorted(RECIPES), help="hyperparameter recipe (default: strong)")
        p.add_argument("--epochs", type=int, help="epochs (with --resume: more than saved extends the run)")
        p.add_argument("--batch-size", type=int)
        p.add_argument("--lr", type=float, help="peak learning rate")
        p.add_argument("--optimizer", choices=["sgd", "adam"])
        p.add_argument("--weight-decay", type=float)
        p.add_argument(
            "--augment", action=argparse.BooleanOptionalAction, default=None, help="random affine jitter"
        )
        p.add_argument("--seed", type=int, help="random seed (default: 0)")
        p.add_argument("--device", help="auto (CUDA if available; default), cpu, cuda, cuda:1, ...")
        p.add_argument("--max-train-samples", type=int, help="train on a fixed random subset (quick runs)")
        p.add_argument(
            "--max-test-samples", type=int, help="measure on the first N test images only (quick runs)"
        )
        if role == "distilled":
            p.add_argument(
                "--teacher",
                metavar="RUN",
                help="teacher run (a name from `digit-distill runs` or a path; default: the newest complete "
                "teacher of the recipe)",
            )
            p.add_argument("-T", "--temperature", type=float)
            p.add_argument("--alpha", type=float, help="weight of the soft (teacher) loss, in [0, 1]")
        add_runs_dir_arg(p)
        p.add_argument(
            "--resume",
            metavar="RUN",
            help="continue a run (a name from `digit-distill runs` or a path) from its own config.json",
        )
        p.add_argument("--no-export", action="store_true", help="skip the ONNX export at the end")
        add_data_args(p)
        add_json_arg(p)
        p.set_defaults(func=run, role=role)


def job_spec(args: argparse.Namespace):
    """The :class:`core.jobs.JobSpec` the arguments describe.

    A distillation without ``--teacher`` gets the newest complete teacher of the recipe.
    """
    from core import jobs

    recipe = args.recipe or "strong"
    teacher = None
    if args.role == "distilled":
        teacher = (
            run_path(args.teacher, args.runs_dir)
            if args.teacher
            else jobs.find_teacher(recipe, args.runs_dir)
        )
    return jobs.JobSpec(
        recipe=recipe,
        role=args.role,
        overrides={key: getattr(args, dest, None) for dest, key in JOB_FLAGS.items()},
        teacher_run=teacher,
        seed=0 if args.seed is None else args.seed,
        device=args.device or "auto",
        max_train_samples=args.max_train_samples,
        max_test_samples=args.max_test_samples,
        data_dir=args.data_dir,
        runs_root=args.runs_dir,
        export=not args.no_export,
    )


def _check_resume_flags(args: argparse.Namespace, config) -> None:
    """Refuse a flag that contradicts the saved job, naming it (equal values and --epochs are fine)."""
    from core import jobs

    asked = {key: getattr(args, dest, None) for dest, key in JOB_FLAGS.items() if key != "epochs"}
    asked |= {
        "recipe": args.recipe,
        "seed": args.seed,
        "max_train_samples": args.max_train_samples,
        "max_test_samples": args.max_test_samples,
    }
    if getattr(args, "teacher", None):
        asked["teacher_run"] = run_path(args.teacher, args.runs_dir)
    conflicts = jobs.resume_conflicts(config, asked)
    if conflicts:
        flags = "; ".join(
            f"--{key.replace('_run', '').replace('_', '-')} {value} (the run has {have})"
            for key, value, have in conflicts
        )
        raise CommandError(
            f"--resume continues the run as it was started (its config.json); these flags contradict it: {flags}. "
            "Leave them out, or start a new run."
        )


def result_summary(result) -> dict[str, Any]:
    """The machine-readable result of a training command."""
    return {
        "status": result.status,
        "role": result.config.role,
        "recipe": result.config.recipe,
        "preset": result.config.preset,
        "run_dir": str(result.run_dir) if result.run_dir else None,
        "run": result.run_dir.name if result.run_dir else None,
        "test_accuracy": result.test_accuracy,
        "params": result.params,
        "epochs": len(result.history),
        "seconds": round(result.seconds, 2),
        "stopped": result.status == "stopped",
        "onnx": str(result.onnx_path) if result.onnx_path else None,
        "message": result.message,
    }


def run(args: argparse.Namespace) -> int:
    """Train one model as the arguments say; the exit status follows the job's status (see ``EXIT_HELP``)."""
    from core import jobs

    if args.resume:
        run_dir = run_path(args.resume, args.runs_dir)
        if run_dir.is_file():
            run_dir = run_dir.parent
        config = jobs.load_config(run_dir)
        if config.role != args.role:
            command = next(name for name, (role, _) in COMMANDS.items() if role == config.role)
            raise CommandError(
                f"{run_dir.name} is a {config.role} run: resume it with `digit-distill {command} --resume`"
            )
        _check_resume_flags(args, config)
        data = load_data(args)
        print(f"run folder: {run_dir}", file=sys.stderr)
        with ConsoleProgress(quiet=False) as progress:
            result = jobs.resume_job(
                run_dir,
                progress,
                epochs=args.epochs,
                device=args.device,
                data=data,
                export=not args.no_export,
            )
    else:
        spec = job_spec(args)
        config = jobs.resolve(spec)  # every value checked before anything loads or starts
        if config.teacher:
            acc = config.teacher["test_accuracy"]
            print(f"teacher: {config.teacher['run']} (test accuracy {acc:.2%})", file=sys.stderr)
        data = load_data(args)
        with ConsoleProgress(quiet=False) as progress:
            result = jobs.run_job(spec, progress, data=data)
    return report(args, result)


def report(args: argparse.Namespace, result) -> int:
    """Print the outcome and return the exit status."""
    if result.onnx_path:
        print(f"exported {result.onnx_path}", file=sys.stderr)
    if result.status == "stopped":
        if result.run_dir:
            print(
                f"stopped after {len(result.history)} epoch(s); resume with --resume {result.run_dir.name}",
                file=sys.stderr,
            )
        else:
            print("stopped before the first epoch ended: no run folder was kept", file=sys.stderr)
    elif result.status == "diverged":
        print(f"error: {result.message}", file=sys.stderr)
    if args.json:
        print_json(result_summary(result))
    elif result.status in ("complete", "stopped") and result.history:
        print(
            f"{result.config.role}: test accuracy {result.test_accuracy:.2%}, {result.params:,} parameters, "
            f"{result.seconds:.1f} s -> {result.run_dir}"
        )
    if result.export_error:
        print(
            f"error: the model was trained and saved, but its ONNX export failed: {result.export_error}",
            file=sys.stderr,
        )
        return 1
    return result.exit_code
