"""The per-writer personalisation protocol on the drawn-digits dev set (issue 12).

For every writer with at least ``--min-digits`` digits: personalise the bundled student (``core.personalize``,
the ``personal`` recipe through the job runner) on half of that writer's digits (per digit, seed 0) and measure
it on the other half, and on MNIST test. This is the one place where dev digits are used for fitting, and only
for these personal models. Writes ``docs/results/personal/writers.json`` (read by ``scripts/make_report.py``).

    python scripts/personalize_writers.py [--writers A B ...] [--out FILE] [--workers N]
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data import load_mnist  # noqa: E402
from core.fileio import atomic_write_json  # noqa: E402
from core.personalize import default_models, personalize  # noqa: E402
from core.progress import NullProgress  # noqa: E402
from core.strokes import load_drawn, save_drawn  # noqa: E402

DRAWN = ROOT.parent / "shared" / "data" / "drawn-digits-dev" / "strokes.npz"


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


_DATA: dict[str, object] = {}


def _load_data(data_dir: str | None) -> None:
    """Each worker process loads MNIST once (a task would otherwise pickle 200 MB of images to it)."""
    _DATA["mnist"] = load_mnist(data_dir)


def personalize_writer(writer: str, mine: list, tmp: Path) -> dict:
    """Personalise the bundled student on half of one writer's digits; the row of the results table."""
    strokes = tmp / f"{writer}.npz"
    save_drawn(mine, strokes)
    report = personalize(
        strokes,
        tmp / writer,
        progress=NullProgress(),
        runs_root=tmp / "runs" / writer,
        data=_DATA["mnist"],
        calibrate=False,
    )
    b, a = report["before"], report.get("after", {})
    pred = report.get("predictions", {})
    errors_before = sum(p != y for p, y in zip(pred.get("before", []), pred.get("labels", [])))
    errors_after = sum(p != y for p, y in zip(pred.get("after", []), pred.get("labels", [])))
    return {
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


def main(argv: list[str] | None = None) -> int:
    """Run the protocol and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawn", type=Path, default=DRAWN)
    parser.add_argument("--min-digits", type=int, default=60)
    parser.add_argument("--writers", nargs="*", help="only these writers (default: all with enough digits)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "personal" / "writers.json")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="writers personalised at once, one process each (set OMP_NUM_THREADS=1 so they do not compete)",
    )
    parser.add_argument("--data-dir", help="MNIST folder")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")

    samples = load_drawn(args.drawn)
    counts = Counter(s.writer for s in samples)
    writers = sorted(w for w, n in counts.items() if n >= args.min_digits)
    if args.writers:
        writers = [w for w in writers if w in args.writers]
    rows: list[dict] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        pool = ProcessPoolExecutor(args.workers, initializer=_load_data, initargs=(args.data_dir,))
        with pool:
            futures = [
                pool.submit(personalize_writer, w, [s for s in samples if s.writer == w], Path(tmp))
                for w in writers
            ]
            for future in as_completed(futures):
                row = future.result()
                rows.append(row)
                rows.sort(key=lambda r: r["writer"])
                print(
                    f"{row['writer']:20s} {row['digits']:4d} digits: {row['before']:.1%} -> {row['after']:.1%} "
                    f"(errors {row['errors_before']} -> {row['errors_after']}), MNIST {row['mnist_before']:.2%} "
                    f"-> {row['mnist_after']:.2%}",
                    flush=True,
                )
                _write(args, rows, writers, start)
    result = _write(args, rows, writers, start)
    print(result["summary"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
