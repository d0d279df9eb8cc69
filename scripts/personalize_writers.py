"""The per-writer personalisation protocol on the drawn-digits dev set (issue 12).

For every writer with at least ``--min-digits`` digits: personalise the bundled student (``core.personalize``,
the ``personal`` recipe through the job runner) on half of that writer's digits (per digit, seed 0) and measure
it on the other half, and on MNIST test. This is the one place where dev digits are used for fitting, and only
for these personal models. Writes ``docs/results/personal/writers.json`` (read by ``scripts/make_report.py``).

    python scripts/personalize_writers.py [--writers A B ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data import load_mnist  # noqa: E402
from core.fileio import atomic_write_json  # noqa: E402
from core.personalize import default_models, personalize  # noqa: E402
from core.strokes import load_drawn, save_drawn  # noqa: E402

DRAWN = ROOT.parent / "shared" / "data" / "drawn-digits-dev" / "strokes.npz"


class _Quiet:
    def on_batch(self, info):
        pass

    def on_epoch(self, info):
        pass

    def status(self, text):
        pass

    def should_stop(self):
        return False


def _sha256(path: Path) -> str:
    """The file's SHA-256 (which bundled models were personalised and distilled from)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def summarize(rows: list[dict]) -> dict:
    """Means and error totals over the writers whose personalisation completed."""
    done = [r for r in rows if r["status"] == "complete"]
    n = len(done)
    if not n:
        return {"writers": 0}
    summary = {
        "writers": n,
        "mean_before": sum(r["before"] for r in done) / n,
        "mean_after": sum(r["after"] for r in done) / n,
        "errors_before": sum(r["errors_before"] for r in done),
        "errors_after": sum(r["errors_after"] for r in done),
        "mean_mnist_before": sum(r["mnist_before"] for r in done) / n,
        "mean_mnist_after": sum(r["mnist_after"] for r in done) / n,
    }
    summary["error_reduction"] = (
        1 - summary["errors_after"] / summary["errors_before"] if summary["errors_before"] else None
    )
    return summary


def _write(args, rows: list[dict], writers: list[str], start: float) -> dict:
    """Write the results so far (after every writer, so a run cut short leaves what it measured)."""
    result = {
        "command": "python " + shlex.join(["scripts/personalize_writers.py", *sys.argv[1:]]),
        "drawn_set": str(args.drawn),
        "min_digits": args.min_digits,
        "recipe": "personal",
        "base": {name: _sha256(path) for name, path in zip(("student", "teacher"), default_models())},
        "seconds": round(time.perf_counter() - start, 1),
        "finished": len(rows) == len(writers),
        "writers_planned": writers,
        "summary": summarize(rows),
        "rows": rows,
    }
    atomic_write_json(args.out, result)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the protocol and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawn", type=Path, default=DRAWN)
    parser.add_argument("--min-digits", type=int, default=60)
    parser.add_argument("--writers", nargs="*", help="only these writers (default: all with enough digits)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "personal" / "writers.json")
    args = parser.parse_args(argv)

    samples = load_drawn(args.drawn)
    counts = Counter(s.writer for s in samples)
    writers = sorted(w for w, n in counts.items() if n >= args.min_digits)
    if args.writers:
        writers = [w for w in writers if w in args.writers]
    data = load_mnist()
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for writer in writers:
            mine = [s for s in samples if s.writer == writer]
            strokes = Path(tmp) / f"{writer}.npz"
            save_drawn(mine, strokes)
            report = personalize(
                strokes,
                Path(tmp) / writer,
                progress=_Quiet(),
                runs_root=Path(tmp) / "runs",
                data=data,
                calibrate=False,
            )
            b, a = report["before"], report.get("after", {})
            pred = report.get("predictions", {})
            errors_before = sum(p != y for p, y in zip(pred.get("before", []), pred.get("labels", [])))
            errors_after = sum(p != y for p, y in zip(pred.get("after", []), pred.get("labels", [])))
            row = {
                "writer": writer,
                "digits": len(mine),
                "fit": report["fit"],
                "test": report["test"],
                "status": report["status"],
                "before": b["personal"],
                "after": a.get("personal"),
                "errors_before": errors_before,
                "errors_after": errors_after,
                "mnist_before": b["mnist"],
                "mnist_after": a.get("mnist"),
                "seconds": report["seconds"],
            }
            rows.append(row)
            print(
                f"{writer:20s} {len(mine):4d} digits: {row['before']:.1%} -> {row['after']:.1%} "
                f"(errors {errors_before} -> {errors_after}), MNIST {row['mnist_before']:.2%} -> "
                f"{row['mnist_after']:.2%}",
                flush=True,
            )
            _write(args, rows, writers, start)
    result = _write(args, rows, writers, start)
    print(result["summary"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
