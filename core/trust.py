"""An honest answer: calibrated probabilities, "not sure" between two digits, and "not a digit".

Three fitted pieces, stored together as one JSON string in the ONNX file's metadata (key :data:`TRUST_KEY`),
so they travel with the model wherever it goes (app, ``predict``, a personal model, a deployed copy):

- **temperature** ``T`` (temperature scaling, Guo et al. 2017): calibrated probabilities are
  ``softmax(logits / T)``; ``T`` minimises the negative log-likelihood on held-out MNIST *training* images
  (never the test set, never the drawn-digits dev set) re-drawn as pen strokes at the canvas pen
  (:func:`mnist_as_drawing`), since the app classifies drawings.
- **unsure**: the calibrated top probability is below :attr:`Trust.unsure_below`; the app then says
  "not sure: 4 or 9?" with the top two digits.
- **not a digit**: a small gate (an MLP on the model's logits and simple ink features of the ``28x28`` input,
  :func:`gate_features`) trained to tell held-out MNIST training digits from procedurally drawn non-digits
  (:mod:`core.nondigits`). The digits come in every rendering the models were trained for (:data:`DIGIT_VIEWS`):
  as scanned, re-drawn with the canvas pen, and the zeros, ones and sevens in the European styles the recipes
  add (:mod:`core.styles`: slashed zeros, flagged ones, crossed sevens), which MNIST lacks but people draw. Its
  threshold lets through all but :attr:`TrustSettings.digit_flag_rate` of *other* held-out training digits in
  *each* of those renderings (the strictest of the per-view quantiles), so a kind of digit the app meets is not
  flagged more often than the rate just because it is rarer in MNIST.

:func:`fit_trust` fits all three for any model (re-run it whenever the model changes: ``digit-distill calibrate``);
:func:`evaluate_trust` measures calibration (ECE before/after on MNIST test and drawn digits), the share of
drawn digits flagged and the share of non-digits flagged (generator seed and families held out).

Inference needs numpy and scipy only (no torch): the app's Draw tab runs on onnxruntime alone.

Kept in one module: the three pieces are fitted together and stored as one record.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from core.progress import NullProgress, Progress

if TYPE_CHECKING:
    from core.data import MNIST
    from core.inference import LogitModel

TRUST_KEY = "digit_distill_trust"
"""ONNX metadata key holding the fitted :class:`Trust` as JSON."""
FORMAT_VERSION = 1
ECE_BINS = 15


class TrustError(ValueError):
    """Raised for a missing or unreadable calibration in a model file."""


# ------------------------------------------------------------------------------------------- features
def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``softmax(logits / temperature)`` in float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e: np.ndarray = np.exp(z)
    probabilities: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return probabilities


def ink_features(images: np.ndarray) -> np.ndarray:
    """Five shape features per ``28x28`` image: mean ink, inked share, pieces, holes, width / height."""
    x = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28)
    out = np.zeros((len(x), 5), dtype=np.float64)
    for i, img in enumerate(x):
        mask = img > 0.3
        if not mask.any():
            continue
        _, pieces = ndimage.label(mask)
        _, background = ndimage.label(~mask)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        out[i] = (
            img.mean(),
            mask.mean(),
            pieces,
            background - 1,
            (cols[-1] - cols[0] + 1) / (rows[-1] - rows[0] + 1),
        )
    return out


def gate_features(images: np.ndarray, logits: np.ndarray, temperature: float) -> np.ndarray:
    """What the not-a-digit gate looks at: logits, their log-sum-exp, top-two probabilities, ink, a 14x14 view."""
    x = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28)
    z = np.asarray(logits, dtype=np.float64).reshape(len(x), -1)
    p = np.sort(softmax(z, temperature), axis=1)
    zmax = z.max(axis=1, keepdims=True)
    lse = zmax + np.log(np.exp(z - zmax).sum(axis=1, keepdims=True))
    pooled = x.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(len(x), -1)
    return np.concatenate([z, lse, p[:, -1:], p[:, -2:-1], ink_features(x), pooled], axis=1)


# ---------------------------------------------------------------------------------------------- trust
@dataclass(frozen=True)
class Verdict:
    """The honest answer for one drawing.

    Attributes
    ----------
    digit, runner_up
        The most and second most likely digits.
    probabilities
        Calibrated probabilities ``(10,)``.
    confidence
        Calibrated probability of ``digit``.
    unsure
        The model is not sure between ``digit`` and ``runner_up``.
    not_a_digit
        The drawing does not look like a digit at all.
    """

    digit: int
    runner_up: int
    probabilities: np.ndarray
    confidence: float
    unsure: bool
    not_a_digit: bool

    @property
    def text(self) -> str:
        """``"not a digit"``, ``"not sure: 4 or 9?"`` or the digit."""
        if self.not_a_digit:
            return "not a digit"
        if self.unsure:
            return f"not sure: {self.digit} or {self.runner_up}?"
        return str(self.digit)


@dataclass
class Trust:
    """Fitted calibration and thresholds of one model (see the module docstring).

    Attributes
    ----------
    temperature
        Temperature-scaling ``T``.
    unsure_below
        Calibrated top probability under which the answer is "not sure".
    gate
        The not-a-digit MLP: ``mean``, ``scale`` (feature standardisation), ``w1``, ``b1``, ``w2``, ``b2``.
    gate_threshold
        Gate scores above this mean "not a digit".
    fitted
        How and on what it was fitted (provenance, for the report and the model card).
    """

    temperature: float
    unsure_below: float
    gate: dict[str, Any]
    gate_threshold: float
    fitted: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._arrays = {k: np.asarray(v, dtype=np.float64) for k, v in self.gate.items()}

    # ---- storage
    def to_json(self) -> str:
        """Compact JSON (floats rounded to 6 significant digits) for the ONNX metadata."""

        def rounded(v: Any) -> Any:
            return np.round(np.asarray(v, dtype=np.float64), 6).tolist() if not isinstance(v, str) else v

        data = {
            "version": FORMAT_VERSION,
            "temperature": self.temperature,
            "unsure_below": self.unsure_below,
            "gate": {k: rounded(v) for k, v in self.gate.items()},
            "gate_threshold": self.gate_threshold,
            "fitted": self.fitted,
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Trust:
        """Parse :meth:`to_json`'s output; :class:`TrustError` if it is not one."""
        try:
            data = json.loads(text)
            if data.get("version") != FORMAT_VERSION:
                raise TrustError(f"calibration format {data.get('version')!r}, expected {FORMAT_VERSION}")
            trust = cls(
                temperature=float(data["temperature"]),
                unsure_below=float(data["unsure_below"]),
                gate=dict(data["gate"]),
                gate_threshold=float(data["gate_threshold"]),
                fitted=dict(data.get("fitted", {})),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, TrustError):
                raise
            raise TrustError(f"unreadable calibration ({exc})") from None
        if not trust.temperature > 0:
            raise TrustError(f"calibration temperature must be positive, not {trust.temperature}")
        return trust

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> Trust | None:
        """The calibration stored in a model's metadata (``OnnxClassifier.metadata``), ``None`` if absent."""
        text = metadata.get(TRUST_KEY)
        return None if text is None else cls.from_json(text)

    # ---- inference
    def gate_scores(self, images: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """Not-a-digit scores ``(N,)``: above :attr:`gate_threshold` means not a digit."""
        a = self._arrays
        f = (gate_features(images, logits, self.temperature) - a["mean"]) / a["scale"]
        hidden = np.maximum(f @ a["w1"] + a["b1"], 0.0)
        return hidden @ a["w2"] + a["b2"]

    def assess(self, images: np.ndarray, logits: np.ndarray) -> list[Verdict]:
        """One :class:`Verdict` per image (``images`` ``(N, 1, 28, 28)`` or ``(28, 28)``, ``logits`` ``(N, 10)``)."""
        logits = np.asarray(logits, dtype=np.float64).reshape(-1, 10)
        probs = softmax(logits, self.temperature)
        gate = self.gate_scores(images, logits) > self.gate_threshold
        verdicts = []
        for p, flagged in zip(probs, gate):
            order = np.argsort(p)[::-1]
            confidence = float(p[order[0]])
            verdicts.append(
                Verdict(
                    digit=int(order[0]),
                    runner_up=int(order[1]),
                    probabilities=p,
                    confidence=confidence,
                    unsure=bool(confidence < self.unsure_below),
                    not_a_digit=bool(flagged),
                )
            )
        return verdicts


def read_trust(onnx_path: str | os.PathLike[str]) -> Trust | None:
    """The calibration stored in an ONNX file, ``None`` if it has none."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return Trust.from_metadata({p.key: p.value for p in model.metadata_props})


def write_trust(
    onnx_path: str | os.PathLike[str], trust: Trust, out_path: str | os.PathLike[str] | None = None
) -> Path:
    """Store ``trust`` in the model's metadata (replacing an older one), atomically; returns the file written."""
    import onnx

    from core.fileio import atomic_write_bytes

    model = onnx.load(str(onnx_path))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != TRUST_KEY]
    del model.metadata_props[:]
    for key, value in [*kept, (TRUST_KEY, trust.to_json())]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    out = Path(out_path) if out_path is not None else Path(onnx_path)
    return atomic_write_bytes(out, model.SerializeToString())


# ------------------------------------------------------------------------------------------ measures
def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the confidence-weighted gap between confidence and accuracy over ``bins`` equal-width bins."""
    p = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The ``T`` minimising the negative log-likelihood of ``softmax(logits / T)`` (searched in 0.05..20)."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        s = s - s.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(s).sum(axis=1)) - s[np.arange(len(s)), labels]))

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


# ----------------------------------------------------------------------------------- drawing-like MNIST
def mnist_strokes(image: np.ndarray) -> list[np.ndarray]:
    """An MNIST digit as pen strokes: its skeleton (at 4x) as short segments between neighbouring pixels.

    Rendered with :func:`core.strokes.render_strokes` it looks like the digit drawn on the app's canvas with the
    canvas pen, instead of MNIST's thicker, blurrier scan.
    """
    from PIL import Image
    from skimage.morphology import skeletonize

    grey = (np.clip(np.asarray(image, dtype=np.float32).reshape(28, 28), 0, 1) * 255).astype(np.uint8)
    big = (
        np.asarray(Image.fromarray(grey).resize((112, 112), Image.Resampling.BILINEAR), dtype=np.float32)
        / 255
    )
    skeleton = skeletonize(big > 0.45)  # type: ignore[no-untyped-call]  # scikit-image leaves it unannotated
    ys, xs = np.nonzero(skeleton)
    if len(ys) == 0:
        ys, xs = np.nonzero(big > 0.1)
    on = set(zip(ys.tolist(), xs.tolist()))
    segments = [
        np.array([[x, y], [x + dx, y + dy]], dtype=np.float32)
        for y, x in on
        for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1))
        if (y + dy, x + dx) in on
    ]
    return segments or [np.array([[x, y]], dtype=np.float32) for y, x in on]


def mnist_as_drawing(images: np.ndarray) -> np.ndarray:
    """MNIST images re-drawn as canvas strokes and preprocessed like the app: ``(N, 1, 28, 28)`` float32."""
    from core.preprocess import to_mnist
    from core.strokes import render_strokes

    x = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28)
    return np.stack([to_mnist(render_strokes(mnist_strokes(img))) for img in x])[:, None]


def render_drawings(drawings: list[list[np.ndarray]]) -> np.ndarray:
    """Pen drawings rendered like the canvas and preprocessed like the app: ``(N, 1, 28, 28)`` float32."""
    from core.preprocess import to_mnist
    from core.strokes import render_strokes

    return np.stack([to_mnist(render_strokes(s)) for s in drawings])[:, None].astype(np.float32)


# -------------------------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class TrustSettings:
    """How a calibration is fitted (every default of the fitting step lives here).

    Attributes
    ----------
    holdout
        MNIST training images ``[start, stop)`` used for fitting; ``None``: the validation split that training
        holds out (:meth:`core.data.MNIST.hold_out_validation`, the last ``core.data.VALIDATION_SIZE``).
    threshold_share
        Last share of ``holdout`` kept out of the gate's training, to set its threshold.
    nondigits
        How many generated non-digits train the gate (all families, :attr:`seed`).
    seed
        Generator seed for the fitting non-digits; evaluation uses other seeds.
    digit_flag_rate
        Share of held-out training digits the gate may flag in each of :data:`DIGIT_VIEWS` (the threshold is the
        highest of the per-view quantiles).
    unsure_below
        Calibrated probability under which the answer is "not sure".
    hidden, steps, lr, weight_decay
        The gate MLP and its full-batch Adam training.
    """

    holdout: tuple[int, int] | None = None
    threshold_share: float = 0.3
    nondigits: int = 4500
    seed: int = 0
    digit_flag_rate: float = 0.01
    unsure_below: float = 0.75
    hidden: int = 64
    steps: int = 3000
    # hidden 32 / 1500 steps let the canvas-long student flag only 89.3% of the generated non-digits (dev digits
    # 0.58%); 64 / 3000 gave 94.9% (dev 1.09%), and on the canvas models 92.4% / 93.8% (dev 0.73% / 0.77%).
    lr: float = 3e-3
    weight_decay: float = 1e-3


PERSONAL_SETTINGS = TrustSettings(holdout=(58500, 60000), nondigits=1800, steps=800)
"""Fitting settings for personalised models: a smaller sample than :class:`TrustSettings`' defaults (about half a
minute), taken from the same held-out validation images."""


def _train_gate(pos: np.ndarray, neg: np.ndarray, settings: TrustSettings) -> dict[str, Any]:
    import torch

    x = np.concatenate([pos, neg])
    y = np.concatenate([np.zeros(len(pos)), np.ones(len(neg))])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    xt = torch.tensor((x - mean) / scale, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32)
    weight = torch.where(yt == 1, len(pos) / len(neg), 1.0)  # both classes count the same
    gen = torch.Generator().manual_seed(settings.seed)
    w1 = torch.randn(x.shape[1], settings.hidden, generator=gen) * (2 / x.shape[1]) ** 0.5
    b1 = torch.zeros(settings.hidden)
    w2 = torch.randn(settings.hidden, generator=gen) * (1 / settings.hidden) ** 0.5
    b2 = torch.zeros(())
    params = [p.requires_grad_() for p in (w1, b1, w2, b2)]
    opt = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
    for _ in range(settings.steps):
        opt.zero_grad()
        score = torch.relu(xt @ w1 + b1) @ w2 + b2
        loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(score, yt, reduction="none") * weight
        ).mean()
        loss.backward()
        opt.step()
    return {
        "mean": mean,
        "scale": scale,
        "w1": w1.detach().double().numpy(),
        "b1": b1.detach().double().numpy(),
        "w2": w2.detach().double().numpy(),
        "b2": float(b2.detach()),
    }


#: The renderings of held-out digits the gate learns as digits and sets its threshold on (see the module docstring).
DIGIT_VIEWS = ("scanned", "drawn", "styled")


def styled_digits(images: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The zeros, ones and sevens among ``images`` in their European style, re-drawn with the canvas pen.

    Each gets its style for sure (:func:`core.styles.add_styles` with probability 1: a slashed zero, a one with
    a flag and sometimes a base, a crossed seven), then is re-drawn along its centre line with a round pen of
    the canvas's width (:func:`core.augment.restroke`). Returns ``(styled images, their positions in images)``.
    """
    import torch

    from core.augment import restroke
    from core.styles import STYLES, add_styles

    labels = np.asarray(labels)
    index = np.flatnonzero(np.isin(labels, list(STYLES)))
    if len(index) == 0:
        return np.zeros((0, 1, 28, 28), np.float32), index
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.asarray(images, dtype=np.float32)[index].reshape(-1, 1, 28, 28))
    styled = add_styles(x, torch.from_numpy(labels[index]), 1.0, gen)
    return restroke(styled, gen).numpy().astype(np.float32), index


@dataclass
class _FitData:
    """Held-out training digits (scanned, re-drawn, European styles) and generated non-digits, rendered once."""

    holdout: tuple[int, int]
    raw: np.ndarray
    drawn: np.ndarray
    labels: np.ndarray
    nondigits: np.ndarray
    families: np.ndarray
    styled: np.ndarray
    styled_index: np.ndarray


def holdout_range(mnist: MNIST, settings: TrustSettings) -> tuple[int, int]:
    """The training images ``[start, stop)`` that fitting uses (see :attr:`TrustSettings.holdout`)."""
    if settings.holdout is not None:
        return settings.holdout
    from core.data import VALIDATION_SIZE

    total = len(mnist.train_labels)
    return total - VALIDATION_SIZE, total


def fit_data(
    mnist: MNIST, settings: TrustSettings = TrustSettings(), progress: Progress | None = None
) -> _FitData:
    """Render what fitting needs (model-independent, so several models can share it); each stage a ``status``."""
    from core.nondigits import FAMILIES, generate

    start, stop = holdout_range(mnist, settings)
    raw = np.asarray(mnist.train_images[start:stop], dtype=np.float32)
    labels = np.asarray(mnist.train_labels[start:stop])
    if len(raw) < 20:
        raise ValueError(f"the held-out slice {start}:{stop} of the training set has too few images")
    progress = progress or NullProgress()
    progress.status(f"re-drawing {len(raw)} held-out training digits as strokes")
    drawn = mnist_as_drawing(raw)
    styled, styled_index = styled_digits(raw, labels, settings.seed)
    progress.status(f"drawing {settings.nondigits} non-digits (seed {settings.seed})")
    drawings, families = generate(settings.nondigits, list(FAMILIES), seed=settings.seed)
    return _FitData(
        (start, stop),
        raw,
        drawn,
        labels,
        render_drawings(drawings),
        np.asarray(families),
        styled,
        styled_index,
    )


def fit_trust(
    classifier: LogitModel,
    data: _FitData,
    settings: TrustSettings = TrustSettings(),
    exclude_families: tuple[str, ...] = (),
) -> Trust:
    """Fit temperature, unsure threshold and not-a-digit gate for ``classifier`` (anything with ``logits``)."""
    n = len(data.labels)
    cut = n - max(1, int(round(n * settings.threshold_share)))
    raw_logits = classifier.logits(data.raw)
    drawn_logits = classifier.logits(data.drawn)
    # The app classifies drawings: T is fitted on the re-drawn images (on dev drawn digits this beats
    # fitting on MNIST's own scans, which leaves the models about as confident as they were).
    temperature = fit_temperature(drawn_logits[:cut], data.labels[:cut])
    keep = ~np.isin(data.families, exclude_families)
    neg_x = data.nondigits[keep]
    styled_logits = classifier.logits(data.styled) if len(data.styled) else np.zeros((0, 10))
    views = {
        "scanned": (data.raw, raw_logits, np.arange(n)),
        "drawn": (data.drawn, drawn_logits, np.arange(n)),
        "styled": (data.styled, styled_logits, np.asarray(data.styled_index)),
    }
    fit_part = {name: where < cut for name, (_, _, where) in views.items()}
    pos_x = np.concatenate([x[fit_part[name]] for name, (x, _, _) in views.items()])
    pos_z = np.concatenate([z[fit_part[name]] for name, (_, z, _) in views.items()])
    pos_f = gate_features(pos_x, pos_z, temperature)
    neg_f = gate_features(neg_x, classifier.logits(neg_x), temperature)
    gate = _train_gate(pos_f, neg_f, settings)
    trust = Trust(temperature, settings.unsure_below, gate, 0.0)
    # One threshold that lets through all but digit_flag_rate of the held-back digits of every view.
    held_scores = {
        name: trust.gate_scores(x[~fit_part[name]], z[~fit_part[name]]) for name, (x, z, _) in views.items()
    }
    per_view = {
        name: float(np.quantile(scores, 1 - settings.digit_flag_rate))
        for name, scores in held_scores.items()
        if len(scores)
    }
    trust.gate_threshold = max(per_view.values())
    held = sum(len(scores) for scores in held_scores.values())
    trust.fitted = {
        "mnist_train_slice": list(data.holdout),
        "temperature_images": cut,
        "gate_digits": len(pos_x),
        "threshold_digits": held,
        "digit_views": {
            name: {
                "threshold_digits": len(held_scores[name]),
                "flagged": float(np.mean(held_scores[name] > trust.gate_threshold)),
            }
            for name in per_view
        },
        "nondigits": int(keep.sum()),
        "nondigit_seed": settings.seed,
        "nondigit_families": sorted(set(data.families[keep].tolist())),
        "digit_flag_rate": settings.digit_flag_rate,
        "date": datetime.date.today().isoformat(),
    }
    return trust


# ----------------------------------------------------------------------------------------- evaluation
def _flag_rates(trust: Trust, classifier: LogitModel, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits = classifier.logits(images)
    verdicts = trust.assess(images, logits)
    return (
        np.array([v.not_a_digit for v in verdicts]),
        np.array([v.unsure for v in verdicts]),
    )


def evaluate_trust(
    classifier: LogitModel,
    trust: Trust,
    *,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    drawn_images: np.ndarray,
    drawn_labels: np.ndarray,
    nondigit_images: np.ndarray,
    nondigit_families: np.ndarray,
) -> dict[str, Any]:
    """Calibration, unsure and not-a-digit figures (see the module docstring) as a JSON-ready dict."""
    out: dict[str, Any] = {"temperature": trust.temperature, "unsure_below": trust.unsure_below}
    for name, x, y in (("mnist_test", test_images, test_labels), ("drawn", drawn_images, drawn_labels)):
        logits = classifier.logits(x)
        flagged, unsure = _flag_rates(trust, classifier, x)
        wrong = logits.argmax(axis=1) != np.asarray(y)
        sure = ~unsure & ~flagged
        out[name] = {
            "n": len(y),
            "accuracy": float(1 - wrong.mean()),
            "ece_before": expected_calibration_error(softmax(logits), y),
            "ece_after": expected_calibration_error(softmax(logits, trust.temperature), y),
            "not_a_digit": float(flagged.mean()),
            "unsure": float(unsure.mean()),
            "errors_caught": float((~sure)[wrong].mean()) if wrong.any() else None,
            "accuracy_when_sure": float(1 - wrong[sure].mean()) if sure.any() else None,
        }
        confusion = np.zeros((10, 10), dtype=np.int64)
        np.add.at(confusion, (np.asarray(y), logits.argmax(axis=1)), 1)
        out[name]["confusion"] = confusion.tolist()
    flagged, _ = _flag_rates(trust, classifier, nondigit_images)
    families = np.asarray(nondigit_families)
    out["nondigits"] = {
        "n": len(families),
        "flagged": float(flagged.mean()),
        "per_family": {f: float(flagged[families == f].mean()) for f in sorted(set(families.tolist()))},
    }
    return out


def summary(trust: Trust) -> dict[str, Any]:
    """The calibration's scalar settings and provenance (no gate weights), for reports and model cards."""
    return {
        "temperature": trust.temperature,
        "unsure_below": trust.unsure_below,
        "gate_threshold": trust.gate_threshold,
        "fitted": trust.fitted,
    }


__all__ = [
    "DIGIT_VIEWS",
    "TRUST_KEY",
    "Trust",
    "TrustError",
    "TrustSettings",
    "Verdict",
    "evaluate_trust",
    "expected_calibration_error",
    "fit_data",
    "fit_temperature",
    "fit_trust",
    "gate_features",
    "mnist_as_drawing",
    "read_trust",
    "styled_digits",
    "summary",
    "write_trust",
]
