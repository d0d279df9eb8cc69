"""Classify digits with an exported ONNX model through onnxruntime.

One :class:`OnnxClassifier` per model file: the file is validated once, the onnxruntime session is created once
and reused, and each call adds as little Python as possible on top of ``session.run`` (the app classifies on
every stroke, and the student's forward pass alone takes about ten microseconds).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import onnxruntime as ort

# onnxruntime is imported when the first model is opened, so that importing this module (the app's Draw tab
# does at start) costs nothing before the window is shown.

_INPUT_TAIL = (1, 28, 28)
_FLOAT32 = np.dtype(np.float32)
_N_CLASSES = 10
_FLOAT_TENSOR = "tensor(float)"
#: What onnxruntime says about bytes that are not an ONNX model at all (rather than a model it cannot run).
_NOT_ONNX = ("INVALID_PROTOBUF", "No graph was found")


class LogitModel(Protocol):
    """Anything that scores images: ``logits(x)`` for ``(N, 1, 28, 28)`` float32 in [0, 1] -> ``(N, 10)``."""

    def logits(self, x: npt.ArrayLike) -> np.ndarray: ...  # noqa: D102


class InvalidModelError(ValueError):
    """Raised when a file is not an ONNX digit classifier this app can use; the message says why."""


@dataclass(frozen=True)
class ModelInput:
    """A digit model's one input: its name and its fixed batch size (``None`` when the batch is symbolic)."""

    name: str
    batch: int | None


def _dims(arg: ort.NodeArg) -> list[int | None]:
    """Shape of a graph input/output, ``None`` for symbolic or unknown dimensions."""
    return [d if isinstance(d, int) else None for d in arg.shape]


def _read_model(path: Path) -> bytes:
    if not path.exists():
        raise InvalidModelError(f"{path}: no such model file")
    if not path.is_file():
        raise InvalidModelError(f"{path}: not a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidModelError(f"{path}: cannot read the model file ({exc.strerror or exc})") from None


def _open_session(path: Path, data: bytes, options: ort.SessionOptions) -> ort.InferenceSession:
    """An onnxruntime session on the model bytes.

    onnxruntime parses and checks the file itself: no ``onnx`` import, which alone takes longer than the app's
    whole start.
    """
    import onnxruntime as ort

    try:
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
        if any(marker in str(exc) for marker in _NOT_ONNX):
            raise InvalidModelError(
                f"{path}: not an ONNX model (export one with `digit-distill export`)"
            ) from None
        raise InvalidModelError(f"{path}: onnxruntime cannot load this model ({exc})") from None


def _check_signature(path: Path, session: ort.InferenceSession) -> ModelInput:
    """Check one float input (?, 1, 28, 28) and one float output (?, 10); return the input's name and batch.

    The one place that reads an ONNX model's input: :class:`OnnxClassifier` and :func:`read_input` (quantization,
    deploy) come here.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()  # initializers are not listed as inputs
    if len(inputs) != 1:
        raise InvalidModelError(f"{path}: expected one input image tensor, found {len(inputs)} inputs")
    (inp,) = inputs
    if inp.type != _FLOAT_TENSOR:
        raise InvalidModelError(f"{path}: the input {inp.name!r} must be float32 pixels")
    in_dims = _dims(inp)
    if len(in_dims) != 4 or tuple(in_dims[1:]) != _INPUT_TAIL:
        shown = tuple("?" if d is None else d for d in in_dims)
        raise InvalidModelError(f"{path}: wrong input shape {shown}; a digit model takes (batch, 1, 28, 28)")
    if len(outputs) != 1:
        raise InvalidModelError(
            f"{path}: wrong output: expected one (batch, 10) output, found {len(outputs)}"
        )
    (out,) = outputs
    out_dims = _dims(out)
    if out.type != _FLOAT_TENSOR or len(out_dims) != 2 or out_dims[1] != _N_CLASSES:
        shown = tuple("?" if d is None else d for d in out_dims)
        raise InvalidModelError(
            f"{path}: wrong output shape {shown}; a digit model gives (batch, 10) float scores"
        )
    return ModelInput(inp.name, in_dims[0])


class OnnxClassifier:
    """A validated ONNX digit model with one reusable onnxruntime session.

    Parameters
    ----------
    path
        ``.onnx`` file with one input ``(batch, 1, 28, 28)`` float32 in [0, 1] and one output ``(batch, 10)``.
    threads
        Intra-op threads for onnxruntime (1 keeps the app's GUI responsive and latency steady).

    Raises
    ------
    InvalidModelError
        The file is missing or unreadable, is not ONNX, or has the wrong input or output.

    Attributes
    ----------
    path : Path
    input : ModelInput
        The input's name and fixed batch size (:func:`read_input` gives the same without keeping a session).
    input_name : str
    output_name : str
    metadata : dict[str, str]
        The model's ``metadata_props`` (preset, role, accuracy, T, ...; all strings).
    """

    def __init__(self, path: str | os.PathLike[str], threads: int = 1):
        self.path = Path(path)
        data = _read_model(self.path)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = _open_session(self.path, data, options)
        self.input = _check_signature(self.path, self._session)
        try:
            self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        except UnicodeDecodeError:  # onnxruntime hands metadata bytes to Python as they are in the file
            raise InvalidModelError(
                f"{self.path}: the model's metadata is not UTF-8 text (a damaged file?)"
            ) from None
        self.input_name = self.input.name
        self.output_name: str = self._session.get_outputs()[0].name
        # Bound once: each call then costs one dict and one list on top of the session itself.
        self._run = self._session.run
        self._outputs = [self.output_name]

    @property
    def session(self) -> ort.InferenceSession:
        """The onnxruntime session (shared by every call; for inspection and benchmarks, not reconfiguration)."""
        return self._session

    def __repr__(self) -> str:
        return f"OnnxClassifier({str(self.path)!r})"

    def _as_batch(self, x: npt.ArrayLike) -> np.ndarray:
        """Any accepted input as a C-contiguous float32 ``(N, 1, 28, 28)`` array."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape in ((28, 28), (1, 28, 28)):
            return x.reshape(1, 1, 28, 28)
        if x.ndim == 4 and x.shape[1:] == _INPUT_TAIL:
            return x
        raise ValueError(f"images must be (28, 28), (1, 28, 28) or (N, 1, 28, 28), not {x.shape}")

    def logits(self, x: npt.ArrayLike) -> np.ndarray:
        """Raw scores ``(N, 10)`` float32 for images ``(28, 28)``, ``(1, 28, 28)`` or ``(N, 1, 28, 28)``.

        Pixels are float in [0, 1], ink bright on black. A float32 ``(N, 1, 28, 28)`` array goes to
        onnxruntime as it is (no copy when C-contiguous); onnxruntime checks its shape, and only when it
        refuses does Python look closer (to explain the error or to split batches for a fixed-batch model).
        """
        if type(x) is not np.ndarray or x.dtype is not _FLOAT32 or x.ndim != 4:
            x = self._as_batch(x)
        try:
            logits: np.ndarray = self._run(self._outputs, {self.input_name: x})[0]
            return logits
        except Exception:
            x = self._as_batch(x)  # raises a clear ValueError for a wrong image shape
            batch = self.input.batch
            if batch is not None and len(x) != batch:
                return self._logits_in_fixed_batches(x, batch)
            raise

    def _logits_in_fixed_batches(self, x: np.ndarray, b: int) -> np.ndarray:
        """For models exported with a fixed batch size ``b``: run them batch by batch."""
        if len(x) % b:
            raise ValueError(f"this model takes batches of exactly {b} images, got {len(x)}")
        return np.concatenate(
            [self._run(self._outputs, {self.input_name: x[i : i + b]})[0] for i in range(0, len(x), b)]
        )

    def probabilities(self, x: npt.ArrayLike, temperature: float = 1.0) -> np.ndarray:
        """Softmax of ``logits / temperature``: ``(N, 10)`` float32, each row summing to 1.

        A temperature above 1 flattens the distribution (the "soft targets" of distillation).
        """
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, not {temperature}")
        z = self.logits(x).astype(np.float64) / temperature
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z.astype(np.float32)

    def predict(self, x: npt.ArrayLike) -> np.ndarray:
        """Most likely digit per image, ``(N,)`` int64."""
        digits: np.ndarray = self.logits(x).argmax(axis=1)
        return digits


def read_input(path: str | os.PathLike[str]) -> ModelInput:
    """The input of the ONNX digit model at ``path``, checked as :class:`OnnxClassifier` checks the whole signature.

    Raises :class:`InvalidModelError` for a missing or unreadable file, a file that is not ONNX, or a model that
    is not a digit classifier (one ``(batch, 1, 28, 28)`` float32 input, one ``(batch, 10)`` output).
    """
    return OnnxClassifier(path).input


def latency_ms(classifier: OnnxClassifier, image: np.ndarray, repeats: int = 200) -> float:
    """Median wall time of one single-image call, in milliseconds (after a short warm-up)."""
    import statistics
    import time

    x = np.ascontiguousarray(image.reshape(1, 1, 28, 28), dtype=np.float32)
    for _ in range(10):  # warm-up: the first runs allocate buffers
        classifier.logits(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        classifier.logits(x)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)
