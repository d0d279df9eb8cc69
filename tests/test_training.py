"""The trainer: learning, stopping, resuming, divergence, cached teacher logits, checkpoints."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from core import runs
from core.models import PRESETS, build_model
from core.training import (
    KDConfig,
    TrainConfig,
    TrainingDiverged,
    TrainingError,
    evaluate,
    mixup_batch,
    train,
)
from tests.training_recorder import Recorder

STUDENT = PRESETS["paper"].student
QUICK = TrainConfig(epochs=1, batch_size=100, lr=0.05, device="cpu")


@pytest.fixture(scope="module")
def small(mnist):
    return mnist.subset(2000, 1000)


def test_student_learns_and_reports(small):
    progress = Recorder()
    result = train("student", "paper", STUDENT, replace(QUICK, epochs=2), small, progress=progress)
    assert result.test_accuracy > 0.80
    assert len(result.history) == 2 and len(progress.epochs) == 2
    row = progress.epochs[-1]
    assert set(row) >= {"epoch", "epochs", "loss", "soft", "hard", "train_acc", "test_acc", "seconds", "lr"}
    assert row["soft"] is None and progress.batches[0]["soft"] is None
    assert progress.batches[-1]["batch"] == progress.batches[-1]["batches"] == 20
    assert result.params == 784 * 50 + 50 + 50 * 50 + 50 + 50 * 10 + 10
    assert evaluate(result.model, small.test_images, small.test_labels) == pytest.approx(result.test_accuracy)


def test_same_seed_same_result(small):
    a = train("student", "paper", STUDENT, QUICK, small)
    b = train("student", "paper", STUDENT, QUICK, small)
    c = train("student", "paper", STUDENT, replace(QUICK, seed=1), small)
    assert a.history[-1]["loss"] == b.history[-1]["loss"]
    assert a.history[-1]["loss"] != c.history[-1]["loss"]


def test_stop_flag_is_checked_every_batch_and_keeps_finished_epochs(small, tmp_path):
    progress = Recorder(stop_after_batches=20 + 5)  # one full epoch (20 batches), then 5 batches of the next
    result = train(
        "student", "paper", STUDENT, replace(QUICK, epochs=3), small, progress=progress, run_dir=tmp_path
    )
    assert result.stopped
    assert len(result.history) == 1
    assert progress.calls == 26
    saved, meta = runs.load_checkpoint(tmp_path)
    for p, q in zip(saved.parameters(), result.model.parameters()):
        assert torch.equal(p, q)  # the returned model is the last finished epoch, as on disk
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["stopped"] and not metrics["finished"] and len(metrics["history"]) == 1


def test_resume_gives_the_same_model_as_an_uninterrupted_run(small, tmp_path):
    cfg = replace(QUICK, epochs=2)
    full = train("student", "paper", STUDENT, cfg, small)
    first = train(
        "student", "paper", STUDENT, cfg, small, progress=Recorder(stop_after_batches=25), run_dir=tmp_path
    )
    assert first.stopped and len(first.history) == 1
    resumed = train("student", "paper", STUDENT, cfg, small, run_dir=tmp_path, resume=True)
    assert len(resumed.history) == 2 and not resumed.stopped
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)  # bit for bit: every random state is in the checkpoint
    assert runs.read_run(tmp_path).finished


def test_nan_loss_stops_with_a_clear_message(small):
    bad = small.subset(500, 100)
    images = bad.train_images.clone()
    images[:] = float("nan")
    poisoned = type(bad)(images, bad.train_labels, bad.test_images, bad.test_labels)
    with pytest.raises(TrainingDiverged, match="diverged.*nan"):
        train("student", "paper", STUDENT, QUICK, poisoned)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("epochs", 0, "epochs"),
        ("lr", 0.0, "learning rate"),
        ("lr", -1.0, "learning rate"),
        ("batch_size", 0, "batch"),
    ],
)
def test_bad_training_hyperparameters_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**({"epochs": 1, "batch_size": 10, "lr": 0.1} | {field: value}))


def test_bad_kd_hyperparameters_are_refused():
    with pytest.raises(ValueError, match="temperature"):
        KDConfig(temperature=0, alpha=0.5)
    with pytest.raises(ValueError, match="alpha"):
        KDConfig(temperature=4.0, alpha=1.2)


def test_unknown_config_keys_are_an_error():
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_dict({"epochs": 1, "lr_typo": 0.1})


class CountingTeacher(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.images_seen = 0

    def forward(self, x):
        self.images_seen += len(x)
        return self.net(x)


def test_distillation_caches_teacher_logits_without_augmentation(small):
    teacher = CountingTeacher(train("student", "paper", STUDENT, QUICK, small).model)
    cfg = replace(QUICK, epochs=2)
    result = train("distilled", "paper", STUDENT, cfg, small, kd=KDConfig(4.0, 0.7), teacher=teacher)
    assert teacher.images_seen == len(small.train_labels)  # once for the whole run, not once per epoch
    assert result.history[-1]["soft"] > 0 and result.history[-1]["hard"] > 0
    assert result.test_accuracy > 0.6  # the 1-epoch teacher itself is only ~80% right
    teacher.images_seen = 0
    train(
        "distilled",
        "paper",
        STUDENT,
        replace(cfg, augment=True),
        small,
        kd=KDConfig(4.0, 0.7),
        teacher=teacher,
    )
    assert teacher.images_seen == 2 * len(small.train_labels)  # augmented inputs: the teacher sees each batch


def test_mixup_batch_blends_images_and_labels():
    x = torch.rand(16, 1, 28, 28)
    y = torch.arange(16)
    mixed, y_b, lam = mixup_batch(x, y, 1.0, torch.Generator().manual_seed(0))
    assert 0.0 < lam < 1.0
    # blended image i is lam * x[i] + (1 - lam) * x[p]; recover each partner p and check its label is y_b[i]
    partner_images = (mixed - lam * x) / (1 - lam)
    partner = torch.cdist(partner_images.flatten(1), x.flatten(1)).argmin(1)
    assert torch.equal(y_b, y[partner])
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[partner])
    again, _, lam_again = mixup_batch(x, y, 1.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, mixed)
    assert lam_again == lam


def test_mixup_distillation_runs_the_teacher_on_every_mixed_batch(small):
    """Patient and consistent distillation: no cached logits, the teacher sees exactly the student's inputs."""

    class Spy(CountingTeacher):
        def forward(self, x):
            self.last = x.clone()
            return super().forward(x)

    teacher = Spy(train("student", "paper", STUDENT, QUICK, small).model)
    cfg = replace(QUICK, epochs=2, mixup=1.0)
    seen = []

    class Watch(Recorder):
        def on_batch(self, info):
            seen.append(teacher.last)

    result = train(
        "distilled", "paper", STUDENT, cfg, small, kd=KDConfig(1.0, 1.0), teacher=teacher, progress=Watch()
    )
    assert teacher.images_seen == 2 * len(small.train_labels)  # every batch of every epoch, none cached
    assert result.history[-1]["soft"] > 0
    # the inputs are blends, not training images: no batch the teacher saw is made of raw MNIST images
    raw = small.train_images.flatten(1)
    first = seen[0].flatten(1)
    assert not any(bool((raw == row).all(1).any()) for row in first[:5])
    assert result.test_accuracy > 0.3  # it learns from the teacher's outputs alone (chance: 10%)


def test_mixup_student_trains_and_bad_mixup_is_refused(small):
    result = train("student", "paper", STUDENT, replace(QUICK, mixup=0.4, augment=True), small)
    assert result.test_accuracy > 0.4  # one epoch on blended, jittered digits (chance: 10%)
    with pytest.raises(ValueError, match="mixup"):
        replace(QUICK, mixup=-1.0)


def test_distillation_needs_a_teacher(small):
    with pytest.raises(TrainingError, match="teacher"):
        train("distilled", "paper", STUDENT, QUICK, small, kd=KDConfig(4.0, 0.9))


def test_checkpoint_alone_rebuilds_the_model(small, tmp_path):
    cnn = PRESETS["cnn"].student
    result = train("student", "cnn", cnn, QUICK, small, run_dir=tmp_path)
    model, meta = runs.load_checkpoint(tmp_path / runs.CHECKPOINT)
    assert meta["preset"] == "cnn" and meta["role"] == "student"
    assert meta["model_config"]["kind"] == "cnn"
    x = small.test_images[:16]
    torch.testing.assert_close(model(x), result.model(x))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["train"]["batch_size"] == 100 and config["model"]["channels"] == [8, 16]


def test_corrupt_checkpoint_is_reported(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable digit-distill checkpoint"):
        runs.load_checkpoint(tmp_path)


def test_augmentation_trains(small):
    result = train("student", "paper", STUDENT, replace(QUICK, augment=True), small)
    assert result.test_accuracy > 0.6


def test_teacher_architecture(small):
    model = build_model(PRESETS["paper"].teacher)
    assert sum(p.numel() for p in model.parameters()) == 5_592_010
    assert model(small.test_images[:3]).shape == (3, 10)


def test_atomic_writes_leave_normal_permissions_and_no_partial_file(tmp_path):
    import os

    from core.fileio import atomic_write_bytes, atomic_write_json

    target = atomic_write_json(tmp_path / "a.json", {"x": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == 0o666 & ~umask

    def failing_writer(f):
        f.write(b"half")
        raise OSError("disk full")

    from core.fileio import atomic_write

    atomic_write_bytes(tmp_path / "b.bin", b"old")
    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "b.bin", failing_writer)
    assert (tmp_path / "b.bin").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]
