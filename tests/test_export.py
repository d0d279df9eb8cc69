"""ONNX export: round trip against PyTorch, metadata, opset limits for ATC, atomic writes."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from core.export import ExportError, ExportReport, check_opsets, export_onnx
from core.models import build_model, get_preset


@pytest.fixture(scope="module")
def test_images(mnist) -> np.ndarray:
    return mnist.test_images[:1000].numpy()


def _model(preset: str, role: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(getattr(get_preset(preset), role))


@pytest.mark.parametrize(("preset", "role"), [("paper", "student"), ("paper", "teacher"), ("cnn", "student")])
def test_round_trip_matches_torch(tmp_path, test_images, preset, role):
    model = _model(preset, role)
    path = tmp_path / f"{role}.onnx"
    report = export_onnx(
        model,
        path,
        metadata={"preset": preset, "role": role, "accuracy": 0.9123, "T": 6.0, "alpha": 0.5, "epochs": 3},
        verify_images=test_images,
    )

    assert isinstance(report, ExportReport)
    assert report.path == path and report.opset == 11 and report.n_verified == 1000
    assert report.bytes == path.stat().st_size
    assert report.max_abs_diff is not None and 0 <= report.max_abs_diff <= 1e-4

    # A dynamic batch: run a batch size the export never saw and compare with PyTorch independently.
    x = test_images[1000 - 7 :]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x})
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert got.shape == (7, 10)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)

    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["preset"] == preset and meta["role"] == role
    assert float(meta["accuracy"]) == 0.9123 and float(meta["T"]) == 6.0 and int(meta["epochs"]) == 3
    assert [(i.domain, i.version) for i in proto.opset_import] == [("", 11)]
    (inp,) = proto.graph.input
    (out,) = proto.graph.output
    assert inp.name == "input" and out.name == "logits"
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert in_dims == ["batch", 1, 28, 28] and out_dims == ["batch", 10]
    check_opsets(proto)  # every node in the default domain at opset <= 11


def test_export_restores_training_mode_and_accepts_torch_images(tmp_path, test_images):
    model = _model("paper", "student").train()
    report = export_onnx(
        model, tmp_path / "m.onnx", metadata={}, verify_images=torch.from_numpy(test_images[:50])
    )
    assert model.training
    assert report.n_verified == 50


def test_export_without_verification(tmp_path):
    report = export_onnx(
        _model("paper", "student"), tmp_path / "sub" / "m.onnx", metadata={"role": "student"}
    )
    assert report.max_abs_diff is None and report.n_verified == 0
    assert (tmp_path / "sub" / "m.onnx").is_file()


def test_export_refuses_opsets_above_11(tmp_path):
    with pytest.raises(ExportError, match="at most 11"):
        export_onnx(_model("paper", "student"), tmp_path / "m.onnx", metadata={}, opset=13)
    assert not (tmp_path / "m.onnx").exists()


def _tiny_graph(opset: int, domain: str = "") -> onnx.ModelProto:
    node = helper.make_node("Relu", ["x"], ["y"], domain=domain)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=imports)


def test_check_opsets():
    check_opsets(_tiny_graph(11))
    check_opsets(_tiny_graph(9))
    with pytest.raises(ExportError, match="opset 13"):
        check_opsets(_tiny_graph(13))
    with pytest.raises(ExportError, match="custom op domain 'com.example'"):
        check_opsets(_tiny_graph(11, domain="com.example"))


class _TracedWrong(nn.Module):
    """Data-dependent control flow: tracing records one branch, eager PyTorch takes the other on real digits."""

    def __init__(self):
        super().__init__()
        self.net = build_model(get_preset("paper").student)

    def forward(self, x):
        logits = self.net(x)
        if x.sum() > 1.0:
            return logits * 2.0 + 1.0
        return logits


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_failed_verification_leaves_no_file(tmp_path, test_images):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous model")
    with pytest.raises(ExportError, match="disagree"):
        export_onnx(_TracedWrong(), path, metadata={}, verify_images=test_images[:20])
    assert path.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file left behind


def test_bad_metadata_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="'layers'"):
        export_onnx(_model("paper", "student"), tmp_path / "m.onnx", metadata={"layers": [1, 2]})
    assert not (tmp_path / "m.onnx").exists()


def test_export_emits_no_deprecation_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        export_onnx(_model("paper", "student"), tmp_path / "m.onnx", metadata={})
