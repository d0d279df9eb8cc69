r"""``digit-distill deploy``: convert an ONNX model on an Atlas board (or a conversion host), run it there, compare.

Example::

    digit-distill deploy --host 192.168.1.2 --user HwHiAiUser --password-stdin \
        --trust-host-key SHA256:... --model core/bundled/student.onnx --evaluate 200 --json

Progress and the remote output go to stderr; with ``--json`` the last stdout line is
``{"om_path", "om_bytes", "soc_version", "evaluated", "board_accuracy", "agreement", "board_ms_per_image",
"local_ms_per_image"}``. Any failure exits non-zero with the message (what failed, what to do) on stderr.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from atlas_bridge.atc import SOC_VERSIONS
from atlas_bridge.connection import ConnectionConfig
from atlas_bridge.errors import BridgeError, CancelledError
from atlas_bridge.hostkeys import HostKeyInfo, trust_fingerprint
from atlas_bridge.pipeline import Deployer, DeployTarget
from atlas_bridge.results import STEPS, StepEvent, StepState, is_step_event
from core import validation as fields
from core.inference import InvalidModelError, OnnxClassifier
from core.sanity import check_model

from . import CommandError

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
from .common import add_data_args, add_json_arg, existing_path, load_data, print_json


def register(subparsers) -> None:
    """Add the ``deploy`` subcommand."""
    parser = subparsers.add_parser(
        "deploy",
        description=(
            "Upload an ONNX digit model to a Huawei Atlas board, convert it with ATC, run MNIST test images "
            "on the NPU with pyACL and compare with local onnxruntime."
        ),
    )
    parser.add_argument("--host", required=True, help="board address or ~/.ssh/config alias")
    parser.add_argument("--port", type=fields.PORT.argtype, help="SSH port (default: ssh config or 22)")
    parser.add_argument(
        "--user", help="login user (default: ssh config or your user name; 200 DK: HwHiAiUser)"
    )
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--key", metavar="FILE", help="private key file")
    auth.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first stdin line"
    )
    auth.add_argument("--agent", action="store_true", help="log in with a key held by ssh-agent")
    parser.add_argument(
        "--key-passphrase-env",
        metavar="VAR",
        help="name of an environment variable holding the passphrase of an encrypted --key",
    )
    parser.add_argument(
        "--soc-version",
        default="Ascend310",
        choices=[*SOC_VERSIONS, "auto"],
        help="chip to compile for (auto: read from the board's npu-smi; default Ascend310)",
    )
    parser.add_argument(
        "--trust-host-key",
        metavar="FINGERPRINT",
        help="trust this host key fingerprint (SHA256:...) if the board's key is not yet known",
    )
    parser.add_argument("--model", required=True, type=existing_path, metavar="PATH.onnx", help="ONNX model")
    parser.add_argument(
        "--evaluate",
        type=fields.DEPLOY_IMAGES.argtype,
        default=200,
        metavar="N",
        help="run the first N MNIST test images on the board (default 200)",
    )
    parser.add_argument(
        "--remote-dir", default="~/digit-distill", help="remote folder (default ~/digit-distill)"
    )
    parser.add_argument("--set-env", help="the board's set_env.sh (default: the usual CANN locations)")
    parser.add_argument(
        "--convert-host", help="convert on this x86 host with the CANN toolkit instead of the board"
    )
    parser.add_argument("--convert-port", type=fields.PORT.argtype, help="SSH port of the conversion host")
    parser.add_argument("--convert-user", help="login user on the conversion host")
    parser.add_argument(
        "--convert-key", metavar="FILE", help="key for the conversion host (default: board's login)"
    )
    parser.add_argument(
        "--atc-timeout",
        type=fields.ATC_TIMEOUT.argtype,
        default=600.0,
        help="seconds ATC may take (default 600)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=fields.CONNECT_TIMEOUT.argtype,
        default=15.0,
        help="SSH connect timeout in seconds",
    )
    parser.add_argument(
        "--stall-timeout",
        type=fields.STALL_TIMEOUT.argtype,
        default=30.0,
        help="seconds an upload may make no progress before it fails (default 30)",
    )
    parser.add_argument(
        "--skip-op-check",
        action="store_true",
        help="do not refuse models outside ATC's operator table (core/atc_ops.py); let ATC judge",
    )
    parser.add_argument(
        "--allow-outside-home",
        action="store_true",
        help="allow a --remote-dir outside the board user's home (/ is always refused)",
    )
    add_data_args(parser)
    add_json_arg(parser)
    parser.set_defaults(func=run)


class ConsoleSteps:
    """Deploy progress on stderr (the trainer's ``core.progress.Progress`` protocol); Ctrl+C cancels.

    Use as a context manager: the first Ctrl+C asks the deploy to stop (it ends what runs on the board and cleans
    up), a second one aborts at once.
    """

    def __init__(self) -> None:
        self.titles = dict(STEPS)
        self._stop = False
        self._previous: signal.Handlers | Callable[[int, FrameType | None], Any] | int | None = None

    def __enter__(self) -> ConsoleSteps:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _on_sigint(self, signum, frame) -> None:
        if self._stop:
            raise KeyboardInterrupt
        self._stop = True
        print(
            "\ncancelling: ending what runs on the board (Ctrl+C again to abort)...",
            file=sys.stderr,
            flush=True,
        )

    def on_epoch(self, info: dict[str, Any]) -> None:  # noqa: D102
        if not is_step_event(info):
            return
        event = StepEvent.from_dict(info)
        number = f"[{info['epoch']}/{info['epochs']}]"
        if event.state is StepState.RUNNING:
            print(f"{number} {self.titles[event.step]} ...", file=sys.stderr, flush=True)
        elif event.state is StepState.DONE:
            print(f"{number} done: {event.detail}", file=sys.stderr, flush=True)
        elif event.state in (StepState.FAILED, StepState.CANCELLED):
            print(f"{number} {event.state.value.upper()}", file=sys.stderr, flush=True)

    def on_batch(self, info: dict[str, Any]) -> None:  # noqa: D102
        pass  # upload progress: the step's done line gives the size

    def status(self, text: str) -> None:  # noqa: D102
        print(f"    {text}", file=sys.stderr, flush=True)

    def should_stop(self) -> bool:  # noqa: D102
        return self._stop


def _prompt_trust(info: HostKeyInfo) -> bool:
    print(
        f"The authenticity of host {info.host} can't be established.\n"
        f"{info.key_type} key fingerprint is {info.fingerprint}.",
        file=sys.stderr,
    )
    answer = input("Trust this host key? (type yes to trust) ")
    return answer.strip().lower() == "yes"


def _trust(args: argparse.Namespace):
    if args.trust_host_key:
        return trust_fingerprint(args.trust_host_key)
    if sys.stdin.isatty() and not args.password_stdin:
        return _prompt_trust
    return None  # unknown keys are refused with the fingerprint and the --trust-host-key hint


def _passphrase(args: argparse.Namespace) -> str | None:
    if not args.key_passphrase_env:
        return None
    value = os.environ.get(args.key_passphrase_env)
    if value is None:
        raise CommandError(
            f"--key-passphrase-env {args.key_passphrase_env}: that environment variable is not set"
        )
    return value


def _login(args: argparse.Namespace, password: str | None) -> ConnectionConfig:
    auth = "password" if args.password_stdin else "agent" if args.agent else "key"
    return ConnectionConfig(
        host=args.host,
        port=args.port,
        user=args.user,
        auth=auth,
        key_file=args.key,
        password=password,
        passphrase=_passphrase(args),
        connect_timeout=args.connect_timeout,
    )


def run(args: argparse.Namespace) -> int:
    """Deploy, evaluate and print the summary."""
    try:
        sanity = check_model(OnnxClassifier(args.model))
    except InvalidModelError as exc:
        raise CommandError(str(exc)) from None
    if sanity.warning:
        print(f"warning: {sanity.warning}", file=sys.stderr, flush=True)
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("--password-stdin given but stdin held no password")
    board = _login(args, password)
    converter = None
    if args.convert_host:
        converter = ConnectionConfig(
            host=args.convert_host,
            port=args.convert_port,
            user=args.convert_user,
            auth="key" if args.convert_key else board.auth,
            key_file=args.convert_key or board.key_file,
            password=None if args.convert_key else password,
            passphrase=board.passphrase,
            connect_timeout=args.connect_timeout,
        )
    try:
        target = DeployTarget(
            board=board,
            soc_version=None if args.soc_version == "auto" else args.soc_version,
            remote_dir=args.remote_dir,
            set_env=args.set_env,
            converter=converter,
            atc_timeout=args.atc_timeout,
            stall_timeout=args.stall_timeout,
            skip_op_check=args.skip_op_check,
            allow_outside_home=args.allow_outside_home,
        )
    except BridgeError as exc:
        raise CommandError(str(exc)) from None
    mnist = load_data(args)
    if args.evaluate > len(mnist.test_labels):
        raise CommandError(f"--evaluate can be at most {len(mnist.test_labels)}")
    images = mnist.test_images[: args.evaluate].numpy().astype(np.float32)
    labels = mnist.test_labels[: args.evaluate].numpy()
    try:
        with ConsoleSteps() as progress:
            result = Deployer(target, progress, _trust(args)).deploy(args.model, images, labels)
    except CancelledError as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return 130
    except BridgeError as exc:
        step = dict(STEPS).get(getattr(exc, "step", ""), "deploy")
        raise CommandError(f"{step} failed: {exc}") from None
    if args.json:
        print_json(result.summary())
    else:
        print(f"{result.om_path} ({result.om_bytes} bytes, {result.soc_version})")
        print(
            f"{result.evaluated} MNIST test images: board accuracy {result.board_accuracy:.2%}, "
            f"local {result.local_accuracy:.2%}, agreement {result.agreement:.2%}, "
            f"max probability difference {result.max_probability_difference:.2e}"
        )
        print(
            f"latency: board {result.board_ms_per_image:.3f} ms/image ({result.board_npu_ms_per_image:.3f} ms NPU "
            f"execute), local {result.local_ms_per_image:.3f} ms/image"
        )
    return 0
