"""Export a trained model to ONNX at an opset the Ascend toolchain (ATC) accepts, checked against PyTorch.

The file has one input ``input`` ``(batch, 1, 28, 28)`` float32 pixels in [0, 1] and one output ``logits``
``(batch, 10)``, with a dynamic batch axis. Facts about the model (preset, role, accuracy, temperature, ...)
travel inside the file as ONNX ``metadata_props`` (strings), readable with :class:`core.inference.OnnxClassifier`.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from core.atc_ops import EXPORT_OPSET, UnsupportedOpsError, require_atc_ops
from core.fileio import atomic_path

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
#: Highest opset of the default ONNX domain that ATC (CANN) converts (the table lives in ``core.atc_ops``).
MAX_OPSET = EXPORT_OPSET
#: Largest acceptable difference between onnxruntime's and PyTorch's logits.
DEFAULT_ATOL = 1e-4
RTOL = 1e-5  # of the largest |logit|, added to the absolute bound
#: Metadata every exported file carries (caller-given keys with the same name win).
BASE_METADATA = {
    "input_format": "float32 (batch, 1, 28, 28), pixels in [0, 1], ink bright on black (MNIST)",
    "output_format": "float32 (batch, 10) logits",
    "exported_by": "digit-distill",
}


class ExportError(RuntimeError):
    """Raised when a model cannot be exported or the exported file fails its checks."""


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote and how well it matched PyTorch.

    Attributes
    ----------
    path
        The ONNX file.
    bytes
        Its size.
    opset
        The ONNX opset it was exported with.
    max_abs_diff
        Largest absolute difference of logits, onnxruntime vs PyTorch, on the verification images
        (``None`` when no images were given).
    n_verified
        Number of verification images.
    """

    path: Path
    bytes: int
    opset: int
    max_abs_diff: float | None
    n_verified: int


def check_opsets(model: onnx.ModelProto, max_opset: int = MAX_OPSET) -> None:
    """Raise :class:`ExportError` unless every node uses the default ONNX domain at an opset ``<= max_opset``."""
    versions = {imp.domain or "ai.onnx": imp.version for imp in model.opset_import}
    default = versions.get("ai.onnx")
    if default is None:
        raise ExportError("the model imports no default-domain ONNX opset")
    if default > max_opset:
        raise ExportError(
            f"the model uses ONNX opset {default}; the Atlas toolchain accepts at most {max_opset}"
        )
    for node in model.graph.node:
        domain = node.domain or "ai.onnx"
        if domain != "ai.onnx":
            raise ExportError(
                f"node {node.name or node.op_type!r} uses custom op domain {domain!r}, ATC cannot convert it"
            )


def _metadata_strings(metadata: dict[str, Any]) -> dict[str, str]:
    out = dict(BASE_METADATA)
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"metadata keys must be non-empty strings, not {key!r}")
        if not isinstance(value, (str, int, float)):
            raise ValueError(
                f"metadata value for {key!r} must be a str, int or float, not {type(value).__name__}"
            )
        out[key] = str(value)
    return out


def _torchscript_export(model: nn.Module, opset: int) -> onnx.ModelProto:
    device = next(model.parameters(), torch.empty(0)).device
    dummy = torch.zeros(1, 1, 28, 28, device=device)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated, but the dynamo exporter cannot target opset 11.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (dummy,),
            buffer,  # type: ignore[arg-type]  # a file object is documented and works; the annotation says path only
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_model_from_string(buffer.getvalue())


def _max_abs_diff(
    model: nn.Module, onnx_path: Path, images: torch.Tensor | np.ndarray, batch: int = 1000
) -> tuple[float, float, int]:
    """Largest |logit difference| between onnxruntime (on the written file) and PyTorch, and the largest |logit|."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
        raise ValueError(f"verify_images must be (N, 1, 28, 28), not {x.shape}")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    device = next(model.parameters(), torch.empty(0)).device
    worst = scale = 0.0
    with torch.no_grad():
        for start in range(0, len(x), batch):
            chunk = x[start : start + batch]
            expected = model(torch.from_numpy(chunk).to(device)).float().cpu().numpy()
            got = session.run([OUTPUT_NAME], {INPUT_NAME: chunk})[0]
            worst = max(worst, float(np.abs(got - expected).max()))
            scale = max(scale, float(np.abs(expected).max()))
    return worst, scale, len(x)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    metadata: dict[str, str | float | int],
    opset: int = MAX_OPSET,
    verify_images: torch.Tensor | np.ndarray | None = None,
    atol: float = DEFAULT_ATOL,
    soc_version: str = "Ascend310",
    check_ops: bool = True,
) -> ExportReport:
    """Export ``model`` to ONNX, store ``metadata`` in it, and check onnxruntime against PyTorch.

    Parameters
    ----------
    model
        A network taking ``(N, 1, 28, 28)`` pixels in [0, 1] and returning ``(N, 10)`` logits
        (:func:`core.models.build_model`). It is put in eval mode for the export and restored afterwards.
    path
        Destination ``.onnx`` file, written atomically: on any failure (including a failed check) it is
        left as it was.
    metadata
        E.g. ``preset``, ``role`` (teacher/student), ``accuracy``, ``T``, ``alpha``; values stored as strings.
    opset
        ONNX opset, at most 11 (the highest the Atlas toolchain converts).
    verify_images
        ``(N, 1, 28, 28)`` float images (numpy or torch) run through both onnxruntime and PyTorch;
        callers pass 1,000 MNIST test images.
    atol
        Largest allowed absolute difference of the logits, plus ``RTOL`` times the largest |logit|.
    soc_version, check_ops
        Every node is checked against ATC's operator table for this chip (:mod:`core.atc_ops`) before anything
        is written; ``check_ops=False`` skips that check (the table is approximate).

    Returns
    -------
    ExportReport

    Raises
    ------
    ExportError
        Export failed, the graph uses an opset, op domain or operator ATC cannot convert (the message names the
        node, its op and opset), or onnxruntime disagrees with PyTorch by more than ``atol``.
    """
    if opset > MAX_OPSET:
        raise ExportError(f"opset {opset} is too new for the Atlas toolchain; use at most {MAX_OPSET}")
    props = _metadata_strings(metadata)
    was_training = model.training
    model.eval()
    try:
        try:
            proto = _torchscript_export(model, opset)
        except Exception as exc:  # the exporter raises many types; one clear error for the caller
            raise ExportError(f"ONNX export failed: {exc}") from exc
        check_opsets(proto)
        if check_ops:
            try:
                require_atc_ops(proto, soc_version, what=f"the exported model ({path})")
            except UnsupportedOpsError as exc:
                raise ExportError(f"{exc}; {path} was not written") from exc
        for key, value in props.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        try:
            onnx.checker.check_model(proto)
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"the exported model is not valid ONNX: {exc}") from exc
        data = proto.SerializeToString()

        diff, n = None, 0
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
            if verify_images is not None:
                diff, scale, n = _max_abs_diff(model, tmp, verify_images)
                # float32 rounding grows with the logits' size: large logits get a proportionally larger bound.
                allowed = atol + RTOL * scale
                if not diff <= allowed:
                    raise ExportError(
                        f"onnxruntime and PyTorch disagree by {diff:.3g} (allowed {allowed:.3g}) on {n} images; "
                        f"{path} was not written"
                    )
    finally:
        model.train(was_training)
    return ExportReport(path=Path(path), bytes=len(data), opset=opset, max_abs_diff=diff, n_verified=n)
