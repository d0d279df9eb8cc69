"""The board session against the emulator: one connection, one runner loading the .om once, restarts, close."""

from __future__ import annotations

import os
import signal
import time
import uuid

import numpy as np
import pytest

from atlas_bridge.hostkeys import trust_fingerprint
from atlas_bridge.pipeline import Deployer, DeployTarget
from atlas_bridge.session import BoardSession

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployed(_emulator, tmp_path_factory, student_onnx, test_images):
    """The student deployed once for this module's tests: (login, set_env, model_dir)."""
    known = tmp_path_factory.mktemp("session") / "known_hosts"
    target = DeployTarget(board=_emulator.login(known), remote_dir=f"session-{uuid.uuid4().hex[:6]}")
    result = Deployer(target, trust=trust_fingerprint(_emulator.host_key_fingerprint)).deploy(
        student_onnx, test_images[0][:2]
    )
    return target.board, result.set_env, result.model_dir


def accepted_logins(board) -> int:
    return (board.dir / "sshd.log").read_text().count("Accepted password")


def test_many_drawings_over_one_connection_and_one_runner(board, deployed, student_onnx, test_images):
    from core.inference import OnnxClassifier

    images = test_images[0][:20]
    local = OnnxClassifier(student_onnx).probabilities(images)
    with BoardSession(*deployed) as session:
        assert not session.runner_uploaded  # the deploy put the same runner there (same SHA-256)
        logins, pid = accepted_logins(board), session.runner_pid
        answers = [session.classify(image[0]) for image in images]
        assert accepted_logins(board) == logins  # no new SSH login per drawing
        assert session.runner_pid == pid and [p for p, _ in board.processes("acl_runner.py")] == [pid]
    board_probs = np.array([a.probabilities for a in answers])
    assert np.abs(board_probs - local).max() < 2e-2
    assert np.mean([a.digit for a in answers] == local.argmax(axis=1)) >= 0.95
    assert all(0 < a.npu_ms < a.round_trip_ms for a in answers) and not any(a.restarted for a in answers)
    assert board.processes("acl_runner.py") == []  # closed: the runner is gone
    last = [e for e in board.acl_ledger() if e["finalized"]][-1]
    assert not any(last["leaks"].values())  # it quit cleanly and released everything


def test_a_changed_runner_is_uploaded_again(board, deployed, test_images):
    _, _, model_dir = deployed
    remote = board.home / model_dir.split(str(board.home) + "/", 1)[1] / "acl_runner.py"
    remote.write_text(remote.read_text() + "\n# changed on the board\n")
    with BoardSession(*deployed) as session:
        assert session.runner_uploaded
        assert session.classify(test_images[0][0, 0]).digit in range(10)
    from atlas_bridge.pipeline import RUNNER

    assert remote.read_bytes() == RUNNER.read_bytes()


def test_a_dead_runner_is_restarted(board, deployed, test_images):
    with BoardSession(*deployed) as session:
        first = session.classify(test_images[0][0, 0])
        old = session.runner_pid
        os.kill(old, signal.SIGKILL)
        again = session.classify(test_images[0][0, 0])
        assert again.restarted and not first.restarted and session.restarts == 1
        assert session.runner_pid != old and again.digit == first.digit


def test_a_wedged_runner_is_ended_by_pid_and_restarted(board, deployed, test_images):
    with BoardSession(*deployed, request_timeout=2.0) as session:
        session.classify(test_images[0][0, 0])
        wedged = session.runner_pid
        board.wedge_next_execute()
        answer = session.classify(test_images[0][1, 0])
        assert answer.restarted and session.runner_pid != wedged
        assert not os.path.exists(f"/proc/{wedged}")  # the hung process was ended, not left behind
        assert [p for p, _ in board.processes("acl_runner.py")] == [session.runner_pid]


def test_close_stops_the_runner_even_when_it_hangs(board, deployed, test_images):
    session = BoardSession(*deployed, request_timeout=1.0).open()
    pid = session.runner_pid
    board.wedge_next_execute()
    with pytest.raises(Exception):  # noqa: B017 - any failure: the point is what close() leaves behind
        session._request(1, test_images[0][:1].tobytes())
    session.close()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}") and board.processes("acl_runner.py") == []


def test_board_latency_bench_prints_its_ratio():
    import subprocess
    import sys

    from tests.conftest import ROOT

    result = subprocess.run(
        [sys.executable, "bench/board_latency.py", "--drawings", "3", "--per-call", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio per-call / session" in result.stdout and "(target >= 10x)" in result.stdout
    assert "NPU execute time" in result.stdout
