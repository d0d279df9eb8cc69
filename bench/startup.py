"""Start-up time of the app and of ``digit-distill --help``, against bare Python and PySide6 in the same run.

Usage::

    python bench/startup.py [--repeats 5]

Each measurement is a fresh process, timed from just before it is started:

- window: ``digit-distill --smoke`` until it prints "main window painted" (the main window's first paint) and
  until "draw tab ready" (the Draw tab has loaded its models and classifies), against
  ``python -c "import PySide6.QtWidgets"`` to its exit;
- help: ``digit-distill --help`` to its exit, against ``python -c pass``.

Prints the medians and the ratios. Targets (issue 13): window painted within 1.0 s and at most 3x the bare
PySide6 import; ``--help`` within 0.3 s. ``digit-distill`` is the console script installed beside this Python
(``python -m app`` when there is none); set ``PYTHONPATH`` to time a checkout other than the installed one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_medians, print_target  # noqa: E402

TARGET_WINDOW_S = 1.0
TARGET_WINDOW_RATIO = 3.0
TARGET_HELP_S = 0.3


def entry_point() -> list[str]:
    """The ``digit-distill`` console script of this Python, else ``python -m app``."""
    script = Path(sys.executable).with_name("digit-distill")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app"]


def time_to_exit(cmd: list[str], env: dict) -> float:
    """Seconds from starting ``cmd`` to its exit (it must succeed)."""
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def time_to_lines(cmd: list[str], env: dict, markers: list[str], timeout: float = 120.0) -> list[float]:
    """Seconds from starting ``cmd`` to each line of stdout that contains the next of ``markers``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    times = []
    try:
        for line in proc.stdout:
            if markers[len(times)] in line:
                times.append(time.perf_counter() - t0)
                if len(times) == len(markers):
                    break
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    if len(times) != len(markers) or proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} did not print {markers} (exit {proc.returncode})")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each measurement (median shown)")
    args = parser.parse_args(argv)
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    app = entry_point()
    python = sys.executable

    painted, ready, pyside, helps, bare = [], [], [], [], []
    for _ in range(args.repeats):  # interleaved, so a change in the machine's load hits both sides alike
        first, second = time_to_lines(app + ["--smoke"], env, ["main window painted", "draw tab ready"])
        painted.append(first)
        ready.append(second)
        pyside.append(time_to_exit([python, "-c", "import PySide6.QtWidgets"], env))
        helps.append(time_to_exit(app + ["--help"], env))
        bare.append(time_to_exit([python, "-c", "pass"], env))

    med = statistics.median
    window_ratio = med(painted) / med(pyside)
    help_ratio = med(helps) / med(bare)
    print_medians(
        f"command: {' '.join(app)}  ({args.repeats} runs each, medians)",
        [
            ("window painted", med(painted), "s"),
            ("draw tab ready", med(ready), "s"),
            ("import PySide6", med(pyside), "s"),
            ("--help", med(helps), "s"),
            ("python -c pass", med(bare), "s"),
        ],
    )
    print_target(
        f"window / PySide6 import: {window_ratio:.2f}x (target <= {TARGET_WINDOW_RATIO:.0f}x), "
        f"window {med(painted):.2f} s (target <= {TARGET_WINDOW_S} s)",
        window_ratio <= TARGET_WINDOW_RATIO and med(painted) <= TARGET_WINDOW_S,
    )
    print_target(
        f"--help / python -c pass: {help_ratio:.2f}x, --help {med(helps):.2f} s (target <= {TARGET_HELP_S} s)",
        med(helps) <= TARGET_HELP_S,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
