"""What the Train tab's jobs do, without Qt: run one job through ``core.jobs``, time its model; read results.

Each job function runs in the worker thread (see :mod:`app.gui.workers`) and returns a plain ``dict`` row
(numbers, strings, lists of dicts), never a model or a tensor, so it can cross to the GUI thread as is.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
import torch._dynamo  # noqa: F401 - see below

# torch imports torch._dynamo lazily when the first optimizer is built: seconds of module initialisation that,
# inside the worker thread, would hold the GIL in long stretches and freeze the window. Importing it with this
# module moves that one-off cost to start-up, before any job runs.
from core import comparisons, runs
from core.inference import OnnxClassifier, latency_ms
from core.progress import Progress

LATENCY_REPEATS = 200


@contextmanager
def lower_thread_priority(niceness: int = 10) -> Iterator[bool]:
    """Lower the calling worker thread's scheduling priority (Linux: per-thread nice) while the block runs.

    The training thread then yields the CPU to the GUI thread whenever both want it, which keeps the window
    responsive on a busy two-core machine. Yields whether the priority was lowered: never on the main thread
    (a job run there, as in a script or a test, would leave every later thread it starts at the lower
    priority, since Linux threads inherit their creator's), nor where the platform cannot. Afterwards the
    priority goes back where the system allows it (raising it needs privileges); a worker thread ends with its
    job anyway (:mod:`app.gui.workers` starts a fresh QThread per job).
    """
    before: int | None = None  # the priority to go back to, once lowered
    tid = threading.get_native_id()
    if (
        sys.platform.startswith("linux")
        and hasattr(os, "setpriority")
        and threading.current_thread() is not threading.main_thread()
    ):
        try:
            priority = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, min(19, priority + niceness))
            before = priority
        except OSError:
            pass
    try:
        yield before is not None
    finally:
        if before is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, before)
            except OSError:
                pass  # an unprivileged user may not raise it again; the thread ends with the job


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


class ResultRow(TypedDict, total=False):
    """A run as the results table and the plots show it (:func:`result_row`); a finished job adds what it did."""

    role: str
    recipe: str | None  # None when the run folder does not record it
    preset: str
    status: str
    run_dir: str
    name: str
    test_accuracy: float | None  # a fraction
    params: int
    onnx_path: str | None
    onnx_bytes: int | None
    latency_ms: float | None
    epochs_done: int
    epochs: int
    finished: bool
    stopped: bool
    kd: dict[str, Any] | None
    history: list[dict[str, Any]]
    # Added by run_training_job:
    message: str
    export_error: str | None
    seconds: float
    table: ResultsTable


class ResultsTable(TypedDict):
    """The honest comparison of a recipe's complete runs (:func:`latest_results`)."""

    rows: list[ResultRow]
    compared: bool  # a distilled student with its own teacher (and its matching baseline, if any)
    note: str
    baseline_for: str | None  # the distilled run whose matching student is missing


def measure_latency_ms(onnx_path: Path, repeats: int = LATENCY_REPEATS) -> float:
    """Median time of one single-image forward pass through onnxruntime (1 thread), in milliseconds."""
    return latency_ms(OnnxClassifier(onnx_path), np.zeros((28, 28), np.float32), repeats)


def run_training_job(
    spec, progress: Progress, resume: Path | None = None, data_dir: Path | None = None
) -> ResultRow:
    """Run a :class:`core.jobs.JobSpec` (or resume the run ``resume``) through ``core.jobs``; time the ONNX model.

    Returns a results row (see :func:`result_row`) with ``status``, ``message``, ``export_error`` and ``table``
    (the honest comparison of the job's recipe afterwards, see :func:`latest_results`). Raises whatever ``core``
    raises (missing data, bad hyperparameters, a locked run folder) with its message.
    """
    from core import jobs

    with lower_thread_priority(), worker_threads():
        if resume is not None:
            result = jobs.resume_job(resume, progress, data_dir=data_dir)
            runs_root = Path(resume).parent
        else:
            result = jobs.run_job(spec, progress)
            runs_root = spec.runs_root
        config = result.config
        if result.run_dir is None:  # stopped before the first epoch ended: no run folder was kept
            row: ResultRow = {"role": config.role, "recipe": config.recipe, "epochs_done": 0}
        else:
            latency = None
            if result.onnx_path is not None:
                progress.status("timing single-image inference (onnxruntime)")
                latency = measure_latency_ms(result.onnx_path)
            row = result_row(runs.read_run(result.run_dir), latency_ms=latency)
        row.update(
            {
                "status": result.status,
                "stopped": result.status == "stopped",
                "message": result.message,
                "export_error": result.export_error,
                "seconds": result.seconds,
            }
        )
        if result.status == "stopped" and result.run_dir is not None:
            progress.status(f"stopped: {len(result.history)} finished epoch(s) kept in {result.run_dir}")
        row["table"] = latest_results(config.recipe, runs_root)
        return row


def result_row(info: runs.RunInfo, latency_ms: float | None = None) -> ResultRow:
    """A run as the results table and the plots show it."""
    onnx = info.onnx_path
    return {
        "role": info.role,
        "recipe": info.recipe,
        "preset": info.preset,
        "status": info.status,
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
        "stopped": info.status == "stopped",
        "kd": info.kd,
        "history": [dict(h) for h in info.history],
    }


def latest_results(recipe: str, runs_root: Path | None = None, measure: bool = True) -> ResultsTable:
    """The honest comparison of ``recipe``'s complete runs (:func:`core.comparisons.latest`)."""
    comparison = comparisons.latest(recipe, runs_root)
    rows = []
    for info in comparison.runs():
        latency = measure_latency_ms(info.onnx_path) if measure and info.onnx_path else None
        rows.append(result_row(info, latency_ms=latency))
    return {
        "rows": rows,
        "compared": comparison.anchored,
        "note": comparison.note,
        "baseline_for": str(comparison.distilled.path)
        if comparison.student is None and comparison.distilled is not None
        else None,
    }


def stopped_runs(recipe: str, runs_root: Path | None = None) -> list[runs.RunInfo]:
    """Stopped runs of ``recipe`` (newest first): the ones offered for resuming."""
    return [r for r in runs.list_runs(runs_root) if r.recipe == recipe and r.status == "stopped"]
