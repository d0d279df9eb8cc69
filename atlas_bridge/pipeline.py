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

Progress goes through the trainer's protocol (``core.progress.Progress``, see :mod:`atlas_bridge.results` for
how steps map onto it); ``should_stop()`` cancels: the upload stops and its partial file is removed, a running ATC
or runner on the board is ended by its PID, its build folder or input file removed, and :class:`CancelledError`
is raised. An ATC that exceeds its timeout is ended the same way.

Kept in one module: the deploy's steps share the Deployer's state and read in the order they run.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import secrets
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

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
    CancelledError,
    ModelError,
    OmFileError,
    RemoteDirError,
    RunnerError,
)
from atlas_bridge.hostkeys import TrustCallback
from atlas_bridge.local import compare, run_local
from atlas_bridge.results import STEPS, BoardPrediction, DeployResult, StepEvent, StepState
from atlas_bridge.text import inert
from core import validation as fields
from core.inference import InvalidModelError, ModelInput, read_input
from core.progress import NullProgress, Progress, transfer

__all__ = ["STEPS", "DeployResult", "DeployTarget", "Deployer", "predict_on_board"]

P = ParamSpec("P")
T = TypeVar("T")

RUNNER = Path(__file__).resolve().parent / "remote" / "acl_runner.py"
RESULT_MARKER = "ACL_RUNNER_RESULT "
ACL_HINTS = {
    "145002": "The .om path is invalid: deploy again",
    "145006": "The .om is not a valid model file (bad header or truncated): deploy again to reconvert it",
    "545001": "The board could not load the model: check that soc_version matches the board's chip "
    "(npu-smi info) and reconvert",
    "100002": "pyACL was already initialised in this process",
}


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
    stall_timeout
        Seconds an upload may go without progress before it fails (the link hangs without dropping).
    allow_outside_home
        Allow a remote folder outside the login user's home (``/`` and an empty folder are always refused).
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
    stall_timeout: float = 30.0
    allow_outside_home: bool = False

    def __post_init__(self) -> None:
        for label, folder in (("remote folder", self.remote_dir), ("conversion folder", self.converter_dir)):
            if not str(folder).strip() or posixpath.normpath(str(folder).strip()).strip("/") == "":
                raise RemoteDirError(
                    f"The {label} {folder!r} is refused: it must name a folder, not / or nothing",
                    "Use a folder under the board user's home, such as ~/digit-distill",
                )
        if self.soc_version is not None and self.soc_version not in atc.SOC_VERSIONS:
            raise ValueError(
                f"soc_version must be one of {atc.SOC_VERSIONS} or None, not {self.soc_version!r}"
            )
        self.batch = fields.DEPLOY_BATCH.check(self.batch)
        self.atc_timeout = fields.ATC_TIMEOUT.check(self.atc_timeout)
        self.run_timeout = fields.RUN_TIMEOUT.check(self.run_timeout)
        self.stall_timeout = fields.STALL_TIMEOUT.check(self.stall_timeout)


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


def run_runner(
    conn: BoardConnection,
    set_env: str,
    model_dir: str,
    images: np.ndarray,
    timeout: float,
    log: Callable[[str], None],
    should_stop: Callable[[], bool] | None = None,
    stall_timeout: float = 30.0,
) -> dict[str, Any]:
    """Upload the runner and ``images``, run them through ``model_dir/model.om``; return the runner's JSON.

    The runner is tracked by its PID: a timeout or a cancel ends it on the board; its input file is removed
    whatever happens.
    """
    conn.upload(
        RUNNER,
        posixpath.join(model_dir, "acl_runner.py"),
        should_stop=should_stop,
        stall_timeout=stall_timeout,
    )
    inputs = f"inputs-{secrets.token_hex(4)}.npy"
    inputs_path = posixpath.join(model_dir, inputs)
    conn.upload_bytes(_npy_bytes(images), inputs_path, should_stop=should_stop, stall_timeout=stall_timeout)
    script = (
        f". {remote_path_expr(set_env)} >/dev/null 2>&1; cd {shlex.quote(model_dir)} && "
        f"exec python3 acl_runner.py --model model.om --inputs {shlex.quote(inputs)}"
    )
    try:
        result = conn.bash_tracked(
            script,
            on_line=lambda line: None if line.startswith(RESULT_MARKER) else log(line),
            timeout=timeout,
            should_stop=should_stop,
        )
    finally:
        if conn._alive():
            conn.run(f"rm -f -- {shlex.quote(inputs_path)}", timeout=30)
    payload = None
    for line in reversed(result.lines):
        if line.startswith(RESULT_MARKER):
            try:
                payload = json.loads(line[len(RESULT_MARKER) :])
            except ValueError:
                payload = None
            break
    if not isinstance(payload, dict):
        last = result.lines[-1] if result.lines else "no output"
        raise RunnerError(
            f"The board runner printed no result (exit status {result.exit_status}): {last}",
            "Check python3 and numpy on the board; the log shows the runner's output",
        )
    if not payload.get("ok"):
        error = inert(str(payload.get("error", "unknown error")))
        if payload.get("kind") == "acl_foreign":
            raise AclMissingError(
                f"pyACL on the board is not CANN's: {error}",
                f"Uninstall the PyPI package 'acl' there (pip3 uninstall acl), or check that "
                f"{set_env} puts the toolkit's python/site-packages first on PYTHONPATH",
            )
        if payload.get("kind") == "acl_missing":
            raise AclMissingError(
                f"pyACL is not available on the board: {error}",
                f"Check that {set_env} sets PYTHONPATH to the toolkit's python/site-packages",
            )
        code = str(payload.get("ret", ""))
        raise RunnerError(
            f"Running the model on the board failed: {error}",
            ACL_HINTS.get(code, "See the log for the runner's output"),
        )
    if len(payload["predictions"]) != len(images):
        raise RunnerError(
            f"The runner returned {len(payload['predictions'])} predictions for {len(images)} images",
            "Deploy again",
        )
    return payload


@dataclass(frozen=True)
class _Model:
    """The ONNX file being deployed: its path, its input and the folder name it gets on the board."""

    path: Path
    input: ModelInput
    name: str


class Deployer:
    """Runs the five steps against one target, reporting to ``progress``.

    Parameters
    ----------
    target
        Board, soc_version, remote folder, conversion place.
    progress
        The trainer's progress protocol (``core.progress.Progress``): steps arrive as ``on_epoch`` dicts
        (:meth:`atlas_bridge.results.StepEvent.to_dict`), log lines as ``status``, upload progress as
        ``on_batch``; ``should_stop()`` cancels. Default: silent.
    trust
        Asked to confirm unknown host keys (board and conversion host).
    """

    def __init__(
        self, target: DeployTarget, progress: Progress | None = None, trust: TrustCallback | None = None
    ):
        self.target = target
        self.progress = progress or NullProgress()
        self.trust = trust
        self._converter_info: BoardInfo | None = None
        self._om_layout = ""

    def _log(self, line: str) -> None:
        self.progress.status(line)

    def _event(self, name: str, state: StepState, detail: str = "") -> None:
        self.progress.on_epoch(StepEvent(name, state, detail).to_dict())

    def _stopped(self) -> bool:
        return bool(self.progress.should_stop())

    def _step(self, name: str, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._stopped():
            self._event(name, StepState.CANCELLED, "cancelled before it started")
            raise CancelledError(f"Deploy cancelled before: {dict(STEPS)[name]}")
        self._event(name, StepState.RUNNING)
        try:
            value = func(*args, **kwargs)
        except CancelledError as exc:
            exc.step = name
            self._event(name, StepState.CANCELLED, str(exc))
            raise
        except BridgeError as exc:
            exc.step = name
            self._event(name, StepState.FAILED, str(exc))
            raise
        except Exception as exc:
            self._event(name, StepState.FAILED, f"{type(exc).__name__}: {exc}")
            raise
        detail = (
            value[1] if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str) else ""
        )
        self._event(name, StepState.DONE, detail)
        return value

    def _upload_progress(self, name: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            self.progress.on_batch(transfer("upload", name, done, total))

        return report

    # ---------------------------------------------------------------------------------------------- deploy
    def deploy(
        self,
        onnx_path: str | Path,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        model_name: str | None = None,
    ) -> DeployResult:
        """Deploy ``onnx_path`` and evaluate ``images`` ``(N, 1, 28, 28)`` on the board and locally."""
        onnx_path = Path(onnx_path)
        if len(images) == 0:
            raise ValueError("give at least one image to run on the board")
        try:
            model = _Model(onnx_path, read_input(onnx_path), safe_model_name(model_name or onnx_path.stem))
        except InvalidModelError as exc:
            raise ModelError(
                str(exc), "Choose a digit model: one (N, 1, 28, 28) float32 input, one (N, 10) output"
            ) from None
        board = BoardConnection(self.target.board, self.trust)
        converter = BoardConnection(self.target.converter, self.trust) if self.target.converter else None
        try:
            (info, soc), _ = self._step("check", self._check, board, converter)
            model_dir, _ = self._step("upload", self._upload, board, converter, model, soc)
            (om_path, om_bytes, reused), _ = self._step(
                "convert", self._convert, board, converter, model, model_dir, soc, info
            )
            payload, _ = self._step("run", self._run, board, info, model_dir, images)
            result, _ = self._step("compare", self._compare, onnx_path, images, labels, payload)
        finally:
            board.close()
            if converter is not None:
                converter.close()
        return DeployResult(
            om_path=om_path,
            om_bytes=om_bytes,
            soc_version=soc,
            model_dir=model_dir,
            set_env=info.set_env,
            cann_version=info.cann_version,
            reused_om=reused,
            om_layout=self._om_layout,
            labels=None if labels is None else [int(y) for y in labels],
            **result,
        )

    def _check(
        self, board: BoardConnection, converter: BoardConnection | None
    ) -> tuple[tuple[BoardInfo, str], str]:
        self._log(f"Connecting to {board.label} ...")
        board.connect()
        info = check_host(board, self.target.set_env, self._log)
        require_board(info, board.label, need_atc=converter is None)
        soc = self.target.soc_version or info.soc_version
        if not soc:
            raise BoardCheckError(
                "The board's chip could not be read from npu-smi",
                "Choose the soc_version yourself (Ascend310 for an Atlas 200 DK)",
            )
        if info.soc_version and info.soc_version != soc:
            self._log(
                f"WARNING: npu-smi reports {info.soc_version} but {soc} was chosen: "
                "an .om runs only on the chip it was built for"
            )
        if converter is not None:
            self._log(f"Connecting to conversion host {converter.label} ...")
            converter.connect()
            conv_info = check_host(converter, self.target.converter_set_env, self._log)
            require_converter(conv_info, converter.label)
            self._converter_info = conv_info
        return (info, soc), f"{info.summary()}; soc_version {soc}"

    def _model_dir(self, conn: BoardConnection, root: str, name: str) -> str:
        """``<root>/<name>`` on ``conn``, refusing ``/`` and, unless forced, anything outside the home."""
        root = conn.absolute(root)
        home = conn.home()
        if root == "/":
            raise RemoteDirError(
                f"The remote folder resolves to / on {conn.label}",
                "Use a folder under the board user's home, such as ~/digit-distill",
            )
        inside = root == home or root.startswith(home.rstrip("/") + "/")
        if not inside and not self.target.allow_outside_home:
            raise RemoteDirError(
                f"The remote folder {root} is outside the home of {conn.endpoint.user} on {conn.label} ({home})",
                "Use a folder under ~, or allow it explicitly (CLI: --allow-outside-home; Deploy tab: "
                "\u201cAllow a remote folder outside the home\u201d)",
            )
        model_dir = posixpath.join(root, name)
        if posixpath.dirname(model_dir) != root:  # cannot happen after safe_model_name; belt and braces
            raise BridgeError(f"Model folder {model_dir} is outside {root}", "Use a plain model name")
        return model_dir

    def _upload(
        self,
        board: BoardConnection,
        converter: BoardConnection | None,
        model: _Model,
        soc: str,
    ) -> tuple[str, str]:
        onnx_path = model.path
        if self.target.skip_op_check:
            self._log("WARNING: the ATC operator check is skipped: ATC itself will judge the model")
        else:
            check = atc.require_atc_ops(onnx_path, soc)
            self._log(check.message(onnx_path.name))
        model_dir = self._model_dir(board, self.target.remote_dir, model.name)
        dest_dir = (
            self._model_dir(converter, self.target.converter_dir, model.name) if converter else model_dir
        )
        board.makedirs(model_dir)
        target = converter or board
        if converter:
            converter.makedirs(dest_dir)
        size = onnx_path.stat().st_size
        self._log(f"Uploading {onnx_path.name} ({size} bytes) to {target.label}:{dest_dir}/model.onnx")
        target.upload(
            onnx_path,
            posixpath.join(dest_dir, "model.onnx"),
            progress=self._upload_progress("model.onnx"),
            should_stop=self._stopped,
            stall_timeout=self.target.stall_timeout,
        )
        return model_dir, f"{size} bytes to {dest_dir}"

    def _manifest(self, model: _Model, soc: str) -> dict[str, Any]:
        return {
            "onnx_sha256": sha256_file(model.path),
            "soc_version": soc,
            "input_name": model.input.name,
            "batch": self.target.batch,
        }

    def _read_manifest(self, board: BoardConnection, model_dir: str) -> dict[str, Any] | None:
        try:
            manifest = json.loads(board.read_bytes(posixpath.join(model_dir, "manifest.json")))
        except (OSError, ValueError):
            return None
        return manifest if isinstance(manifest, dict) else None

    def _valid_om(self, conn: BoardConnection, path: str) -> int:
        size = conn.size(path)
        header = atc.check_om_header(conn.read_bytes(path, atc.OM_HEADER_SIZE), size, path)
        self._om_layout = header.layout
        return size

    def _convert(
        self,
        board: BoardConnection,
        converter: BoardConnection | None,
        model: _Model,
        model_dir: str,
        soc: str,
        info: BoardInfo,
    ) -> tuple[tuple[str, int, bool], str]:
        om_path = posixpath.join(model_dir, "model.om")
        manifest = self._manifest(model, soc)
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
            built = self._atc(board, info.set_env, model_dir, model.input.name, soc)
            board.sftp.posix_rename(built, om_path)
        else:
            if self._converter_info is None:
                raise RuntimeError("the conversion host is checked before converting")
            conv_dir = self._model_dir(converter, self.target.converter_dir, model.name)
            built = self._atc(converter, self._converter_info.set_env, conv_dir, model.input.name, soc)
            data = converter.read_bytes(built)
            atc.check_om_header(data[: atc.OM_HEADER_SIZE], len(data), built)
            self._log(f"Copying {len(data)} bytes of .om from {converter.label} to {board.label}:{om_path}")
            board.upload_bytes(
                data,
                om_path,
                progress=self._upload_progress("model.om"),
                should_stop=self._stopped,
                stall_timeout=self.target.stall_timeout,
            )
            converter.run(f"rm -rf -- {shlex.quote(posixpath.dirname(built))}")
        size = self._valid_om(board, om_path)
        manifest["om_bytes"] = size
        board.upload_bytes(
            json.dumps(manifest, indent=2).encode(), posixpath.join(model_dir, "manifest.json")
        )
        if converter is None:
            board.run(f"rm -rf -- {shlex.quote(posixpath.dirname(built))}")
        self._log(f"{om_path}: {size} bytes, OM header valid ({self._om_layout} layout)")
        return (om_path, size, False), f"{om_path} ({size} bytes)"

    def _atc(self, conn: BoardConnection, set_env: str, work_dir: str, input_name: str, soc: str) -> str:
        """Run ATC in a fresh ``.build-*`` folder of ``work_dir``; return the checked .om's path.

        ATC runs as a tracked process: a timeout or a cancel ends it on the board by its PID, and the build
        folder is removed whenever ATC did not succeed.
        """
        conn.run(f"rm -rf -- {shlex.quote(work_dir)}/.build-*")
        build = posixpath.join(work_dir, f".build-{secrets.token_hex(4)}")
        conn.makedirs(build)
        command = atc.atc_command(
            posixpath.join(work_dir, "model.onnx"),
            posixpath.join(build, "model"),
            soc,
            input_name,
            self.target.batch,
        )
        self._log(f"{conn.label}$ {command}")
        try:
            result = conn.bash_tracked(
                f". {remote_path_expr(set_env)} && exec {command}",
                on_line=self._log,
                timeout=self.target.atc_timeout,
                should_stop=self._stopped,
            )
        except BaseException:
            if conn._alive():
                conn.run(f"rm -rf -- {shlex.quote(build)}", timeout=30)
            raise
        if result.exit_status != 0 or not any(atc.SUCCESS_LINE in line for line in result.lines):
            errors = atc.parse_atc_errors(result.lines)
            conn.run(f"rm -rf -- {shlex.quote(build)}")
            raise AtcError(result.exit_status, errors, result.tail(), atc.hint_for(errors))
        produced = sorted(n for n in conn.sftp.listdir(build) if n.startswith("model") and n.endswith(".om"))
        if not produced:
            raise OmFileError(
                f"ATC reported success but wrote no model*.om in {build}",
                "Check the ATC log above and the folder's permissions",
            )
        path = posixpath.join(build, produced[0])
        size = self._valid_om(conn, path)
        self._log(f"ATC wrote {produced[0]} ({size} bytes)")
        return path

    def _run(
        self, board: BoardConnection, info: BoardInfo, model_dir: str, images: np.ndarray
    ) -> tuple[dict[str, Any], str]:
        self._log(f"Running {len(images)} image(s) on {board.label} with pyACL ...")
        payload = run_runner(
            board,
            info.set_env,
            model_dir,
            images,
            self.target.run_timeout,
            self._log,
            should_stop=self._stopped,
            stall_timeout=self.target.stall_timeout,
        )
        ms = sum(payload["times_ms"]) / len(images)
        npu = sum(payload.get("execute_ms") or [0.0]) / len(images)
        return payload, f"{len(images)} image(s), {ms:.3f} ms per image ({npu:.3f} ms NPU execute)"

    def _compare(
        self, onnx_path: Path, images: np.ndarray, labels: np.ndarray | None, payload: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
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
            "board_npu_ms_per_image": sum(payload.get("execute_ms") or [0.0]) / len(images),
            "local_ms_per_image": local.ms_per_image,
            "board_predictions": [int(p) for p in board_probs.argmax(axis=1)],
            "local_predictions": [int(p) for p in local.probabilities.argmax(axis=1)],
        }
        acc = "" if comparison.board_accuracy is None else f", board accuracy {comparison.board_accuracy:.2%}"
        detail = (
            f"agreement {comparison.agreement:.2%}{acc}, max probability difference "
            f"{comparison.max_probability_difference:.2e}"
        )
        self._log(detail)
        return result, detail


def predict_on_board(
    board: ConnectionConfig,
    set_env: str,
    model_dir: str,
    image28: np.ndarray,
    trust: TrustCallback | None = None,
    timeout: float = 120.0,
) -> BoardPrediction:
    """Classify one ``(28, 28)`` image with one SSH connection of its own (what a :class:`BoardSession` avoids)."""
    image = np.asarray(image28, dtype=np.float32).reshape(1, 1, 28, 28)
    started = time.perf_counter()
    with BoardConnection(board, trust) as conn:
        payload = run_runner(conn, set_env, model_dir, image, timeout, lambda line: None)
    return BoardPrediction(
        digit=int(payload["predictions"][0]),
        probabilities=tuple(payload["probabilities"][0]),
        npu_ms=float((payload.get("execute_ms") or [0.0])[0]),
        round_trip_ms=(time.perf_counter() - started) * 1000.0,
    )
