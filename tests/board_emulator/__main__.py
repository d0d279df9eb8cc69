"""Run a board emulator (test double) in the foreground: ``python -m tests.board_emulator [--soc-version S]``.

Prints one JSON line with host, port, user, password, key_file and host_key_fingerprint (OpenSSH
``SHA256:...`` form, as ``--trust-host-key`` takes it), then serves until Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from tests.board_emulator.server import BoardEmulator, EmulatorConfig, EmulatorError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.board_emulator", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--soc-version", default="Ascend310", help="the emulated board's chip")
    parser.add_argument("--om-suffix", default="", choices=["", "_linux_aarch64"], help="ATC output naming")
    parser.add_argument(
        "--acl-api", default="new", choices=["new", "old"], help="pyACL pointer API generation"
    )
    parser.add_argument("--atc-delay", type=float, default=0.0, help="seconds each conversion takes")
    parser.add_argument(
        "--om-layout", default="current", choices=["current", "legacy"], help=".om header layout"
    )
    parser.add_argument(
        "--opset-error-code",
        default="E19010",
        choices=["E19010", "E16002"],
        help="what ATC prints for an opset that is too new",
    )
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        soc_version=args.soc_version,
        om_suffix=args.om_suffix,
        acl_api=args.acl_api,
        atc_delay_s=args.atc_delay,
        om_layout=args.om_layout,
        opset_error_code=args.opset_error_code,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        emulator = BoardEmulator(config).start()
    except EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        print(json.dumps(emulator.info()), flush=True)
        print("board emulator (a test double) running; Ctrl+C stops it", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    print("board emulator stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
