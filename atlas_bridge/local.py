"""Local reference for step 5: the same inputs through onnxruntime (``core.inference``), and MNIST test images."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.inference import OnnxClassifier


def mnist_test_images(count: int, data_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` MNIST test images ``(count, 1, 28, 28)`` float32 in [0, 1] and their labels."""
    from core.data import load_mnist

    mnist = load_mnist(data_dir)
    if not 0 < count <= len(mnist.test_labels):
        raise ValueError(
            f"the number of test images must be between 1 and {len(mnist.test_labels)}, not {count}"
        )
    images = mnist.test_images[:count].numpy().astype(np.float32, copy=True)
    return images, mnist.test_labels[:count].numpy().astype(np.int64)


@dataclass
class LocalRun:
    """onnxruntime's answer on the host: probabilities ``(N, 10)`` and milliseconds per image (batch 1)."""

    probabilities: np.ndarray
    ms_per_image: float


def run_local(onnx_path: str | Path, images: np.ndarray) -> LocalRun:
    """Run ``images`` one at a time (as the board does with a batch-1 model), timing each call."""
    classifier = OnnxClassifier(onnx_path)
    classifier.probabilities(images[:1])  # warm-up, as on the board
    rows, elapsed = [], 0.0
    for i in range(len(images)):
        t0 = time.perf_counter()
        rows.append(classifier.probabilities(images[i : i + 1]))
        elapsed += time.perf_counter() - t0
    return LocalRun(np.concatenate(rows), 1000.0 * elapsed / max(len(images), 1))


@dataclass
class Comparison:
    """Board vs local on the same images."""

    evaluated: int
    agreement: float
    max_probability_difference: float
    board_accuracy: float | None
    local_accuracy: float | None


def compare(
    board_probabilities: np.ndarray, local_probabilities: np.ndarray, labels: np.ndarray | None = None
) -> Comparison:
    """Agreement of predicted digits, accuracies (when labels are known) and the largest probability gap."""
    board = np.asarray(board_probabilities, dtype=np.float64)
    local = np.asarray(local_probabilities, dtype=np.float64)
    if board.shape != local.shape:
        raise ValueError(f"board gave {board.shape} probabilities, local {local.shape}")
    board_pred, local_pred = board.argmax(axis=1), local.argmax(axis=1)
    accuracy = (lambda p: float(np.mean(p == labels))) if labels is not None else (lambda p: None)
    return Comparison(
        evaluated=len(board),
        agreement=float(np.mean(board_pred == local_pred)) if len(board) else 0.0,
        max_probability_difference=float(np.max(np.abs(board - local))) if len(board) else 0.0,
        board_accuracy=accuracy(board_pred),
        local_accuracy=accuracy(local_pred),
    )
