"""``digit-distill deploy`` against the board emulator."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from app.cli import main
from tests.board_helpers import SUMMARY_KEYS, deploy_args

pytestmark = pytest.mark.slow


def test_deploy_json_with_password_and_trusted_fingerprint(
    board, remote_dir, student_onnx, isolated_home, monkeypatch, capsys
):
    monkeypatch.setattr(sys, "stdin", io.StringIO(board.password + "\n"))
    args = deploy_args(board, remote_dir, student_onnx) + [
        "--password-stdin",
        "--trust-host-key",
        board.host_key_fingerprint,
        "--evaluate",
        "30",
        "--json",
        "--soc-version",
        "auto",
    ]
    assert main(args) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert set(summary) == SUMMARY_KEYS
    assert (
        summary["evaluated"] == 30 and summary["agreement"] >= 0.95 and summary["soc_version"] == "Ascend310"
    )
    assert summary["om_path"].endswith(f"{remote_dir}/student/model.om") and summary["om_bytes"] > 256
    assert "[3/5] Convert with ATC ..." in err and "ATC run success" in err
    known = isolated_home / "data" / "digit-distill" / "known_hosts"
    assert f"[127.0.0.1]:{board.port}" in known.read_text()
    assert board.password not in known.read_text()


def test_unknown_host_key_without_flag_fails_with_the_fingerprint(
    board, remote_dir, student_onnx, isolated_home, capsys
):
    args = deploy_args(board, remote_dir, student_onnx) + ["--key", str(board.key_file), "--evaluate", "5"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Check the board failed" in err and board.host_key_fingerprint in err and "--trust-host-key" in err


def test_key_login_human_output_and_changed_key(board, remote_dir, student_onnx, isolated_home, capsys):
    args = deploy_args(board, remote_dir, student_onnx) + [
        "--key",
        str(board.key_file),
        "--trust-host-key",
        board.host_key_fingerprint,
        "--evaluate",
        "5",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "agreement " in out and "max probability difference" in out and "ms/image" in out
    known = isolated_home / "data" / "digit-distill" / "known_hosts"
    line = known.read_text().split()
    line[2] = line[2][:-8] + ("AAAAAAAA" if not line[2].endswith("AAAAAAAA") else "BBBBBBBB")
    known.write_text(" ".join(line) + "\n")
    assert main(args) == 1
    assert "HAS CHANGED" in capsys.readouterr().err


def test_cli_exit_status_and_stderr_in_a_subprocess(board, remote_dir, student_onnx, isolated_home):
    args = deploy_args(board, remote_dir, student_onnx) + [
        "--password-stdin",
        "--trust-host-key",
        board.host_key_fingerprint,
        "--evaluate",
        "3",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "app", *args], input="wrong\n", capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "error: Check the board failed: Login to" in result.stderr
