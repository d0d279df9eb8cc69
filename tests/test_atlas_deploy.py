"""End-to-end deploys against the board emulator (a real sshd on 127.0.0.1 + stand-in atc/acl)."""

from __future__ import annotations

import json
import posixpath

import numpy as np
import pytest

from atlas_bridge.connection import BoardConnection, ConnectionConfig
from atlas_bridge.hostkeys import trust_fingerprint
from atlas_bridge.pipeline import Deployer, DeployTarget, predict_on_board
from tests.board_emulator import BoardEmulator, EmulatorConfig
from tests.board_emulator.fixtures import copy_as
from tests.board_helpers import SUMMARY_KEYS, Recorder

pytestmark = pytest.mark.slow


def login(board, tmp_path, auth="password", **kw) -> ConnectionConfig:
    return board.login(tmp_path / "known_hosts", auth, **kw)


def deployer(board, tmp_path, remote_dir, progress=None, **kw) -> Deployer:
    target = DeployTarget(board=login(board, tmp_path), remote_dir=remote_dir, **kw)
    return Deployer(target, progress, trust_fingerprint(board.host_key_fingerprint))


def remote_files(board, remote_dir):
    root = board.home / remote_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_deploy_student_and_evaluate_200_images(board, tmp_path, remote_dir, student_onnx, test_images):
    images, labels = test_images
    progress = Recorder()
    result = deployer(board, tmp_path, remote_dir, progress, soc_version=None).deploy(
        student_onnx, images, labels
    )
    assert result.evaluated == 200
    assert result.agreement >= 0.99  # the emulator computes like the NPU: float16 per layer (force_fp16)
    assert 1e-6 < result.max_probability_difference < 2e-2
    assert (
        result.board_accuracy
        == result.local_accuracy
        == np.mean(np.array(result.local_predictions) == labels)
    )
    assert result.board_accuracy > 0.8
    assert result.soc_version == "Ascend310"  # read from npu-smi
    assert result.om_path == str(board.home / remote_dir / "student" / "model.om")
    assert result.om_bytes == (board.home / remote_dir / "student" / "model.om").stat().st_size
    assert result.board_ms_per_image > 0 and result.local_ms_per_image > 0
    assert set(result.summary()) == SUMMARY_KEYS
    assert 0 < result.board_npu_ms_per_image < result.board_ms_per_image and result.om_layout == "current"
    assert result.to_dict() == type(result).from_dict(result.to_dict()).to_dict()
    uploads = [b for b in progress.batches if b["step"] == "upload"]
    assert uploads and uploads[-1]["done"] == uploads[-1]["total"] == student_onnx.stat().st_size
    assert [s for s in progress.steps if s[1] == "done"] == [
        ("check", "done"),
        ("upload", "done"),
        ("convert", "done"),
        ("run", "done"),
        ("compare", "done"),
    ]
    assert any("ATC run success" in line for line in progress.lines)
    assert remote_files(board, remote_dir) == [
        "student",
        "student/acl_runner.py",
        "student/manifest.json",
        "student/model.om",
        "student/model.onnx",
    ]
    ledger = [e for e in board.acl_ledger() if e["finalized"]]
    assert ledger and not any(ledger[-1]["leaks"].values())


def test_redeploy_is_idempotent(board, tmp_path, remote_dir, student_onnx, test_images):
    images, labels = test_images[0][:5], test_images[1][:5]
    first = deployer(board, tmp_path, remote_dir).deploy(student_onnx, images, labels)
    om = board.home / remote_dir / "student" / "model.om"
    before = (remote_files(board, remote_dir), om.read_bytes())
    second = deployer(board, tmp_path, remote_dir).deploy(student_onnx, images, labels)
    assert not first.reused_om and second.reused_om
    assert (remote_files(board, remote_dir), om.read_bytes()) == before
    assert second.board_predictions == first.board_predictions


def test_changed_model_is_reconverted(board, tmp_path, remote_dir, student_onnx, test_images):
    import onnx

    images = test_images[0][:3]
    deployer(board, tmp_path, remote_dir).deploy(student_onnx, images, model_name="m")
    model = onnx.load(str(student_onnx))
    weights = next(t for t in model.graph.initializer if len(t.dims) == 2)
    weights.CopyFrom(onnx.numpy_helper.from_array(-onnx.numpy_helper.to_array(weights), weights.name))
    changed = tmp_path / "changed.onnx"
    onnx.save(model, str(changed))
    result = deployer(board, tmp_path, remote_dir).deploy(changed, images, model_name="m")
    assert not result.reused_om and result.agreement >= 0.99
    manifest = json.loads((board.home / remote_dir / "m" / "manifest.json").read_text())
    from atlas_bridge.pipeline import sha256_file

    assert manifest["onnx_sha256"] == sha256_file(changed)


@pytest.mark.parametrize("name", ["x; rm -rf ~", "../../etc", "$(touch pwned)", "a'b\"c`d"])
def test_hostile_model_names_stay_inside_the_remote_folder(
    board, tmp_path, remote_dir, student_onnx, test_images, name
):
    canary = board.home / "canary"
    canary.write_text("still here")
    hostile = copy_as(student_onnx, tmp_path, name + ".onnx") if "/" not in name else student_onnx
    result = deployer(board, tmp_path, remote_dir).deploy(hostile, test_images[0][:2], model_name=name)
    root = board.home / remote_dir
    assert posixpath.dirname(result.model_dir) == str(root)
    assert canary.read_text() == "still here"
    assert not (board.home / "pwned").exists() and not (board.home.parent / "etc").exists()
    assert [p.name for p in root.iterdir()] == [posixpath.basename(result.model_dir)]
    expected = {".profile", ".cache", "Ascend", "canary"}
    assert {p.name for p in board.home.iterdir() if not p.name.startswith("deploy-")} <= expected


def test_key_login_old_acl_api_and_suffixed_om(board, tmp_path, remote_dir, student_onnx, test_images):
    board.configure(acl_api="old", om_suffix="_linux_aarch64", soc_version="Ascend310B4")
    target = DeployTarget(
        board=login(board, tmp_path, auth="key"), remote_dir=remote_dir, soc_version="Ascend310B4"
    )
    result = Deployer(target, trust=trust_fingerprint(board.host_key_fingerprint)).deploy(
        student_onnx, test_images[0][:10], test_images[1][:10]
    )
    assert result.agreement >= 0.9 and result.soc_version == "Ascend310B4"


def test_batch_8_with_padding(board, tmp_path, remote_dir, student_onnx, test_images):
    result = deployer(board, tmp_path, remote_dir, batch=8).deploy(
        student_onnx, test_images[0][:13], test_images[1][:13]
    )
    assert result.agreement >= 0.9 and result.evaluated == 13


def test_convert_on_a_separate_host(board, tmp_path, remote_dir, student_onnx, test_images):
    with BoardEmulator(EmulatorConfig(soc_version="Ascend310")) as converter:
        board.configure(toolkit=True)
        target = DeployTarget(
            board=login(board, tmp_path),
            remote_dir=remote_dir,
            converter=login(converter, tmp_path),
            converter_dir="conv",
        )
        trusted = {board.host_key_fingerprint, converter.host_key_fingerprint}
        progress = Recorder()
        result = Deployer(target, progress, trust=lambda info: info.fingerprint in trusted).deploy(
            student_onnx, test_images[0][:20], test_images[1][:20]
        )
        assert result.agreement >= 0.95
        assert (converter.home / "conv" / "student" / "model.onnx").exists()
        assert not list((converter.home / "conv" / "student").glob(".build-*"))
        assert not (board.home / remote_dir / "student" / "model.onnx").exists()
        assert (board.home / remote_dir / "student" / "model.om").exists()
        assert any("Copying" in line for line in progress.lines)


def test_predict_on_board_after_deploy(board, tmp_path, remote_dir, student_onnx, test_images):
    images, labels = test_images
    result = deployer(board, tmp_path, remote_dir).deploy(student_onnx, images[:1], labels[:1])
    answer = predict_on_board(login(board, tmp_path), result.set_env, result.model_dir, images[7, 0])
    from core.inference import OnnxClassifier

    local = OnnxClassifier(student_onnx).probabilities(images[7:8])[0]
    assert answer.digit == int(local.argmax())
    np.testing.assert_allclose(answer.probabilities, local, atol=2e-2)
    assert 0 < answer.npu_ms < answer.round_trip_ms


def test_commands_without_set_env_do_not_find_the_toolkit(board, tmp_path):
    with BoardConnection(login(board, tmp_path), trust_fingerprint(board.host_key_fingerprint)) as conn:
        assert conn.bash("command -v atc").exit_status != 0
        assert conn.bash("python3 -c 'import acl'").exit_status != 0
        assert conn.bash(f". {board.set_env} && command -v atc && python3 -c 'import acl'").exit_status == 0


@pytest.mark.parametrize("layout", ["current", "legacy"])
def test_both_om_header_layouts_deploy(board, tmp_path, remote_dir, student_onnx, test_images, layout):
    from atlas_bridge.atc import check_om_header

    board.configure(om_layout=layout)
    progress = Recorder()
    result = deployer(board, tmp_path, remote_dir, progress).deploy(student_onnx, test_images[0][:3])
    data = (board.home / remote_dir / "student" / "model.om").read_bytes()
    header = check_om_header(data[:256], len(data))
    assert header.layout == layout and result.om_bytes == len(data)
    assert (header.length == 0) == (layout == "current")
    assert any("OM header valid" in line for line in progress.lines)


def test_an_op_atc_refuses_is_caught_before_anything_is_uploaded(
    board, tmp_path, remote_dir, student_onnx, test_images
):
    from atlas_bridge.errors import ModelError
    from tests.board_emulator.fixtures import with_node

    model = with_node(student_onnx, tmp_path / "identity.onnx", "Identity")
    progress = Recorder()
    with pytest.raises(ModelError, match=r"node 'extra_identity' \(Identity, opset 11\)") as err:
        deployer(board, tmp_path, remote_dir, progress).deploy(model, test_images[0][:1])
    assert "--skip-op-check" in err.value.hint
    assert ("upload", "failed") in progress.steps and ("upload", "done") not in progress.steps
    assert not (board.home / remote_dir).exists()
