"""Login methods against the emulator (key, agent, ~/.ssh/config alias) and the emulator's own entry point."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atlas_bridge.connection import BoardConnection, ConnectionConfig
from atlas_bridge.errors import AuthenticationError
from atlas_bridge.hostkeys import trust_fingerprint
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture()
def ssh_agent(tmp_path, monkeypatch):
    """A private ssh-agent for this test (SSH_AUTH_SOCK points at it), killed afterwards."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.05"])
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        proc.terminate()
        proc.wait(5)


def test_agent_login(board, tmp_path, ssh_agent):
    config = board.login(tmp_path / "kh", auth="agent")
    trust = trust_fingerprint(board.host_key_fingerprint)
    with pytest.raises(AuthenticationError, match="ssh-add -l"):
        BoardConnection(config, trust).connect()
    subprocess.run(["ssh-add", "-q", str(board.key_file)], check=True, env=dict(os.environ))
    with BoardConnection(config, trust) as conn:
        assert conn.run("echo agent").lines == ["agent"]


def test_ssh_config_alias_login(board, tmp_path):
    config_file = tmp_path / "ssh_config"
    config_file.write_text(
        f"Host atlas\n  HostName {board.host}\n  Port {board.port}\n  User {board.user}\n"
        f"  IdentityFile {board.key_file}\n"
    )
    config = ConnectionConfig(
        host="atlas", auth="key", ssh_config=str(config_file), known_hosts=str(tmp_path / "kh")
    )
    with BoardConnection(config, trust_fingerprint(board.host_key_fingerprint)) as conn:
        assert conn.label == f"{board.user}@{board.host}:{board.port}"
        assert conn.home() == str(board.home)
        assert conn.absolute("~/x/../y") == f"{board.home}/y"


def test_wrong_key_is_refused(board, tmp_path):
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    config = board.login(tmp_path / "kh", auth="key", key_file=str(other))
    with pytest.raises(AuthenticationError, match="authorized_keys"):
        BoardConnection(config, trust_fingerprint(board.host_key_fingerprint)).connect()


def test_emulator_entry_point_prints_json_and_stops_on_sigterm(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.board_emulator", "--soc-version", "Ascend310B4"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        assert set(info) >= {"host", "port", "user", "password", "key_file", "host_key_fingerprint"}
        assert info["host_key_fingerprint"].startswith("SHA256:") and not info[
            "host_key_fingerprint"
        ].endswith("=")
        config = ConnectionConfig(
            host=info["host"],
            port=info["port"],
            user=info["user"],
            auth="password",
            password=info["password"],
            known_hosts=str(tmp_path / "kh"),
            ssh_config=None,
        )
        with BoardConnection(config, trust_fingerprint(info["host_key_fingerprint"])) as conn:
            assert conn.run("echo hi").lines == ["hi"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "board emulator stopped" in proc.stderr.read()
        assert info["user"] not in [entry.pw_name for entry in pwd.getpwall()]
        assert not os.path.exists(info["key_file"])
    finally:
        if proc.poll() is None:
            proc.kill()


def test_an_emulator_killed_with_sigkill_is_cleaned_up_by_the_next_one():
    from tests.board_emulator.server import SSHD, pid_running, remove_stale_emulators

    if not SSHD.exists():
        pytest.skip(f"{SSHD} is absent")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.board_emulator"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        user = json.loads(proc.stdout.readline())["user"]
    finally:
        proc.kill()  # no chance to clean up, as when a test run is killed
        proc.wait()
    folder = Path(pwd.getpwnam(user).pw_dir).parent
    sshd = int((folder / "sshd.pid").read_text())
    assert pid_running(sshd) and folder.is_dir()  # what a killed emulator leaves behind
    remove_stale_emulators()  # what BoardEmulator.start() does first
    for _ in range(100):
        if not pid_running(sshd):
            break
        time.sleep(0.05)
    assert not pid_running(sshd)
    assert not folder.exists()
    assert user not in [entry.pw_name for entry in pwd.getpwall()]
