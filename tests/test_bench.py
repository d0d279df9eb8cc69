"""Smoke tests of the benchmark scripts: each runs end to end on tiny settings and prints its ratios.

They check that the benchmarks work, not the speed: speed targets are read from the benchmarks' own output.
"""

import importlib.util
import os
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
def test_train_throughput_prints_its_ratios(mnist_dir, capsys):
    # In this process (torch is loaded already): a subprocess would add seconds of imports and check nothing more.
    argv = ["--textbook-batches", "3", "--max-train-samples", "2000", "--max-test-samples", "1000"]
    argv += ["--matmul-size", "512", "--device", "cpu", "--data-dir", str(mnist_dir)]
    assert bench("train_throughput").main(argv) == 0
    out = capsys.readouterr().out
    assert "GFLOP/s" in out
    assert "ratio" in out and "(target <= 1.5)" in out
    assert "speed-up" in out and "(target >= 25x)" in out
    assert "distillation epoch" in out


def test_inference_latency_prints_its_ratios(capsys):
    assert bench("inference_latency").main(["--calls", "50", "--preprocess-repeats", "20"]) == 0
    out = capsys.readouterr().out
    assert "p95" in out and "overhead" in out.lower()


def test_gui_latency_prints_percentiles():
    out = run_bench("bench/gui_latency.py", "--samples", "1")
    assert "p50" in out and "p95" in out


def test_startup_prints_its_ratios():
    out = run_bench("bench/startup.py", "--repeats", "1")
    assert "window / PySide6 import:" in out and "(target <= 3x)" in out
    assert "--help / python -c pass:" in out and "(target <= 0.3 s)" in out
    assert "draw tab ready" in out


def bench(name: str):
    """Import ``bench/<name>.py`` as a module (its ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_aligns_the_medians_and_ends_each_target_with_its_verdict(capsys):
    report = bench("report")
    report.print_medians("heading", [("short", 1.5, "s"), ("a longer label", 12.25, "ms")])
    report.print_target("ratio 1.20x (target <= 1.5x)", True)
    report.print_target("ratio 2.00x (target <= 1.5x)", False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "heading"
    assert lines[1].startswith("short ") and lines[1].endswith("1.500 s")
    assert lines[2].startswith("a longer label ") and lines[2].endswith("12.250 ms")
    assert lines[1].index("1.500") == lines[2].index("2.250")  # the values stand in one column
    assert lines[3:] == ["ratio 1.20x (target <= 1.5x): met", "ratio 2.00x (target <= 1.5x): NOT met"]


def test_data_load_prints_its_ratios(mnist_dir, capsys):
    assert bench("data_load").main(["--repeats", "1", "--data-dir", str(mnist_dir)]) == 0
    out = capsys.readouterr().out
    assert "full / floor:" in out and "(target <= 1.5x)" in out
    assert "cached / full:" in out and "(target <= 1%)" in out


def test_train_tab_responsiveness_prints_its_ratios(qapp, mnist, monkeypatch, capsys):
    # In this process (Qt, torch and MNIST are loaded already); the bench points these at its own temporary
    # folder, monkeypatch puts them back afterwards.
    for var in ("HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "DIGIT_DISTILL_RUNS"):
        monkeypatch.setenv(var, os.environ.get(var, ""))
    argv = ["--samples", "64", "--batch-size", "64", "--epochs", "1", "--idle-seconds", "0.1"]
    assert bench("train_tab_responsiveness").main(argv) == 0
    out = capsys.readouterr().out
    assert "training / idle p99:" in out and "(target <= 3x" in out
    assert "stop:" in out and "of an epoch (target <= 0.5" in out
