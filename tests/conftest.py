"""Shared test set-up: headless Qt, MNIST from ../shared, no network."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.board_emulator.fixtures"]

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MNIST_DIR = SHARED / "data" / "mnist"
DRAWN_DIGITS = SHARED / "data" / "drawn-digits-dev" / "strokes.npz"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# One torch thread per process (set before anything imports torch; the processes the tests start inherit it): the
# suite runs in two worker processes (addopts in pyproject.toml), and two threads each on a 2-core machine spin-wait.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DIGIT_DISTILL_DATA", str(MNIST_DIR))

# Property-based tests: a CI budget by default; HYPOTHESIS_PROFILE=long for a longer local run.
_PROPERTY_SETTINGS = dict(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile("ci", max_examples=60, derandomize=True, database=None, **_PROPERTY_SETTINGS)
settings.register_profile("long", max_examples=2000, **_PROPERTY_SETTINGS)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_finish(session):
    """What is imported and collected by now (torch, Qt, onnx, the test modules: about 360,000 objects) lives until
    the end of the session: gc.freeze keeps it out of every later full garbage collection, the automatic ones and
    the five pytest makes at the end to find unraisable exceptions, which would otherwise walk all of it each time
    (on test_properties, test_jobs, test_atlas_properties and gui/test_main_window: 3.1 s -> 1.6 s of collecting)."""
    gc.freeze()


def pytest_sessionfinish(session, exitstatus):
    """Write the bad-input counts (tests/reliability.py) where $DIGIT_DISTILL_RELIABILITY_JSON says."""
    from tests import reliability

    if os.environ.get(reliability.ENV) and reliability.COUNTS:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        outcomes = {
            k: len(v) for k, v in reporter.stats.items() if k in ("passed", "failed", "error", "skipped")
        }
        session_facts = {
            "profile": os.environ.get("HYPOTHESIS_PROFILE", "ci"),
            "exit_status": int(exitstatus),
            "tests": outcomes,
            "args": [str(a) for a in session.config.args],
        }
        reliability.write_counts(os.environ[reliability.ENV], session_facts)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Folder with the genuine MNIST .gz files."""
    if not (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").exists():
        pytest.fail(f"MNIST test data not found at {MNIST_DIR}: ../shared must sit beside the repository")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """The whole MNIST dataset in memory (loaded once per test session)."""
    from core.data import load_mnist

    return load_mnist(mnist_dir)


@pytest.fixture(scope="session")
def drawn_digits_path() -> Path:
    """The drawn-digits development set (pen trajectories)."""
    return DRAWN_DIGITS


@pytest.fixture(autouse=True)
def settings_in_tmp(tmp_path, monkeypatch):
    """Every test gets its own user config folder: the app's settings never touch the real one."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture()
def isolated_home(tmp_path, monkeypatch):
    """Point HOME and the cache/runs locations at a temporary folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("DIGIT_DISTILL_RUNS", str(tmp_path / "runs"))
    (tmp_path / "home").mkdir()
    return tmp_path


def run_command(argv: list[str]) -> int:
    """Run a ``digit-distill`` subcommand parsed as the CLI parses it; its errors propagate (``app.cli.main`` would
    turn them into one-line messages and exit codes)."""
    from app.cli import build_parser

    args = build_parser(argv).parse_args(argv)
    return args.func(args)
