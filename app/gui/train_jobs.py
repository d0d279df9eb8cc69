"""What the Train tab's jobs do, without Qt: train one model, export it, time it; read earlier results.

Each job function runs in the worker thread (see :mod:`app.gui.workers`) and returns a plain ``dict`` row
(numbers, strings, lists of dicts), never a model or a tensor, so it can cross to the GUI thread as is.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch._dynamo  # noqa: F401 - see below

# torch imports torch._dynamo lazily when the first optimizer is built: seconds of module initialisation that,
# inside the worker thread, would hold the GIL in long stretches and freeze the window. Importing it with this
# module moves that one-off cost to start-up, before any job runs.
from core import runs
from core.data import load_mnist
from core.export import ExportError
from core.inference import OnnxClassifier
from core.models import get_preset
from core.training import KDConfig, Progress, TrainConfig, train

LATENCY_REPEATS = 200


@dataclass
class TrainJob:
    """Everything one Train/Distill button press asks for.

    Attributes
    ----------
    role
        ``"teacher"``, ``"student"`` (trained normally) or ``"distilled"``.
    preset
        A name from ``core.models.PRESETS``.
    config
        The training hyperparameters.
    kd
        Temperature and alpha (distillation only).
    teacher_run
        Run folder of the teacher to distil from (distillation only).
    data_dir
        MNIST folder; None lets ``core.data`` choose.
    runs_root
        Where run folders go; None: ``core.runs.default_runs_root()``.
    """

    role: str
    preset: str
    config: TrainConfig
    kd: KDConfig | None = None
    teacher_run: Path | None = None
    data_dir: Path | None = None
    runs_root: Path | None = None


def lower_thread_priority(niceness: int = 10) -> bool:
    """Lower the calling thread's scheduling priority (Linux: per-thread nice); False where unsupported.

    The training thread then yields the CPU to the GUI thread whenever both want it, which keeps the window
    responsive on a busy two-core machine. Only the job's own thread is affected; it ends with the job.
    """
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except OSError:
        return False
    return True


@contextmanager
def worker_threads() -> Iterator[int]:
    """Leave one core to the GUI thread while torch computes (restored afterwards)."""
    before = torch.get_num_threads()
    wanted = max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(min(before, wanted))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def measure_latency_ms(onnx_path: Path, repeats: int = LATENCY_REPEATS) -> float:
    """Median time of one single-image forward pass through onnxruntime (1 thread), in milliseconds."""
    classifier = OnnxClassifier(onnx_path)
    image = np.zeros((1, 1, 28, 28), dtype=np.float32)
    for _ in range(10):  # warm-up: the first runs allocate buffers
        classifier.logits(image)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        classifier.logits(image)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


def run_training_job(job: TrainJob, progress: Progress) -> dict:
    """Train, then (unless stopped) export to ONNX and time it; returns a results row (see :func:`result_row`).

    Raises whatever ``core`` raises (missing data, bad hyperparameters, a diverged loss) with its message.
    """
    lower_thread_priority()
    with worker_threads():
        progress.status("loading MNIST")
        data = load_mnist(job.data_dir)
        preset = get_preset(job.preset)
        teacher, teacher_info = None, None
        if job.role == "distilled":
            if job.teacher_run is None:
                raise ValueError(
                    "Distillation needs a trained teacher: train one first or pick one in the list."
                )
            progress.status(f"loading the teacher from {job.teacher_run}")
            teacher, meta = runs.load_checkpoint(job.teacher_run)
            teacher_info = {"run": str(job.teacher_run), "test_accuracy": meta.get("test_accuracy")}
        model_cfg = preset.teacher if job.role == "teacher" else preset.student
        run_dir = runs.new_run_dir(job.role, job.preset, job.runs_root)
        result = train(
            job.role,
            job.preset,
            model_cfg,
            job.config,
            data,
            kd=job.kd,
            teacher=teacher,
            progress=progress,
            run_dir=run_dir,
            teacher_info=teacher_info,
        )
        if not result.history:  # stopped before the first epoch ended: nothing worth a run folder
            shutil.rmtree(run_dir, ignore_errors=True)
            return {"role": job.role, "preset": job.preset, "epochs_done": 0, "stopped": True}
        latency, export_error = None, None
        if not result.stopped:
            progress.status("exporting to ONNX and checking it against PyTorch")
            try:
                onnx_path = runs.export_run(run_dir, data).path
            except ExportError as exc:  # the trained weights are kept; only the ONNX file is missing
                export_error = str(exc)
            else:
                progress.status("timing single-image inference (onnxruntime)")
                latency = measure_latency_ms(onnx_path)
        info = runs.read_run(run_dir)
        row = result_row(info, latency_ms=latency)
        row["export_error"] = export_error
        row["stopped"] = result.stopped
        row["seconds"] = result.seconds
        if result.stopped:
            progress.status(f"stopped: {len(result.history)} finished epoch(s) kept in {run_dir}")
        return row


def result_row(info: runs.RunInfo, latency_ms: float | None = None) -> dict:
    """A run as a plain dict for the results table and the plots.

    Keys: role, preset, run_dir, name, test_accuracy (fraction or None), params, onnx_path (str or None),
    onnx_bytes, latency_ms, epochs_done, epochs, finished, kd, history.
    """
    onnx = info.onnx_path
    return {
        "role": info.role,
        "preset": info.preset,
        "run_dir": str(info.path),
        "name": info.name,
        "test_accuracy": info.test_accuracy,
        "params": info.params,
        "onnx_path": str(onnx) if onnx else None,
        "onnx_bytes": onnx.stat().st_size if onnx else None,
        "latency_ms": latency_ms,
        "epochs_done": info.epochs_done,
        "epochs": info.epochs,
        "finished": info.finished,
        "stopped": False,
        "kd": info.kd,
        "history": [dict(h) for h in info.history],
    }


def latest_results(preset: str, runs_root: Path | None = None, measure: bool = True) -> list[dict]:
    """The newest finished run of each role for ``preset``, as result rows (latency timed if ``measure``)."""
    rows = []
    candidates = [r for r in runs.list_runs(runs_root) if r.preset == preset and r.finished]
    for role in ("teacher", "student", "distilled"):
        info = next((r for r in candidates if r.role == role), None)
        if info is None:
            continue
        latency = measure_latency_ms(info.onnx_path) if measure and info.onnx_path else None
        rows.append(result_row(info, latency_ms=latency))
    return rows


def teacher_runs(preset: str, runs_root: Path | None = None) -> list[runs.RunInfo]:
    """Finished teacher runs of ``preset``, newest first (the candidates for distillation)."""
    return [
        r for r in runs.list_runs(runs_root) if r.role == "teacher" and r.preset == preset and r.epochs_done
    ]
