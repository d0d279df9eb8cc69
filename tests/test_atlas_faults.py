"""Each fault ends its step with a specific message and leaves nothing a later run would use (emulator)."""

from __future__ import annotations

import socket
import threading

import paramiko
import pytest

from atlas_bridge.connection import BoardConnection, ConnectionConfig
from atlas_bridge.errors import (
    AclMissingError,
    AtcError,
    AuthenticationError,
    BoardCheckError,
    ConnectError,
    ConnectionLostError,
    HostKeyChangedError,
    HostKeyUnknownError,
    ModelError,
    RemoteTimeoutError,
    RunnerError,
    ToolkitNotFoundError,
)
from atlas_bridge.hostkeys import trust_fingerprint
from atlas_bridge.pipeline import Deployer, DeployTarget
from tests.board_helpers import Recorder

pytestmark = pytest.mark.slow


def login(board, tmp_path, **kw) -> ConnectionConfig:
    return board.login(tmp_path / "known_hosts", **{"connect_timeout": 5, **kw})


def deploy(board, tmp_path, remote_dir, model, images, trust="board", **kw):
    progress = Recorder()
    login_kw = kw.pop("login", {})
    target = DeployTarget(board=login(board, tmp_path, **login_kw), remote_dir=remote_dir, **kw)
    trust = trust_fingerprint(board.host_key_fingerprint) if trust == "board" else trust
    deployer = Deployer(target, progress, trust)
    return progress, (lambda: deployer.deploy(model, images))


def model_dir(board, remote_dir, name="student"):
    return board.home / remote_dir / name


def assert_no_usable_model(board, remote_dir):
    folder = model_dir(board, remote_dir)
    assert not (folder / "model.om").exists()
    assert not (folder / "manifest.json").exists()
    assert not list(folder.glob(".build-*")) if folder.exists() else True


def test_connection_refused(board, tmp_path, remote_dir, student_onnx, test_images):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    progress, run = deploy(
        board, tmp_path, remote_dir, student_onnx, test_images[0][:1], login={"port": port}
    )
    with pytest.raises(ConnectError, match="refused") as err:
        run()
    assert "sshd" in err.value.hint
    assert progress.failed()[0][0] == "check"


def test_wrong_password(board, tmp_path, remote_dir, student_onnx, test_images):
    progress, run = deploy(
        board, tmp_path, remote_dir, student_onnx, test_images[0][:1], login={"password": "not-the-password"}
    )
    with pytest.raises(AuthenticationError, match="Login to .* failed") as err:
        run()
    assert "password" in err.value.hint
    assert progress.failed()[0][0] == "check"


def test_unknown_host_key_is_rejected_unless_trusted(board, tmp_path):
    store = tmp_path / "known_hosts"
    asked = []
    with pytest.raises(HostKeyUnknownError) as err:
        BoardConnection(login(board, tmp_path), trust=lambda info: asked.append(info) or False).connect()
    assert err.value.fingerprint == board.host_key_fingerprint
    assert board.host_key_fingerprint in str(err.value) and "--trust-host-key" in str(err.value)
    assert asked[0].fingerprint == board.host_key_fingerprint and asked[0].host == f"[127.0.0.1]:{board.port}"
    with pytest.raises(HostKeyUnknownError):
        BoardConnection(login(board, tmp_path), trust=trust_fingerprint("SHA256:" + "A" * 43)).connect()
    with pytest.raises(HostKeyUnknownError):
        BoardConnection(login(board, tmp_path)).connect()
    assert not store.exists()
    with BoardConnection(login(board, tmp_path), trust=trust_fingerprint(board.host_key_fingerprint)) as conn:
        assert conn.run("echo ok").lines == ["ok"]
    assert store.exists()
    with BoardConnection(login(board, tmp_path)) as conn:  # now known: no question asked
        assert conn.run("echo again").exit_status == 0


def test_changed_host_key_is_always_refused(board, tmp_path):
    other = paramiko.Ed25519Key.from_private_key_file(str(board.key_file))  # any other ed25519 key
    keys = paramiko.HostKeys()
    keys.add(f"[127.0.0.1]:{board.port}", other.get_name(), other)
    keys.save(str(tmp_path / "known_hosts"))
    with pytest.raises(HostKeyChangedError, match="HAS CHANGED") as err:
        BoardConnection(login(board, tmp_path), trust=lambda info: True).connect()
    assert err.value.fingerprint == board.host_key_fingerprint
    assert "ssh-keygen -R" in err.value.hint


def test_connect_timeout_on_a_silent_port(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    thread.start()
    config = ConnectionConfig(
        host="127.0.0.1",
        port=server.getsockname()[1],
        auth="password",
        password="x",
        known_hosts=str(tmp_path / "kh"),
        ssh_config=None,
        connect_timeout=1,
    )
    try:
        with pytest.raises(ConnectError, match="accepted the connection but sent no SSH greeting within 1 s"):
            BoardConnection(config).connect()
    finally:
        for conn, _ in accepted:
            conn.close()
        server.close()


def test_atc_timeout_leaves_no_model(board, tmp_path, remote_dir, student_onnx, test_images):
    board.configure(atc_delay_s=4)
    progress, run = deploy(board, tmp_path, remote_dir, student_onnx, test_images[0][:1], atc_timeout=1)
    with pytest.raises(RemoteTimeoutError, match="timed out after 1 s"):
        run()
    assert progress.failed()[0][0] == "convert"
    assert not (model_dir(board, remote_dir) / "model.om").exists()
    assert not (model_dir(board, remote_dir) / "manifest.json").exists()


def test_connection_dropped_mid_upload(board, tmp_path, remote_dir, student_onnx, test_images):
    payload = bytes(2_000_000)
    folder = f"{board.home}/{remote_dir}"
    with BoardConnection(login(board, tmp_path), trust=trust_fingerprint(board.host_key_fingerprint)) as conn:
        conn.makedirs(folder)
        with pytest.raises(ConnectionLostError, match="dropped during the upload of model.onnx") as err:
            conn.upload_bytes(
                payload, f"{folder}/model.onnx", progress=lambda done, total: board.drop_connections()
            )
    assert "run the deploy again" in err.value.hint
    leftovers = [p.name for p in (board.home / remote_dir).iterdir()]
    assert "model.onnx" not in leftovers
    assert all(name.startswith(".model.onnx.part-") for name in leftovers)
    with BoardConnection(login(board, tmp_path)) as conn:  # the next upload replaces the stale part file
        conn.upload_bytes(payload, f"{folder}/model.onnx")
    assert [p.name for p in (board.home / remote_dir).iterdir()] == ["model.onnx"]
    assert (board.home / remote_dir / "model.onnx").stat().st_size == len(payload)


def test_too_new_opset_is_refused_locally(board, tmp_path, remote_dir, opset17_onnx, test_images):
    progress, run = deploy(board, tmp_path, remote_dir, opset17_onnx, test_images[0][:1])
    with pytest.raises(
        ModelError,
        match=r"node '/0/Constant' \(Constant, opset 17\): ATC parses Constant at opset 8-13 only; export at opset 11",
    ):
        run()
    assert progress.failed()[0][0] == "upload"
    assert not (board.home / remote_dir).exists()


@pytest.mark.parametrize("code", ["E19010", "E16002"])
def test_atc_failure_reports_codes_and_solutions(
    board, tmp_path, remote_dir, opset17_onnx, test_images, code
):
    board.configure(opset_error_code=code)
    progress, run = deploy(board, tmp_path, remote_dir, opset17_onnx, test_images[0][:1], skip_op_check=True)
    with pytest.raises(AtcError) as err:
        run()
    exc = err.value
    assert exc.exit_status == 255
    assert [e.code for e in exc.errors] == [code]
    assert "ai.onnx::17::" in str(exc) and "solution" in str(exc) and "opset 11" in exc.hint
    assert "ATC run failed" in exc.tail
    assert progress.failed()[0][0] == "convert"
    assert any("operator check is skipped" in line for line in progress.lines)
    folder = model_dir(board, remote_dir, "student17")
    assert not (folder / "model.om").exists() and not list(folder.glob(".build-*"))


@pytest.mark.parametrize(
    ("setup", "error", "match", "detail", "hint"),
    [
        (
            {"toolkit": False},
            ToolkitNotFoundError,
            "No CANN set_env.sh found",
            "/usr/local/Ascend/ascend-toolkit/set_env.sh",
            "Install the CANN toolkit",
        ),
        ({"acl": False}, AclMissingError, "pyACL .* is not importable", "No module named 'acl'", ""),
        (
            {"acl": False, "pypi_acl": True},
            AclMissingError,
            "not CANN's pyACL",
            "{site}",
            "pip3 uninstall acl",
        ),
    ],
    ids=["no-set_env", "no-acl", "pypi-acl"],
)
def test_board_check_names_what_the_board_lacks(
    board, tmp_path, remote_dir, student_onnx, test_images, setup, error, match, detail, hint
):
    board.configure(**setup)
    progress, run = deploy(board, tmp_path, remote_dir, student_onnx, test_images[0][:1])
    with pytest.raises(error, match=match) as err:
        run()
    assert detail.format(site=board.system_site) in str(err.value) and hint in err.value.hint
    assert progress.failed()[0][0] == "check"
    assert not (board.home / remote_dir).exists()


def test_no_npu(board, tmp_path, remote_dir, student_onnx, test_images):
    board.configure(npu_smi=False)
    _, run = deploy(board, tmp_path, remote_dir, student_onnx, test_images[0][:1], soc_version="Ascend310")
    with pytest.raises(BoardCheckError, match="No Ascend NPU found"):
        run()


def test_soc_mismatch_fails_to_load_with_a_hint(board, tmp_path, remote_dir, student_onnx, test_images):
    progress, run = deploy(
        board, tmp_path, remote_dir, student_onnx, test_images[0][:1], soc_version="Ascend310B4"
    )
    with pytest.raises(RunnerError, match="545001") as err:
        run()
    assert "soc_version" in err.value.hint
    assert any("npu-smi reports Ascend310 but Ascend310B4 was chosen" in line for line in progress.lines)
    assert progress.failed()[0][0] == "run"


def test_execute_failure_tears_down(board, tmp_path, remote_dir, student_onnx, test_images):
    board.configure(fail_execute=True)
    _, run = deploy(board, tmp_path, remote_dir, student_onnx, test_images[0][:2])
    with pytest.raises(RunnerError, match="acl.mdl.execute failed with ACL error 507015"):
        run()
    last = [e for e in board.acl_ledger() if e["finalized"]][-1]
    assert not any(last["leaks"].values())


def test_deploy_dropped_mid_upload_then_redeploys_cleanly(
    board, tmp_path, remote_dir, student_onnx, test_images, monkeypatch
):
    original = BoardConnection.upload

    def dropping_upload(self, local, remote, progress=None, **kw):
        return original(self, local, remote, progress=lambda done, total: board.drop_connections(), **kw)

    monkeypatch.setattr(BoardConnection, "upload", dropping_upload)
    progress, run = deploy(board, tmp_path, remote_dir, student_onnx, test_images[0][:3])
    with pytest.raises(ConnectionLostError, match="dropped during the upload of model.onnx"):
        run()
    assert progress.failed()[0][0] == "upload"
    folder = model_dir(board, remote_dir)
    assert not (folder / "model.onnx").exists() and not (folder / "model.om").exists()
    monkeypatch.setattr(BoardConnection, "upload", original)
    _, run = deploy(board, tmp_path, remote_dir, student_onnx, test_images[0][:3])
    assert run().agreement >= 0.6
    assert sorted(p.name for p in folder.iterdir()) == [
        "acl_runner.py",
        "manifest.json",
        "model.om",
        "model.onnx",
    ]
