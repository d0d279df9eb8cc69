"""Trained weights from wherever they are: run folders, checkpoints, and the ONNX files this project exports.

Fine-tuning (personalisation) starts from a model that may exist only as an ONNX file (the bundled student) and
distils from a teacher that may too (the bundled teacher). The exporter keeps PyTorch's parameter names as the
ONNX initializer names, so an ONNX file's weights load straight into the same architecture
(:func:`state_from_onnx`); the architecture itself comes from the file's ``model_config`` metadata, its model card
(``NAME.json`` beside it, key ``architecture``) or its run folder's config.json (:func:`model_config_of`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.models import ModelConfig

MODEL_CONFIG_KEY = "model_config"
"""ONNX metadata key with the architecture (``ModelConfig.to_dict()`` as JSON) of personalised models."""


class WeightsError(ValueError):
    """Raised when weights or an architecture cannot be found or do not fit; the message says why."""


def _onnx_metadata(path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def model_config_of(path: str | os.PathLike[str]) -> ModelConfig:
    """The architecture of the model in ``path`` (an ``.onnx`` file, a run folder or a checkpoint)."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: no such model or run")
    if path.suffix == ".onnx":
        meta = _onnx_metadata(path)
        if MODEL_CONFIG_KEY in meta:
            return ModelConfig.from_dict(json.loads(meta[MODEL_CONFIG_KEY]))
        card = path.with_suffix(".json")
        if card.is_file():
            data = json.loads(card.read_text())
            if isinstance(data, dict) and isinstance(data.get("architecture"), dict):
                return ModelConfig.from_dict(data["architecture"])
        run_config = path.parent / "config.json"
        if run_config.is_file():
            return ModelConfig.from_dict(json.loads(run_config.read_text())["model"])
        raise WeightsError(
            f"{path}: its architecture is unknown (no '{MODEL_CONFIG_KEY}' metadata, no model card "
            f"{card.name}, no run config.json beside it)"
        )
    from core import runs

    folder = path if path.is_dir() else path.parent
    try:
        return ModelConfig.from_dict(json.loads((folder / runs.CONFIG).read_text())["model"])
    except (OSError, KeyError, ValueError) as exc:
        raise WeightsError(f"{path}: not a run folder with a config.json ({exc})") from None


def state_from_onnx(path: str | os.PathLike[str], model_cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """The PyTorch ``state_dict`` of ``model_cfg`` filled from the ONNX file's initializers (same names)."""
    import onnx
    from onnx import numpy_helper

    from core.models import build_model

    model = onnx.load(str(path))
    found = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    wanted = build_model(model_cfg).state_dict()
    state = {}
    for name, tensor in wanted.items():
        if name not in found or tuple(found[name].shape) != tuple(tensor.shape):
            raise WeightsError(
                f"{path}: its weights do not fit the architecture {model_cfg.to_dict()} "
                f"({name} {'missing' if name not in found else 'has another shape'})"
            )
        state[name] = torch.from_numpy(np.array(found[name], dtype=np.float32))
    return state


def load_state(path: str | os.PathLike[str]) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Architecture and weights of the model in ``path`` (``.onnx``, run folder or checkpoint)."""
    path = Path(path)
    model_cfg = model_config_of(path)
    if path.suffix == ".onnx":
        return model_cfg, state_from_onnx(path, model_cfg)
    from core import runs

    model, _ = runs.load_checkpoint(path)
    return model_cfg, model.state_dict()


class OnnxTeacher(nn.Module):
    """A teacher that exists as an ONNX file: its forward pass runs in onnxruntime (no gradients, CPU)."""

    def __init__(self, path: str | os.PathLike[str]):
        super().__init__()
        from core.inference import OnnxClassifier

        self.path = Path(path)
        self.classifier = OnnxClassifier(self.path, threads=0)
        # No weights of its own in PyTorch; an empty parameter tells callers which device it is on.
        self.device_marker = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        logits = self.classifier.logits(x.detach().cpu().numpy().astype(np.float32, copy=False))
        return torch.from_numpy(np.asarray(logits, dtype=np.float32)).to(x.device)
