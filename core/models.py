"""Model presets: the paper's MLP pair and a CNN pair, each rebuilt from a plain dataclass config.

Every model takes ``(N, 1, 28, 28)`` float32 pixels in ``[0, 1]`` (ink bright, background 0, as in MNIST)
and normalises them itself, so the exported ONNX, the app and the board runner all feed the same input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn

from core import MNIST_MEAN, MNIST_STD

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one network.

    Attributes
    ----------
    kind
        ``"mlp"`` or ``"cnn"``.
    hidden
        MLP: widths of the hidden layers. CNN: widths of the fully connected layers after the convolutions.
    channels
        CNN only: output channels of each 3x3/5x5 conv block (each block: conv, activation, 2x2 max-pool).
    kernel_size
        CNN only: convolution kernel size.
    activation
        ``"relu"``, ``"sigmoid"`` or ``"tanh"``.
    dropout
        Dropout probability after each hidden layer (0 disables).
    input_dropout
        Dropout probability on the input pixels (Hinton et al. 2012 used 0.2).
    """

    kind: str = "mlp"
    hidden: tuple[int, ...] = (2000, 2000)
    channels: tuple[int, ...] = ()
    kernel_size: int = 5
    activation: str = "relu"
    dropout: float = 0.0
    input_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("mlp", "cnn"):
            raise ValueError(f"model kind must be 'mlp' or 'cnn', not {self.kind!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {self.activation!r}")
        for name in ("dropout", "input_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), not {value}")
        if self.kind == "cnn" and not self.channels:
            raise ValueError("a cnn needs at least one conv block in 'channels'")
        # JSON round trips give lists; keep the frozen dataclass hashable and comparable.
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    def describe(self) -> str:
        """The architecture in one line: ``MLP 784-2000-2000-10``, ``CNN conv32-conv64-fc256-10 (3x3)``."""
        if self.kind == "mlp":
            return "MLP " + "-".join(str(n) for n in (28 * 28, *self.hidden, 10))
        layers = [f"conv{c}" for c in self.channels] + [f"fc{h}" for h in self.hidden] + ["10"]
        return f"CNN {'-'.join(layers)} ({self.kernel_size}x{self.kernel_size})"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of this config."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Rebuild a config; unknown keys are an error, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class Preset:
    """A teacher/student pair with a short description."""

    name: str
    teacher: ModelConfig
    student: ModelConfig
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        name="paper",
        teacher=ModelConfig(kind="mlp", hidden=(2000, 2000)),
        student=ModelConfig(kind="mlp", hidden=(50, 50)),
        description="The paper's MLPs: teacher 784-2000-2000-10, student 784-50-50-10.",
    ),
    "cnn": Preset(
        name="cnn",
        teacher=ModelConfig(kind="cnn", channels=(32, 64), kernel_size=5, hidden=(512,)),
        student=ModelConfig(kind="cnn", channels=(8, 16), kernel_size=3, hidden=(32,)),
        description="LeNet-style CNN teacher (conv32-conv64-fc512) and a small CNN student (conv8-conv16-fc32).",
    ),
    "canvas": Preset(
        name="canvas",
        teacher=ModelConfig(kind="cnn", channels=(32, 64), kernel_size=3, hidden=(256,), dropout=0.3),
        student=ModelConfig(kind="cnn", channels=(16, 32, 64), kernel_size=3, hidden=(32,)),
        description=(
            "CNNs for digits drawn in the app: teacher conv32-conv64-fc256 (3x3, 824k parameters), student "
            "conv16-conv32-conv64-fc32 (3x3, 42,090 parameters: no larger than the paper's 784-50-50-10)."
        ),
    ),
}


def get_preset(name: str) -> Preset:
    """Return the preset called ``name`` with a helpful error for unknown names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


class Normalize(nn.Module):
    """Standardise ``[0, 1]`` pixels with MNIST's mean and std (part of the model so every runtime agrees)."""

    def __init__(self, mean: float = MNIST_MEAN, std: float = MNIST_STD):
        super().__init__()
        self.mean = mean
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return (x - self.mean) / self.std


def _mlp_layers(sizes: list[int], cfg: ModelConfig) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[cfg.activation]())
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
    return layers


def build_model(cfg: ModelConfig) -> nn.Sequential:
    """Build the network described by ``cfg``; outputs are 10 logits."""
    layers: list[nn.Module] = [Normalize()]
    if cfg.kind == "mlp":
        layers.append(nn.Flatten())
        if cfg.input_dropout > 0:
            layers.append(nn.Dropout(cfg.input_dropout))
        layers += _mlp_layers([28 * 28, *cfg.hidden, 10], cfg)
    else:
        if cfg.input_dropout > 0:
            layers.append(nn.Dropout(cfg.input_dropout))
        in_ch, side = 1, 28
        pad = cfg.kernel_size // 2
        for out_ch in cfg.channels:
            layers += [
                nn.Conv2d(in_ch, out_ch, cfg.kernel_size, padding=pad),
                ACTIVATIONS[cfg.activation](),
                nn.MaxPool2d(2),
            ]
            in_ch, side = out_ch, side // 2
        layers.append(nn.Flatten())
        layers += _mlp_layers([in_ch * side * side, *cfg.hidden, 10], cfg)
    return nn.Sequential(*layers)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def forward_flops(cfg: ModelConfig) -> int:
    """Multiply-add FLOPs (2 per MAC) of one forward pass of one image; used by the benchmarks."""
    model = build_model(cfg)
    flops, side = 0, 28
    for layer in model:
        if isinstance(layer, nn.Linear):
            flops += 2 * layer.in_features * layer.out_features
        elif isinstance(layer, nn.Conv2d):
            k = layer.kernel_size[0] * layer.kernel_size[1]
            flops += 2 * layer.in_channels * layer.out_channels * k * side * side
        elif isinstance(layer, nn.MaxPool2d):
            side //= 2
    return flops
