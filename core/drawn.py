"""Accuracy on digits drawn by people: a drawn-digit set rendered once, then measured for many PyTorch models.

:func:`core.strokes.evaluate_drawn` renders pen trajectories the way the app's canvas does and classifies them;
:class:`DrawnDigits` keeps what it rendered so that ``reproduce`` can measure every model of an experiment on
the same images without rendering them again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn


class TorchClassifier:
    """Adapter giving a PyTorch model the ``logits(x)`` method :func:`core.strokes.evaluate_drawn` expects."""

    def __init__(self, model: nn.Module):
        self.model = model.eval().cpu()

    def logits(self, x: npt.ArrayLike) -> np.ndarray:
        """``(N, 10)`` logits of float32 ``(N, 1, 28, 28)`` images."""
        from core.training import predict_logits

        return predict_logits(self.model, torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


class _CaptureInputs:
    """A stand-in classifier that keeps the images :func:`core.strokes.evaluate_drawn` renders."""

    inputs: np.ndarray | None = None

    def logits(self, x: npt.ArrayLike) -> np.ndarray:
        self.inputs = np.ascontiguousarray(x, dtype=np.float32)
        return np.zeros((len(self.inputs), 10), dtype=np.float32)


class DrawnDigits:
    """A drawn-digit set rendered once, by :func:`core.strokes.evaluate_drawn` itself, then reused for many models.

    Parameters
    ----------
    path
        Drawn-digits ``.npz``.
    limit
        Use only this many samples, evenly spaced through the file (the same pick as ``evaluate_drawn``).
    """

    def __init__(self, path: str | Path, limit: int | None = None):
        from core.strokes import load_drawn

        self.path = Path(path)
        self.limit = limit
        labels = np.array([s.label for s in load_drawn(self.path)], dtype=np.int64)
        if limit is not None and limit < len(labels):
            labels = labels[np.linspace(0, len(labels) - 1, limit).round().astype(int)]
        self.labels = labels
        self.inputs: np.ndarray | None = None

    def render(self) -> np.ndarray:
        """The rendered, preprocessed images ``(N, 1, 28, 28)`` (rendered on the first call only)."""
        from core.strokes import evaluate_drawn

        if self.inputs is None:
            capture = _CaptureInputs()
            result = evaluate_drawn(capture, self.path, limit=self.limit)
            if result["n"] != len(self.labels):
                raise ValueError(f"{self.path}: rendered {result['n']} samples for {len(self.labels)} labels")
            self.inputs = (
                capture.inputs if capture.inputs is not None else np.zeros((0, 1, 28, 28), np.float32)
            )
        return self.inputs

    def accuracy(self, model: nn.Module) -> float:
        """Accuracy of ``model`` on the drawn digits, rendered like the app's canvas."""
        logits = TorchClassifier(model).logits(self.render())
        return float((logits.argmax(1) == self.labels).mean())
