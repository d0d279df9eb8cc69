"""Single-image inference latency: our OnnxClassifier against bare onnxruntime, and preprocessing time.

Prints, for the paper student and teacher (untrained weights: timing does not depend on them), exported to a
temporary folder:
1. p50/p95 latency of ``OnnxClassifier.logits`` on one ``(1, 1, 28, 28)`` image, and of a bare
   ``onnxruntime.InferenceSession.run`` on the same file and session, measured interleaved so machine noise hits
   both alike; the overhead ratio p50(core) / p50(bare) (target <= 1.10) and the median paired difference in
   microseconds; and, for scale, a second bare session of the same file against the first (two identical
   sessions can differ by 10-20% for the teacher on this machine, from where their weights sit in memory);
2. p50/p95 of ``core.preprocess.to_mnist`` on a 280x280 canvas drawing (target p95 <= 2 ms), in wall-clock
   time and in this thread's CPU time (immune to other processes taking the CPU on a busy machine), and of the
   canvas rendering for reference.

Run: ``python bench/inference_latency.py [--calls 5000] [--threads 1]`` (the teacher gets a fifth of the calls)
"""

from __future__ import annotations

import argparse
import os
import sys
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


def alternate(first, second, calls: int) -> dict[str, np.ndarray]:
    """Per-call wall and thread-CPU times (ns) of two callables, one call of each per round, order flipping.

    Drifts in machine load fall on both alike, and each is preceded by either equally often (what ran just
    before decides what sits in the caches: 22 MB of teacher weights do not all fit).
    """
    for _ in range(max(20, calls // 20)):  # warm-up
        first()
        second()
    out = {key: np.empty(calls, dtype=np.int64) for key in ("wall0", "wall1", "cpu0", "cpu1")}
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for i in range(calls):
        for j, fn in ((1, second), (0, first)) if i % 2 else ((0, first), (1, second)):
            c0 = cpu_clock()
            t0 = clock()
            fn()
            t1 = clock()
            out[f"cpu{j}"][i] = cpu_clock() - c0
            out[f"wall{j}"][i] = t1 - t0
    return out


def overhead_latency(
    path: Path, threads: int, calls: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Time OnnxClassifier against bare onnxruntime, then two bare sessions against each other.

    The first comparison runs ``InferenceSession.run`` on the classifier's own session, so the two differ only
    by our Python layer. The second puts a second session created from the same file with the same options
    beside it: the same work in other memory, which shows how much two identical sessions differ on this
    machine (cache and page placement), a reason not to compare OnnxClassifier with a separate session.
    """
    clf = OnnxClassifier(path, threads=threads)
    session = clf.session
    other = bare_session(path, threads)
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    feed_name = session.get_inputs()[0].name
    np.testing.assert_allclose(clf.logits(x), other.run(None, {feed_name: x})[0], atol=1e-6)

    def core_call():
        clf.logits(x)

    def bare_call():
        session.run(None, {feed_name: x})[0]

    def other_call():
        other.run(None, {feed_name: x})[0]

    return alternate(core_call, bare_call, calls), alternate(bare_call, other_call, calls)


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


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000, help="student calls per side (default 5000)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    parser.add_argument("--preprocess-repeats", type=int, default=2000)
    args = parser.parse_args(argv)

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
            calls = args.calls if role == "student" else max(50, args.calls // 5)
            res, twin = overhead_latency(path, args.threads, calls)
            (c50, c95), (b50, b95) = percentiles_us(res["wall0"]), percentiles_us(res["wall1"])
            paired = float(np.median(res["wall0"] - res["wall1"])) / 1e3
            cpu_ratio = np.median(res["cpu0"]) / np.median(res["cpu1"])
            twin_ratio = np.median(twin["wall1"]) / np.median(twin["wall0"])
            ratio = c50 / b50
            ratios.append(ratio)
            print(
                f"{role} ({calls} calls each): OnnxClassifier p50 {c50:.1f} us, p95 {c95:.1f} us | "
                f"bare onnxruntime p50 {b50:.1f} us, p95 {b95:.1f} us\n"
                f"    overhead p50 {ratio:.3f}x (target <= 1.10), p95 {c95 / b95:.3f}x, median paired difference "
                f"{paired:+.2f} us, CPU-time p50 {cpu_ratio:.3f}x; a second identical bare session runs at "
                f"{twin_ratio:.3f}x the first"
            )
    for name, (p50, p95) in preprocess_latency(args.preprocess_repeats).items():
        target = "  (target p95 <= 2000 us)" if name.startswith("to_mnist (") else ""
        print(f"{name:28s} p50 {p50:8.1f} us  p95 {p95:8.1f} us{target}")
    print(f"worst p50 overhead ratio: {max(ratios):.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
