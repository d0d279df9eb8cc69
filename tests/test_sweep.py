"""``digit-distill sweep`` as Optuna studies: processes sharing one study, a killed worker, search, report."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from core import jobs
from core.progress import NullProgress
from core.studies import superseded, trial_status
from core.sweep import SweepOptions, format_sweep, is_trial_event, sweep, sweep_report

ROOT = Path(__file__).resolve().parents[1]
CELLS = {"T2-a0.5-seed0", "T2-a0.9-seed0", "T4-a0.5-seed0", "T4-a0.9-seed0"}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    spec = jobs.JobSpec(
        recipe="paper",
        role="teacher",
        overrides={"epochs": 1},
        device="cpu",
        max_train_samples=1000,
        runs_root=tmp_path_factory.mktemp("teachers"),
        export=False,
    )
    return jobs.run_job(spec).run_dir


def _sweep_cmd(teacher: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "app.cli",
        "sweep",
        "--teacher",
        str(teacher),
        "--recipe",
        "paper",
        "--out",
        str(out),
        "--temperatures",
        "2,4",
        "--alphas",
        "0.5,0.9",
        "--validation",
        "1000",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--heartbeat",
        "2",  # a live process's trial is judged dead after 3 beats: 1 s let a starved worker lose its trial
        "--no-download",
        *extra,
    ]


def _start(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _finish(procs: list[subprocess.Popen]) -> list[str]:
    outs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=400)
            assert p.returncode == 0, out
            outs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return outs


def _run_here(cmd: list[str], capsys) -> str:
    """``cmd`` (``python -m app.cli ...``) run in this process by ``app.cli.main``; its stdout and stderr."""
    import torch

    from app.cli import main

    assert cmd[1:3] == ["-m", "app.cli"]
    threads = torch.get_num_threads()  # the sweep sets its --threads; later tests keep this process' setting
    try:
        code = main(cmd[3:])
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    return captured.out + captured.err


def _trials(out: Path, name: str = "sweep") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}").trials


class Trials(NullProgress):
    """The sweep's progress, recording the finished trials it reports (and nothing else)."""

    def __init__(self):
        self.rows = []

    def on_batch(self, info):
        raise AssertionError(f"a sweep reports finished trials, not batches: {info}")

    def on_epoch(self, info):
        assert is_trial_event(info), info
        self.rows.append(info)


def _events(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("events.out.tfevents.*"))


def test_processes_share_one_study_and_a_killed_one_is_restarted_without_repeating_cells(
    teacher, tmp_path, capsys
):
    """Two processes, A and B, run one sweep; A is killed while it trains a cell; the same command again, beside B,
    finishes the sweep: every cell trained once (the killed one continued), one report."""
    out = tmp_path / "sweep"
    cmd = _sweep_cmd(teacher, out, "--epochs", "2", "--max-train-samples", "4000")
    a, b = _start(cmd), _start(cmd)
    procs = [a, b]
    try:
        deadline = time.monotonic() + 300
        killed = None
        while killed is None:  # wait until A holds a cell's run folder (its lock names the process)
            assert time.monotonic() < deadline and a.poll() is None, "process A never trained a cell"
            for pid_file in (out / "runs").glob("*/.lock.pid"):
                try:
                    if pid_file.read_text().strip() == str(a.pid):
                        killed = pid_file.parent.name
                except OSError:
                    pass
            time.sleep(0.05)
        a.send_signal(signal.SIGKILL)
        a.wait()
        outputs = [a.stdout.read()]  # what A printed before it was killed
        # The same command again, beside B, run here through the same entry point (a third Python importing torch
        # would check nothing more).
        outputs.append(_run_here(cmd, capsys))
        outputs += _finish([b])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    trials = _trials(out) + _trials(out, "sweep-baseline")
    retried = superseded(_trials(out)) | superseded(_trials(out, "sweep-baseline"))
    complete = [t for t in trials if trial_status(t, retried) == "complete"]
    assert sorted(t.user_attrs["run"] for t in complete) == sorted(CELLS | {"student-seed0"})
    statuses = collections.Counter(trial_status(t, retried) for t in trials)
    # A late trial created while the last cells ran may be given a held cell: it ends as a duplicate without
    # training (core.studies' module docstring); whether one appears depends on timing.
    statuses.pop("duplicate", None)
    assert statuses == {"complete": 5, "retried": 1}  # the killed trial, re-queued once
    assert sum("complete: validation" in line for line in "".join(outputs).splitlines()) == 5
    # Finished cells were never trained again: one event file (one execution) per run folder; the killed cell's
    # job was continued by a second execution (two files, or one if A died before opening its event file).
    for run in (out / "runs").iterdir():
        assert len(_events(run)) in ((1, 2) if run.name == killed else (1,)), run.name
    status = json.loads((out / "runs" / killed / "status.json").read_text())
    assert status["status"] == "complete"
    # Each cell's job: its own run folder, the validation split, its T and alpha, no augmentation pool.
    for cell in CELLS:
        config = json.loads((out / "runs" / cell / "config.json").read_text())
        assert config["data"]["validation"] == 1000 and config["role"] == "distilled"
        t, a_ = cell.split("-")[:2]
        assert config["kd"] == {"temperature": float(t[1:]), "alpha": float(a_[1:])}
        assert config["train"]["augment"] is False and config["data"]["pool_copies"] == 0
    result = json.loads((out / "sweep.json").read_text())
    assert result["mode"] == "grid" and result["validation"]["count"] == 1000
    assert all(v is not None for line in result["val_accuracy"] for v in line)
    assert result["best"]["val_accuracy"] == max(v for line in result["val_accuracy"] for v in line)
    assert "chosen on validation" in format_sweep(result)
    # Running the same command again trains nothing and reports the same study.
    before = len(_trials(out))
    again = _run_here(cmd, capsys)
    assert "complete: validation" not in again and "chosen on validation" in again
    assert len(_trials(out)) == before


def test_search_with_pruning_and_report(teacher, tmp_path, mnist):
    out = tmp_path / "search"
    options = SweepOptions(
        teacher=teacher,
        out_dir=out,
        recipe="paper",
        search=3,
        search_lr=(0.005, 0.05),
        epochs=2,
        max_train_samples=600,
        validation=500,
        device="cpu",
        threads=1,
        heartbeat=1,
    )
    progress = Trials()
    result = sweep(options, progress=progress)
    assert result["mode"] == "search" and len(result["trials"]) == 3
    for row in result["trials"]:
        assert 1 <= row["temperature"] <= 20 and 0 <= row["alpha"] <= 1 and 0.005 <= row["lr"] <= 0.05
    trials = _trials(out)
    assert all(len(t.intermediate_values) == 2 for t in trials)  # validation accuracy reported per epoch
    best = max((r for r in result["trials"] if r["status"] == "complete"), key=lambda r: r["val_acc"])
    assert result["best"]["trial"] == best["trial"] and result["best"]["test_accuracy"] == best["test_acc"]
    assert sweep_report(options.storage_url)["best"] == result["best"]
    # A larger --search on the same study continues it: only the new trials run.
    assert collections.Counter(r["study"] for r in progress.rows) == {"sweep": 3, "sweep-baseline": 1}
    progress.rows.clear()
    options.search = 4
    sweep(options, progress=progress)
    assert len(progress.rows) == 1 and len(_trials(out)) == 4


def test_sweep_options_are_checked():
    with pytest.raises(ValueError, match=r"alphas must be in \[0, 1\]"):
        SweepOptions(teacher=None, out_dir=Path("x"), alphas=(1.5,))
    with pytest.raises(ValueError, match="learning-rate range"):
        SweepOptions(teacher=None, out_dir=Path("x"), search=3, search_lr=(0.1, 0.01))
    with pytest.raises(ValueError, match="are for --search"):
        SweepOptions(teacher=None, out_dir=Path("x"), search_epochs=(1, 3))


def test_report_of_a_folder_without_a_study_is_a_clear_error(tmp_path):
    from app.cli import main

    assert main(["sweep", "--report", str(tmp_path)]) == 1
