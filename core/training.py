"""One trainer for the teacher, the student trained normally, and the distilled student.

The loop is plain Python over in-memory tensors (no per-sample DataLoader): a shuffled index per epoch, a gather
per batch, optional batch-wise augmentation on the device. Progress and cancellation go through a small
:class:`core.progress.Progress` object (the Qt worker implements it; the CLI prints; tests record).

Kept in one module: one loop for the three roles, each step of an epoch read in order.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch import nn

from core.augment import AugmentConfig, random_affine
from core.losses import (
    check_kd_params,
    distillation_loss_from_soft_targets,
    mixed_cross_entropy,
    soft_targets,
)
from core.models import ModelConfig, build_model, count_params
from core.progress import NullProgress, Progress

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from core.data import MNIST

C = TypeVar("C", bound="DataclassInstance")

ROLES = ("teacher", "student", "distilled")
REPORT_EVERY = 10  # batches between on_batch reports (each report syncs the device)
#: A loss above this multiple of the first batch's loss ...
EXPLODE_FACTOR = 10.0
#: ... at this many reports in a row (or an epoch's mean loss above it) ends the job as diverged.
EXPLODE_REPORTS = 3


class TrainingError(RuntimeError):
    """Training cannot go on (a missing teacher, an unusable checkpoint)."""


class TrainingDiverged(TrainingError):
    """The loss became non-finite or exploded; the model is left at its last finished epoch."""


def _from_dict(cls: type[C], d: dict[str, Any], what: str) -> C:
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} keys: {sorted(unknown)}")
    return cls(**d)


@dataclass
class TrainConfig:
    """Hyperparameters of one training job (saved with the weights).

    ``mixup`` is the concentration ``c`` of mixup's ``Beta(c, c)`` (Zhang et al. 2018; 0 turns it off): every
    batch is blended with a shuffled copy of itself. A model trained on labels learns the same blend of the two
    labels' cross-entropies; a distilled student learns the teacher's outputs on the blended images, which the
    teacher computes online on exactly the view the student sees ("function matching", Beyer et al. 2022).
    """

    # No defaults for what decides a result: the recipes (core.recipes) are their one home.
    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    augment: bool = False
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    label_smoothing: float = 0.0
    mixup: float = 0.0
    seed: int = 0
    device: str = "auto"
    max_train_samples: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.augmentation, dict):
            self.augmentation = _from_dict(AugmentConfig, self.augmentation, "augmentation")
        self.validate()

    def validate(self) -> None:
        """Refuse hyperparameters out of range with a message naming the value."""
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ValueError(f"batch size must be an integer >= 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate must be finite and > 0, got {self.lr}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if not 0 <= self.momentum < 1:  # also refuses NaN
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"weight decay must be finite and >= 0, got {self.weight_decay}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if not (self.mixup >= 0 and math.isfinite(self.mixup)):
            raise ValueError(f"mixup must be >= 0 (0 disables it), got {self.mixup}")
        if not (self.warmup_epochs >= 0 and math.isfinite(self.warmup_epochs)):
            raise ValueError(f"warm-up epochs must be finite and >= 0, got {self.warmup_epochs}")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise ValueError(f"max_train_samples must be >= 1, got {self.max_train_samples}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Rebuild from JSON; unknown keys are an error."""
        return _from_dict(cls, d, "training config")


@dataclass
class KDConfig:
    """Distillation settings: temperature T > 0 and soft-loss weight alpha in [0, 1]."""

    temperature: float  # no defaults: the recipes (core.recipes) hold T and alpha
    alpha: float

    def __post_init__(self) -> None:
        check_kd_params(self.temperature, self.alpha)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KDConfig:
        """Rebuild from JSON; unknown keys are an error."""
        return _from_dict(cls, d, "distillation config")


@dataclass
class TrainResult:
    """What a finished (or stopped) job produced."""

    model: nn.Module
    role: str
    preset: str
    history: list[dict[str, Any]]
    test_accuracy: float
    params: int
    seconds: float
    stopped: bool
    run_dir: Path | None


def rank_and_world() -> tuple[int, int]:
    """Rank of the current process and the number of processes (0 and 1 without torch.distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; an unavailable device is refused clearly."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def lr_at(step: int, total_steps: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """Learning rate at ``step``: linear warm-up, then constant or cosine decay to zero."""
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - warmup) / max(1, total_steps - warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """Logits of ``model`` (in eval mode) for all ``images``, computed in batches on the model's device."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [model(images[i : i + batch_size].to(device)) for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(out)


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy (fraction) of ``model`` on ``images``."""
    logits = predict_logits(model, images)
    return (logits.argmax(1).cpu() == labels.cpu()).float().mean().item()


def random_states(gen: torch.Generator, aug_gen: torch.Generator) -> dict[str, Any]:
    """Every random state a training step draws from, in a form ``torch.load(weights_only=True)`` reads.

    Torch's global state (dropout), CUDA's, numpy's, Python's, the data-order generator and the augmentation one.
    """
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)  # legacy=True: (name, keys, pos, has_gauss, gauss)
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "gauss": float(np_state[4]),
        },
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "generator": gen.get_state().cpu(),
        "augmentation": aug_gen.get_state().cpu() if aug_gen is not gen else None,
    }
    return state


def restore_random_states(state: dict[str, Any], gen: torch.Generator, aug_gen: torch.Generator) -> None:
    """Put back what :func:`random_states` saved."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    gen.set_state(state["generator"].to(gen.get_state().device))
    if state["augmentation"] is not None and aug_gen is not gen:
        aug_gen.set_state(state["augmentation"].to(aug_gen.get_state().device))


class DivergenceGuard:
    """Stops a job whose loss is not finite, or stays above ``EXPLODE_FACTOR`` x the first batch's loss."""

    def __init__(self, cfg: TrainConfig, kd: KDConfig | None, reference: float | None = None):
        self.cfg, self.kd = cfg, kd
        self.reference = reference
        self.strikes = 0

    def _fail(self, what: str, where: str) -> None:
        cause = f"the learning rate ({self.cfg.lr:g}) is probably too high"
        if self.kd is not None:
            cause += f", or the temperature (T={self.kd.temperature:g}) too high for it"
        raise TrainingDiverged(
            f"training diverged: {what} {where}; {cause}. Lower it and train again; no ONNX model was exported."
        )

    def check(self, loss: float, where: str, epoch_mean: bool = False) -> None:
        """Raise :class:`TrainingDiverged` for a non-finite or exploding ``loss``."""
        if not math.isfinite(loss):
            self._fail(f"the loss became {loss}", where)
        if self.reference is None:
            self.reference = max(loss, 1e-3)
            return
        if loss > EXPLODE_FACTOR * self.reference:
            self.strikes += 1
            if epoch_mean or self.strikes >= EXPLODE_REPORTS:
                self._fail(
                    f"the loss rose to {loss:.4g}, over {EXPLODE_FACTOR:g}x its first value {self.reference:.4g},",
                    where,
                )
        elif not epoch_mean:
            self.strikes = 0


def mixup_batch(
    x: torch.Tensor, y: torch.Tensor, concentration: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Blend a batch with a shuffled copy of itself: ``lam * x + (1 - lam) * x[perm]``, ``lam ~ Beta(c, c)``.

    Returns the blended images, the partners' labels and ``lam``. Everything is drawn from ``generator``, so a
    resumed run continues the same sequence.
    """
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device).item())
    lam = float(np.random.default_rng(seed).beta(concentration, concentration))
    perm = torch.randperm(len(x), generator=generator, device=x.device)
    return lam * x + (1.0 - lam) * x[perm], y[perm], lam


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # Weight decay on weights only: biases and normalisation constants are not regularised.
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)


def train(
    role: str,
    preset: str,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    data: MNIST,
    *,
    kd: KDConfig | None = None,
    teacher: nn.Module | None = None,
    progress: Progress | None = None,
    run_dir: Path | None = None,
    resume: bool = False,
    teacher_info: dict[str, Any] | None = None,
    teacher_logits: torch.Tensor | None = None,
    initial_state: dict[str, Any] | None = None,
) -> TrainResult:
    """Train one model; see the module docstring.

    Parameters
    ----------
    role
        ``"teacher"``, ``"student"`` (trained normally) or ``"distilled"`` (needs ``kd`` and ``teacher``).
    preset
        Name of the preset the model comes from (stored with the weights).
    model_cfg, cfg, kd
        Architecture, hyperparameters and distillation settings.
    data
        The in-memory dataset.
    teacher
        The trained teacher for ``role="distilled"``; kept frozen in eval mode.
    progress
        Receives batch/epoch metrics and status lines; ``should_stop`` is checked every batch.
    run_dir
        If given, config.json, metrics.json and checkpoint.pt are written there (atomically, every epoch).
    resume
        Continue from ``run_dir/checkpoint.pt`` if it exists: weights, optimiser, every random state and the
        divergence reference come back, so the run goes on exactly as if it had not been interrupted.
    teacher_info
        Where the teacher came from (saved in config.json for traceability).
    teacher_logits
        Optional precomputed teacher logits ``(len(data.train_images), C)`` for ``role="distilled"`` without
        augmentation (sweeps and repeated seeds reuse them instead of recomputing the teacher's forward pass).
    initial_state
        Weights to start from instead of a random initialisation (fine-tuning, e.g. personalisation); a
        resumed checkpoint takes precedence.
    """
    from core import runs  # runs imports this module's configs

    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    cfg.validate()
    if role == "distilled":
        if kd is None or teacher is None:
            raise TrainingError("distillation needs a trained teacher and a KD config (T, alpha)")
        check_kd_params(kd.temperature, kd.alpha)
    progress = progress or NullProgress()
    device = resolve_device(cfg.device)
    # Every global generator starts from the seed, so each one's state in a checkpoint is the same whichever process
    # wrote it: a resumed run's checkpoint equals an uninterrupted one's bit for bit (random states included).
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    model = build_model(model_cfg)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    model = model.to(device)
    optimizer = _make_optimizer(model, cfg)
    # Under torchrun (torch.distributed initialised, see core.distributed) every process takes its share of
    # each batch and DistributedDataParallel averages the gradients: the same steps as one process would take.
    rank, world = rank_and_world()
    net: nn.Module = model
    aug_gen = gen
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        if cfg.batch_size < world:
            raise ValueError(f"batch size {cfg.batch_size} is smaller than the {world} processes")
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        torch.manual_seed(cfg.seed * 1000 + rank + 1)  # each process its own dropout masks ...
        aug_gen = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + rank + 1)  # ... and jitter

    train_x, train_y = data.train_images, data.train_labels
    if teacher_logits is not None and len(teacher_logits) != len(train_x):
        raise TrainingError(
            f"{len(teacher_logits)} precomputed teacher logits for {len(train_x)} training images"
        )
    if cfg.max_train_samples is not None and cfg.max_train_samples < len(train_x):
        keep = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))[
            : cfg.max_train_samples
        ]
        train_x, train_y = train_x[keep], train_y[keep]
        if teacher_logits is not None:
            teacher_logits = teacher_logits[keep]
    train_x, train_y = train_x.to(device), train_y.to(device)
    test_x, test_y = data.test_images.to(device), data.test_labels.to(device)
    n = len(train_x)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs

    # Cached teacher outputs are exact only when the teacher's input never changes: no jitter, no mixup.
    # Otherwise the teacher runs on exactly the view the student gets ("consistent" teaching, Beyer et al. 2022).
    online = cfg.augment or cfg.mixup > 0
    if role != "distilled" or online:
        teacher_logits = None
    cached_targets = None
    if role == "distilled":
        assert teacher is not None and kd is not None  # checked at the top
        teacher = teacher.to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        if teacher_logits is not None:
            teacher_logits = teacher_logits.to(device)
        elif not online:
            progress.status("caching the teacher's logits for the whole training set")
            teacher_logits = predict_logits(teacher, train_x)
        # Without augmentation every step reuses the cached soft targets: one gather instead of a teacher pass.
        cached_targets = soft_targets(teacher_logits, kd.temperature) if teacher_logits is not None else None

    history: list[dict[str, Any]] = []
    start_epoch = 0
    guard = DivergenceGuard(cfg, kd if role == "distilled" else None)
    ckpt_path = run_dir / runs.CHECKPOINT if run_dir else None
    if run_dir:
        if rank == 0:
            runs.write_config(run_dir, role, preset, model_cfg, cfg, kd, teacher_info)
        if resume and ckpt_path is not None and ckpt_path.exists():
            state = runs.read_checkpoint(ckpt_path)
            model.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
            if "rng" in state:
                restore_random_states(state["rng"], gen, aug_gen)
            else:  # a checkpoint from before every random state was saved
                gen.set_state(state["generator"].to(gen.get_state().device))
            guard.reference = state.get("loss_reference")
            history = state["history"]
            start_epoch = len(history)
            progress.status(f"resumed from {ckpt_path} after epoch {start_epoch}")

    params = count_params(model)
    last_good = copy.deepcopy(model.state_dict())
    stopped = False
    t_start = time.perf_counter()
    elapsed_before = sum(h["seconds"] for h in history)
    progress.status(
        f"training {role} ({model_cfg.describe()}, {params:,} parameters) on {device} for {cfg.epochs} epochs"
    )
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        t_epoch = time.perf_counter()
        perm = torch.randperm(n, generator=gen, device=device)
        sums = torch.zeros(4, device=device)  # loss, soft, hard, correct
        seen = 0
        for b in range(steps_per_epoch):
            if world == 1 and progress.should_stop():  # under torchrun, Ctrl+C ends every process
                stopped = True
                break
            step = epoch * steps_per_epoch + b
            lr = lr_at(step, total_steps, cfg, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            if world > 1:
                idx = idx[rank::world]
            x, y = train_x[idx], train_y[idx]
            if cfg.augment:
                x = random_affine(x, cfg.augmentation, aug_gen)
            y_b, lam = None, 1.0
            if cfg.mixup > 0:
                x, y_b, lam = mixup_batch(x, y, cfg.mixup, aug_gen)
            logits = net(x)
            if role == "distilled":
                assert teacher is not None and kd is not None  # checked at the top
                if cached_targets is not None:
                    targets = cached_targets[idx]
                else:
                    with torch.no_grad():
                        targets = soft_targets(teacher(x), kd.temperature)
                loss, soft, hard = distillation_loss_from_soft_targets(
                    logits, targets, y, kd.temperature, kd.alpha, labels_b=y_b, lam=lam
                )
            else:
                loss = hard = mixed_cross_entropy(logits, y, y_b, lam, label_smoothing=cfg.label_smoothing)
                soft = torch.zeros((), device=device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bs = len(idx)
            seen += bs
            sums += torch.stack(
                [
                    loss.detach() * bs,
                    soft.detach() * bs,
                    hard.detach() * bs,
                    (logits.detach().argmax(1) == y).sum().float(),
                ]
            )
            if b % REPORT_EVERY == 0 or b == steps_per_epoch - 1:
                loss_v, soft_v, hard_v = loss.item(), soft.item(), hard.item()
                try:
                    guard.check(loss_v, f"at epoch {epoch + 1}, batch {b + 1}")
                except TrainingDiverged:
                    model.load_state_dict(last_good)
                    raise
                progress.on_batch(
                    {
                        "epoch": epoch + 1,
                        "batch": b + 1,
                        "batches": steps_per_epoch,
                        "step": step + 1,
                        "loss": loss_v,
                        "soft": soft_v if role == "distilled" else None,
                        "hard": hard_v,
                        "lr": lr,
                    }
                )
        if stopped:
            model.load_state_dict(last_good)
            progress.status(f"stopped during epoch {epoch + 1}; keeping the {len(history)} finished epoch(s)")
            break
        if world > 1:
            totals = torch.cat([sums, torch.tensor([float(seen)], device=device)])
            torch.distributed.all_reduce(totals)
            sums, seen = totals[:4], int(totals[4].item())
        loss_sum, soft_sum, hard_sum, correct = (sums / seen).tolist()[:3] + [sums[3].item()]
        try:
            guard.check(loss_sum, f"over epoch {epoch + 1}", epoch_mean=True)
        except TrainingDiverged:
            model.load_state_dict(last_good)
            raise
        test_acc = evaluate(model, test_x, test_y)
        val_acc = (
            evaluate(model, data.val_images, data.val_labels)
            if data.val_images is not None and data.val_labels is not None
            else None
        )
        row = {
            "epoch": epoch + 1,
            "epochs": cfg.epochs,
            "loss": loss_sum,
            "soft": soft_sum if role == "distilled" else None,
            "hard": hard_sum,
            "train_acc": correct / seen,
            "test_acc": test_acc,
            **({"val_acc": val_acc} if val_acc is not None else {}),
            "seconds": time.perf_counter() - t_epoch,
            "lr": lr,
        }
        history.append(row)
        last_good = copy.deepcopy(model.state_dict())
        if run_dir and ckpt_path is not None and rank == 0:
            extra = {"rng": random_states(gen, aug_gen), "loss_reference": guard.reference}
            runs.write_checkpoint(
                ckpt_path, model, optimizer, gen, history, role, preset, model_cfg, cfg, kd, extra=extra
            )
            runs.write_metrics(run_dir, role, preset, history, params, finished=epoch + 1 == cfg.epochs)
        progress.on_epoch(dict(row))
    if run_dir and stopped and rank == 0:
        runs.write_metrics(run_dir, role, preset, history, params, finished=False, stopped=True)
    model.eval().cpu()
    return TrainResult(
        model=model,
        role=role,
        preset=preset,
        history=history,
        test_accuracy=history[-1]["test_acc"] if history else float("nan"),
        params=params,
        seconds=elapsed_before + time.perf_counter() - t_start,
        stopped=stopped,
        run_dir=run_dir,
    )
