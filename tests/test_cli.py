"""The command line: each training entry point end to end on a small subset, JSON contracts, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import build_parser, main

QUICK = ["--epochs", "1", "--max-train-samples", "2000", "--batch-size", "100", "--device", "cpu"]


def run_json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def test_every_documented_command_is_registered():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    expected = {
        "train-teacher",
        "train-student",
        "distill",
        "evaluate",
        "export",
        "predict",
        "reproduce",
        "runs",
    }
    assert expected <= set(sub.choices)


def test_console_script_help_runs():
    result = subprocess.run(
        [sys.executable, "-m", "app", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "train-teacher" in result.stdout


def test_teacher_student_distill_evaluate_export_runs(capsys, runs_dir, tmp_path):
    teacher = run_json(
        capsys, ["train-teacher", "--recipe", "paper", *QUICK, "--runs-dir", str(runs_dir), "--json"]
    )
    assert (
        teacher["role"] == "teacher"
        and teacher["params"] == 5_592_010
        and 0.5 < teacher["test_accuracy"] <= 1
    )
    assert teacher["onnx"].endswith("model.onnx")

    student = run_json(
        capsys, ["train-student", "--recipe", "paper", *QUICK, "--runs-dir", str(runs_dir), "--json"]
    )
    assert student["role"] == "student" and student["params"] == 42_310

    distilled = run_json(
        capsys,
        [
            "distill",
            "--recipe",
            "paper",
            *QUICK,
            "-T",
            "4",
            "--alpha",
            "0.5",
            "--runs-dir",
            str(runs_dir),
            "--json",
        ],
    )
    assert distilled["role"] == "distilled"
    config = json.loads((Path(distilled["run_dir"]) / "config.json").read_text())
    assert config["kd"] == {"temperature": 4.0, "alpha": 0.5}
    assert config["teacher"]["path"] == teacher["run_dir"]  # the newest teacher run was found by itself

    evaluated = run_json(capsys, ["evaluate", distilled["run_dir"], "--json"])
    assert evaluated["accuracy"] == pytest.approx(distilled["test_accuracy"], abs=1e-6)
    evaluated_onnx = run_json(capsys, ["evaluate", distilled["onnx"], "--json"])
    assert evaluated_onnx["accuracy"] == pytest.approx(distilled["test_accuracy"], abs=2e-4)
    assert evaluated_onnx["metadata"]["role"] == "distilled"

    exported = run_json(capsys, ["export", student["run_dir"], "-o", str(tmp_path / "s.onnx"), "--json"])
    assert exported["opset"] == 11 and exported["max_abs_diff"] < 1e-4 and exported["verified_images"] == 1000

    assert main(["runs", "--runs-dir", str(runs_dir), "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["role"] for r in listed} == {"teacher", "student", "distilled"}
    assert all(r["finished"] for r in listed)


def test_bad_hyperparameters_get_one_clear_line(capsys, runs_dir):
    assert main(["distill", "--recipe", "paper", *QUICK, "-T", "0", "--runs-dir", str(runs_dir)]) == 1
    err = capsys.readouterr().err
    assert "temperature T must be > 0" in err and "Traceback" not in err
    assert main(["train-student", "--recipe", "paper", "--lr", "-1", "--runs-dir", str(runs_dir)]) == 1
    assert "learning rate must be > 0" in capsys.readouterr().err


def test_distill_without_teacher_says_what_to_do(capsys, tmp_path):
    assert main(["distill", *QUICK, "--runs-dir", str(tmp_path)]) == 1
    assert "run `digit-distill train-teacher` first" in capsys.readouterr().err


def test_missing_data_is_explained(capsys, tmp_path):
    assert (
        main(
            [
                "train-student",
                *QUICK,
                "--data-dir",
                str(tmp_path),
                "--no-download",
                "--runs-dir",
                str(tmp_path),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte" in err and "--download" in err


def test_runs_on_empty_folder(capsys, tmp_path):
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    assert "no runs" in capsys.readouterr().out


def test_ctrl_c_stops_after_the_batch_and_keeps_finished_epochs(tmp_path):
    import os
    import signal

    cmd = [
        sys.executable,
        "-m",
        "app",
        "train-student",
        "--recipe",
        "paper",
        "--epochs",
        "500",
        "--max-train-samples",
        "2000",
        "--device",
        "cpu",
        "--runs-dir",
        str(tmp_path),
        "--no-export",
    ]
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "epoch 2/500" in line:
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(lines) + err
    assert "resume with --resume" in err
    (run_dir,) = tmp_path.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["stopped"] and len(metrics["history"]) >= 2
    assert (run_dir / "checkpoint.pt").exists()
