"""Cancel, timeouts, stalls and clear one-line errors against the board emulator (a real sshd)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest

from atlas_bridge.connection import BoardConnection, ConnectionConfig
from atlas_bridge.errors import (
    CancelledError,
    ConnectError,
    KeyPassphraseError,
    RemoteDirError,
    RemoteTimeoutError,
    UploadStalledError,
)
from atlas_bridge.hostkeys import trust_fingerprint
from atlas_bridge.pipeline import Deployer, DeployTarget
from tests.board_helpers import Recorder, deploy_args

pytestmark = pytest.mark.slow
ATC_PROCESS = "latest/bin/atc"


def login(board, tmp_path, **kw) -> ConnectionConfig:
    return board.login(tmp_path / "known_hosts", **{"connect_timeout": 5, **kw})


def deployer(board, tmp_path, remote_dir, progress, **kw) -> Deployer:
    target = DeployTarget(board=login(board, tmp_path), remote_dir=remote_dir, **kw)
    return Deployer(target, progress, trust_fingerprint(board.host_key_fingerprint))


def wait_gone(board, needle, seconds=10.0):
    deadline = time.monotonic() + seconds
    while board.processes(needle) and time.monotonic() < deadline:
        time.sleep(0.05)
    return board.processes(needle)


def remote_names(folder):
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


# ---------------------------------------------------------------------------------------------- cancel
def test_cancel_during_atc_ends_it_by_pid_and_removes_the_build(
    board, tmp_path, remote_dir, student_onnx, test_images
):
    board.configure(atc_delay_s=60)
    progress = Recorder(
        stop_when=lambda r: any("$ atc" in line for line in r.lines) and board.processes(ATC_PROCESS)
    )
    # Raised only while ATC's channel is still open: the deploy did not wait out ATC's 60 s.
    with pytest.raises(CancelledError, match="the remote command was ended"):
        deployer(board, tmp_path, remote_dir, progress).deploy(student_onnx, test_images[0][:1])
    assert ("convert", "cancelled") in progress.steps
    assert wait_gone(board, ATC_PROCESS) == []  # no ATC left running on the board
    folder = board.home / remote_dir / "student"
    assert remote_names(folder) == ["model.onnx"]  # no .build-*, no model.om, no manifest


def test_cancel_during_upload_removes_the_partial_file(
    board, tmp_path, remote_dir, student_onnx, test_images
):
    progress = Recorder(stop_when=lambda r: len(r.batches) >= 2)
    with pytest.raises(CancelledError, match="upload of model.onnx"):
        deployer(board, tmp_path, remote_dir, progress).deploy(student_onnx, test_images[0][:1])
    assert ("upload", "cancelled") in progress.steps
    assert remote_names(board.home / remote_dir / "student") == []


def test_cancel_while_the_runner_hangs_ends_it_and_removes_its_input(
    board, tmp_path, remote_dir, student_onnx, test_images
):
    board.wedge_next_execute()  # the runner's warm-up execute hangs
    progress = Recorder(stop_when=lambda r: bool(board.processes("acl_runner.py")))
    with pytest.raises(CancelledError):
        deployer(board, tmp_path, remote_dir, progress).deploy(student_onnx, test_images[0][:2])
    assert ("run", "cancelled") in progress.steps
    assert wait_gone(board, "acl_runner.py") == []
    assert not list((board.home / remote_dir / "student").glob("inputs-*"))


def test_atc_timeout_ends_atc_by_pid(board, tmp_path, remote_dir, student_onnx, test_images):
    board.configure(atc_delay_s=60)
    with pytest.raises(RemoteTimeoutError, match=r"timed out after 1 s and ended \(PID \d+\)"):
        deployer(board, tmp_path, remote_dir, Recorder(), atc_timeout=1).deploy(
            student_onnx, test_images[0][:1]
        )
    assert wait_gone(board, ATC_PROCESS) == []
    assert remote_names(board.home / remote_dir / "student") == ["model.onnx"]


def test_a_stalled_upload_fails_clearly(board, tmp_path, remote_dir):
    folder = f"{board.home}/{remote_dir}"
    with BoardConnection(login(board, tmp_path), trust_fingerprint(board.host_key_fingerprint)) as conn:
        conn.makedirs(folder)
        with pytest.raises(UploadStalledError, match="stalled: no progress for 1 s") as err:
            conn.upload_bytes(
                bytes(16_000_000),
                f"{folder}/model.onnx",
                stall_timeout=1,
                progress=lambda done, total: board.freeze_connections(),
            )
    assert "bytes sent" in str(err.value)
    board.thaw_connections()
    assert not (board.home / remote_dir / "model.onnx").exists()


# ---------------------------------------------------------------------------------------------- errors
@pytest.fixture()
def http_port():
    """A local port answering like a web server (not SSH)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    server.close()


def test_a_port_that_is_not_ssh_gives_one_clear_line(tmp_path, http_port, capfd):
    config = ConnectionConfig(
        host="127.0.0.1",
        port=http_port,
        auth="password",
        password="x",
        known_hosts=str(tmp_path / "kh"),
        ssh_config=None,
        connect_timeout=15,
    )
    with pytest.raises(
        ConnectError, match="is not an SSH server: it answered 'HTTP/1.1 400 Bad Request'"
    ) as err:
        BoardConnection(config).connect()
    assert "15 s" not in str(err.value)  # told from the first answer, not after the connect time-out
    assert "port" in err.value.hint
    assert "Traceback" not in capfd.readouterr().err


def test_the_cli_prints_one_line_for_a_non_ssh_port(
    http_port, student_onnx, isolated_home, monkeypatch, capsys
):
    import io
    import sys

    from app.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("pw\n"))
    args = [
        "deploy",
        "--host",
        "127.0.0.1",
        "--port",
        str(http_port),
        "--user",
        "u",
        "--model",
        str(student_onnx),
        "--password-stdin",
        "--evaluate",
        "1",
    ]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert [line for line in err if line.startswith("error:")] == [err[-1]]
    assert "is not an SSH server" in err[-1] and "Traceback" not in "\n".join(err)


def test_changed_host_key_names_the_right_ssh_keygen_command(board, tmp_path):
    import paramiko

    other = paramiko.Ed25519Key.from_private_key_file(str(board.key_file))
    keys = paramiko.HostKeys()
    keys.add(f"[127.0.0.1]:{board.port}", other.get_name(), other)
    keys.save(str(tmp_path / "known_hosts"))
    from atlas_bridge.errors import HostKeyChangedError

    with pytest.raises(HostKeyChangedError) as err:
        BoardConnection(login(board, tmp_path), trust=lambda info: True).connect()
    assert f'ssh-keygen -R "[127.0.0.1]:{board.port}"' in err.value.hint
    assert str(tmp_path / "known_hosts") in err.value.hint


def test_encrypted_key_asks_for_its_passphrase(board, tmp_path):
    key = tmp_path / "enc"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret", "-f", str(key)], check=True)
    board.authorize_key((tmp_path / "enc.pub").read_text())
    trust = trust_fingerprint(board.host_key_fingerprint)
    base = dict(auth="key", key_file=str(key), password=None)
    with pytest.raises(KeyPassphraseError, match="encrypted and no passphrase was given") as err:
        BoardConnection(login(board, tmp_path, **base), trust).connect()
    assert "--key-passphrase-env" in err.value.hint and not err.value.wrong
    with pytest.raises(KeyPassphraseError, match="is wrong"):
        BoardConnection(login(board, tmp_path, **base, passphrase="nope"), trust).connect()
    with BoardConnection(login(board, tmp_path, **base, passphrase="s3cret"), trust) as conn:
        assert conn.run("echo in").lines == ["in"]
    config = login(board, tmp_path, **base, passphrase="s3cret")
    assert "s3cret" not in repr(config) and "passphrase" not in config.to_dict()


def test_cli_key_passphrase_from_the_environment(
    board, tmp_path, remote_dir, student_onnx, isolated_home, monkeypatch, capsys
):
    from app.cli import main

    key = tmp_path / "enc"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pass phrase", "-f", str(key)], check=True)
    board.authorize_key((tmp_path / "enc.pub").read_text())
    args = [
        *deploy_args(board, remote_dir, student_onnx),
        "--key",
        str(key),
        "--trust-host-key",
        board.host_key_fingerprint,
        "--evaluate",
        "2",
    ]
    assert main(args) == 1
    assert "encrypted and no passphrase was given" in capsys.readouterr().err
    assert main([*args, "--key-passphrase-env", "DD_TEST_PASSPHRASE"]) == 1
    assert "DD_TEST_PASSPHRASE: that environment variable is not set" in capsys.readouterr().err
    monkeypatch.setenv("DD_TEST_PASSPHRASE", "pass phrase")
    assert main([*args, "--key-passphrase-env", "DD_TEST_PASSPHRASE"]) == 0


def test_remote_folders_root_empty_and_outside_home(board, tmp_path, remote_dir, student_onnx, test_images):
    board_login = login(board, tmp_path)
    for bad in ("/", "", "  ", "//"):
        with pytest.raises(RemoteDirError, match="refused"):
            DeployTarget(board=board_login, remote_dir=bad)
    outside = board.dir / f"outside-{remote_dir}"
    progress = Recorder()
    with pytest.raises(RemoteDirError, match="outside the home") as err:
        deployer(board, tmp_path, str(outside), progress).deploy(student_onnx, test_images[0][:1])
    assert "--allow-outside-home" in err.value.hint and not outside.exists()
    result = deployer(board, tmp_path, str(outside), Recorder(), allow_outside_home=True).deploy(
        student_onnx, test_images[0][:1]
    )
    assert result.om_path == str(outside / "student" / "model.om")


def test_timeouts_must_be_positive(tmp_path):
    from core.validation import FieldError

    with pytest.raises(FieldError, match="connect timeout"):
        ConnectionConfig(host="b", connect_timeout=0)
    with pytest.raises(FieldError, match="command timeout"):
        ConnectionConfig(host="b", command_timeout=-1)
    for field in ("atc_timeout", "run_timeout", "stall_timeout"):
        with pytest.raises(FieldError):
            DeployTarget(board=ConnectionConfig(host="b"), **{field: 0})


def test_control_characters_from_the_board_are_shown_inert(board, tmp_path):
    with BoardConnection(login(board, tmp_path), trust_fingerprint(board.host_key_fingerprint)) as conn:
        result = conn.run(r"printf '\033[31mred\033[0m\a\r\n\033]0;title\007ok\n'")
    assert result.lines == ["\\x1b[31mred\\x1b[0m\\x07", "\\x1b]0;title\\x07ok"]
    assert not any(ch < " " and ch != "\t" for line in result.lines for ch in line)


def test_ctrl_c_in_the_cli_cancels_and_ends_atc_on_the_board(board, remote_dir, student_onnx, isolated_home):
    import signal
    import sys

    from tests.conftest import ROOT

    board.configure(atc_delay_s=60)
    args = [
        sys.executable,
        "-m",
        "app",
        *deploy_args(board, remote_dir, student_onnx),
        "--password-stdin",
        "--trust-host-key",
        board.host_key_fingerprint,
        "--evaluate",
        "2",
    ]
    proc = subprocess.Popen(
        args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        proc.stdin.write(board.password + "\n")
        proc.stdin.close()
        deadline = time.monotonic() + 90
        while not board.processes(ATC_PROCESS) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert board.processes(ATC_PROCESS), (
            proc.stderr.read() if proc.poll() is not None else "ATC never started"
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "cancelling" in err and "cancelled:" in err and "Traceback" not in err
    assert wait_gone(board, ATC_PROCESS) == []
    assert remote_names(board.home / remote_dir / "student") == ["model.onnx"]
