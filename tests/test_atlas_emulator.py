"""The board emulator's stand-in atc and pyACL, and the on-board runner, without sshd (fast)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from atlas_bridge import atc
from atlas_bridge.remote import acl_runner
from tests.board_emulator.server import EmulatorConfig, install_toolkit

RUNNER = acl_runner.__file__


@pytest.fixture()
def toolkit(tmp_path):
    """A stand-in toolkit tree; ``toolkit.run(cmd)`` runs with set_env.sh applied."""

    class Toolkit:
        root = tmp_path / "Ascend" / "ascend-toolkit"
        ledger = tmp_path / "ledger.jsonl"
        system_site = tmp_path / "system-site"

        def configure(self, **changes):
            install_toolkit(self.root, EmulatorConfig(**changes), self.ledger, self.system_site)

        def env(self):
            latest = self.root / "latest"
            env = dict(os.environ)
            env["PATH"] = f"{latest / 'bin'}:{env['PATH']}"
            env["PYTHONPATH"] = f"{latest / 'python' / 'site-packages'}:{self.system_site}"
            return env

        def run(self, args, **kw):
            return subprocess.run(args, capture_output=True, text=True, env=self.env(), cwd=tmp_path, **kw)

        def ledger_entries(self):
            return [json.loads(line) for line in self.ledger.read_text().splitlines()]

    tk = Toolkit()
    tk.configure()
    return tk


def atc_args(model_path, output_prefix, **overrides):
    args = {
        "model": str(model_path),
        "framework": "5",
        "output": str(output_prefix),
        "soc_version": "Ascend310",
        "input_shape": "input:1,1,28,28",
        "input_format": "NCHW",
    }
    args.update(overrides)
    return ["atc"] + [f"--{k}={v}" for k, v in args.items() if v is not None]


def test_set_env_is_needed_for_atc(toolkit, tmp_path):
    env = dict(os.environ, PATH="/usr/bin:/bin")
    result = subprocess.run(["bash", "-c", "command -v atc"], capture_output=True, env=env)
    assert result.returncode != 0
    sourced = subprocess.run(
        ["bash", "-c", f". {toolkit.root / 'set_env.sh'} && command -v atc"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert sourced.stdout.strip().endswith("latest/bin/atc")


def test_atc_converts_and_writes_a_valid_om(toolkit, tmp_path, student_onnx):
    result = toolkit.run(atc_args(student_onnx, tmp_path / "net"))
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout
    assert lines[0] == "ATC start working now, please wait for a moment."
    assert lines[-1] == "ATC run success, welcome to the next use."
    data = (tmp_path / "net.om").read_bytes()
    header = atc.check_om_header(data[:256], len(data))
    assert header.name == "net"
    assert (header.layout, header.length, header.model_length) == ("current", 0, len(data) - 256)
    info = toolkit.run(["atc", "--mode=6", f"--om={tmp_path / 'net.om'}"])
    assert "soc_version        : Ascend310" in info.stdout and "force_fp16" in info.stdout


def test_atc_writes_the_legacy_layout_on_request(toolkit, tmp_path, student_onnx, test_images):
    toolkit.configure(om_layout="legacy")
    om = build_om(toolkit, tmp_path, student_onnx)
    data = om.read_bytes()
    header = atc.check_om_header(data[:256], len(data))
    assert (header.layout, header.length, header.model_length) == ("legacy", len(data) - 256, 0)
    status, payload, _ = run_runner(toolkit, tmp_path, om, test_images[0][:2])  # the stand-in acl loads both
    assert status == 0 and payload["ok"]


def test_atc_space_separated_flags_and_suffix(toolkit, tmp_path, student_onnx):
    toolkit.configure(om_suffix="_linux_aarch64")
    args = [
        "atc",
        "--model",
        str(student_onnx),
        "--framework",
        "5",
        "--output",
        str(tmp_path / "net"),
        "--soc_version",
        "Ascend310B4",
        "--input_shape",
        "input:4,1,28,28",
    ]
    assert toolkit.run(args).returncode == 0
    assert (tmp_path / "net_linux_aarch64.om").exists()


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"model": None}, "E10004"),
        ({"output": None}, "E10004"),
        ({"framework": None}, "E10007"),
        ({"framework": "2"}, "E10007"),
        ({"soc_version": ""}, "E10054"),
        ({"soc_version": "Ascend910"}, "E10001"),
        ({"input_format": "NHWC"}, "E10001"),
        ({"log": "loud"}, "E10010"),
        ({"output": "dir/"}, "E10022"),
        ({"input_shape": "input:1,a,28,28"}, "E10011"),
        ({"input_shape": "image:1,1,28,28"}, "E10016"),
        ({"input_shape": "input:-1,1,28,28"}, "E10018"),
        ({"dynamic_batch_size": "1,2", "dynamic_dims": "1;2"}, "E10009"),
    ],
)
def test_atc_argument_errors(toolkit, tmp_path, student_onnx, overrides, code):
    result = toolkit.run(atc_args(student_onnx, tmp_path / "net", **overrides))
    assert result.returncode == 255
    assert "ATC run failed" in result.stdout
    errors = atc.parse_atc_errors(result.stdout.splitlines())
    assert [e.code for e in errors] == [code]
    assert errors[0].solution
    assert not list(tmp_path.glob("*.om"))


def test_atc_rejects_a_corrupt_model(toolkit, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    result = toolkit.run(atc_args(bad, tmp_path / "net"))
    assert [e.code for e in atc.parse_atc_errors(result.stdout.splitlines())] == ["E10041"]


@pytest.mark.parametrize("code", ["E19010", "E16002"])
def test_atc_rejects_a_too_new_opset_per_op(toolkit, tmp_path, opset17_onnx, code):
    toolkit.configure(opset_error_code=code)
    result = toolkit.run(atc_args(opset17_onnx, tmp_path / "net"))
    errors = atc.parse_atc_errors(result.stdout.splitlines())
    assert [e.code for e in errors] == [code] and atc.opset_too_new(errors)
    assert "ai.onnx::17::" in errors[0].text and errors[0].solution
    assert not list(tmp_path.glob("*.om"))


def test_atc_enforces_the_op_table_not_only_an_opset_ceiling(toolkit, tmp_path, student_onnx):
    from tests.board_emulator.fixtures import with_node

    identity = with_node(
        student_onnx, tmp_path / "identity.onnx", "Identity"
    )  # opset 11, op not in the table
    result = toolkit.run(atc_args(identity, tmp_path / "net"))
    errors = atc.parse_atc_errors(result.stdout.splitlines())
    assert result.returncode == 255 and [e.code for e in errors] == ["EZ3003"]
    assert "optype [Identity]" in errors[0].text
    flatten13 = with_node(student_onnx, tmp_path / "f13.onnx", None, opset=13)  # Flatten: 8-11 on the 200 DK
    result = toolkit.run(atc_args(flatten13, tmp_path / "net"))
    assert "ai.onnx::13::Flatten" in result.stdout
    result = toolkit.run(atc_args(flatten13, tmp_path / "net", soc_version="Ascend310B4"))
    assert result.returncode == 0, result.stdout


def build_om(toolkit, tmp_path, model, soc="Ascend310", batch=1, precision=None):
    result = toolkit.run(
        atc_args(
            model,
            tmp_path / "model",
            soc_version=soc,
            input_shape=f"input:{batch},1,28,28",
            precision_mode=precision,
        )
    )
    assert result.returncode == 0, result.stdout
    return tmp_path / "model.om"


def run_runner(toolkit, tmp_path, om, images):
    np.save(tmp_path / "inputs.npy", images)
    result = toolkit.run(
        [sys.executable, RUNNER, "--model", str(om), "--inputs", str(tmp_path / "inputs.npy")]
    )
    line = [x for x in result.stdout.splitlines() if x.startswith(acl_runner.RESULT_MARKER)][-1]
    return result.returncode, json.loads(line[len(acl_runner.RESULT_MARKER) :]), result


@pytest.mark.parametrize("api", ["new", "old"])
@pytest.mark.parametrize("batch", [1, 8])
def test_runner_matches_onnxruntime(toolkit, tmp_path, student_onnx, test_images, api, batch):
    from core.inference import OnnxClassifier

    toolkit.configure(acl_api=api)
    images = test_images[0][:21]
    status, payload, _ = run_runner(
        toolkit, tmp_path, build_om(toolkit, tmp_path, student_onnx, batch=batch), images
    )
    assert status == 0 and payload["ok"], payload
    assert payload["api"] == ("bytes_to_ptr" if api == "new" else "numpy_to_ptr")
    assert payload["batch"] == batch and len(payload["times_ms"]) == -(-21 // batch)
    assert len(payload["execute_ms"]) == len(payload["times_ms"])
    assert all(0 < e <= t for e, t in zip(payload["execute_ms"], payload["times_ms"], strict=True))
    local = OnnxClassifier(student_onnx).probabilities(images)
    board = np.array(payload["probabilities"])
    difference = np.abs(board - local).max()
    assert 1e-6 < difference < 2e-2  # force_fp16: float16 rounding per layer, like the NPU
    assert np.mean(board.argmax(axis=1) == local.argmax(axis=1)) >= 0.95
    (entry,) = [e for e in toolkit.ledger_entries() if e["finalized"]]
    assert not any(entry["leaks"].values())


@pytest.fixture(scope="module")
def mlp_onnx(tmp_path_factory) -> Path:
    """The paper's 784-50-50-10 student (seeded random weights): ops the numpy reference below computes by hand."""
    import torch

    from core.export import export_onnx
    from core.models import build_model, get_preset

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("mlp") / "student.onnx"
    export_onnx(build_model(get_preset("paper").student), path, metadata={"role": "student"})
    return path


def test_force_fp32_computes_exactly_and_fp16_like_numpy(toolkit, tmp_path, mlp_onnx, test_images):
    from core.inference import OnnxClassifier

    student_onnx = mlp_onnx

    images = test_images[0][:50]
    _, exact, _ = run_runner(
        toolkit, tmp_path, build_om(toolkit, tmp_path, student_onnx, precision="force_fp32"), images
    )
    local = OnnxClassifier(student_onnx).probabilities(images)
    np.testing.assert_allclose(np.array(exact["probabilities"]), local, atol=1e-6)
    _, half, _ = run_runner(toolkit, tmp_path, build_om(toolkit, tmp_path, student_onnx), images)
    expected = fp16_reference(student_onnx, images)
    np.testing.assert_allclose(np.array(half["probabilities"]), expected, atol=2e-3)


def fp16_reference(model_path, images):
    """The student computed by hand in numpy with float16 rounding after every layer."""
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            weights[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    def half(x):
        return np.asarray(x, np.float32).astype(np.float16).astype(np.float32)

    values = {model.graph.input[0].name: half(images)}
    for node in model.graph.node:
        if node.op_type == "Constant":
            continue
        args = [values[i] if i in values else half(weights[i]) for i in node.input]
        if node.op_type == "Sub":
            out = args[0] - args[1]
        elif node.op_type == "Div":
            out = args[0] / args[1]
        elif node.op_type == "Flatten":
            out = args[0].reshape(len(args[0]), -1)
        elif node.op_type == "Gemm":
            out = args[0] @ args[1].T + args[2]
        elif node.op_type == "Relu":
            out = np.maximum(args[0], 0)
        else:
            raise AssertionError(f"unexpected op {node.op_type}")
        values[node.output[0]] = half(out)
    logits = values[model.graph.output[0].name].astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_runner_releases_everything_when_execute_fails(toolkit, tmp_path, student_onnx, test_images):
    toolkit.configure(fail_execute=True)
    status, payload, result = run_runner(
        toolkit, tmp_path, build_om(toolkit, tmp_path, student_onnx), test_images[0][:3]
    )
    assert status == 1 and not payload["ok"]
    assert payload["call"] == "acl.mdl.execute" and payload["ret"] == "507015"
    (entry,) = toolkit.ledger_entries()
    assert entry["finalized"] and not any(entry["leaks"].values())


def test_runner_reports_bad_header_and_soc_mismatch(toolkit, tmp_path, student_onnx, test_images):
    om = build_om(toolkit, tmp_path, student_onnx, soc="Ascend310B4")
    _, payload, result = run_runner(toolkit, tmp_path, om, test_images[0][:1])
    assert payload["ret"] == "545001" and "load_from_file" in payload["call"]
    truncated = tmp_path / "cut.om"
    truncated.write_bytes(om.read_bytes()[:-10])
    _, payload, _ = run_runner(toolkit, tmp_path, truncated, test_images[0][:1])
    assert payload["ret"] == "145006"
    (entry, second) = toolkit.ledger_entries()
    assert not any(entry["leaks"].values()) and not any(second["leaks"].values())


def test_runner_without_acl(toolkit, tmp_path, student_onnx, test_images):
    om = build_om(toolkit, tmp_path, student_onnx)
    toolkit.configure(acl=False)
    status, payload, _ = run_runner(toolkit, tmp_path, om, test_images[0][:1])
    assert status == 1 and payload["kind"] == "acl_missing"


def test_runner_is_not_fooled_by_the_pypi_acl_package(toolkit, tmp_path, student_onnx, test_images):
    om = build_om(toolkit, tmp_path, student_onnx)
    toolkit.configure(acl=False, pypi_acl=True)
    assert toolkit.run([sys.executable, "-c", "import acl; print(acl.__version__)"]).stdout.strip() == "0.4"
    status, payload, _ = run_runner(toolkit, tmp_path, om, test_images[0][:1])
    assert status == 1 and payload["kind"] == "acl_foreign"
    assert "not CANN's pyACL" in payload["error"] and "system-site" in payload["error"]


def test_fake_acl_call_conventions(toolkit, tmp_path, student_onnx):
    om = build_om(toolkit, tmp_path, student_onnx)
    script = f"""
import acl, json
out = {{}}
out["set_device_first"] = acl.rt.set_device(0)
out["init"] = acl.init(); out["init_again"] = acl.init()
out["load_before_device"] = acl.mdl.load_from_file({str(om)!r})[1]
acl.rt.set_device(0)
ctx, out["ctx"] = acl.rt.create_context(0)
mid, out["load"] = acl.mdl.load_from_file({str(om)!r})
out["load_missing"] = acl.mdl.load_from_file("/nonexistent.om")[1]
desc = acl.mdl.create_desc(); acl.mdl.get_desc(desc, mid)
dims, ret = acl.mdl.get_input_dims(desc, 0); out["dims"] = dims
out["in_size"] = acl.mdl.get_input_size_by_index(desc, 0)
buf, ret = acl.rt.malloc(out["in_size"], 0)
src = acl.util.bytes_to_ptr(bytes(4000))
out["memcpy_overflow"] = acl.rt.memcpy(buf, out["in_size"], src, 4000, 1)
ds = acl.mdl.create_dataset()
out["execute_empty"] = acl.mdl.execute(mid, ds, ds)
print(json.dumps(out))
"""
    result = toolkit.run([sys.executable, "-c", script])
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["set_device_first"] == 100001 and out["init"] == 0 and out["init_again"] == 100002
    assert out["load_before_device"] != 0 and out["ctx"] == 0 and out["load"] == 0
    assert out["load_missing"] == 145002
    assert out["dims"] == {"name": "input", "dimCount": 4, "dims": [1, 1, 28, 28]}
    assert out["in_size"] == 28 * 28 * 4
    assert out["memcpy_overflow"] == 100000 and out["execute_empty"] == 100000


def test_npu_smi_names_the_chip(toolkit):
    from atlas_bridge.board import parse_board_report

    toolkit.configure(soc_version="Ascend310B4")
    result = toolkit.run(["npu-smi", "info"])
    info = parse_board_report(["npu|" + line for line in result.stdout.splitlines()])
    assert info.soc_version == "Ascend310B4"


def test_om_embeds_the_real_model(toolkit, tmp_path, student_onnx):
    sys.path.insert(0, str(toolkit.root / "latest" / "python" / "site-packages"))
    try:
        import emulator_omformat
    finally:
        sys.path.pop(0)
    meta, onnx_bytes = emulator_omformat.read_om(
        build_om(toolkit, tmp_path, student_onnx, precision="force_fp32").read_bytes()
    )
    assert onnx_bytes == student_onnx.read_bytes()
    _, rounded = emulator_omformat.read_om(build_om(toolkit, tmp_path, student_onnx).read_bytes())
    casts = [n for n in onnx.load_from_string(rounded).graph.node if n.op_type == "Cast"]
    assert len(casts) >= 2 * 6  # a float16 round trip after the input and every layer
    assert onnx.load_from_string(onnx_bytes).graph.input[0].name == "input"
    assert meta["outputs"] == [{"name": "logits", "dims": [1, 10], "dtype": "float32"}]
