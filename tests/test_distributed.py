"""DistributedDataParallel under torchrun: two CPU processes (gloo) take the same steps as one process."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from core import runs
from core.distributed import DistributedError, backend_for, setup
from core.recipes import get_recipe
from core.training import train

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"epochs": 1, "batch_size": 128, "max_train_samples": 256}


def test_two_processes_match_one_process(tmp_path, mnist):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "-m",
        "core.distributed",
        "--recipe",
        "paper",
        "--role",
        "teacher",
        "--runs-dir",
        str(tmp_path),
        "--run-name",
        "ddp",
        "--epochs",
        "1",
        "--batch-size",
        "128",
        "--max-train-samples",
        "256",
        "--max-test-samples",
        "200",
        "--device",
        "cpu",
        "--no-export",
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["world_size"] == 2 and summary["backend"] == "gloo"
    assert summary["run_dir"] == str(tmp_path / "ddp")
    ddp_model, meta = runs.load_checkpoint(tmp_path / "ddp")
    assert meta["role"] == "teacher" and len(meta["history"]) == 1

    recipe = get_recipe("paper")
    data = replace(mnist, test_images=mnist.test_images[:200], test_labels=mnist.test_labels[:200])
    cfg = replace(recipe.teacher, device="cpu", seed=0, **QUICK)
    single = train("teacher", "paper", recipe.teacher_model, cfg, data)
    for (name, a), b in zip(single.model.state_dict().items(), ddp_model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), f"{name} differs by {(a - b).abs().max():.2e}"
    # Loss and accuracy were summed over both processes' 128 images each, not taken from rank 0's half: the
    # one-process run saw the same 256 images with the same weights.
    ddp_epoch, one_epoch = meta["history"][0], single.history[0]
    assert ddp_epoch["loss"] == pytest.approx(one_epoch["loss"], rel=1e-4)
    assert ddp_epoch["train_acc"] == pytest.approx(one_epoch["train_acc"], abs=1.5 / 256)


def test_setup_refuses_outside_torchrun(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(DistributedError, match="torchrun"):
        setup("cpu")


def test_backend_per_device():
    assert backend_for("cpu") == "gloo" and backend_for("cuda:1") == "nccl"
