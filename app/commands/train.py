"""``train-teacher``, ``train-student`` and ``distill``: one training job each, in a run folder, exported to ONNX."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from app.commands import CommandError
from app.commands.common import (
    ConsoleProgress,
    add_data_args,
    add_json_arg,
    existing_path,
    load_data,
    print_json,
)
from core import runs
from core.models import get_preset
from core.recipes import RECIPES, get_recipe
from core.training import KDConfig, TrainResult, train

COMMANDS = {
    "train-teacher": ("teacher", "train the large teacher network"),
    "train-student": ("student", "train the small student network normally (no teacher)"),
    "distill": ("distilled", "train the small student by distillation from a trained teacher"),
}


def register(subparsers) -> None:
    """Add the three training subcommands."""
    for name, (role, help_text) in COMMANDS.items():
        p = subparsers.add_parser(name, description=help_text[0].upper() + help_text[1:] + ".")
        p.add_argument(
            "--recipe",
            default="strong",
            choices=sorted(RECIPES),
            help="hyperparameter recipe (default: strong)",
        )
        p.add_argument("--preset", help="architecture preset (paper, cnn); default: the recipe's")
        p.add_argument("--epochs", type=int)
        p.add_argument("--batch-size", type=int)
        p.add_argument("--lr", type=float, help="peak learning rate")
        p.add_argument("--optimizer", choices=["sgd", "adam"])
        p.add_argument("--weight-decay", type=float)
        p.add_argument(
            "--augment", action=argparse.BooleanOptionalAction, default=None, help="random affine jitter"
        )
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
        p.add_argument("--max-train-samples", type=int, help="train on a fixed random subset (quick runs)")
        if role == "distilled":
            p.add_argument(
                "--teacher",
                type=existing_path,
                help="teacher run folder or checkpoint (default: newest teacher run)",
            )
            p.add_argument("-T", "--temperature", type=float)
            p.add_argument("--alpha", type=float, help="weight of the soft (teacher) loss, in [0, 1]")
        p.add_argument(
            "--runs-dir",
            type=Path,
            help="where run folders go (default: $DIGIT_DISTILL_RUNS or the user data dir)",
        )
        p.add_argument("--resume", type=existing_path, metavar="RUN_DIR", help="continue an interrupted run")
        p.add_argument("--no-export", action="store_true", help="skip the ONNX export at the end")
        add_data_args(p)
        add_json_arg(p)
        p.set_defaults(func=run, role=role)


def job_configs(args: argparse.Namespace):
    """Resolve recipe + preset + command-line overrides into (preset name, model config, train config, kd)."""
    recipe = get_recipe(args.recipe)
    role = args.role
    preset = args.preset or recipe.preset
    model_cfg = recipe.model_for(role)
    if args.preset and args.preset != recipe.preset:
        p = get_preset(args.preset)
        model_cfg = p.teacher if role == "teacher" else p.student
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "weight_decay": args.weight_decay,
        "augment": args.augment,
        "device": args.device,
        "max_train_samples": args.max_train_samples,
    }
    cfg = replace(
        recipe.train_for(role), seed=args.seed, **{k: v for k, v in overrides.items() if v is not None}
    )
    kd = None
    if role == "distilled":
        kd = KDConfig(
            temperature=recipe.kd.temperature if args.temperature is None else args.temperature,
            alpha=recipe.kd.alpha if args.alpha is None else args.alpha,
        )
    return preset, model_cfg, cfg, kd


def find_teacher(path: Path | None, preset: str, root: Path | None) -> Path:
    """The teacher's run folder or checkpoint: the given one, else the newest finished teacher run of ``preset``."""
    if path is not None:
        return path
    for info in runs.list_runs(root):
        if info.role == "teacher" and info.preset == preset and info.epochs_done > 0:
            return info.path
    raise CommandError(
        f"no trained {preset!r} teacher found in {root or runs.default_runs_root()}: "
        "run `digit-distill train-teacher` first or pass --teacher RUN_DIR"
    )


def result_summary(result: TrainResult, onnx_path: Path | None) -> dict:
    """The machine-readable result of a training command."""
    return {
        "role": result.role,
        "preset": result.preset,
        "run_dir": str(result.run_dir) if result.run_dir else None,
        "test_accuracy": result.test_accuracy,
        "params": result.params,
        "epochs": len(result.history),
        "seconds": round(result.seconds, 2),
        "stopped": result.stopped,
        "onnx": str(onnx_path) if onnx_path else None,
    }


def run(args: argparse.Namespace) -> int:
    """Train one model as the arguments say."""
    preset, model_cfg, cfg, kd = job_configs(args)
    teacher = teacher_info = None
    if args.role == "distilled":
        teacher_path = find_teacher(args.teacher, preset, args.runs_dir)
        teacher, meta = runs.load_checkpoint(teacher_path)
        teacher_info = {
            "path": str(teacher_path),
            "test_accuracy": meta["test_accuracy"],
            "preset": meta["preset"],
        }
        print(f"teacher: {teacher_path} (test accuracy {meta['test_accuracy']:.2%})", file=sys.stderr)
    data = load_data(args)
    if args.resume:
        run_dir = args.resume
        saved = runs.read_run(run_dir)
        if saved.role != args.role:
            raise CommandError(f"{run_dir} is a {saved.role} run, not a {args.role} run")
    else:
        run_dir = runs.new_run_dir(args.role, preset, args.runs_dir)
    print(f"run folder: {run_dir}", file=sys.stderr)
    with ConsoleProgress(quiet=False) as progress:
        result = train(
            args.role,
            preset,
            model_cfg,
            cfg,
            data,
            kd=kd,
            teacher=teacher,
            progress=progress,
            run_dir=run_dir,
            resume=bool(args.resume),
            teacher_info=teacher_info,
        )
    onnx_path = None
    if result.history and not args.no_export:
        onnx_path = runs.export_run(run_dir, data).path
        print(f"exported {onnx_path}", file=sys.stderr)
    if result.stopped:
        print(
            f"stopped after {len(result.history)} epoch(s); resume with --resume {run_dir}", file=sys.stderr
        )
    summary = result_summary(result, onnx_path)
    if args.json:
        print_json(summary)
    else:
        print(
            f"{args.role}: test accuracy {result.test_accuracy:.2%}, {result.params:,} parameters, "
            f"{result.seconds:.1f} s -> {run_dir}"
        )
    return 0 if not result.stopped else 130
