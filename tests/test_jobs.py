"""The one job runner: specs resolved from recipes, run folders with a status, resume bit for bit, divergence,
locks, stale temporary files and save errors."""

from __future__ import annotations

import errno
import json
import os
import random

import numpy as np
import pytest
import torch

from core import jobs, runs
from core.recipes import get_recipe


class Recorder:
    """A Progress that records status lines; stops after a number of training batches, or at a status line.

    Training checks ``should_stop`` every batch; the preparation before it checks between its steps.
    """

    def __init__(self, stop_after_batches: int | None = None, stop_at_status: str | None = None):
        self.lines, self.epochs = [], []
        self.calls = 0
        self.stop_after, self.stop_at = stop_after_batches, stop_at_status
        self.training = False

    def on_batch(self, info):
        pass

    def on_epoch(self, info):
        self.epochs.append(info)

    def status(self, text):
        self.lines.append(text)
        self.training = self.training or text.startswith("training ")

    def should_stop(self):
        if self.stop_at is not None:
            return any(line.startswith(self.stop_at) for line in self.lines)
        self.calls += self.training
        return self.stop_after is not None and self.calls > self.stop_after


@pytest.fixture(scope="module")
def tiny(mnist):
    return mnist.subset(3000, 300)


def spec(tmp_path, **changes) -> jobs.JobSpec:
    base = {
        "recipe": "paper",
        "role": "student",
        "overrides": {"epochs": 2, "batch_size": 100},
        "device": "cpu",
        "max_train_samples": 600,
        "runs_root": tmp_path,
        "export": False,
    }
    return jobs.JobSpec(**(base | changes))


def flat(value, prefix: str = "") -> dict:
    """A checkpoint as ``{"state_dict.fc.weight": tensor, "rng.python[1][0]": 123, ...}``."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flat(item, f"{prefix}{key}.").items()}
    if isinstance(value, (list, tuple)):
        return {k: v for i, item in enumerate(value) for k, v in flat(item, f"{prefix}[{i}].").items()}
    return {prefix.rstrip("."): value}


def new_process(seed: int) -> None:
    """Put the global generators in the other states a new process would start with."""
    np.random.seed(seed)
    random.seed(seed)
    torch.manual_seed(seed)


def tensors(run_dir) -> dict:
    return torch.load(run_dir / runs.CHECKPOINT, map_location="cpu", weights_only=True)


# ------------------------------------------------------------------------------------------ resolving


def test_recipe_values_are_the_only_defaults_and_equal_overrides_are_dropped():
    values = jobs.recipe_values("strong", "teacher")
    recipe = get_recipe("strong")
    assert values["lr"] == recipe.teacher.lr and values["epochs"] == recipe.teacher.epochs
    assert values["pool_copies"] == 0  # the teacher never trains on the students' pool
    student = jobs.recipe_values("strong", "student")
    assert student["pool_copies"] == recipe.pool_copies and student["augment"] is False
    config = jobs.resolve(
        jobs.JobSpec("strong", "teacher", overrides={"lr": recipe.teacher.lr, "epochs": 3.0})
    )
    assert config.overrides == {"epochs": 3} and config.train.epochs == 3
    assert config.train.lr == recipe.teacher.lr and config.data.styles == recipe.styles


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"temperature": float("inf")}, "temperature T must be finite and > 0, got inf"),
        ({"temperature": 0.0}, "temperature T must be finite and > 0, got 0.0"),
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\], got 1.5"),
        ({"lr": float("nan")}, "learning rate must be finite and > 0, got nan"),
        ({"lr": float("inf")}, "learning rate must be finite and > 0, got inf"),
        ({"batch_size": 0}, "batch size must be an integer >= 1, got 0"),
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"epochs": 1.5}, "epochs must be a whole number, got 1.5"),
        ({"weight_decay": -1.0}, "weight decay must be finite and >= 0, got -1.0"),
        ({"styles": 2.0}, r"styles .* must be in \[0, 1\], got 2.0"),
        ({"bogus": 1}, "unknown setting"),
    ],
)
def test_bad_values_are_refused_before_anything_starts(tmp_path, overrides, message):
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / runs.CONFIG).write_text(
        json.dumps({"role": "teacher", "preset": "paper", "train": {"epochs": 1}})
    )
    (teacher / runs.METRICS).write_text(json.dumps({"history": [{"test_acc": 0.9, "seconds": 1}]}))
    with pytest.raises((ValueError, jobs.JobError), match=message):
        jobs.resolve(jobs.JobSpec("paper", "distilled", overrides=overrides, teacher_run=teacher))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher"]  # nothing was created


def test_kd_settings_are_refused_for_other_roles():
    with pytest.raises(jobs.JobError, match="distillation only"):
        jobs.resolve(jobs.JobSpec("paper", "student", overrides={"temperature": 4.0}))


# -------------------------------------------------------------------------------------------- running


def test_a_job_leaves_a_named_complete_run_with_its_config(tiny, tmp_path):
    result = jobs.run_job(spec(tmp_path, overrides={"epochs": 1, "batch_size": 100}), data=tiny)
    assert result.status == "complete" and result.exit_code == 0
    assert result.run_dir.name.endswith("-paper-student")
    info = runs.read_run(result.run_dir)
    assert info.status == "complete" and info.finished and info.recipe == "paper"
    saved = jobs.load_config(result.run_dir)
    assert saved.to_dict() == result.config.to_dict()
    assert saved.train.max_train_samples == 600 and saved.overrides == {"batch_size": 100, "epochs": 1}


def test_stop_before_the_first_epoch_leaves_no_folder(tiny, tmp_path):
    result = jobs.run_job(spec(tmp_path), Recorder(stop_after_batches=2), data=tiny)
    assert result.status == "stopped" and result.exit_code == 130 and result.run_dir is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("step", ["loading MNIST", "preparing the training data", "teacher:"])
def test_stop_while_preparing_ends_at_once_and_leaves_nothing(tiny, tmp_path, step, monkeypatch):
    """Preparing can take a minute (redrawing 60,000 digits): Stop is honoured between its steps."""
    from core import data as data_module

    monkeypatch.setattr(data_module, "load_mnist", lambda *a, **k: tiny)
    teacher = jobs.run_job(
        spec(tmp_path / "t", role="teacher", overrides={"epochs": 1, "batch_size": 100}), data=tiny
    ).run_dir
    trained = []
    monkeypatch.setattr(jobs, "_train_locked", lambda *a, **k: trained.append(1))
    role = {"loading MNIST": "student", "preparing the training data": "student", "teacher:": "distilled"}[
        step
    ]
    recipe = "canvas" if step == "preparing the training data" else "paper"
    job = spec(
        tmp_path / "runs", role=role, recipe=recipe, teacher_run=teacher if role == "distilled" else None
    )
    progress = Recorder(stop_at_status=step)
    result = jobs.run_job(job, progress, data=None if step == "loading MNIST" else tiny)
    assert any(line.startswith(step) for line in progress.lines), progress.lines
    assert result.status == "stopped" and result.exit_code == 130 and result.run_dir is None
    assert trained == [] and not (tmp_path / "runs").exists()


def test_resume_is_bit_identical_with_a_dropout_teacher(tiny, tmp_path):
    """Dropout (torch's global RNG), jitter and data order all continue as if never interrupted."""
    teacher = jobs.JobSpec(
        recipe="strong",
        role="teacher",
        overrides={"epochs": 3, "batch_size": 100, "lr": 0.01},
        device="cpu",
        max_train_samples=400,
        export=False,
    )
    assert get_recipe("strong").teacher_model.dropout > 0 and jobs.resolve(teacher).train.augment
    new_process(1)
    whole = jobs.run_job(jobs.JobSpec(**{**teacher.__dict__, "runs_root": tmp_path / "whole"}), data=tiny)
    new_process(2)
    cut = jobs.run_job(
        jobs.JobSpec(**{**teacher.__dict__, "runs_root": tmp_path / "cut"}),
        Recorder(stop_after_batches=4 + 2),  # 4 batches per epoch: stopped 2 batches into epoch 2
        data=tiny,
    )
    assert cut.status == "stopped" and len(cut.history) == 1
    config_before = (cut.run_dir / runs.CONFIG).read_bytes()
    new_process(3)
    resumed = jobs.resume_job(cut.run_dir, data=tiny, export=False)
    assert resumed.status == "complete" and len(resumed.history) == 3
    a, b = flat(tensors(whole.run_dir)), flat(tensors(resumed.run_dir))
    assert a.keys() == b.keys()
    assert any(key.startswith("rng.numpy") for key in a) and any(key.startswith("optimizer") for key in a)
    timings = {key for key in a if key.startswith("history") and key.endswith(".seconds")}
    for key in sorted(a.keys() - timings):  # weights, optimiser, every random state, history but its timings
        same = torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key]
        assert same, key
    assert (cut.run_dir / runs.CONFIG).read_bytes() == config_before  # never rewritten


def test_resume_extends_a_complete_run_and_records_it(tiny, tmp_path):
    first = jobs.run_job(spec(tmp_path, overrides={"epochs": 1, "batch_size": 100}), data=tiny)
    config_before = (first.run_dir / runs.CONFIG).read_bytes()
    with pytest.raises(jobs.JobError, match="complete .*--epochs N"):
        jobs.resume_job(first.run_dir, data=tiny)
    longer = jobs.resume_job(first.run_dir, epochs=2, data=tiny, export=False)
    assert longer.status == "complete" and len(longer.history) == 2
    status = runs.read_status(first.run_dir)
    assert (
        status["epochs"] == 2 and status["extensions"][0]["from"] == 1 and status["extensions"][0]["to"] == 2
    )
    assert runs.read_run(first.run_dir).epochs == 2
    assert (first.run_dir / runs.CONFIG).read_bytes() == config_before


def test_resume_conflicts_name_the_contradicting_value(tiny, tmp_path):
    config = jobs.resolve(spec(tmp_path))
    assert jobs.resume_conflicts(config, {"lr": 0.01, "recipe": "paper", "seed": 0}) == []
    assert jobs.resume_conflicts(config, {"lr": 0.5, "seed": 2}) == [("lr", 0.5, 0.01), ("seed", 2, 0)]


def test_diverged_job_is_recorded_without_onnx(tiny, tmp_path):
    result = jobs.run_job(spec(tmp_path, overrides={"lr": 1e6, "epochs": 1}, export=True), data=tiny)
    assert result.status == "diverged" and result.exit_code not in (0, 130)
    assert "diverged" in result.message and "learning rate" in result.message
    assert not (result.run_dir / runs.ONNX).exists() and result.onnx_path is None
    assert runs.read_run(result.run_dir).status == "diverged"


def test_exploding_loss_is_caught_even_when_finite():
    from core.training import DivergenceGuard, TrainConfig, TrainingDiverged

    guard = DivergenceGuard(TrainConfig(epochs=1, batch_size=10, lr=0.1), None)
    guard.check(2.3, "first")
    guard.check(30.0, "a")  # one spike is tolerated ...
    guard.check(1.0, "b")  # ... and forgiven
    guard.check(30.0, "c")
    guard.check(30.0, "d")
    with pytest.raises(TrainingDiverged, match="rose to 30, over 10x its first value 2.3"):
        guard.check(30.0, "e")
    with pytest.raises(TrainingDiverged, match="over epoch 1"):
        DivergenceGuard(TrainConfig(epochs=1, batch_size=10, lr=0.1), None, reference=1.0).check(
            11.0, "over epoch 1", epoch_mean=True
        )


def test_named_run_continues_or_is_reused_and_refuses_other_settings(tiny, tmp_path):
    named = spec(tmp_path, run_name="student-seed0", overrides={"epochs": 1, "batch_size": 100})
    first = jobs.run_job(named, data=tiny)
    again = jobs.run_job(named, data=tiny)
    assert again.reused and again.status == "complete" and again.model is not None
    assert again.test_accuracy == first.test_accuracy
    with pytest.raises(jobs.JobError, match="other settings"):
        jobs.run_job(spec(tmp_path, run_name="student-seed0", overrides={"epochs": 1, "lr": 0.5}), data=tiny)


# ------------------------------------------------------------------------------------ files and locks


def test_a_locked_run_folder_is_refused_naming_the_other_process(tiny, tmp_path):
    cut = jobs.run_job(spec(tmp_path), Recorder(stop_after_batches=6 + 1), data=tiny)
    assert cut.status == "stopped"
    with runs.RunLock(cut.run_dir):
        with pytest.raises(runs.RunLockedError, match=f"in use by another job \\(process {os.getpid()}\\)"):
            jobs.resume_job(cut.run_dir, data=tiny, export=False)
    assert jobs.resume_job(cut.run_dir, data=tiny, export=False).status == "complete"


def test_stale_checkpoint_temp_files_are_cleaned_and_ignored(tiny, tmp_path):
    cut = jobs.run_job(spec(tmp_path), Recorder(stop_after_batches=6 + 1), data=tiny)
    stale = cut.run_dir / ".checkpoint.pt.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert runs.read_run(cut.run_dir).epochs_done == 1  # listing ignores it
    jobs.resume_job(cut.run_dir, data=tiny, export=False)
    assert not stale.exists()


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "disk full"), (errno.EACCES, "permission denied")])
def test_save_errors_name_the_path_and_keep_the_last_good_checkpoint(
    tiny, tmp_path, monkeypatch, code, words
):
    real_save = torch.save
    saves = []

    def failing_save(obj, path, *args, **kwargs):
        saves.append(path)
        if len(saves) >= 2:
            raise OSError(code, os.strerror(code))
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(runs.RunSaveError, match=f"{words} while saving .*checkpoint.pt") as caught:
        jobs.run_job(spec(tmp_path), data=tiny)
    (run_dir,) = tmp_path.iterdir()
    assert str(run_dir / runs.CHECKPOINT) in str(caught.value)
    monkeypatch.setattr(torch, "save", real_save)
    assert len(runs.read_checkpoint(run_dir)["history"]) == 1  # epoch 1's checkpoint is intact
    assert runs.read_run(run_dir).status == "failed"
    assert not list(run_dir.glob(".*.tmp"))


def test_run_names_resolve_like_paths(tmp_path):
    (tmp_path / "20260101-000000-paper-teacher").mkdir()
    assert (
        runs.resolve_run("20260101-000000-paper-teacher", tmp_path)
        == tmp_path / "20260101-000000-paper-teacher"
    )
    assert runs.resolve_run(str(tmp_path), None) == tmp_path
    with pytest.raises(runs.RunError, match="digit-distill runs"):
        runs.resolve_run("no-such-run", tmp_path)


def test_only_complete_teachers_are_chosen_automatically(tiny, tmp_path):
    teacher = spec(tmp_path, role="teacher", overrides={"epochs": 2, "batch_size": 100})
    done = jobs.run_job(teacher, data=tiny)
    stopped = jobs.run_job(teacher, Recorder(stop_after_batches=6 + 1), data=tiny)
    assert stopped.status == "stopped" and stopped.run_dir.name > done.run_dir.name
    assert jobs.find_teacher("paper", tmp_path) == done.run_dir
    with pytest.raises(jobs.JobError, match="no complete 'strong' teacher"):
        jobs.find_teacher("strong", tmp_path)


def test_a_validation_split_is_recorded_and_reported_each_epoch(tiny, tmp_path):
    result = jobs.run_job(spec(tmp_path, validation=500, run_name="val"), Recorder(), data=tiny)
    config = json.loads((result.run_dir / runs.CONFIG).read_text())
    assert config["data"]["validation"] == 500
    assert all(0 <= h["val_acc"] <= 1 for h in result.history) and len(result.history) == 2
    # Without a split no epoch has val_acc.
    plain = jobs.run_job(spec(tmp_path, run_name="plain"), Recorder(), data=tiny)
    assert all("val_acc" not in h for h in plain.history)
    with pytest.raises(ValueError, match="validation images must be between 1 and 59999"):
        jobs.resolve(spec(tmp_path, validation=0))


def test_every_job_writes_tensorboard_event_files_in_its_run_folder(tiny, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = jobs.run_job(spec(tmp_path, run_name="tb"), Recorder(), data=tiny)
    assert list(result.run_dir.glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(result.run_dir))
    acc.Reload()
    assert [e.value for e in acc.Scalars("accuracy/test")] == pytest.approx(
        [h["test_acc"] for h in result.history]
    )
