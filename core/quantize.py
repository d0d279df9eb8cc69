"""INT8 quantization of exported models with onnxruntime, measured for size, latency and accuracy.

Two flavours, both from ``onnxruntime.quantization``:

- *dynamic*: weights stored as int8, activations quantized on the fly per batch (no calibration data);
- *static*: weights and activations int8, the activations' ranges calibrated beforehand on training images
  (never test images), in the QOperator format (QLinearMatMul/QLinearConv), which runs on opset 11 graphs.

The paper lists compression beyond distillation as future work; this module is that step. The quantized files
are for onnxruntime on a CPU: the Atlas board's ATC toolchain does its own quantization (AMCT) and takes the
float32 export.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from core.fileio import atomic_path
from core.inference import OnnxClassifier, latency_ms, read_input

if TYPE_CHECKING:
    from core.data import MNIST

KINDS = ("float32", "dynamic", "static")


class QuantizationError(RuntimeError):
    """The model cannot be quantized (not an ONNX digit model, or onnxruntime's quantizer failed)."""


class _Calibration:
    """Feeds calibration images to onnxruntime's static quantizer in batches (a ``CalibrationDataReader``)."""

    def __init__(self, input_name: str, images: np.ndarray, batch: int = 100):
        self._batches = iter(
            [{input_name: np.ascontiguousarray(images[i : i + batch])} for i in range(0, len(images), batch)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:  # noqa: D102 - onnxruntime's reader protocol
        return next(self._batches, None)

    def rewind(self) -> None:  # noqa: D102 - some onnxruntime versions call it; one pass is all we provide
        pass


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Silence the advice that the onnxruntime quantizer logs on the root logger at WARNING."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], kind: str, calibration: np.ndarray | None = None
) -> Path:
    """Write an INT8 version of the ONNX model ``src`` to ``dst`` (atomically).

    Parameters
    ----------
    src, dst
        Float32 ONNX digit model and the destination file.
    kind
        ``"dynamic"`` or ``"static"``.
    calibration
        Static only: float32 ``(N, 1, 28, 28)`` images in [0, 1] (a few hundred training images suffice).

    Raises
    ------
    QuantizationError
        Unknown kind, missing calibration data, or onnxruntime failed.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    src, dst = Path(src), Path(dst)
    input_name = read_input(src).name  # validates the file (clear error for a non-digit model)
    if kind not in ("dynamic", "static"):
        raise QuantizationError(f"kind must be 'dynamic' or 'static', not {kind!r}")
    if kind == "static" and (calibration is None or len(calibration) == 0):
        raise QuantizationError("static quantization needs calibration images")
    with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
        out = Path(tmp) / "model.onnx"
        try:
            if kind == "dynamic":
                quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8)
            else:
                images = np.ascontiguousarray(calibration, dtype=np.float32)
                quantize_static(
                    str(src),
                    str(out),
                    _Calibration(input_name, images),
                    quant_format=QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises many types; one clear error
            raise QuantizationError(f"onnxruntime could not quantize {src} ({kind}): {exc}") from exc
        data = out.read_bytes()
    with atomic_path(dst) as tmp_dst:
        tmp_dst.write_bytes(data)
    return dst


@dataclass
class Measurement:
    """Size, latency and accuracy of one model file."""

    kind: str
    path: str
    bytes: int
    latency_ms_batch1: float
    throughput_per_s: float
    accuracy: float
    drawn_accuracy: float | None = None
    int8_nodes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


def measure(
    path: str | os.PathLike[str],
    kind: str,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    drawn: tuple[np.ndarray, np.ndarray] | None = None,
    repeats: int = 200,
) -> Measurement:
    """Size on disk, batch-1 latency (1 thread), batch throughput and accuracy of an ONNX model."""
    path = Path(path)
    classifier = OnnxClassifier(path, threads=1)
    t = time.perf_counter()
    logits = np.concatenate(
        [classifier.logits(test_images[i : i + 1000]) for i in range(0, len(test_images), 1000)]
    )
    throughput = len(test_images) / (time.perf_counter() - t)
    accuracy = float((logits.argmax(1) == test_labels).mean())
    drawn_acc = None
    if drawn is not None:
        drawn_acc = float((classifier.logits(drawn[0]).argmax(1) == drawn[1]).mean())
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    int8 = sum(
        op.startswith(("QLinear", "MatMulInteger", "ConvInteger", "DynamicQuantize", "QGemm")) for op in ops
    )
    return Measurement(
        kind=kind,
        path=str(path),
        bytes=path.stat().st_size,
        latency_ms_batch1=latency_ms(classifier, test_images[0], repeats),
        throughput_per_s=throughput,
        accuracy=accuracy,
        drawn_accuracy=drawn_acc,
        int8_nodes=int8,
    )


def compare(
    model: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    data: MNIST,
    *,
    calibration_samples: int = 500,
    drawn: tuple[np.ndarray, np.ndarray] | None = None,
    test_samples: int | None = None,
    repeats: int = 200,
) -> list[dict[str, Any]]:
    """Quantize ``model`` both ways into ``out_dir`` and measure all three files.

    Calibration images are the first ``calibration_samples`` of a fixed random draw from the *training*
    set; accuracy is measured on the test set (or its first ``test_samples`` images).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    train = data.train_images.numpy()
    calib = train[rng.permutation(len(train))[:calibration_samples]]
    test_x = np.ascontiguousarray(data.test_images.numpy()[:test_samples])
    test_y = data.test_labels.numpy()[:test_samples]
    stem = Path(model).stem
    files = {"float32": Path(model)}
    files["dynamic"] = quantize(model, out_dir / f"{stem}.int8-dynamic.onnx", "dynamic")
    files["static"] = quantize(model, out_dir / f"{stem}.int8-static.onnx", "static", calib)
    rows = [measure(files[k], k, test_x, test_y, drawn, repeats).to_dict() for k in KINDS]
    base = rows[0]
    for row in rows:
        row["size_ratio"] = base["bytes"] / row["bytes"]
        row["accuracy_change"] = row["accuracy"] - base["accuracy"]
        row["calibration_samples"] = calibration_samples if row["kind"] == "static" else 0
    return rows


def format_rows(rows: list[dict[str, Any]], name: str = "") -> str:
    """A plain-text table of :func:`compare`'s rows."""
    lines = [
        f"{'model':<22}{'size':>10}{'x smaller':>10}{'ms/image':>10}{'images/s':>10}{'accuracy':>10}{'drawn':>8}"
    ]
    for r in rows:
        drawn = "-" if r["drawn_accuracy"] is None else f"{100 * r['drawn_accuracy']:.2f}%"
        lines.append(
            f"{(name + ' ' + r['kind']).strip():<22}{r['bytes'] / 1024:>8.0f}kB{r['size_ratio']:>10.1f}"
            f"{r['latency_ms_batch1']:>10.3f}{r['throughput_per_s']:>10.0f}{100 * r['accuracy']:>9.2f}%{drawn:>8}"
        )
    return "\n".join(lines)
