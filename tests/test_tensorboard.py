"""TensorBoard event files written by the Progress adapter, read back with TensorBoard's own event reader."""

from __future__ import annotations

import sys

import pytest

from core.models import PRESETS, build_model
from core.tensorboard import TensorBoardProgress, available, tensorboard_progress
from core.training import KDConfig, TrainConfig, train
from tests.training_recorder import Recorder

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

STUDENT = PRESETS["paper"].student
CFG = TrainConfig(epochs=2, batch_size=100, lr=0.05, device="cpu")


@pytest.fixture(scope="module")
def small(mnist):
    return mnist.subset(1500, 500).hold_out_validation(300)


def _events(folder):
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def test_scalars_and_hparams_are_written_and_read_back(small, tmp_path):
    teacher = build_model(STUDENT)  # any frozen model serves as a teacher for the logging test
    inner = Recorder()
    hparams = {
        "role": "distilled",
        "temperature": 4.0,
        "alpha": 0.7,
        "lr": CFG.lr,
        "epochs": 2,
        "teacher": None,
    }
    with tensorboard_progress(inner, tmp_path, hparams) as progress:
        assert isinstance(progress, TensorBoardProgress)
        result = train(
            "distilled",
            "paper",
            STUDENT,
            CFG,
            small,
            kd=KDConfig(4.0, 0.7),
            teacher=teacher,
            progress=progress,
        )
    # The wrapped progress saw every call unchanged.
    assert inner.epochs == result.history and inner.batches and inner.lines
    acc = _events(tmp_path)
    tags = set(acc.Tags()["scalars"])
    assert {"epoch/loss", "epoch/soft", "epoch/hard", "epoch/lr", "batch/loss", "batch/lr"} <= tags
    assert {"accuracy/train", "accuracy/val", "accuracy/test"} <= tags
    for tag, key in (("accuracy/val", "val_acc"), ("accuracy/test", "test_acc"), ("epoch/soft", "soft")):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [1, 2]
        assert [e.value for e in events] == pytest.approx([h[key] for h in result.history], rel=1e-6)
    assert [e.step for e in acc.Scalars("batch/loss")] == [b["step"] for b in inner.batches]
    # Hyperparameters for the HParams tab: T and alpha among them, None left out.
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    values = {k: v.number_value or v.string_value for k, v in start.session_start_info.hparams.items()}
    assert values == {"role": "distilled", "temperature": 4.0, "alpha": 0.7, "lr": 0.05, "epochs": 2}
    assert "_hparams_/session_end_info" in content


def test_without_tensorboard_nothing_is_written_and_nothing_breaks(small, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now raises ImportError
    assert not available()
    inner = Recorder()
    with tensorboard_progress(inner, tmp_path, {"role": "student"}) as progress:
        assert progress is inner
        train("student", "paper", STUDENT, CFG, small, progress=progress)
    assert list(tmp_path.iterdir()) == []
