"""Loading MNIST: ``core.data.load_mnist`` against the bare minimum of work, and the cache, in the same run.

Usage::

    python bench/data_load.py [--repeats 3] [--data-dir DIR]

Each repeat, interleaved so a change in the machine's load hits every side alike:

- full load: ``load_mnist`` of a new folder linking to the four ``.gz`` files (so nothing is served from the
  cache): read, gunzip, check the headers, convert to float32 tensors in [0, 1];
- floor: the same four files read, gunzipped and converted with ``gzip`` and numpy alone (no checks): what any
  loader has to do;
- cached: ``load_mnist`` of a folder loaded before (its files unchanged): the dataset object comes back.

Prints the medians and the ratios full / floor (target <= 1.5x: the checks cost little) and cached / full
(target <= 1%). Data: ``--data-dir``, else ``$DIGIT_DISTILL_DATA``, else the user cache folder.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_medians, print_target  # noqa: E402
from core import data  # noqa: E402

TARGET_FULL_RATIO = 1.5
TARGET_CACHED_SHARE = 0.01


def floor_load(folder: Path) -> list[np.ndarray]:
    """Read, gunzip and convert the four files with no checks at all (images to float32 in [0, 1])."""
    arrays = []
    for name in data.MNIST_FILES:
        content = gzip.decompress((folder / f"{name}.gz").read_bytes())
        if "images" in name:
            arrays.append(np.frombuffer(content, np.uint8, offset=16).astype(np.float32) / 255)
        else:
            arrays.append(np.frombuffer(content, np.uint8, offset=8).astype(np.int64))
    return arrays


def linked_folder(source: Path, folder: Path) -> Path:
    """A new folder whose four files link to ``source``'s (a folder ``load_mnist`` has not seen)."""
    folder.mkdir()
    for name in data.MNIST_FILES:
        (folder / f"{name}.gz").symlink_to(source / f"{name}.gz")
    return folder


def timed(fn) -> tuple[float, object]:
    """Seconds ``fn()`` took, and what it returned."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (median shown)")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder with the four MNIST .gz files")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    source = data.resolve_data_dir(args.data_dir)
    missing = [
        name for name, path in data.find_mnist_files(source).items() if path is None or path.suffix != ".gz"
    ]
    if missing:
        print(f"error: {source} lacks the gzipped MNIST files {missing}", file=sys.stderr)
        return 1

    full, floor, cached = [], [], []
    with tempfile.TemporaryDirectory(prefix="dd-bench-data-") as tmp:
        for k in range(args.repeats):
            seconds, dataset = timed(
                lambda k=k: data.load_mnist(linked_folder(source, Path(tmp) / f"new{k}"))
            )
            full.append(seconds)
            seconds, again = timed(lambda k=k: data.load_mnist(Path(tmp) / f"new{k}"))
            if again is not dataset:
                print("error: the second load of a folder was not served from the cache", file=sys.stderr)
                return 1
            cached.append(seconds)
            del dataset, again
            floor.append(timed(lambda: floor_load(source))[0])

    med = statistics.median
    full_ratio = med(full) / med(floor)
    cached_share = med(cached) / med(full)
    print_medians(
        f"data: {source}  ({args.repeats} runs each, medians)",
        [
            ("full load (load_mnist, new folder)", med(full), "s"),
            ("floor (gzip + numpy, no checks)", med(floor), "s"),
            ("cached load (same folder again)", med(cached) * 1000, "ms"),
        ],
    )
    print_target(
        f"full / floor: {full_ratio:.2f}x (target <= {TARGET_FULL_RATIO}x)", full_ratio <= TARGET_FULL_RATIO
    )
    print_target(
        f"cached / full: {cached_share:.2%} (target <= {TARGET_CACHED_SHARE:.0%})",
        cached_share <= TARGET_CACHED_SHARE,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
