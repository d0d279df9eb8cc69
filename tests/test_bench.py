"""Smoke tests of the benchmark scripts: each runs end to end on tiny settings and prints its ratios.

They check that the benchmarks work, not the speed: speed targets are read from the benchmarks' own output.
"""

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run_bench(*args, timeout=300):
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_train_throughput_prints_its_ratios():
    out = run_bench(
        "bench/train_throughput.py",
        "--textbook-batches",
        "3",
        "--max-train-samples",
        "2000",
        "--device",
        "cpu",
    )
    assert "GFLOP/s" in out
    assert "ratio" in out and "(target <= 1.5)" in out
    assert "speed-up" in out and "(target >= 25x)" in out
    assert "distillation epoch" in out


def test_inference_latency_prints_its_ratios():
    out = run_bench("bench/inference_latency.py", "--calls", "50", "--preprocess-repeats", "20")
    assert "p95" in out and "overhead" in out.lower()


def test_gui_latency_prints_percentiles():
    out = run_bench("bench/gui_latency.py", "--samples", "1")
    assert "p50" in out and "p95" in out


def test_startup_prints_its_ratios():
    out = run_bench("bench/startup.py", "--repeats", "1")
    assert "window / PySide6 import:" in out and "(target <= 3x)" in out
    assert "--help / python -c pass:" in out and "(target <= 0.3 s)" in out
    assert "draw tab ready" in out
