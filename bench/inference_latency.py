"""Single-image inference latency: our OnnxClassifier against bare onnxruntime, and preprocessing time.

Prints, for the paper student and teacher (untrained weights: timing does not depend on them), exported to a
temporary folder:
1. p50/p95 latency of ``OnnxClassifier.logits`` on one ``(1, 1, 28, 28)`` image, and of a bare
   ``onnxruntime.InferenceSession.run`` on the same file with the same session options, measured interleaved
   (one call of each, alternating) so machine noise hits both alike; the overhead ratio p50(core) / p50(bare)
   (target <= 1.10) and the median paired difference in microseconds;
2. p50/p95 of ``core.preprocess.to_mnist`` on a 280x280 canvas drawing (target p95 <= 2 ms), in wall-clock
   time and in this thread's CPU time (immune to other processes taking the CPU on a busy machine), and of the
   canvas rendering for reference.

Run: ``python bench/inference_latency.py [--calls 5000] [--threads 1]`` (the teacher gets a tenth of the calls)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from core.export import export_onnx
from core.inference import OnnxClassifier
from core.models import build_model, get_preset
from core.preprocess import to_mnist
from core.strokes import load_drawn, render_strokes

DRAWN = Path(__file__).resolve().parents[2] / "shared" / "data" / "drawn-digits-dev" / "strokes.npz"


def percentiles_us(samples_ns) -> tuple[float, float]:
    """p50 and p95 in microseconds."""
    a = np.asarray(samples_ns, dtype=np.float64) / 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def bare_session(path: Path, threads: int) -> ort.InferenceSession:
    """A plain onnxruntime session with the same options OnnxClassifier uses."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def interleaved_latency(path: Path, threads: int, calls: int) -> dict[str, np.ndarray]:
    """Per-call wall times (ns) of OnnxClassifier and bare onnxruntime, alternating call by call.

    Each round makes one call of each kind, the order flipping every round, so drifts in machine load
    (other processes, frequency changes) fall on both sides alike.
    """
    clf = OnnxClassifier(path, threads=threads)
    session = bare_session(path, threads)
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    feed_name = session.get_inputs()[0].name
    np.testing.assert_allclose(clf.logits(x), session.run(None, {feed_name: x})[0], atol=1e-6)

    def core_call():
        clf.logits(x)

    def bare_call():
        session.run(None, {feed_name: x})[0]

    for _ in range(max(20, calls // 20)):  # warm-up
        core_call()
        bare_call()
    core = np.empty(calls, dtype=np.int64)
    bare = np.empty(calls, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(calls):
        if i % 2:
            t0 = clock()
            bare_call()
            t1 = clock()
            core_call()
            t2 = clock()
            bare[i], core[i] = t1 - t0, t2 - t1
        else:
            t0 = clock()
            core_call()
            t1 = clock()
            bare_call()
            t2 = clock()
            core[i], bare[i] = t1 - t0, t2 - t1
    return {"core": core, "bare": bare}


def drawing(size: int = 280) -> np.ndarray:
    """A 280x280 canvas image of a digit drawn by a person (or a synthetic 8 without the data set)."""
    if DRAWN.exists():
        return render_strokes(load_drawn(DRAWN)[7].strokes, size=size)
    t = np.linspace(0, 2 * np.pi, 60)
    eight = np.stack([np.sin(2 * t) / 2, np.sin(t)], axis=1)
    return render_strokes([eight], size=size)


def preprocess_latency(repeats: int) -> dict[str, tuple[float, float]]:
    """p50/p95 (us) of to_mnist on a 280x280 drawing, and of rendering strokes onto the canvas."""
    image = drawing()
    for _ in range(20):
        to_mnist(image)
    pre, pre_cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
        to_mnist(image)
        pre.append(time.perf_counter_ns() - t0)
        pre_cpu.append(time.thread_time_ns() - c0)
    strokes = load_drawn(DRAWN)[7].strokes if DRAWN.exists() else None
    render = []
    if strokes is not None:
        for _ in range(max(1, repeats // 5)):
            t0 = time.perf_counter_ns()
            render_strokes(strokes)
            render.append(time.perf_counter_ns() - t0)
    out = {"to_mnist (280x280)": percentiles_us(pre), "to_mnist, CPU time": percentiles_us(pre_cpu)}
    if render:
        out["render_strokes (reference)"] = percentiles_us(render)
    return out


def main() -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000, help="student calls per side (default 5000)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    parser.add_argument("--preprocess-repeats", type=int, default=2000)
    args = parser.parse_args()

    torch.manual_seed(0)
    preset = get_preset("paper")
    print(
        f"onnxruntime {ort.__version__}, {args.threads} thread(s); load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs (wall-clock p95s include time other processes hold the CPU; CPU-time lines do not)"
    )
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for role in ("student", "teacher"):
            path = Path(tmp) / f"{role}.onnx"
            export_onnx(build_model(getattr(preset, role)), path, metadata={"preset": "paper", "role": role})
            calls = args.calls if role == "student" else max(50, args.calls // 10)
            res = interleaved_latency(path, args.threads, calls)
            (c50, c95), (b50, b95) = percentiles_us(res["core"]), percentiles_us(res["bare"])
            paired = float(np.median(res["core"] - res["bare"])) / 1e3
            ratio = c50 / b50
            ratios.append(ratio)
            print(
                f"{role:8s} ({calls} calls each) OnnxClassifier p50 {c50:8.1f} us  p95 {c95:8.1f} us | "
                f"bare onnxruntime p50 {b50:8.1f} us  p95 {b95:8.1f} us | "
                f"overhead p50 {ratio:.3f}x (target <= 1.10), p95 {c95 / b95:.3f}x, "
                f"median paired difference {paired:+.2f} us"
            )
    for name, (p50, p95) in preprocess_latency(args.preprocess_repeats).items():
        target = "  (target p95 <= 2000 us)" if name.startswith("to_mnist (") else ""
        print(f"{name:28s} p50 {p50:8.1f} us  p95 {p95:8.1f} us{target}")
    print(f"worst p50 overhead ratio: {max(ratios):.3f}x")


if __name__ == "__main__":
    main()
