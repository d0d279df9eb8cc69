"""Run folders: where each training job's config, metrics, weights and ONNX live, and how to list them.

A run folder holds ``config.json`` (what was asked), ``metrics.json`` (per-epoch history, written every epoch),
``checkpoint.pt`` (weights + everything needed to rebuild and resume) and, once exported, ``model.onnx``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from core.fileio import atomic_path, atomic_write_json
from core.models import ModelConfig, build_model

CONFIG = "config.json"
METRICS = "metrics.json"
CHECKPOINT = "checkpoint.pt"
ONNX = "model.onnx"
CHECKPOINT_FORMAT = "digit-distill-checkpoint/1"


def default_runs_root() -> Path:
    """``$DIGIT_DISTILL_RUNS``, else the platform's user data folder / digit-distill / runs."""
    if os.environ.get("DIGIT_DISTILL_RUNS"):
        return Path(os.environ["DIGIT_DISTILL_RUNS"]).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "digit-distill" / "runs"


def new_run_dir(role: str, preset: str, root: Path | None = None) -> Path:
    """Create and return a fresh, uniquely named run folder such as ``20261127-193012-paper-teacher``."""
    root = Path(root) if root else default_runs_root()
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        name = f"{stamp}-{preset}-{role}" + (f"-{i}" if i else "")
        try:
            (root / name).mkdir()
            return root / name
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder in {root}")


def write_config(run_dir: Path, role, preset, model_cfg, train_cfg, kd, teacher_info=None) -> None:
    """Write config.json: everything that defines the job."""
    atomic_write_json(
        run_dir / CONFIG,
        {
            "role": role,
            "preset": preset,
            "model": model_cfg.to_dict(),
            "train": train_cfg.to_dict(),
            "kd": kd.to_dict() if kd else None,
            "teacher": teacher_info,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "torch": torch.__version__,
        },
    )


def write_metrics(run_dir: Path, role, preset, history, params, finished, stopped=False) -> None:
    """Write metrics.json: the per-epoch history so far."""
    atomic_write_json(
        run_dir / METRICS,
        {
            "role": role,
            "preset": preset,
            "params": params,
            "finished": finished,
            "stopped": stopped,
            "test_accuracy": history[-1]["test_acc"] if history else None,
            "seconds": sum(h["seconds"] for h in history),
            "history": history,
        },
    )


def write_checkpoint(
    path: Path, model, optimizer, generator, history, role, preset, model_cfg, train_cfg, kd
):
    """Save weights, optimizer and RNG state, history and configs atomically."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "role": role,
        "preset": preset,
        "model_config": model_cfg.to_dict(),
        "train_config": train_cfg.to_dict(),
        "kd_config": kd.to_dict() if kd else None,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state().cpu(),
        "history": history,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: Path) -> dict:
    """Load a checkpoint dict, with a clear error for a missing, corrupt or foreign file."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise ValueError(
            f"{path} is not a readable digit-distill checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a digit-distill checkpoint (format {CHECKPOINT_FORMAT} expected)")
    return state


def load_checkpoint(path: Path) -> tuple[nn.Module, dict]:
    """Rebuild the model stored in a run folder or checkpoint file; returns ``(model in eval mode, metadata)``."""
    state = read_checkpoint(path)
    model = build_model(ModelConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["state_dict"])
    meta = {k: v for k, v in state.items() if k not in ("state_dict", "optimizer", "generator")}
    meta["test_accuracy"] = state["history"][-1]["test_acc"] if state["history"] else None
    return model.eval(), meta


@dataclass
class RunInfo:
    """Summary of one run folder, read from its JSON files."""

    path: Path
    role: str
    preset: str
    created: str
    test_accuracy: float | None
    params: int
    epochs_done: int
    epochs: int
    finished: bool
    onnx_path: Path | None
    kd: dict | None
    history: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The folder name."""
        return self.path.name


def read_run(run_dir: Path) -> RunInfo:
    """Read one run folder (raises ValueError when its JSON files are missing or corrupt)."""
    run_dir = Path(run_dir)
    try:
        config = json.loads((run_dir / CONFIG).read_text())
        metrics = json.loads((run_dir / METRICS).read_text()) if (run_dir / METRICS).exists() else {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{run_dir} is not a readable run folder: {exc}") from exc
    history = metrics.get("history", [])
    onnx_path = run_dir / ONNX
    return RunInfo(
        path=run_dir,
        role=config["role"],
        preset=config["preset"],
        created=config.get("created", ""),
        test_accuracy=metrics.get("test_accuracy"),
        params=metrics.get("params", 0),
        epochs_done=len(history),
        epochs=config["train"]["epochs"],
        finished=bool(metrics.get("finished")),
        onnx_path=onnx_path if onnx_path.exists() else None,
        kd=config.get("kd"),
        history=history,
    )


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """All readable run folders under ``root``, newest first (unreadable folders are skipped)."""
    root = Path(root) if root else default_runs_root()
    if not root.is_dir():
        return []
    infos = []
    for d in root.iterdir():
        if (d / CONFIG).exists():
            try:
                infos.append(read_run(d))
            except (ValueError, KeyError):
                continue
    return sorted(infos, key=lambda r: r.path.name, reverse=True)


def export_run(run_dir: Path, data=None, output: Path | None = None):
    """Export a run's checkpoint to ONNX (``run_dir/model.onnx`` unless ``output``), verified on 1,000 test images.

    ``run_dir`` may also be a checkpoint file. Returns :class:`core.export.ExportReport`.
    """
    from core.export import export_onnx

    run_dir = Path(run_dir)
    model, meta = load_checkpoint(run_dir)
    folder = run_dir if run_dir.is_dir() else run_dir.parent
    metadata = {"preset": meta["preset"], "role": meta["role"], "run": folder.name}
    if meta["test_accuracy"] is not None:
        metadata["accuracy"] = meta["test_accuracy"]
    if meta.get("kd_config"):
        metadata["temperature"] = meta["kd_config"]["temperature"]
        metadata["alpha"] = meta["kd_config"]["alpha"]
    verify = data.test_images[:1000].numpy() if data is not None else None
    return export_onnx(model, output or folder / ONNX, metadata=metadata, verify_images=verify)
