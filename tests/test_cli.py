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
    assert config["teacher"]["run"] == teacher["run_dir"]  # the newest teacher run was found by itself

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
    assert "temperature T must be finite and > 0, got 0.0" in err and "Traceback" not in err
    assert main(["train-student", "--recipe", "paper", "--lr", "-1", "--runs-dir", str(runs_dir)]) == 1
    assert "learning rate must be finite and > 0, got -1.0" in capsys.readouterr().err


def test_distill_without_teacher_says_what_to_do(capsys, tmp_path):
    assert main(["distill", *QUICK, "--runs-dir", str(tmp_path)]) == 1
    assert "run `digit-distill train-teacher --recipe strong` first" in capsys.readouterr().err


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


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "app", *argv]


def test_ctrl_c_then_resume_with_no_other_flag_is_bit_identical(tmp_path, capsys):
    """The issue's "done when", scaled down: a dropout teacher with jitter, SIGINT after epoch 1, --resume RUN."""
    import os
    import signal

    import torch

    job = ["--recipe", "strong", "--epochs", "2", "--max-train-samples", "1000", "--batch-size", "100"]
    job += ["--max-test-samples", "500", "--lr", "5e-4", "--seed", "3", "--no-export"]
    cut_dir, whole_dir = tmp_path / "cut", tmp_path / "whole"
    # The interrupted run is a process of its own (SIGINT); the resume and the uninterrupted run go through the
    # same entry point here, with the same number of torch threads (two more Pythons importing torch would
    # check nothing more).
    threads = torch.get_num_threads()
    proc = subprocess.Popen(
        _cli("train-teacher", *job, "--runs-dir", str(cut_dir)),
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": str(threads)},
    )
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "epoch 1/2" in line:
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(lines) + err
    (run_dir,) = cut_dir.iterdir()
    assert f"resume with --resume {run_dir.name}" in err
    assert json.loads((run_dir / "status.json").read_text())["status"] == "stopped"
    config_before = (run_dir / "config.json").read_bytes()

    resumed = main(["train-teacher", "--resume", run_dir.name, "--runs-dir", str(cut_dir), "--no-export"])
    assert resumed == 0, capsys.readouterr().err
    assert torch.get_num_threads() == threads
    whole = main(["train-teacher", *job, "--runs-dir", str(whole_dir)])
    assert whole == 0, capsys.readouterr().err
    (whole_run,) = whole_dir.iterdir()
    a = torch.load(run_dir / "checkpoint.pt", weights_only=True)["state_dict"]
    b = torch.load(whole_run / "checkpoint.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (run_dir / "config.json").read_bytes() == config_before


def test_diverging_student_exits_non_zero_without_onnx(capsys, tmp_path):
    argv = [
        "train-student",
        "--lr",
        "1e6",
        "--epochs",
        "1",
        "--max-train-samples",
        "2000",
        "--runs-dir",
        str(tmp_path),
    ]
    code = main(argv)
    assert code not in (0, 130) and code == 3
    assert "diverged" in capsys.readouterr().err
    assert not list(tmp_path.rglob("model.onnx"))
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "diverged"


def test_resume_refuses_contradicting_flags_and_extends_with_epochs(capsys, tmp_path):
    first = run_json(
        capsys, ["train-student", "--recipe", "paper", *QUICK, "--runs-dir", str(tmp_path), "--json"]
    )
    name = first["run"]
    assert name.endswith("-paper-student") and first["status"] == "complete"
    resume = ["train-student", "--resume", name, "--runs-dir", str(tmp_path), "--no-export"]
    assert main([*resume, "--lr", "0.5", "--seed", "0"]) == 1
    err = capsys.readouterr().err
    assert "--lr 0.5 (the run has 0.01)" in err and "--seed" not in err  # an equal value is no contradiction
    assert main([*resume, "--max-test-samples", "500"]) == 1  # the run measured all 10,000 test images
    assert "--max-test-samples 500" in capsys.readouterr().err
    assert main(["train-teacher", "--resume", name, "--runs-dir", str(tmp_path)]) == 1
    assert "digit-distill train-student --resume" in capsys.readouterr().err
    assert main(resume) == 1
    assert "pass --epochs N" in capsys.readouterr().err
    extended = run_json(capsys, [*resume, "--epochs", "2", "--json"])
    assert extended["status"] == "complete" and extended["epochs"] == 2
    listed = run_json(capsys, ["runs", "--runs-dir", str(tmp_path), "--json"])
    assert listed["epochs"] == 2 and listed["status"] == "complete"
    evaluated = run_json(capsys, ["evaluate", name, "--runs-dir", str(tmp_path), "--json"])
    assert evaluated["accuracy"] == pytest.approx(extended["test_accuracy"], abs=1e-6)
