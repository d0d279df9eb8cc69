"""The model sanity check (core.sanity): a model with the right shapes but meaningless answers gets a warning."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.cli import main
from core.bundled import bundled_model
from core.inference import InvalidModelError, OnnxClassifier
from core.sanity import MARGIN, check_images, check_model


def linear_model(path, weights: np.ndarray, bias: np.ndarray | None = None, metadata: dict | None = None):
    """A (batch, 1, 28, 28) -> (batch, 10) ONNX model: flatten, x @ weights + bias."""
    bias = np.zeros(10, np.float32) if bias is None else bias
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "b"], ["logits"]),
        ],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=[
            numpy_helper.from_array(weights.astype(np.float32), "W"),
            numpy_helper.from_array(bias.astype(np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(model, path)
    return path


def random_model(path, metadata=None):
    return linear_model(path, np.random.default_rng(0).normal(size=(784, 10)), metadata=metadata)


def test_check_images_are_a_stratified_mnist_sample():
    images, labels = check_images()
    assert images.shape == (300, 1, 28, 28) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() == 1.0
    assert np.bincount(labels, minlength=10).tolist() == [30] * 10


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_bundled_models_pass(role):
    report = check_model(OnnxClassifier(bundled_model(role)))
    assert report.ok, report.warning
    assert report.accuracy >= 0.95 and report.expected is not None and report.images == 300


def test_random_weights_without_a_card_are_called_meaningless(tmp_path):
    report = check_model(OnnxClassifier(random_model(tmp_path / "random.onnx")))
    assert report.accuracy < 0.3 and report.expected is None
    assert "random.onnx recognises" in report.warning and "look meaningless" in report.warning


def test_a_model_far_below_its_card_is_flagged(tmp_path):
    report = check_model(OnnxClassifier(random_model(tmp_path / "m.onnx", metadata={"accuracy": 0.98})))
    assert report.expected == 0.98 and report.card == "the model's metadata"
    assert "far below the 98.0% the model's metadata states" in report.warning


def test_cards_beside_the_file_and_in_the_run_folder_are_read(tmp_path):
    (tmp_path / "card").mkdir()
    path = random_model(tmp_path / "card" / "student.onnx")
    (tmp_path / "card" / "student.json").write_text(json.dumps({"test_accuracy": 0.9}))
    assert "its model card student.json states" in check_model(OnnxClassifier(path)).warning
    (tmp_path / "run").mkdir()
    path = random_model(tmp_path / "run" / "model.onnx")
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"test_accuracy": 0.95}))
    assert "its run's metrics.json states" in check_model(OnnxClassifier(path)).warning


@pytest.mark.parametrize("bad", ["nan", "98.2", "high", "-0.1", "inf"])
def test_an_implausible_card_counts_as_no_card(tmp_path, bad):
    report = check_model(OnnxClassifier(random_model(tmp_path / "m.onnx", metadata={"accuracy": bad})))
    assert report.expected is None and "look meaningless" in report.warning


def test_a_good_model_within_the_margin_passes(tmp_path):
    """The bundled student with a card claiming a little more than it does on the check images is fine."""
    student = OnnxClassifier(bundled_model("student"))
    accuracy = check_model(student).accuracy
    model = onnx.load(bundled_model("student"))
    for prop in model.metadata_props:
        if prop.key == "accuracy":
            prop.value = str(min(1.0, accuracy + MARGIN - 0.01))
    onnx.save(model, tmp_path / "s.onnx")
    assert check_model(OnnxClassifier(tmp_path / "s.onnx")).ok


def test_non_finite_scores_are_flagged(tmp_path):
    weights = np.zeros((784, 10), np.float32)
    path = linear_model(tmp_path / "nan.onnx", weights, bias=np.full(10, np.nan, np.float32))
    assert "NaN or infinite scores" in check_model(OnnxClassifier(path)).warning


@pytest.mark.parametrize(
    "columns,message",
    [
        (9, "fails on MNIST images|wrong output shape"),
        (7, r"gives scores of shape \(33600, 7\) for 300 images, not \(300, 10\)|wrong output shape"),
    ],
)
def test_a_model_that_fails_to_run_or_gives_the_wrong_shape_is_invalid(tmp_path, columns, message):
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["input", "shape"], ["logits"])],
        "bad",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=[numpy_helper.from_array(np.array([-1, columns], np.int64), "shape")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(InvalidModelError, match=message):
        check_model(OnnxClassifier(tmp_path / "bad.onnx"))


def test_predict_warns_about_a_meaningless_model_and_still_answers(tmp_path, capsys):
    from PIL import Image

    model = random_model(tmp_path / "random.onnx")
    image = tmp_path / "x.png"
    canvas = Image.new("L", (100, 100), 255)
    canvas.paste(0, (40, 20, 60, 80))
    canvas.save(image)
    assert main(["predict", "--model", str(model), "--json", str(image)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["file"] == str(image)
    assert err.startswith("warning: random.onnx recognises") and "look meaningless" in err
