r"""Write a results.json (the ``reproduce`` format) from job-runner runs, for the report.

Usage::

    python scripts/collect_runs.py --recipe canvas --teacher RUNS/...-canvas-teacher \\
        --students RUNS/...-canvas-student ... --distilled RUNS/...-canvas-distilled ... \\
        --out docs/results/canvas/results.json --command "digit-distill train-teacher --recipe canvas ..."

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

from core.experiments import ExperimentError, format_table, results_from_runs  # noqa: E402
from core.fileio import atomic_write_json  # noqa: E402

DRAWN = ROOT.parent / "shared" / "data" / "drawn-digits-dev" / "strokes.npz"


def main(argv: list[str] | None = None) -> int:
    """Collect, summarise and write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--teacher", type=Path, required=True, help="the teacher's run folder")
    parser.add_argument("--students", type=Path, nargs="+", required=True, help="students trained normally")
    parser.add_argument("--distilled", type=Path, nargs="+", required=True, help="distilled students")
    parser.add_argument("--drawn", type=Path, default=DRAWN, help="drawn-digits set (default: the dev set)")
    parser.add_argument("--command", default="", help="the commands that trained the runs, for the record")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        results = results_from_runs(
            args.recipe, args.teacher, args.students, args.distilled, args.drawn, args.command
        )
    except (ExperimentError, ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, results)
    print(format_table(results))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
