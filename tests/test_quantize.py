"""INT8 quantization with onnxruntime: valid smaller files, accuracy kept, measurements, CLI, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.commands import CommandError
from core.export import export_onnx
from core.inference import OnnxClassifier
from core.models import PRESETS
from core.quantize import QuantizationError, compare, format_rows, quantize
from core.training import TrainConfig, train
from tests.conftest import run_command


@pytest.fixture(scope="module")
def small(mnist):
    return mnist.subset(3000, 1000)


@pytest.fixture(scope="module")
def student_onnx(small, tmp_path_factory):
    cfg = TrainConfig(epochs=2, batch_size=100, lr=0.1, device="cpu")
    model = train("student", "paper", PRESETS["paper"].student, cfg, small).model
    path = tmp_path_factory.mktemp("q") / "student.onnx"
    export_onnx(model, path, metadata={"role": "student"})
    return path


def test_compare_quantizes_both_ways_and_keeps_accuracy(student_onnx, small, tmp_path):
    rows = compare(student_onnx, tmp_path, small, calibration_samples=200, repeats=20)
    assert [r["kind"] for r in rows] == ["float32", "dynamic", "static"]
    base, dynamic, static = rows
    assert base["accuracy"] > 0.85 and base["int8_nodes"] == 0
    for r in (dynamic, static):
        assert r["int8_nodes"] > 0
        assert r["bytes"] < base["bytes"] / 2.5 and r["size_ratio"] > 2.5
        assert abs(r["accuracy_change"]) < 0.02
        assert r["latency_ms_batch1"] > 0 and r["throughput_per_s"] > 0
        OnnxClassifier(r["path"])  # a valid digit model the app can load
    assert static["calibration_samples"] == 200 and dynamic["calibration_samples"] == 0
    assert "static" in format_rows(rows, "student")


def test_quantized_logits_stay_close(student_onnx, small, tmp_path):
    x = np.ascontiguousarray(small.test_images[:200].numpy())
    ref = OnnxClassifier(student_onnx).logits(x)
    out = quantize(student_onnx, tmp_path / "d.onnx", "dynamic")
    agree = (OnnxClassifier(out).logits(x).argmax(1) == ref.argmax(1)).mean()
    assert agree > 0.97


def test_errors_are_clear(student_onnx, tmp_path):
    with pytest.raises(QuantizationError, match="kind"):
        quantize(student_onnx, tmp_path / "x.onnx", "int4")
    with pytest.raises(QuantizationError, match="calibration"):
        quantize(student_onnx, tmp_path / "x.onnx", "static")
    assert not (tmp_path / "x.onnx").exists()


def test_cli_writes_table_and_json(student_onnx, tmp_path, capsys, mnist_dir):
    code = run_command(
        [
            "quantize",
            str(student_onnx),
            "--out",
            str(tmp_path),
            "--calibration-samples",
            "100",
            "--test-samples",
            "500",
            "--repeats",
            "10",
            "--data-dir",
            str(mnist_dir),
            "--json",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = json.loads((tmp_path / "quantize.json").read_text())
    assert printed == saved and len(saved["rows"]) == 3
    assert (tmp_path / "student.int8-static.onnx").exists()


def test_cli_refuses_a_file_that_is_not_a_model(tmp_path, mnist_dir, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(CommandError, match="not an ONNX model"):
        run_command(["quantize", str(bad), "--out", str(tmp_path / "o"), "--data-dir", str(mnist_dir)])
