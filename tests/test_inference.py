"""OnnxClassifier (validation, shapes, probabilities) and the ``digit-distill predict`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image

from app.cli import main
from core.export import export_onnx
from core.inference import InvalidModelError, ModelInput, OnnxClassifier, read_input
from core.models import build_model, get_preset


def train_quick_student(mnist, n: int = 5000) -> torch.nn.Module:
    """A paper student trained for one epoch on ``n`` MNIST training images (about a second)."""
    torch.manual_seed(0)
    model = build_model(get_preset("paper").student)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = mnist.train_images[:n], mnist.train_labels[:n]
    for idx in torch.randperm(n).split(64):
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def student_path(mnist, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "student.onnx"
    export_onnx(
        train_quick_student(mnist),
        path,
        metadata={"preset": "paper", "role": "student", "accuracy": 0.9},
        verify_images=mnist.test_images[:1000],
    )
    return path


@pytest.fixture(scope="module")
def classifier(student_path):
    return OnnxClassifier(student_path)


@pytest.fixture(scope="module")
def test_set(mnist):
    return mnist.test_images[:2000].numpy(), mnist.test_labels[:2000].numpy()


def test_classifies_mnist(classifier, test_set):
    x, y = test_set
    accuracy = float((classifier.predict(x) == y).mean())
    assert accuracy > 0.8, accuracy  # about 0.85 after one epoch on 5,000 images


def test_metadata_and_names(classifier):
    assert classifier.metadata["role"] == "student"
    assert classifier.metadata["preset"] == "paper"
    assert float(classifier.metadata["accuracy"]) == 0.9
    assert classifier.input_name == "input"
    assert classifier.output_name == "logits"


def test_accepts_single_images_and_batches(classifier, test_set):
    x, _ = test_set
    batch = classifier.logits(x[:5])
    assert batch.shape == (5, 10) and batch.dtype == np.float32
    np.testing.assert_allclose(classifier.logits(x[0, 0]), batch[:1], atol=1e-5)  # (28, 28)
    np.testing.assert_allclose(classifier.logits(x[0]), batch[:1], atol=1e-5)  # (1, 28, 28)
    np.testing.assert_allclose(classifier.logits(x[:5].astype(np.float64)), batch, atol=1e-5)
    strided = np.zeros((5, 1, 28, 56), np.float32)
    strided[..., ::2] = x[:5]
    np.testing.assert_allclose(classifier.logits(strided[..., ::2]), batch, atol=1e-5)  # non-contiguous
    np.testing.assert_allclose(classifier.logits(x[:5].tolist()), batch, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        classifier.logits(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"not \(1, 1, 32, 32\)"):
        classifier.logits(np.zeros((1, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match=r"not \(2, 3, 28, 28\)"):
        classifier.logits(np.zeros((2, 3, 28, 28), np.float32))


def test_probabilities_sum_to_one_and_temperature_flattens(classifier, test_set):
    x, _ = test_set
    p1 = classifier.probabilities(x[:100])
    assert p1.shape == (100, 10) and p1.dtype == np.float32
    np.testing.assert_allclose(p1.sum(axis=1), 1.0, atol=1e-6)
    assert (p1 >= 0).all()
    np.testing.assert_array_equal(p1.argmax(axis=1), classifier.logits(x[:100]).argmax(axis=1))

    p6 = classifier.probabilities(x[:100], temperature=6.0)
    np.testing.assert_allclose(p6.sum(axis=1), 1.0, atol=1e-6)
    assert (p6.max(axis=1) < p1.max(axis=1)).all()

    def entropy(p):
        return -(p * np.log(np.maximum(p, 1e-30))).sum(axis=1)

    assert (entropy(p6) > entropy(p1)).all()
    np.testing.assert_allclose(classifier.probabilities(x[:3], temperature=1e6), 0.1, atol=1e-3)
    with pytest.raises(ValueError, match="temperature"):
        classifier.probabilities(x[:1], temperature=0)


def test_session_created_once_with_one_thread(student_path, test_set, monkeypatch):
    created = []
    real = ort.InferenceSession

    def counting(*args, **kwargs):
        created.append(kwargs.get("sess_options"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", counting)
    clf = OnnxClassifier(student_path)
    for i in range(5):
        clf.probabilities(test_set[0][i])
    assert len(created) == 1
    options = created[0]
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL


# ---- refusing files that are not digit models ----


def _save_graph(path, in_shape, out_shape, in_type=TensorProto.FLOAT, n_outputs=1):
    """A small valid ONNX model with the given signature (Flatten + Gemm, or Identity when shapes allow)."""
    x = helper.make_tensor_value_info("input", in_type, in_shape)
    outs = [helper.make_tensor_value_info(f"out{i}", TensorProto.FLOAT, out_shape) for i in range(n_outputs)]
    n_in = int(np.prod([d for d in in_shape[1:]]))
    n_out = out_shape[1]
    w = helper.make_tensor("w", TensorProto.FLOAT, [n_in, n_out], np.zeros(n_in * n_out, np.float32))
    nodes = [helper.make_node("Flatten", ["input"], ["flat"], axis=1)]
    if in_type != TensorProto.FLOAT:
        nodes.insert(0, helper.make_node("Cast", ["input"], ["input_f"], to=TensorProto.FLOAT))
        nodes[1] = helper.make_node("Flatten", ["input_f"], ["flat"], axis=1)
    nodes += [helper.make_node("MatMul", ["flat", "w"], [f"out{i}"]) for i in range(n_outputs)]
    graph = helper.make_graph(nodes, "g", [x], outs, initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_valid_hand_made_graph_is_accepted(tmp_path):
    clf = OnnxClassifier(_save_graph(tmp_path / "ok.onnx", ["n", 1, 28, 28], ["n", 10]))
    np.testing.assert_allclose(clf.probabilities(np.zeros((3, 1, 28, 28), np.float32)), 0.1, atol=1e-6)


def test_fixed_batch_model_runs_image_by_image(tmp_path):
    clf = OnnxClassifier(_save_graph(tmp_path / "fixed.onnx", [1, 1, 28, 28], [1, 10]))
    assert clf.logits(np.zeros((3, 1, 28, 28), np.float32)).shape == (3, 10)
    pairs = OnnxClassifier(_save_graph(tmp_path / "pairs.onnx", [2, 1, 28, 28], [2, 10]))
    assert pairs.logits(np.zeros((4, 1, 28, 28), np.float32)).shape == (4, 10)
    with pytest.raises(ValueError, match="batches of exactly 2"):
        pairs.logits(np.zeros((3, 1, 28, 28), np.float32))


def test_read_input_gives_the_name_and_fixed_batch(student_path, tmp_path):
    assert read_input(student_path) == ModelInput("input", None)
    assert read_input(_save_graph(tmp_path / "pairs.onnx", [2, 1, 28, 28], [2, 10])) == ModelInput("input", 2)
    with pytest.raises(InvalidModelError, match="wrong input shape"):
        read_input(_save_graph(tmp_path / "flat.onnx", ["n", 784], ["n", 10]))


@pytest.mark.parametrize(
    ("in_shape", "out_shape", "kwargs", "message"),
    [
        (["n", 784], ["n", 10], {}, "wrong input shape"),
        (["n", 1, 32, 32], ["n", 10], {}, "wrong input shape"),
        (["n", 3, 28, 28], ["n", 10], {}, "wrong input shape"),
        (["n", 1, 28, 28], ["n", 5], {}, "wrong output shape"),
        (["n", 1, 28, 28], ["n", 10], {"n_outputs": 2}, "wrong output"),
        (["n", 1, 28, 28], ["n", 10], {"in_type": TensorProto.INT64}, "float32"),
    ],
)
def test_refuses_wrong_signature(tmp_path, in_shape, out_shape, kwargs, message):
    path = _save_graph(tmp_path / "bad.onnx", in_shape, out_shape, **kwargs)
    with pytest.raises(InvalidModelError, match=message):
        OnnxClassifier(path)


def test_metadata_that_is_not_utf8_is_a_clear_error(tmp_path):
    # Found by test_properties.test_onnx_loader: the bundled student with one byte of its metadata flipped.
    path = _save_graph(tmp_path / "ok.onnx", ["n", 1, 28, 28], ["n", 10])
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {"role": "student-X"})
    data = model.SerializeToString()
    assert data.count(b"student-X") == 1
    path.write_bytes(data.replace(b"student-X", b"student-\xfd"))
    with pytest.raises(InvalidModelError, match="metadata is not UTF-8"):
        OnnxClassifier(path)


def test_refuses_non_onnx_files(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n" * 20)
    with pytest.raises(InvalidModelError, match="not an ONNX model"):
        OnnxClassifier(text)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(InvalidModelError, match="not an ONNX model"):
        OnnxClassifier(empty)
    png = tmp_path / "digit.onnx"
    Image.new("L", (28, 28)).save(png, format="PNG")
    with pytest.raises(InvalidModelError, match="not an ONNX model"):
        OnnxClassifier(png)
    with pytest.raises(InvalidModelError, match="no such model file"):
        OnnxClassifier(tmp_path / "missing.onnx")
    with pytest.raises(InvalidModelError, match="not a file"):
        OnnxClassifier(tmp_path)


# ---- digit-distill predict ----


def _digit_png(path, image_01: np.ndarray, scale: int = 8):
    """Save an MNIST image as a big dark-on-light PNG, like a drawing or a scan."""
    img = Image.fromarray(((1 - image_01) * 255).astype(np.uint8)).resize(
        (28 * scale, 28 * scale), Image.BILINEAR
    )
    img.convert("RGB").save(path)
    return path


PREDICT_KEYS = {"file", "digit", "probabilities", "confidence", "unsure", "runner_up", "not_a_digit"}


def test_predict_json(student_path, mnist, tmp_path, capsys):
    x, y = mnist.test_images[:20].numpy(), mnist.test_labels[:20].numpy()
    files = [str(_digit_png(tmp_path / f"d{i}.png", x[i, 0])) for i in range(20)]
    assert main(["predict", "--model", str(student_path), "--json", *files]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 20
    assert "has no calibration" in err and "digit-distill calibrate" in err  # this test model is uncalibrated
    records = [json.loads(line) for line in lines]
    for record, file in zip(records, files):
        assert set(record) == PREDICT_KEYS
        assert record["unsure"] is None and record["not_a_digit"] is None
        assert record["file"] == file
        assert isinstance(record["digit"], int) and 0 <= record["digit"] <= 9
        probs = record["probabilities"]
        assert len(probs) == 10 and all(isinstance(p, float) for p in probs)
        assert abs(sum(probs) - 1) < 1e-5
        assert record["digit"] == int(np.argmax(probs))
    correct = sum(r["digit"] == label for r, label in zip(records, y))
    assert correct >= 15, correct


def test_predict_readable_output_and_bad_image(student_path, mnist, tmp_path, capsys):
    good = str(_digit_png(tmp_path / "seven.png", mnist.test_images[0, 0].numpy()))
    broken = tmp_path / "broken.png"
    broken.write_text("not a png")
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    code = main(["predict", "--model", str(student_path), str(broken), good, str(blank)])
    out, err = capsys.readouterr()
    assert code != 0
    assert out.splitlines() == [out.strip()]  # only the good image is printed
    assert out.startswith(f"{good}: 7 (")
    assert "broken.png: not an image file" in err
    assert "blank.png: blank image" in err


def test_predict_bad_model(tmp_path, capsys):
    model = tmp_path / "model.onnx"
    model.write_text("nope")
    image = tmp_path / "x.png"
    Image.new("L", (50, 50), 255).save(image)
    code = main(["predict", "--model", str(model), str(image)])
    out, err = capsys.readouterr()
    assert code != 0 and out == ""
    assert "not an ONNX model" in err


def _png_header_only(path, width: int, height: int):
    """A valid PNG header claiming ``width`` x ``height`` pixels (a decompression bomb needs no more to be caught)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def test_predict_reports_each_bad_file_and_classifies_every_good_one(student_path, mnist, tmp_path, capsys):
    import os

    from tests.reliability import time_limit

    good = [str(_digit_png(tmp_path / f"d{i}.png", mnist.test_images[i, 0].numpy())) for i in range(2)]
    bomb = _png_header_only(tmp_path / "bomb.png", 20000, 20000)  # PIL itself refuses this one
    big = _png_header_only(tmp_path / "big.png", 8000, 8000)  # under PIL's limit, over ours
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(Path(good[0]).read_bytes()[:300])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    files = [
        str(bomb),
        good[0],
        str(fifo),
        str(big),
        str(tmp_path),
        str(truncated),
        str(empty),
        "missing.png",
        good[1],
    ]
    with time_limit(60):
        code = main(["predict", "--model", str(student_path), "--json", *files])
    out, err = capsys.readouterr()
    assert code == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in records] == files
    by_file = {r["file"]: r for r in records}
    for file in good:
        assert set(by_file[file]) == PREDICT_KEYS
    assert [by_file[good[0]]["digit"], by_file[good[1]]["digit"]] == [7, 2]
    errors = {f: by_file[f]["error"] for f in files if f not in good}
    assert all(set(by_file[f]) == {"file", "error"} for f in errors)
    assert all(message.startswith(file) for file, message in errors.items())
    assert "larger than the limit" in errors[str(bomb)]
    assert "8000 x 8000 = 64,000,000 pixels" in errors[str(big)]
    assert "not a regular file" in errors[str(fifo)]
    assert "folder" in errors[str(tmp_path)]
    assert "cannot read the image" in errors[str(truncated)]
    assert "not an image file" in errors[str(empty)]
    assert "no such file" in errors["missing.png"]
    assert err.strip().splitlines()[-1] == "7 of 9 images could not be classified"
