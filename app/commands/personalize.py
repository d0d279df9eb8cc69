"""``digit-distill personalize``: fine-tune the student on one person's digits (distilled from the teacher)."""

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
    load_data,
    print_json,
    recorded_command,
)


def register(subparsers) -> None:
    """Add the ``personalize`` subcommand."""
    p = subparsers.add_parser(
        "personalize",
        description=(
            "Fine-tune a student on one person's digits (a drawn-digits .npz such as the app's personal set) "
            "mixed with MNIST, by distillation from the teacher, through the one job runner (recipe "
            "'personal'). Half of the digits (per digit) are kept aside to measure accuracy before and after. "
            "Writes DIR/model.onnx (same input and output as the bundled student, calibrated) and "
            "DIR/report.json."
        ),
    )
    p.add_argument(
        "--strokes", required=True, type=existing_path, metavar="FILE.npz", help="the person's digits"
    )
    p.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="folder for model.onnx and report.json"
    )
    p.add_argument(
        "--base",
        metavar="MODEL_OR_RUN",
        help="student to start from: an ONNX file, a run folder or a run name (default: the bundled student)",
    )
    p.add_argument(
        "--teacher",
        metavar="MODEL_OR_RUN",
        help="teacher to distil from: an ONNX file, a run folder or name (default: the bundled teacher)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and of the fine-tuning (default 0)")
    p.add_argument("--runs-dir", type=Path, help="folder for the job's run (default: the user's runs folder)")
    p.add_argument("--no-calibrate", action="store_true", help="skip fitting 'not sure'/'not a digit'")
    add_data_args(p)
    add_json_arg(p)
    p.set_defaults(func=run)


def _model(text: str | None, runs_dir: Path | None) -> Path | None:
    if text is None:
        return None
    from core import runs

    try:
        return runs.resolve_run(text, runs_dir)
    except runs.RunError as exc:
        raise CommandError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Personalise and print the before/after figures."""
    from core.jobs import JobError
    from core.personalize import PersonalizeError, personalize
    from core.strokes import StrokesFormatError
    from core.weights import WeightsError

    base = _model(args.base, args.runs_dir)
    teacher = _model(args.teacher, args.runs_dir)
    data = load_data(args)
    try:
        with ConsoleProgress(quiet=args.json) as progress:
            report = personalize(
                args.strokes,
                args.out,
                base=base,
                teacher=teacher,
                seed=args.seed,
                progress=progress,
                runs_root=args.runs_dir,
                data=data,
                calibrate=not args.no_calibrate,
            )
    except (PersonalizeError, StrokesFormatError, JobError, WeightsError) as exc:
        raise CommandError(str(exc)) from None
    report["command"] = recorded_command("personalize")
    if report["status"] == "complete":
        from core.fileio import atomic_write_json

        atomic_write_json(args.out / "report.json", report)  # again, with the command that made it
    if args.json:
        print_json(report)
    elif report["status"] == "complete":
        b, a = report["before"], report["after"]
        print(
            f"{args.out / 'model.onnx'}: held-out personal digits {b['personal']:.1%} -> {a['personal']:.1%} "
            f"({report['test']} digits), MNIST test {b['mnist']:.2%} -> {a['mnist']:.2%}"
        )
    else:
        print(f"personalisation {report['status']}: {report.get('message', '')}", file=sys.stderr)
    return {"complete": 0, "stopped": 130}.get(report["status"], 3)
