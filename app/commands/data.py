"""``digit-distill data``: show where MNIST is read from, download missing files, check the files."""

from __future__ import annotations

import argparse
import time

from app.commands.common import DownloadProgress
from core.data import DEFAULT_MIRRORS, download_mnist, find_mnist_files, load_mnist, locate_data


def register(subparsers) -> None:
    """Add the ``data`` subcommand."""
    parser = subparsers.add_parser(
        "data",
        description="Show which folder MNIST is read from and why (--data-dir, DIGIT_DISTILL_DATA or the user "
        "cache folder), download missing files with --download, and check every file (header, size, checksum).",
    )
    parser.add_argument("--data-dir", help="folder with the four MNIST files (overrides DIGIT_DISTILL_DATA)")
    parser.add_argument(
        "--download", action="store_true", help="download missing files from the public mirrors (verified)"
    )
    parser.add_argument(
        "--mirror",
        action="append",
        metavar="URL",
        help=f"mirror base URL to try, repeatable (default: {', '.join(DEFAULT_MIRRORS)})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the folder and the state of each file, download if asked, then load and check everything."""
    location = locate_data(args.data_dir)
    print(f"MNIST folder: {location.describe()}")
    if args.download:
        written = download_mnist(
            location.path, mirrors=args.mirror or DEFAULT_MIRRORS, progress=DownloadProgress()
        )
        print(f"downloaded {len(written)} file(s)" if written else "nothing to download: all files present")
    for name, path in find_mnist_files(location.path).items():
        print(f"  {name}: {path.name if path else 'missing'}")
    start = time.perf_counter()
    dataset = load_mnist(args.data_dir)  # raises MissingDataError with instructions, or DataError per file
    print(
        f"valid: {len(dataset.train_labels)} training and {len(dataset.test_labels)} test images "
        f"(headers, sizes and checksums checked) in {time.perf_counter() - start:.2f} s"
    )
    return 0
