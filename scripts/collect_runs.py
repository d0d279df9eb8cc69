r"""Write a results.json (the ``reproduce`` format) from job-runner runs, for the report.

Usage::

    python scripts/collect_runs.py --recipe canvas --teacher RUNS/...-canvas-teacher \\
        --students RUNS/...-canvas-student ... --distilled RUNS/...-canvas-distilled ... \\
        --out docs/results/canvas/results.json --command "digit-distill train-teacher --recipe canvas ..."

With ``--finished RUN ...`` instead of the three lists, it writes ``{"partial": true, "runs": [...]}``: the
finished runs of a comparison still going (the report lists them as such).

Used when the jobs of one comparison were started as separate ``digit-distill train-teacher`` /
``train-student`` / ``distill`` commands (in parallel processes) instead of one ``reproduce``. Only complete runs
are accepted; drawn-digit accuracy is measured here on the development set (``core.strokes``' rendering).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.drawn import DrawnDigits  # noqa: E402
from core.experiments import ExperimentError  # noqa: E402
from core.experiments.report import format_table  # noqa: E402
from core.experiments.reproduce import job_run_summary, results_from_runs  # noqa: E402
from core.fileio import atomic_write_json  # noqa: E402

DRAWN = ROOT.parent / "shared" / "data" / "drawn-digits-dev" / "strokes.npz"


def main(argv: list[str] | None = None) -> int:
    """Collect, summarise and write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--teacher", type=Path, help="the teacher's run folder")
    parser.add_argument("--students", type=Path, nargs="+", help="students trained normally")
    parser.add_argument("--distilled", type=Path, nargs="+", help="distilled students")
    parser.add_argument(
        "--finished", type=Path, nargs="+", help="or: the finished runs of a comparison still going"
    )
    parser.add_argument("--drawn", type=Path, default=DRAWN, help="drawn-digits set (default: the dev set)")
    parser.add_argument("--command", default="", help="the commands that trained the runs, for the record")
    parser.add_argument("--note", default="", help="with --finished: why the comparison is incomplete")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not args.finished and not (args.teacher and args.students and args.distilled):
        parser.error("give --teacher, --students and --distilled, or --finished")
    try:
        if args.finished:
            drawn = DrawnDigits(args.drawn) if args.drawn else None
            rows = [job_run_summary(d, drawn) for d in args.finished]
            if any(r["recipe"] != args.recipe for r in rows if r["role"] != "teacher"):
                parser.error(f"every run must come from recipe {args.recipe}")
            results = {
                "recipe": args.recipe,
                "partial": True,
                "command": args.command,
                "note": args.note,
                "runs": rows,
            }
        else:
            results = results_from_runs(
                args.recipe, args.teacher, args.students, args.distilled, args.drawn, args.command
            )
    except (ExperimentError, ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, results)
    if args.finished:
        for r in results["runs"]:
            drawn_text = "-" if r["drawn_accuracy"] is None else f"{r['drawn_accuracy']:.2%}"
            print(
                f"{r['role']} seed {r['seed']}: MNIST {r['accuracy']:.2%}, drawn {drawn_text} ({r['run_dir']})"
            )
    else:
        print(format_table(results))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
