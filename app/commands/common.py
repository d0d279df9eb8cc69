"""Pieces shared by the CLI subcommands: data options, console progress, JSON output."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.data import MNIST, load_mnist
from core.progress import NullProgress, is_transfer

DEFAULT_DRAWN = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "drawn-digits-dev" / "strokes.npz"
)
"""The drawn-digits development set beside the repository (``../shared/data/drawn-digits-dev``), if present."""


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--no-download``."""
    parser.add_argument(
        "--data-dir", help="folder with the MNIST files (default: $DIGIT_DISTILL_DATA or the user cache)"
    )
    parser.add_argument(
        "--no-download",
        action="store_true",
        help="never download MNIST; fail with instructions if it is missing",
    )


def add_json_arg(parser: argparse.ArgumentParser) -> None:
    """``--json``: print a machine-readable result on stdout."""
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")


class DownloadProgress(NullProgress):
    """Download progress on stderr (:class:`core.progress.Progress`): one line per file, redrawn at each percent."""

    def __init__(self) -> None:
        self._shown: tuple[str, int] | None = None

    def on_batch(self, info: dict[str, Any]) -> None:  # noqa: D102
        if not is_transfer(info):
            return
        filename, done, total = info["file"], info["done"], info["total"]
        percent = 100 * done // total if total else 0
        if self._shown == (filename, percent):
            return
        self._shown = (filename, percent)
        end = "\n" if done >= total else ""
        print(f"\r  {filename}: {_size(done)} / {_size(total)} ({percent}%)", end=end, file=sys.stderr)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def load_data(args: argparse.Namespace) -> MNIST:
    """Load MNIST as the data options say, downloading (with progress) unless ``--no-download``."""
    return load_mnist(args.data_dir, download=not args.no_download, progress=DownloadProgress())


def print_json(obj) -> None:
    """One JSON object on one line of stdout."""
    print(json.dumps(obj), flush=True)


def print_results(
    args: argparse.Namespace, result: dict, table: Callable[[dict], str], path: Path, file=None
) -> None:
    """Print a command's results: ``--json``: one JSON line; otherwise ``table(result)`` and the results file.

    The line naming ``path`` goes to ``file`` (default stdout).
    """
    if args.json:
        print_json(result)
    else:
        print(table(result))
        print(f"results: {path}", file=file or sys.stdout)


class ConsoleProgress:
    """Prints training progress on stderr; the first Ctrl+C stops after the current batch, a second one aborts.

    Implements :class:`core.progress.Progress`.
    """

    def __init__(self, quiet: bool = False, label: str = ""):
        self.quiet = quiet
        self.label = label
        self._stop = False
        self._tty = sys.stderr.isatty()
        self._t0 = time.perf_counter()
        self._epoch_t0 = time.perf_counter()

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)
        return False

    def _on_sigint(self, signum, frame):
        if self._stop:
            raise KeyboardInterrupt
        self._stop = True
        print("\nstopping after this batch (Ctrl+C again to abort)...", file=sys.stderr)

    def on_batch(self, info: dict[str, Any]) -> None:  # noqa: D102
        if self.quiet or not self._tty:
            return
        done = info["batch"] / info["batches"]
        bar = "#" * int(done * 30)
        print(
            f"\r{self.label}epoch {info['epoch']} [{bar:<30}] {done:4.0%} loss {info['loss']:.4f}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def on_epoch(self, info: dict[str, Any]) -> None:  # noqa: D102
        if self.quiet:
            return
        elapsed = time.perf_counter() - self._t0
        eta = elapsed / info["epoch"] * (info["epochs"] - info["epoch"])
        soft = f" (soft {info['soft']:.4f}, hard {info['hard']:.4f})" if info.get("soft") is not None else ""
        print(
            f"\r{self.label}epoch {info['epoch']}/{info['epochs']}: loss {info['loss']:.4f}{soft}, "
            f"train {info['train_acc']:.2%}, test {info['test_acc']:.2%}, {info['seconds']:.1f} s, "
            f"ETA {eta:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    def status(self, text: str) -> None:  # noqa: D102
        if not self.quiet:
            print(f"{self.label}{text}", file=sys.stderr, flush=True)

    def should_stop(self) -> bool:  # noqa: D102
        return self._stop


def recorded_command(name: str) -> str:
    """The command line that ran ``name``, for results files to record; empty when called another way."""
    import shlex

    return "digit-distill " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == [name] else ""


def add_runs_dir_arg(parser: argparse.ArgumentParser) -> None:
    """``--runs-dir``: where run folders are (and where run names are looked up)."""
    parser.add_argument(
        "--runs-dir",
        type=Path,
        help="folder of the run folders (default: $DIGIT_DISTILL_RUNS or the user data dir)",
    )


def run_path(text: str, runs_dir: Path | None) -> Path:
    """A run given as a path or as a name printed by ``digit-distill runs`` (looked up in ``runs_dir``)."""
    from core.runs import resolve_run

    return resolve_run(text, runs_dir)


def existing_path(text: str) -> Path:
    """Argparse type: a path that must exist."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return path
