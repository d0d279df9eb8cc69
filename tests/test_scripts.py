"""Smoke tests of scripts/: each runs through its ``main(argv)`` in this process, on tiny inputs in tmp folders.

Scripts whose only work is heavy (training for minutes, driving the whole app for screenshots) are checked for
what can be checked quickly: that they import and parse their options (``--help``). scripts/make_reliability.py
is run by tests/test_reliability_report.py; scripts/report_trust.py is a module of make_report.py.
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.fake_runs import complete_run


def script(name: str):
    """Import ``scripts/<name>.py`` as a module (its ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_drawn(tmp_path_factory, drawn_digits_path):
    """The first 40 drawings of the drawn-digits development set, as a set of their own."""
    from core.strokes import load_drawn, save_drawn

    path = tmp_path_factory.mktemp("drawn") / "strokes.npz"
    save_drawn(load_drawn(drawn_digits_path)[:40], path)
    return path


def test_make_check_images_writes_the_committed_sample(mnist, mnist_dir, tmp_path, capsys):
    out = tmp_path / "check.npz"
    assert script("make_check_images").main(["--data-dir", str(mnist_dir), "--out", str(out)]) == 0
    assert f"{out}: 300 images" in capsys.readouterr().out
    written, committed = np.load(out), np.load(ROOT / "core" / "bundled" / "mnist-check.npz")
    for key in ("images", "labels", "indices"):
        assert np.array_equal(written[key], committed[key]), key


def test_collect_runs_writes_the_finished_runs(tmp_path, tiny_drawn, capsys):
    runs = [complete_run(tmp_path / "runs", role="student", seed=seed) for seed in (0, 1)]
    out = tmp_path / "partial.json"
    argv = ["--recipe", "paper", "--finished", *map(str, runs), "--drawn", str(tiny_drawn)]
    assert script("collect_runs").main([*argv, "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["partial"] and results["recipe"] == "paper"
    assert [(r["role"], r["seed"]) for r in results["runs"]] == [("student", 0), ("student", 1)]
    for row in results["runs"]:
        assert 0 <= row["drawn_accuracy"] <= 1 and row["epochs"] == 1
    assert f"results: {out}" in capsys.readouterr().out


def test_collect_runs_refuses_a_run_of_another_recipe(tmp_path, tiny_drawn, capsys):
    student = complete_run(tmp_path / "runs", recipe="paper", role="student")
    argv = [
        "--recipe",
        "cnn",
        "--finished",
        str(student),
        "--drawn",
        str(tiny_drawn),
        "--out",
        str(tmp_path / "o"),
    ]
    with pytest.raises(SystemExit) as exit_:
        script("collect_runs").main(argv)
    assert exit_.value.code == 2 and "every run must come from recipe cnn" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_make_bundled_models_exports_measures_and_describes(mnist, mnist_dir, tmp_path, tiny_drawn):
    # Any two complete runs serve (the script does not read their roles); students keep the test quick.
    teacher = complete_run(tmp_path / "runs", role="student", seed=1)
    student = complete_run(tmp_path / "runs", role="student")
    argv = ["--teacher-run", str(teacher), "--student-run", str(student), "--data-dir", str(mnist_dir)]
    argv += ["--teacher-command", "digit-distill train-teacher", "--command", "digit-distill train-student"]
    assert (
        script("make_bundled_models").main([*argv, "--drawn", str(tiny_drawn), "--dest", str(tmp_path / "b")])
        == 0
    )
    from core.inference import OnnxClassifier

    for role, run in (("teacher", teacher), ("student", student)):
        card = json.loads((tmp_path / "b" / f"{role}.json").read_text())
        assert card["role"] == role and card["run"] == run.name and card["drawn_samples"] == 40
        assert card["parameters"] == json.loads((run / "metrics.json").read_text())["params"]
        predictions = OnnxClassifier(tmp_path / "b" / f"{role}.onnx").predict(mnist.test_images.numpy())
        assert card["test_accuracy"] == pytest.approx(
            float((predictions == mnist.test_labels.numpy()).mean())
        )


def test_make_report_writes_the_report_from_the_committed_results(tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "docs" / "results", results)
    args = [
        "--results",
        str(results),
        "--docs",
        str(tmp_path / "docs"),
        "--models",
        str(ROOT / "core" / "bundled"),
    ]
    assert script("make_report").main(args) == 0
    text = (tmp_path / "docs" / "RESULTS.md").read_text()
    paper = json.loads((results / "paper" / "results.json").read_text())
    assert f"{paper['teacher']['accuracy']:.2%}" in text  # the numbers come from the results files
    assert list((tmp_path / "docs" / "figures").glob("*.png"))
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["personalize_writers", "screenshots", "screenshots_trust"])
def test_heavy_scripts_import_and_parse_their_options(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        script(name).main(["--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_every_script_and_bench_is_run_by_a_test():
    """A new file in scripts/ or bench/ needs a smoke test that names it (``script("x")``, ``bench/x.py``...)."""
    tests = "".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    missing = [
        f"{path.parent.name}/{path.name}"
        for path in sorted([*ROOT.glob("scripts/*.py"), *ROOT.glob("bench/*.py")])
        if f'"{path.stem}"' not in tests and f"{path.parent.name}/{path.name}" not in tests
    ]
    assert missing == []
