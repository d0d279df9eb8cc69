"""Is a chosen ONNX model really a working digit classifier? Run it on 300 MNIST test images shipped with the package.

A file can have the right input and output shapes and still give meaningless answers (random weights, a model
for another input scale, a damaged or swapped file). Wherever a model is chosen (the app's model pickers,
``digit-distill predict`` and ``deploy``) :func:`check_model` runs it on ``core/bundled/mnist-check.npz`` (30
test images per digit, written by ``scripts/make_check_images.py``) and returns a warning when its accuracy is far
below what its model card says, or below 50% when it has no card.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.bundled import BUNDLED_DIR
from core.inference import InvalidModelError, OnnxClassifier

CHECK_IMAGES = BUNDLED_DIR / "mnist-check.npz"
#: "Far below its card": more than this many percentage points under the accuracy its card states. On 300 images
#: a 98% model's sample accuracy has a standard error under one point, so ten points is far outside chance.
MARGIN = 0.10
#: Without a card, a model below this accuracy is called meaningless (chance is 10%).
MINIMUM_WITHOUT_CARD = 0.5


@dataclass(frozen=True)
class SanityReport:
    """How a model did on the check images.

    Attributes
    ----------
    accuracy
        Fraction of the check images classified correctly (0 when the scores are not finite).
    images
        How many check images.
    expected
        The test accuracy the model card states, ``None`` without a card.
    card
        Where ``expected`` was read (``"the model's metadata"``, ``"its model card student.json"``, ...).
    warning
        ``None`` when the model looks fine; else one or two sentences for the user.
    """

    accuracy: float
    images: int
    expected: float | None
    card: str | None
    warning: str | None

    @property
    def ok(self) -> bool:  # noqa: D102
        return self.warning is None


@lru_cache(maxsize=1)
def check_images() -> tuple[np.ndarray, np.ndarray]:
    """The check images as float32 ``(N, 1, 28, 28)`` in [0, 1] and their labels ``(N,)`` int64."""
    with np.load(CHECK_IMAGES) as data:
        images = data["images"].astype(np.float32)[:, None] / np.float32(255)
        labels = data["labels"].astype(np.int64)
    images.flags.writeable = False
    return images, labels


def _fraction(value: Any) -> float | None:
    """An accuracy as a fraction in [0, 1], or ``None`` for anything else (text, NaN, 98.2, a list...)."""
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        return None
    return fraction if math.isfinite(fraction) and 0 <= fraction <= 1 else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def stated_accuracy(classifier: OnnxClassifier) -> tuple[float | None, str | None]:
    """The MNIST test accuracy the model claims, and where it says so.

    Looked up in the ONNX metadata (``accuracy``, written by ``digit-distill export``), then a model card beside
    the file (``<name>.json`` with ``test_accuracy``, as the bundled models have), then the metrics of the run
    folder the file sits in (``metrics.json``). Unreadable or implausible values count as no card.
    """
    for key in ("accuracy", "test_accuracy"):
        value = _fraction(classifier.metadata.get(key))
        if value is not None:
            return value, "the model's metadata"
    card = classifier.path.with_suffix(".json")
    value = _fraction(_read_json(card).get("test_accuracy")) if card.is_file() else None
    if value is not None:
        return value, f"its model card {card.name}"
    metrics = classifier.path.parent / "metrics.json"
    value = _fraction(_read_json(metrics).get("test_accuracy")) if metrics.is_file() else None
    if value is not None:
        return value, "its run's metrics.json"
    return None, None


def check_model(classifier: OnnxClassifier) -> SanityReport:
    """Run ``classifier`` on the check images and compare with what its card claims.

    Raises
    ------
    InvalidModelError
        The model fails to run on ordinary ``(N, 1, 28, 28)`` float32 images.
    """
    images, labels = check_images()
    try:
        logits = np.asarray(classifier.logits(images))
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for a model that cannot run
        raise InvalidModelError(f"{classifier.path}: the model fails on MNIST images ({exc})") from None
    n = len(labels)
    if logits.shape != (n, 10):
        raise InvalidModelError(
            f"{classifier.path}: the model gives scores of shape {logits.shape} for {n} images, not ({n}, 10)"
        )
    expected, card = stated_accuracy(classifier)
    name = classifier.path.name
    if not np.isfinite(logits).all():
        return SanityReport(
            0.0,
            n,
            expected,
            card,
            f"{name} gives NaN or infinite scores on MNIST test images: it cannot be used.",
        )
    accuracy = float((logits.argmax(axis=1) == labels).mean())
    measured = f"{name} recognises {accuracy:.0%} of {n} MNIST test images shipped with the app"
    warning = None
    if expected is not None and accuracy < expected - MARGIN:
        warning = (
            f"{measured}, far below the {expected:.1%} {card} states: the file may be damaged, or not the "
            "model it claims to be."
        )
    elif expected is None and accuracy < MINIMUM_WITHOUT_CARD:
        warning = (
            f"{measured} (chance is 10%): its answers look meaningless. Is it a digit classifier taking pixels in "
            "[0, 1], ink bright on black?"
        )
    return SanityReport(accuracy, n, expected, card, warning)
