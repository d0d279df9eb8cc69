"""A board session: one SSH connection and one persistent runner on the board, for classifying drawing after drawing.

Opening a session connects once, checks that the board's copy of ``acl_runner.py`` has the same SHA-256 as ours
(uploading it only when not), and starts ``acl_runner.py --serve`` there, which loads the .om once and then
answers framed requests on its stdin/stdout (the protocol is described in ``remote/acl_runner.py``). Each
:meth:`BoardSession.classify` is then one frame out and one frame back over the open channel: milliseconds
instead of a new SSH connection, an upload and a model load per drawing (``bench/board_latency.py``).

The runner is watched: if its channel closes (it died) or an answer does not come within ``request_timeout``
(it hangs, e.g. a wedged NPU call), it is ended by its PID (never by name), started again and the request is
sent once more; the answer then says ``restarted``. :meth:`close` asks the runner to quit, ends it by PID if it
does not, and closes the connection.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import shlex
import struct
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import paramiko

from atlas_bridge.board import remote_path_expr
from atlas_bridge.connection import BoardConnection, ConnectionConfig
from atlas_bridge.errors import AclMissingError, ConnectionLostError, RunnerError
from atlas_bridge.hostkeys import TrustCallback
from atlas_bridge.results import BoardPrediction
from atlas_bridge.text import inert

RUNNER_NAME = "acl_runner.py"
REQUEST = struct.Struct("<4sBII")
RESPONSE = struct.Struct("<4sII")
OP_CLASSIFY, OP_PING, OP_QUIT = 1, 2, 3


def runner_path() -> Path:
    """The runner script shipped with the bridge."""
    from atlas_bridge.pipeline import RUNNER

    return RUNNER


def sha256_bytes(data: bytes) -> str:  # noqa: D103
    return hashlib.sha256(data).hexdigest()


class _RunnerGone(Exception):
    """The runner's channel closed (it exited or was killed)."""


class _RunnerSilent(Exception):
    """No answer within the deadline (the runner hangs)."""


class BoardSession:
    """One open connection and one runner process for a deployed model.

    Parameters
    ----------
    board
        Login to the board.
    set_env
        The board's set_env.sh (from the deploy).
    model_dir
        The remote folder holding ``model.om`` (from the deploy).
    trust
        Asked about an unknown host key (normally the deploy recorded it already).
    request_timeout
        Seconds an answer may take before the runner counts as hung and is restarted.
    start_timeout
        Seconds the runner may take to load the model.
    """

    def __init__(
        self,
        board: ConnectionConfig,
        set_env: str,
        model_dir: str,
        trust: TrustCallback | None = None,
        request_timeout: float = 10.0,
        start_timeout: float = 60.0,
    ):
        if request_timeout <= 0 or start_timeout <= 0:
            raise ValueError("request_timeout and start_timeout must be more than 0 seconds")
        self.board, self.set_env, self.model_dir = board, set_env, model_dir
        self.trust = trust
        self.request_timeout, self.start_timeout = request_timeout, start_timeout
        self.conn: BoardConnection | None = None
        self.runner_pid: int | None = None
        self.runner_uploaded = False
        self.restarts = 0
        self._channel: paramiko.Channel | None = None
        self._stderr: deque[str] = deque(maxlen=50)
        self._next_id = 1
        self._lock = threading.Lock()

    @property
    def label(self) -> str:  # noqa: D102
        return self.conn.label if self.conn is not None else self.board.host

    @property
    def is_open(self) -> bool:
        """True while the connection and a runner are up."""
        return self._channel is not None and not self._channel.closed

    # ----------------------------------------------------------------------------------------- lifecycle
    def open(self) -> BoardSession:
        """Connect, make sure the runner on the board is ours (by hash) and start it."""
        with self._lock:
            if self.conn is None:
                self.conn = BoardConnection(self.board, self.trust).connect()
            self._ensure_runner()
            self._start_runner()
        return self

    def __enter__(self) -> BoardSession:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the runner (quit, else by PID) and close the connection; safe to call twice."""
        with self._lock:
            self._stop_runner(polite=True)
            if self.conn is not None:
                self.conn.close()
                self.conn = None

    def _connection(self) -> BoardConnection:
        if self.conn is None:
            raise ConnectionLostError(f"Not connected to {self.label}", "Open the board session first")
        return self.conn

    def _ensure_runner(self) -> None:
        local = runner_path().read_bytes()
        remote = posixpath.join(self.model_dir, RUNNER_NAME)
        result = self._connection().run(f"sha256sum -- {shlex.quote(remote)} 2>/dev/null", timeout=30)
        found = result.lines[0].split()[0] if result.exit_status == 0 and result.lines else ""
        if found != sha256_bytes(local):
            self._connection().upload_bytes(local, remote)
            self.runner_uploaded = True

    def _start_runner(self) -> None:
        script = (
            f". {remote_path_expr(self.set_env)} >/dev/null 2>&1; cd {shlex.quote(self.model_dir)} && "
            f"exec python3 -u {RUNNER_NAME} --model model.om --serve"
        )
        conn = self._connection()
        try:
            channel = conn.transport.open_session(timeout=self.board.connect_timeout)
            channel.exec_command("bash -lc " + shlex.quote(script))
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            raise conn._lost("starting the board runner", exc) from exc
        self._channel = channel
        self._stderr.clear()
        try:
            ready = self._read_answer(0, time.monotonic() + self.start_timeout)
        except (_RunnerGone, _RunnerSilent) as exc:
            self._stop_runner(polite=False)
            why = (
                "exited"
                if isinstance(exc, _RunnerGone)
                else f"did not answer within {self.start_timeout:g} s"
            )
            raise RunnerError(
                f"The board runner {why} while loading the model: {self._stderr_tail()}",
                "Check the board (python3, numpy, pyACL) and deploy again",
            ) from None
        if not ready.get("ok"):
            self._stop_runner(polite=False)
            error = inert(str(ready.get("error", "unknown error")))
            if ready.get("kind") in ("acl_missing", "acl_foreign"):
                raise AclMissingError(
                    f"pyACL is not usable on the board: {error}",
                    f"Check that {self.set_env} sets PYTHONPATH to the toolkit's python",
                )
            raise RunnerError(
                f"The board runner could not load {self.model_dir}/model.om: {error}",
                "Deploy the model again",
            )
        self.runner_pid = int(ready["pid"])

    def _stop_runner(self, polite: bool) -> None:
        channel, pid, self._channel, self.runner_pid = self._channel, self.runner_pid, None, None
        if channel is None:
            return
        if polite and not channel.closed:
            try:
                channel.sendall(REQUEST.pack(b"DDRQ", OP_QUIT, 0, 0))
                channel.shutdown_write()
                deadline = time.monotonic() + 2.0
                while not channel.exit_status_ready() and time.monotonic() < deadline:
                    time.sleep(0.02)
            except (OSError, paramiko.SSHException, EOFError):
                pass
        exited = channel.exit_status_ready()
        channel.close()
        if pid is not None and not exited and self.conn is not None:
            self.conn.kill(pid)

    def restart(self) -> None:
        """End the runner by its PID and start a new one (what :meth:`classify` does for a dead or hung one)."""
        self._stop_runner(polite=False)
        if self.conn is None or not self.conn._alive():
            if self.conn is not None:
                self.conn.close()
            self.conn = BoardConnection(self.board, self.trust).connect()
        self._start_runner()
        self.restarts += 1

    # ------------------------------------------------------------------------------------------- requests
    def classify(self, image28: np.ndarray) -> BoardPrediction:
        """The board's answer for one ``(28, 28)`` float32 image in [0, 1]."""
        image = np.ascontiguousarray(np.asarray(image28, dtype=np.float32).reshape(1, 1, 28, 28))
        with self._lock:
            if self.conn is None:
                raise RunnerError("The board session is closed", "Open it again")
            restarted = False
            for attempt in (1, 2):
                started = time.perf_counter()
                try:
                    if not self.is_open:
                        raise _RunnerGone()
                    answer = self._request(OP_CLASSIFY, image.tobytes())
                    break
                except (_RunnerGone, _RunnerSilent) as exc:
                    if attempt == 2:
                        why = "exited" if isinstance(exc, _RunnerGone) else "did not answer"
                        raise RunnerError(
                            f"The board runner {why} again after a restart: {self._stderr_tail()}",
                            "Check the board, then deploy again",
                        ) from None
                    self.restart()
                    restarted = True
            round_trip = (time.perf_counter() - started) * 1000.0
        if not answer.get("ok"):
            raise RunnerError(
                f"The board could not classify the drawing: {inert(str(answer.get('error')))}",
                "See the board's log; deploy again if it persists",
            )
        return BoardPrediction(
            digit=int(answer["predictions"][0]),
            probabilities=tuple(answer["probabilities"][0]),
            npu_ms=float(answer["execute_ms"][0]),
            round_trip_ms=round_trip,
            restarted=restarted,
        )

    def ping(self) -> float:
        """Round trip of an empty request in milliseconds (raises if the runner does not answer)."""
        with self._lock:
            started = time.perf_counter()
            try:
                self._request(OP_PING, b"")
            except (_RunnerGone, _RunnerSilent) as exc:
                raise RunnerError(f"The board runner is not answering ({type(exc).__name__})", "") from None
            return (time.perf_counter() - started) * 1000.0

    def _request(self, op: int, payload: bytes) -> dict[str, Any]:
        request_id = self._next_id
        self._next_id += 1
        if self._channel is None:
            raise _RunnerGone()
        try:
            self._channel.sendall(REQUEST.pack(b"DDRQ", op, request_id, len(payload)) + payload)
        except (OSError, paramiko.SSHException, EOFError):
            raise _RunnerGone() from None
        return self._read_answer(request_id, time.monotonic() + self.request_timeout)

    def _read_answer(self, request_id: int, deadline: float) -> dict[str, Any]:
        while True:
            magic, answer_id, length = RESPONSE.unpack(self._recv_exact(RESPONSE.size, deadline))
            if magic != b"DDRS":
                raise _RunnerGone()
            body = self._recv_exact(length, deadline)
            if answer_id == request_id:
                answer: dict[str, Any] = json.loads(body.decode("utf-8"))
                return answer

    def _recv_exact(self, count: int, deadline: float) -> bytes:
        data = bytearray()
        channel = self._channel
        if channel is None:
            raise _RunnerGone()
        while len(data) < count:
            self._drain_stderr()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _RunnerSilent()
            channel.settimeout(min(remaining, 0.25))
            try:
                chunk = channel.recv(count - len(data))
            except TimeoutError:
                continue
            except (OSError, paramiko.SSHException, EOFError):
                raise _RunnerGone() from None
            if not chunk:
                self._drain_stderr()
                raise _RunnerGone()
            data += chunk
        return bytes(data)

    def _drain_stderr(self) -> None:
        channel = self._channel
        while channel is not None and channel.recv_stderr_ready():
            text = channel.recv_stderr(65536).decode("utf-8", "replace")
            self._stderr.extend(inert(line) for line in text.splitlines() if line.strip())

    def _stderr_tail(self) -> str:
        return " | ".join(list(self._stderr)[-3:]) or "no output"
