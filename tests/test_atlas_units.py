"""atlas_bridge pieces that need no board: names, quoting, ATC output, .om headers, fingerprints, config, checks."""

from __future__ import annotations

import shlex
import struct
import subprocess
import sys

import numpy as np
import paramiko
import pytest

from atlas_bridge import atc
from atlas_bridge.board import (
    BoardInfo,
    parse_board_report,
    remote_path_expr,
    require_board,
    require_converter,
)
from atlas_bridge.connection import ConnectionConfig, resolve_endpoint
from atlas_bridge.errors import (
    AclMissingError,
    BoardCheckError,
    ModelError,
    OmFileError,
    ToolkitNotFoundError,
)
from atlas_bridge.hostkeys import fingerprint, normalize_fingerprint, record_host_key, trust_fingerprint
from atlas_bridge.local import compare
from atlas_bridge.pipeline import Deployer, DeployTarget, safe_model_name

ATC_FAILURE = """ATC start working now, please wait for a moment.
ATC run failed, Please check the detail log, Try 'atc --help' for more information
[PID: 2314] 2025-03-18-09:02:18.501.341 E10016: Opname [image] specified in [--input_shape] is not found in the model
        Solution: Add the correct node names to --input_shape.
        TraceBack (most recent call last):
        Failed to parse input shape.
EZ3003: No supported Ops kernel and engine are found for [Foo], optype [Foo].
        Possible Cause: The operator is not supported by the system.
        Solution: 1. Check that the OPP component is installed properly.
E40000: Failed to import Python module [No module named 'decorator'].
E10016: Opname [image] specified in [--input_shape] is not found in the model
"""


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("student", "student"),
        ("x; rm -rf ~", "x_rm_-rf"),
        ("../../etc", "etc"),
        ("..", "model"),
        ("$(touch pwned)", "touch_pwned"),
        (".hidden", "hidden"),
        ("a" * 100, "a" * 64),
        ("distilled-T6.v2", "distilled-T6.v2"),
    ],
)
def test_safe_model_name(name, expected):
    assert safe_model_name(name) == expected


def test_atc_command_quotes_every_argument():
    command = atc.atc_command(
        "/home/u/my dir/x; rm -rf ~/model.onnx", "/home/u/out/model", "Ascend310", "input"
    )
    argv = shlex.split(command)
    assert argv == [
        "atc",
        "--model=/home/u/my dir/x; rm -rf ~/model.onnx",
        "--framework=5",
        "--output=/home/u/out/model",
        "--soc_version=Ascend310",
        "--input_shape=input:1,1,28,28",
        "--input_format=NCHW",
        "--log=error",
    ]
    with pytest.raises(ValueError, match="soc_version"):
        atc.atc_command("m.onnx", "o", "Ascend910", "input")


def test_parse_atc_errors_codes_text_and_solutions():
    errors = atc.parse_atc_errors(ATC_FAILURE.splitlines())
    assert [e.code for e in errors] == ["E10016", "EZ3003", "E40000"]
    assert (
        errors[0].text.startswith("Opname [image]")
        and errors[0].solution == "Add the correct node names to --input_shape."
    )
    assert errors[1].solution.startswith("1. Check that the OPP component")
    assert errors[2].solution == ""
    assert errors[1].cause == "The operator is not supported by the system."
    assert "decorator" in atc.hint_for(errors) and "input_shape" in atc.hint_for(errors)
    assert atc.parse_atc_errors(["ATC run success, welcome to the next use."]) == []


def test_every_e_code_is_parsed_and_the_opset_codes_are_known():
    lines = [
        "E16002: Op [Div_3] of type [ai.onnx::17::Div] is not supported.",
        "    Solution: Use an opset the operator specifications list.",
        "[ERROR] EE1001: Runtime failed [\x1b[31mred\x1b[0m]",
        "EB0500: something else",
        "ERROR: not a code",
        "EXPORT: not a code either",
        "XE19010: inside a word",
    ]
    errors = atc.parse_atc_errors(lines)
    assert [e.code for e in errors] == ["E16002", "EE1001", "EB0500"]
    assert errors[0].solution.startswith("Use an opset") and errors[0].known.meaning
    assert "\x1b" not in errors[1].text and "\\x1b[31m" in errors[1].text
    assert atc.opset_too_new(errors) and atc.opset_too_new([atc.AtcMessage("E19010", "x")])
    assert not atc.opset_too_new([atc.AtcMessage("E10016", "x")])
    assert "opset 11" in atc.hint_for(errors)
    assert atc.AtcMessage.from_dict(errors[0].to_dict()) == errors[0]
    for code in ("E10001", "E10004", "E10016", "E10041", "E19010", "E16002", "EZ3003", "E40000", "EC0010"):
        assert code in atc.KNOWN_CODES


def om_bytes(
    payload: bytes,
    layout: str = "current",
    length: int | None = None,
    magic: bytes = b"IMOD",
    version: int = 0x20000000,
) -> bytes:
    """An .om header the way ATC writes it: current (model_length at 184, length 0) or legacy (length only)."""
    header = bytearray(256)
    header[:4] = magic
    struct.pack_into("<II", header, 4, 256, version)
    size = len(payload) if length is None else length
    shift = 0 if version >= 0x20000000 else -4
    if layout == "current":
        struct.pack_into("<Q", header, 184 + shift, size)
    else:
        struct.pack_into("<I", header, 76, size)
    header[84:89] = b"model"
    if version >= 0x20000000:
        struct.pack_into("<I", header, 156, 1)
    header[160 + shift : 166 + shift] = b"7.0.0\0"
    return bytes(header) + payload


def test_om_header_current_layout():
    data = om_bytes(b"x" * 100)
    header = atc.check_om_header(data[:256], len(data))
    assert (header.length, header.model_length, header.payload) == (0, 100, 100)
    assert (header.layout, header.partition_table_bits, header.model_num) == ("current", 64, 1)
    assert (header.name, header.platform_version) == ("model", "7.0.0")
    with pytest.raises(OmFileError, match="model_length.*truncated"):
        atc.check_om_header(data[:256], len(data) - 10)


def test_om_header_legacy_and_version_1_layouts():
    data = om_bytes(b"x" * 100, layout="legacy")
    header = atc.check_om_header(data[:256], len(data))
    assert (header.length, header.model_length, header.layout, header.partition_table_bits) == (
        100,
        0,
        "legacy",
        32,
    )
    v1 = om_bytes(b"y" * 50, version=0x10000000)  # no model_num: model_length sits 4 bytes earlier (180)
    header = atc.check_om_header(v1[:256], len(v1))
    assert (header.model_length, header.model_num, header.platform_version) == (50, None, "7.0.0")
    with pytest.raises(OmFileError, match="header says 100 payload bytes \\(length\\) but the file holds 99"):
        atc.check_om_header(data[:256], len(data) - 1)


def test_om_header_wrong_magic_and_truncated():
    with pytest.raises(OmFileError, match="magic"):
        atc.check_om_header(om_bytes(b"x", magic=b"ONNX")[:256], 257)
    with pytest.raises(OmFileError, match="shorter than an OM header"):
        atc.check_om_header(b"IMOD", 4)
    with pytest.raises(OmFileError, match="shorter than an OM header"):
        atc.check_om_header(om_bytes(b"")[:200], 300)
    with pytest.raises(OmFileError, match="header says 0 payload bytes"):
        atc.check_om_header(om_bytes(b"", length=0)[:256], 300)


def test_check_om_header_imports_alone():
    result = subprocess.run(
        [sys.executable, "-c", "from atlas_bridge.atc import check_om_header"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_deploy_refuses_a_file_that_is_not_a_digit_model_before_connecting(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    target = DeployTarget(board=ConnectionConfig(host="no-such-board.invalid"))
    with pytest.raises(ModelError, match="not an ONNX model") as caught:
        Deployer(target).deploy(bad, np.zeros((1, 1, 28, 28), np.float32))
    assert "(N, 1, 28, 28)" in caught.value.hint


def test_fingerprint_matches_ssh_keygen(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    expected = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(tmp_path / "k.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    key = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "k"))
    assert fingerprint(key) == expected
    assert normalize_fingerprint(expected[len("SHA256:") :] + "=") == expected
    info = type("Info", (), {"fingerprint": expected})
    assert trust_fingerprint(expected)(info) and not trust_fingerprint("SHA256:other")(info)
    assert not trust_fingerprint(None)(info)


def test_record_host_key_keeps_other_entries(tmp_path):
    store = tmp_path / "sub" / "known_hosts"
    keys = [paramiko.Ed25519Key.from_private_key_file(str(k)) for k in _keys(tmp_path, 2)]
    record_host_key(store, "[10.0.0.1]:2222", keys[0])
    record_host_key(store, "board", keys[1])
    loaded = paramiko.HostKeys(str(store))
    assert loaded.lookup("[10.0.0.1]:2222")["ssh-ed25519"] == keys[0]
    assert loaded.lookup("board")["ssh-ed25519"] == keys[1]


def _keys(tmp_path, n):
    paths = []
    for i in range(n):
        path = tmp_path / f"key{i}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        paths.append(path)
    return paths


def test_ssh_config_alias_is_honoured(tmp_path):
    config = tmp_path / "config"
    config.write_text(
        "Host myboard\n  HostName 192.168.1.2\n  Port 2222\n  User HwHiAiUser\n"
        "  IdentityFile ~/.ssh/atlas_key\n"
    )
    endpoint = resolve_endpoint(ConnectionConfig(host="myboard", ssh_config=str(config)))
    assert (endpoint.hostname, endpoint.port, endpoint.user) == ("192.168.1.2", 2222, "HwHiAiUser")
    assert endpoint.key_file.endswith("/.ssh/atlas_key")
    explicit = resolve_endpoint(
        ConnectionConfig(host="myboard", port=22, user="root", ssh_config=str(config))
    )
    assert (explicit.port, explicit.user) == (22, "root")
    plain = resolve_endpoint(ConnectionConfig(host="10.1.1.1", ssh_config=str(tmp_path / "missing")))
    assert (plain.hostname, plain.port) == ("10.1.1.1", 22)


def test_password_stays_out_of_repr_and_saved_settings():
    config = ConnectionConfig(host="b", auth="password", password="Mind@123")
    assert "Mind@123" not in repr(config) and "password" not in config.to_dict()
    assert "Mind@123" not in repr(DeployTarget(board=config))
    with pytest.raises(ValueError, match="auth"):
        ConnectionConfig(host="b", auth="telnet")
    with pytest.raises(ValueError, match="soc_version"):
        DeployTarget(board=config, soc_version="Ascend910")


def test_remote_path_expr():
    assert remote_path_expr("~/Ascend/x y/set_env.sh") == "\"$HOME\"/'Ascend/x y/set_env.sh'"
    assert (
        remote_path_expr("/usr/local/Ascend/ascend-toolkit/set_env.sh")
        == "/usr/local/Ascend/ascend-toolkit/set_env.sh"
    )
    assert remote_path_expr("/tmp/$(x)") == "'/tmp/$(x)'"


REPORT = """os=Linux
arch=aarch64
os_name=Ubuntu 18.04.6 LTS
free_kb=20000000
python3=/usr/bin/python3
python_version=3.7.5
numpy=1.17.2
tried=/usr/local/Ascend/ascend-toolkit/set_env.sh
tried=/home/HwHiAiUser/Ascend/ascend-toolkit/set_env.sh
set_env=/home/HwHiAiUser/Ascend/ascend-toolkit/set_env.sh
toolkit_home=/home/HwHiAiUser/Ascend/ascend-toolkit/latest
cann_version=5.0.4
atc=/home/HwHiAiUser/Ascend/ascend-toolkit/latest/bin/atc
npu|| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
npu|| 0       310                   | OK              | 12.8         45                0    / 0              |
acl=ok"""


def test_board_report_parsing_and_requirements():
    info = parse_board_report(REPORT.splitlines())
    assert (info.arch, info.cann_version, info.soc_version, info.acl_ok) == (
        "aarch64",
        "5.0.4",
        "Ascend310",
        True,
    )
    assert info.tried == [
        "/usr/local/Ascend/ascend-toolkit/set_env.sh",
        "/home/HwHiAiUser/Ascend/ascend-toolkit/set_env.sh",
    ]
    require_board(info, "board", need_atc=True)
    require_converter(info, "host")
    assert "Ascend310" in info.summary() and "19.1 GiB free" in info.summary()

    def broken(**changes):
        lines = [line for line in REPORT.splitlines() if line.split("=")[0] not in changes]
        lines += [f"{k}={v}" for k, v in changes.items() if v is not None]
        return parse_board_report(lines)

    with pytest.raises(ToolkitNotFoundError, match="looked at: /usr/local"):
        require_board(broken(set_env=None), "board", need_atc=False)
    with pytest.raises(BoardCheckError, match="numpy"):
        require_board(broken(numpy=""), "board", need_atc=False)
    with pytest.raises(AclMissingError, match="No module named 'acl'"):
        require_board(
            broken(acl="missing", acl_error="ModuleNotFoundError: No module named 'acl'"), "b", False
        )
    foreign = broken(
        acl="foreign",
        acl_path="/usr/lib/python3/dist-packages/acl/__init__.py",
        acl_error="no acl.init, acl.rt.set_device, acl.mdl.load_from_file",
    )
    assert not foreign.acl_ok and foreign.acl_foreign
    with pytest.raises(AclMissingError, match="not CANN's pyACL .*PyPI package 'acl'") as err:
        require_board(foreign, "board", need_atc=False)
    assert "dist-packages/acl" in str(err.value) and "pip3 uninstall acl" in err.value.hint
    with pytest.raises(BoardCheckError, match="atc not found"):
        require_board(broken(atc=""), "board", need_atc=True)
    require_board(broken(atc=""), "board", need_atc=False)
    with pytest.raises(BoardCheckError, match="MiB free"):
        require_board(broken(free_kb="1024"), "board", need_atc=False)
    no_npu = BoardInfo(**{**info.__dict__, "npu_lines": [], "davinci": False})
    with pytest.raises(BoardCheckError, match="No Ascend NPU"):
        require_board(no_npu, "board", need_atc=False)
    assert BoardInfo(**{**info.__dict__, "npu_lines": [], "davinci": True}).has_npu


def test_compare_by_hand():
    board = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    local = np.array([[0.8, 0.2], [0.6, 0.4], [0.1, 0.9]])
    result = compare(board, local, labels=np.array([0, 1, 0]))
    assert result.agreement == pytest.approx(2 / 3)
    assert result.board_accuracy == pytest.approx(2 / 3) and result.local_accuracy == pytest.approx(1 / 3)
    assert result.max_probability_difference == pytest.approx(0.2)
    assert compare(board, local).board_accuracy is None


def test_runner_parses_as_python_3_7():
    import ast

    from atlas_bridge.pipeline import RUNNER

    ast.parse(RUNNER.read_text(), feature_version=(3, 7))  # board images ship Python 3.7
