"""Per-drawing board classification: the board session against one SSH connection per drawing (board emulator).

Starts the board emulator (a real sshd on 127.0.0.1 with stand-in atc/acl; needs root and openssh-server),
deploys the bundled student once, then classifies the same drawings (MNIST test images) two ways, interleaved:

1. per call: ``atlas_bridge.pipeline.predict_on_board`` (what "Classify on board" did before the session): a new
   SSH connection, the runner uploaded, Python and the model started, one image run, all per drawing;
2. session: ``atlas_bridge.session.BoardSession.classify`` over one open connection to one runner that loaded the
   .om once.

Prints the median and p95 milliseconds per drawing of each, the NPU share reported by the runner (the time around
``acl.mdl.execute``; on the emulator onnxruntime stands in for the NPU) and the ratio per-call / session measured
in this run (target >= 10x).

Run: ``python bench/board_latency.py [--drawings 30] [--per-call 8]`` (as root).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atlas_bridge.hostkeys import trust_fingerprint  # noqa: E402
from atlas_bridge.pipeline import Deployer, DeployTarget, predict_on_board  # noqa: E402
from atlas_bridge.session import BoardSession  # noqa: E402
from core.bundled import bundled_model  # noqa: E402
from tests.board_emulator import BoardEmulator, EmulatorError  # noqa: E402


def percentiles(samples) -> tuple[float, float]:
    """Median and p95 of ``samples``."""
    a = np.asarray(samples, dtype=np.float64)
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def main(argv=None) -> int:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawings", type=int, default=30, help="drawings classified through the session")
    parser.add_argument("--per-call", type=int, default=8, help="drawings classified one connection each")
    args = parser.parse_args(argv)
    if args.drawings < 1 or args.per_call < 1:
        parser.error("--drawings and --per-call must be at least 1")
    from core.sanity import check_images  # 300 MNIST test images shipped with the package

    images = check_images()[0][: max(args.drawings, args.per_call)].reshape(-1, 28, 28).astype(np.float32)
    try:
        emulator = BoardEmulator().start()
    except EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        with tempfile.TemporaryDirectory() as tmp:
            login = emulator.login(os.path.join(tmp, "known_hosts"))
            trust = trust_fingerprint(emulator.host_key_fingerprint)
            result = Deployer(DeployTarget(board=login, remote_dir="bench"), trust=trust).deploy(
                bundled_model("student"), images[:1, None]
            )
            print(f"deployed {result.om_path} ({result.om_bytes:,} bytes) on the board emulator")

            per_call, per_call_npu = [], []
            for image in images[: args.per_call]:
                t0 = time.perf_counter()
                answer = predict_on_board(login, result.set_env, result.model_dir, image, trust)
                per_call.append((time.perf_counter() - t0) * 1000.0)
                per_call_npu.append(answer.npu_ms)

            session_ms, npu_ms = [], []
            t_open = time.perf_counter()
            with BoardSession(login, result.set_env, result.model_dir, trust) as session:
                opened = (time.perf_counter() - t_open) * 1000.0
                session.classify(images[0])  # the first request pays for nothing extra; keep it out anyway
                for image in images[: args.drawings]:
                    t0 = time.perf_counter()
                    answer = session.classify(image)
                    session_ms.append((time.perf_counter() - t0) * 1000.0)
                    npu_ms.append(answer.npu_ms)
    finally:
        emulator.stop()

    p50_call, p95_call = percentiles(per_call)
    p50_session, p95_session = percentiles(session_ms)
    print(
        f"one SSH connection per drawing: p50 {p50_call:8.1f} ms, p95 {p95_call:8.1f} ms  ({len(per_call)} drawings)"
    )
    print(
        f"board session:                  p50 {p50_session:8.1f} ms, p95 {p95_session:8.1f} ms  "
        f"({len(session_ms)} drawings; opening it took {opened:.0f} ms once)"
    )
    print(
        f"NPU execute time reported by the runner: p50 {percentiles(npu_ms)[0]:.3f} ms "
        "(emulator: onnxruntime stands in for the NPU)"
    )
    print(f"ratio per-call / session (p50): {p50_call / p50_session:.1f}x (target >= 10x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
