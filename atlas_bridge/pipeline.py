"""The deploy pipeline: check the board, upload the ONNX, convert with ATC, run with pyACL, compare locally.

Remote layout (everything inside the chosen remote folder, default ``~/digit-distill``)::

    <remote folder>/<model name>/model.onnx      uploaded under a temporary name, then renamed
                                 /model.om         moved here only after ATC succeeded and its header checked
                                 /manifest.json    written last: ONNX sha256, soc, input, batch, .om size
                                 /acl_runner.py    the on-board runner
                                 /.build-<id>/     ATC's working folder, removed afterwards

The model name is reduced to ``[A-Za-z0-9._-]`` (so ``x; rm -rf ~`` or ``../../etc`` stay a plain folder name
inside the remote folder) and every remote path and argument is shell-quoted. A redeploy of the same ONNX for the
same soc reuses the .om (the manifest matches); anything interrupted leaves at most temporary files that nothing
uses and the next run removes. Models are compiled for a static batch (default 1); see ``atlas_bridge.atc``.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import secrets
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from atlas_bridge import atc
from atlas_bridge.board import (
    BoardInfo,
    board_check_script,
    parse_board_report,
    remote_path_expr,
    require_board,
    require_converter,
)
from atlas_bridge.connection import BoardConnection, ConnectionConfig
from atlas_bridge.errors import (
    AclMissingError,
    AtcError,
    BoardCheckError,
    BridgeError,
    OmFileError,
    RunnerError,
)
from atlas_bridge.hostkeys import TrustCallback
from atlas_bridge.local import compare, run_local
from core import validation as fields

RUNNER = Path(__file__).resolve().parent / "remote" / "acl_runner.py"
RESULT_MARKER = "ACL_RUNNER_RESULT "
STEPS = (
    ("check", "Check the board"),
    ("upload", "Upload the ONNX model"),
    ("convert", "Convert with ATC"),
    ("run", "Run on the board"),
    ("compare", "Compare with local onnxruntime"),
)
ACL_HINTS = {
    "145002": "The .om path is invalid: deploy again",
    "145006": "The .om is not a valid model file (bad header or truncated): deploy again to reconvert it",
    "545001": "The board could not load the model: check that soc_version matches the board's chip "
    "(npu-smi info) and reconvert",
    "100002": "pyACL was already initialised in this process",
}


class DeployProgress(Protocol):
    """What the pipeline reports: step state changes and log lines (the GUI turns them into signals)."""

    def step(self, name: str, state: str, detail: str = "") -> None:
        """``state`` is ``"running"``, ``"done"``, ``"skipped"`` or ``"failed"``."""

    def log(self, line: str) -> None:
        """One line of output (remote command output, status messages)."""


class _Silent:
    def step(self, name: str, state: str, detail: str = "") -> None:
        pass

    def log(self, line: str) -> None:
        pass


@dataclass
class DeployTarget:
    """Where and how to deploy (one plain config; the password stays in memory inside ``board``).

    Attributes
    ----------
    board
        Login to the board.
    soc_version
        ``Ascend310`` (Atlas 200 DK), ``Ascend310P3``, ``Ascend310B1``, ``Ascend310B4``; ``None``: read from
        the board's ``npu-smi info``.
    remote_dir
        Remote folder holding one sub-folder per model (``~`` = the login user's home).
    set_env
        The board's set_env.sh; ``None``: the first of ATLAS.md's locations that exists.
    converter
        ``None``: convert on the board; else a separate x86 host with the toolkit, the .om is then copied.
    converter_set_env, converter_dir
        set_env.sh and working folder on the conversion host.
    atc_timeout
        Seconds ATC may take (it can take minutes on a board).
    run_timeout
        Seconds the on-board runner may take.
    batch
        Static batch the model is compiled for.
    skip_op_check
        Do not check the ONNX against ATC's operator table (``core.atc_ops``) before uploading it.
    """

    board: ConnectionConfig
    soc_version: str | None = "Ascend310"
    remote_dir: str = "~/digit-distill"
    set_env: str | None = None
    converter: ConnectionConfig | None = None
    converter_set_env: str | None = None
    converter_dir: str = "~/digit-distill-convert"
    atc_timeout: float = 600.0
    run_timeout: float = 300.0
    batch: int = 1
    skip_op_check: bool = False

    def __post_init__(self):
        if self.soc_version is not None and self.soc_version not in atc.SOC_VERSIONS:
            raise ValueError(
                f"soc_version must be one of {atc.SOC_VERSIONS} or None, not {self.soc_version!r}"
            )
        self.batch = fields.DEPLOY_BATCH.check(self.batch)
        self.atc_timeout = fields.ATC_TIMEOUT.check(self.atc_timeout)
        self.run_timeout = fields.RUN_TIMEOUT.check(self.run_timeout)


@dataclass
class DeployResult:
    """Everything a deploy found; :meth:`summary` is the CLI's ``--json`` line."""

    om_path: str
    om_bytes: int
    soc_version: str
    model_dir: str
    set_env: str
    cann_version: str
    reused_om: bool
    evaluated: int
    agreement: float
    max_probability_difference: float
    board_accuracy: float | None
    local_accuracy: float | None
    board_ms_per_image: float
    local_ms_per_image: float
    board_predictions: list[int] = field(default_factory=list)
    local_predictions: list[int] = field(default_factory=list)
    labels: list[int] | None = None

    def summary(self) -> dict:
        """The fields the issue asks for in ``--json`` output."""
        return {
            "om_path": self.om_path,
            "om_bytes": self.om_bytes,
            "soc_version": self.soc_version,
            "evaluated": self.evaluated,
            "board_accuracy": self.board_accuracy,
            "agreement": self.agreement,
            "board_ms_per_image": self.board_ms_per_image,
            "local_ms_per_image": self.local_ms_per_image,
        }

    def to_dict(self) -> dict:  # noqa: D102
        return asdict(self)


def safe_model_name(name: str) -> str:
    """A folder name from any model name: only ``[A-Za-z0-9._-]``, no ``..``, no leading dot, at most 64 chars."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    name = re.sub(r"\.{2,}", "_", name)
    name = re.sub(r"_+", "_", name).strip("._-")
    return name[:64] or "model"


def sha256_file(path: Path) -> str:  # noqa: D103
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _npy_bytes(images: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(images, dtype=np.float32))
    return buf.getvalue()


def check_host(conn: BoardConnection, set_env: str | None, log: Callable[[str], None]) -> BoardInfo:
    """Run the check script on ``conn`` and parse it (nothing is required yet)."""
    result = conn.bash(board_check_script(set_env, "~"), timeout=conn.config.command_timeout)
    info = parse_board_report(result.lines)
    log(f"{conn.label}: {info.summary()}")
    return info


def run_runner(conn: BoardConnection, set_env: str, model_dir: str, images: np.ndarray, timeout: float,
               log: Callable[[str], None]) -> dict:  # fmt: skip
    """Upload the runner and ``images``, run them through ``model_dir/model.om``; return the runner's JSON."""
    conn.upload(RUNNER, posixpath.join(model_dir, "acl_runner.py"))
    inputs = f"inputs-{secrets.token_hex(4)}.npy"
    conn.upload_bytes(_npy_bytes(images), posixpath.join(model_dir, inputs))
    script = (
        f". {shlex.quote(set_env)} >/dev/null 2>&1; cd {shlex.quote(model_dir)} && "
        f"python3 acl_runner.py --model model.om --inputs {shlex.quote(inputs)}; "
        f"status=$?; rm -f -- {shlex.quote(inputs)}; exit $status"
    )
    result = conn.bash(script, on_line=lambda line: None if line.startswith(RESULT_MARKER) else log(line),
                       timeout=timeout)  # fmt: skip
    payload = None
    for line in reversed(result.lines):
        if line.startswith(RESULT_MARKER):
            payload = json.loads(line[len(RESULT_MARKER) :])
            break
    if payload is None:
        raise RunnerError(f"The board runner printed no result (exit status {result.exit_status}):\n"
                          f"{result.tail(15)}", "Check python3 and numpy on the board")  # fmt: skip
    if not payload.get("ok"):
        error = payload.get("error", "unknown error")
        if payload.get("kind") == "acl_foreign":
            raise AclMissingError(f"pyACL on the board is not CANN's: {error}",
                                  f"Uninstall the PyPI package 'acl' there (pip3 uninstall acl), or check that "
                                  f"{set_env} puts the toolkit's python/site-packages first on PYTHONPATH")  # fmt: skip
        if payload.get("kind") == "acl_missing":
            raise AclMissingError(f"pyACL is not available on the board: {error}",
                                  f"Check that {set_env} sets PYTHONPATH to the toolkit's python/site-packages")  # fmt: skip
        code = str(payload.get("ret", ""))
        raise RunnerError(f"Running the model on the board failed: {error}",
                          ACL_HINTS.get(code, "See the log for the runner's output"))  # fmt: skip
    if len(payload["predictions"]) != len(images):
        raise RunnerError(f"The runner returned {len(payload['predictions'])} predictions for {len(images)} images",
                          "Deploy again")  # fmt: skip
    return payload


class Deployer:
    """Runs the five steps against one target, reporting to ``progress``.

    Parameters
    ----------
    target
        Board, soc_version, remote folder, conversion place.
    progress
        Receives step states and log lines (default: silent).
    trust
        Asked to confirm unknown host keys (board and conversion host).
    """

    def __init__(self, target: DeployTarget, progress: DeployProgress | None = None,
                 trust: TrustCallback | None = None):  # fmt: skip
        self.target = target
        self.progress = progress or _Silent()
        self.trust = trust
        self._converter_info: BoardInfo | None = None

    def _log(self, line: str) -> None:
        self.progress.log(line)

    def _step(self, name: str, func: Callable, *args):
        self.progress.step(name, "running")
        try:
            value = func(*args)
        except BridgeError as exc:
            exc.step = name
            self.progress.step(name, "failed", str(exc))
            raise
        except Exception as exc:
            self.progress.step(name, "failed", f"{type(exc).__name__}: {exc}")
            raise
        detail = (
            value[1] if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str) else ""
        )
        self.progress.step(name, "done", detail)
        return value

    # ---------------------------------------------------------------------------------------------- deploy
    def deploy(self, onnx_path: str | Path, images: np.ndarray, labels: np.ndarray | None = None,
               model_name: str | None = None) -> DeployResult:  # fmt: skip
        """Deploy ``onnx_path`` and evaluate ``images`` ``(N, 1, 28, 28)`` on the board and locally."""
        onnx_path = Path(onnx_path)
        if len(images) == 0:
            raise ValueError("give at least one image to run on the board")
        model = atc.read_onnx_input(onnx_path)
        name = safe_model_name(model_name or onnx_path.stem)
        board = BoardConnection(self.target.board, self.trust)
        converter = BoardConnection(self.target.converter, self.trust) if self.target.converter else None
        try:
            (info, soc), _ = self._step("check", self._check, board, converter)
            model_dir, _ = self._step("upload", self._upload, board, converter, onnx_path, model, name, soc)
            (om_path, om_bytes, reused), _ = self._step(
                "convert", self._convert, board, converter, onnx_path, model, name, model_dir, soc, info
            )
            payload, _ = self._step("run", self._run, board, info, model_dir, images)
            result, _ = self._step("compare", self._compare, onnx_path, images, labels, payload)
        finally:
            board.close()
            if converter is not None:
                converter.close()
        return DeployResult(
            om_path=om_path, om_bytes=om_bytes, soc_version=soc, model_dir=model_dir, set_env=info.set_env,
            cann_version=info.cann_version, reused_om=reused, labels=None if labels is None else labels.tolist(),
            **result,
        )  # fmt: skip

    def _check(self, board: BoardConnection, converter: BoardConnection | None):
        self._log(f"Connecting to {board.label} ...")
        board.connect()
        info = check_host(board, self.target.set_env, self._log)
        require_board(info, board.label, need_atc=converter is None)
        soc = self.target.soc_version or info.soc_version
        if not soc:
            raise BoardCheckError("The board's chip could not be read from npu-smi",
                                  "Choose the soc_version yourself (Ascend310 for an Atlas 200 DK)")  # fmt: skip
        if info.soc_version and info.soc_version != soc:
            self._log(f"WARNING: npu-smi reports {info.soc_version} but {soc} was chosen: "
                      "an .om runs only on the chip it was built for")  # fmt: skip
        if converter is not None:
            self._log(f"Connecting to conversion host {converter.label} ...")
            converter.connect()
            conv_info = check_host(converter, self.target.converter_set_env, self._log)
            require_converter(conv_info, converter.label)
            self._converter_info = conv_info
        return (info, soc), f"{info.summary()}; soc_version {soc}"

    def _model_dir(self, conn: BoardConnection, root: str, name: str) -> str:
        root = conn.absolute(root)
        model_dir = posixpath.join(root, name)
        if posixpath.dirname(model_dir) != root:  # cannot happen after safe_model_name; belt and braces
            raise BridgeError(f"Model folder {model_dir} is outside {root}", "Use a plain model name")
        return model_dir

    def _upload(self, board, converter, onnx_path: Path, model: atc.OnnxInput, name: str, soc: str):
        if self.target.skip_op_check:
            self._log("WARNING: the ATC operator check is skipped: ATC itself will judge the model")
        else:
            check = atc.require_atc_ops(onnx_path, soc)
            self._log(check.message(onnx_path.name))
        model_dir = self._model_dir(board, self.target.remote_dir, name)
        board.makedirs(model_dir)
        target = converter or board
        dest_dir = self._model_dir(converter, self.target.converter_dir, name) if converter else model_dir
        if converter:
            converter.makedirs(dest_dir)
        size = onnx_path.stat().st_size
        self._log(f"Uploading {onnx_path.name} ({size} bytes) to {target.label}:{dest_dir}/model.onnx")
        target.upload(onnx_path, posixpath.join(dest_dir, "model.onnx"))
        return model_dir, f"{size} bytes to {dest_dir}"

    def _manifest(self, onnx_path: Path, model: atc.OnnxInput, soc: str) -> dict:
        return {"onnx_sha256": sha256_file(onnx_path), "soc_version": soc, "input_name": model.name,
                "batch": self.target.batch}  # fmt: skip

    def _read_manifest(self, board: BoardConnection, model_dir: str) -> dict | None:
        try:
            return json.loads(board.read_bytes(posixpath.join(model_dir, "manifest.json")))
        except (OSError, ValueError):
            return None

    def _valid_om(self, conn: BoardConnection, path: str) -> int:
        size = conn.size(path)
        atc.check_om_header(conn.read_bytes(path, atc.OM_HEADER_SIZE), size, path)
        return size

    def _convert(self, board, converter, onnx_path, model, name, model_dir, soc, info):
        om_path = posixpath.join(model_dir, "model.om")
        manifest = self._manifest(onnx_path, model, soc)
        previous = self._read_manifest(board, model_dir)
        if previous is not None and {k: previous.get(k) for k in manifest} == manifest:
            try:
                size = self._valid_om(board, om_path)
                self._log(f"{om_path} is already built from this ONNX for {soc}: reusing it")
                return (om_path, size, True), f"reused {om_path} ({size} bytes)"
            except (OSError, OmFileError):
                pass
        board.run(f"rm -f -- {shlex.quote(posixpath.join(model_dir, 'manifest.json'))}")
        if converter is None:
            built = self._atc(board, info.set_env, model_dir, model, soc)
            board.sftp.posix_rename(built, om_path)
        else:
            conv_dir = self._model_dir(converter, self.target.converter_dir, name)
            built = self._atc(converter, self._converter_info.set_env, conv_dir, model, soc)
            data = converter.read_bytes(built)
            atc.check_om_header(data[: atc.OM_HEADER_SIZE], len(data), built)
            self._log(f"Copying {len(data)} bytes of .om from {converter.label} to {board.label}:{om_path}")
            board.upload_bytes(data, om_path)
            converter.run(f"rm -rf -- {shlex.quote(posixpath.dirname(built))}")
        size = self._valid_om(board, om_path)
        manifest["om_bytes"] = size
        board.upload_bytes(
            json.dumps(manifest, indent=2).encode(), posixpath.join(model_dir, "manifest.json")
        )
        if converter is None:
            board.run(f"rm -rf -- {shlex.quote(posixpath.dirname(built))}")
        self._log(f"{om_path}: {size} bytes, OM header valid")
        return (om_path, size, False), f"{om_path} ({size} bytes)"

    def _atc(self, conn: BoardConnection, set_env: str, work_dir: str, model: atc.OnnxInput, soc: str) -> str:
        """Run ATC in a fresh ``.build-*`` folder of ``work_dir``; return the checked .om's path."""
        conn.run(f"rm -rf -- {shlex.quote(work_dir)}/.build-*")
        build = posixpath.join(work_dir, f".build-{secrets.token_hex(4)}")
        conn.makedirs(build)
        command = atc.atc_command(posixpath.join(work_dir, "model.onnx"), posixpath.join(build, "model"), soc,
                                  model.name, self.target.batch)  # fmt: skip
        self._log(f"{conn.label}$ {command}")
        result = conn.bash(f". {remote_path_expr(set_env)} && {command}", on_line=self._log,
                           timeout=self.target.atc_timeout)  # fmt: skip
        if result.exit_status != 0 or not any(atc.SUCCESS_LINE in line for line in result.lines):
            errors = atc.parse_atc_errors(result.lines)
            conn.run(f"rm -rf -- {shlex.quote(build)}")
            raise AtcError(result.exit_status, errors, result.tail(), atc.hint_for(errors))
        produced = sorted(n for n in conn.sftp.listdir(build) if n.startswith("model") and n.endswith(".om"))
        if not produced:
            raise OmFileError(f"ATC reported success but wrote no model*.om in {build}",
                              "Check the ATC log above and the folder's permissions")  # fmt: skip
        path = posixpath.join(build, produced[0])
        size = self._valid_om(conn, path)
        self._log(f"ATC wrote {produced[0]} ({size} bytes)")
        return path

    def _run(self, board: BoardConnection, info: BoardInfo, model_dir: str, images: np.ndarray):
        self._log(f"Running {len(images)} image(s) on {board.label} with pyACL ...")
        payload = run_runner(board, info.set_env, model_dir, images, self.target.run_timeout, self._log)
        ms = sum(payload["times_ms"]) / len(images)
        return payload, f"{len(images)} image(s), {ms:.3f} ms per image"

    def _compare(self, onnx_path: Path, images: np.ndarray, labels, payload: dict):
        local = run_local(onnx_path, images)
        board_probs = np.asarray(payload["probabilities"], dtype=np.float64)
        comparison = compare(board_probs, local.probabilities, labels)
        board_ms = sum(payload["times_ms"]) / len(images)
        result = {
            "evaluated": comparison.evaluated,
            "agreement": comparison.agreement,
            "max_probability_difference": comparison.max_probability_difference,
            "board_accuracy": comparison.board_accuracy,
            "local_accuracy": comparison.local_accuracy,
            "board_ms_per_image": board_ms,
            "local_ms_per_image": local.ms_per_image,
            "board_predictions": [int(p) for p in board_probs.argmax(axis=1)],
            "local_predictions": [int(p) for p in local.probabilities.argmax(axis=1)],
        }
        acc = "" if comparison.board_accuracy is None else f", board accuracy {comparison.board_accuracy:.2%}"
        detail = (f"agreement {comparison.agreement:.2%}{acc}, max probability difference "
                  f"{comparison.max_probability_difference:.2e}")  # fmt: skip
        self._log(detail)
        return result, detail


def predict_on_board(board: ConnectionConfig, set_env: str, model_dir: str, image28: np.ndarray,
                     trust: TrustCallback | None = None, timeout: float = 120.0) -> dict:  # fmt: skip
    """Classify one ``(28, 28)`` image with an already deployed model: ``{"digit", "probabilities", "ms"}``."""
    image = np.asarray(image28, dtype=np.float32).reshape(1, 1, 28, 28)
    with BoardConnection(board, trust) as conn:
        payload = run_runner(conn, set_env, model_dir, image, timeout, lambda line: None)
    return {
        "digit": int(payload["predictions"][0]),
        "probabilities": [float(p) for p in payload["probabilities"][0]],
        "ms": float(payload["times_ms"][0]),
    }
