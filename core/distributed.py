"""Train with several processes under ``torchrun`` (DistributedDataParallel): gloo on CPUs, nccl on GPUs.

Usage (one machine, 2 processes; add ``--nnodes``/``--rdzv-endpoint`` for several machines)::

    torchrun --nproc-per-node 2 -m core.distributed --recipe strong --role teacher --runs-dir RUNS

Every process loads MNIST, builds the same model (DDP broadcasts rank 0's weights), and takes its share of each
global batch; DDP averages the gradients, so the optimiser takes the same steps as one process with the whole
batch would (``core.training.train`` does the sharding when ``torch.distributed`` is initialised). Rank 0 alone
writes the run folder and the ONNX export. On GPUs each process uses ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from core.progress import NullProgress
from core.recipes import RECIPES


class DistributedError(RuntimeError):
    """The process was not started by torchrun, or the process group cannot be set up."""


class EpochPrinter(NullProgress):
    """Rank 0's progress: one line per epoch on stderr."""

    def __init__(self, world: int):
        self.world = world

    def on_epoch(self, info: dict[str, Any]) -> None:  # noqa: D102
        print(
            f"[{self.world} processes] epoch {info['epoch']}/{info['epochs']}: loss {info['loss']:.4f}, "
            f"train {info['train_acc']:.2%}, test {info['test_acc']:.2%}, {info['seconds']:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    def status(self, text: str) -> None:  # noqa: D102
        print(text, file=sys.stderr, flush=True)


def backend_for(device: str) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise."""
    return "nccl" if device.startswith("cuda") else "gloo"


def setup(device: str = "auto") -> tuple[int, int, str]:
    """Join the process group torchrun describes in the environment; return ``(rank, world size, device)``."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise DistributedError(
            "not started by torchrun (RANK/WORLD_SIZE unset): run "
            "`torchrun --nproc-per-node N -m core.distributed ...`"
        )
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DistributedError("device cuda asked for, but no CUDA GPU is available; use --device cpu")
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    dist.init_process_group(backend=backend_for(device))
    return dist.get_rank(), dist.get_world_size(), device


def build_parser() -> argparse.ArgumentParser:
    """Options of ``python -m core.distributed``."""
    p = argparse.ArgumentParser(
        prog="torchrun --nproc-per-node N -m core.distributed",
        description="Train one model of a recipe with DistributedDataParallel (run under torchrun).",
    )
    p.add_argument("--recipe", default="strong", choices=sorted(RECIPES))
    p.add_argument("--role", default="teacher", choices=["teacher", "student"])
    p.add_argument("--runs-dir", type=Path, required=True, help="where the run folder goes")
    p.add_argument("--run-name", help="run folder name (default: a new time-stamped one)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="global batch size (split over the processes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (each process uses cuda:LOCAL_RANK)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process on CPU (default: 1)")
    p.add_argument("--max-train-samples", type=int)
    p.add_argument("--max-test-samples", type=int, help="evaluate on the first N test images (quick runs)")
    p.add_argument("--data-dir")
    p.add_argument("--no-export", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point for each torchrun process; rank 0 prints a JSON summary on stdout.

    The job is a :class:`core.jobs.JobSpec` run by :func:`core.jobs.run_job`, like every other training job:
    rank 0 creates, locks and writes the run folder; every rank trains its share of each batch.
    """
    from core import jobs

    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    rank, world, device = setup(args.device)
    try:
        spec = jobs.JobSpec(
            recipe=args.recipe,
            role=args.role,
            overrides={"epochs": args.epochs, "batch_size": args.batch_size},
            seed=args.seed,
            device=device,
            max_train_samples=args.max_train_samples,
            max_test_samples=args.max_test_samples,
            data_dir=Path(args.data_dir) if args.data_dir else None,
            runs_root=args.runs_dir,
            run_name=args.run_name,
            export=not args.no_export,
        )
        progress = EpochPrinter(world) if rank == 0 else NullProgress()
        result = jobs.run_job(spec, progress)
        if rank == 0:
            summary = {
                "status": result.status,
                "run_dir": str(result.run_dir) if result.run_dir else None,
                "world_size": world,
                "backend": backend_for(device),
                "test_accuracy": result.test_accuracy,
                "params": result.params,
                "seconds": round(result.seconds, 2),
                "onnx": str(result.onnx_path) if result.onnx_path else None,
            }
            print(json.dumps(summary), flush=True)
    finally:
        dist.destroy_process_group()
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
