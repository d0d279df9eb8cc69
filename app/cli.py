"""The ``digit-distill`` command line: subcommands for training, export, inference and deploy; none starts the GUI."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "app.commands.data",
    "app.commands.train",
    "app.commands.evaluate",
    "app.commands.export",
    "app.commands.predict",
    "app.commands.reproduce",
    "app.commands.sweep",
    "app.commands.quantize",
    "app.commands.runs",
    "app.commands.deploy",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="digit-distill",
        description="Knowledge-distillation workbench for handwritten digits. Without a subcommand, opens the app.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; with no subcommand, start the GUI."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from app.gui.main_window import run_app

        return run_app()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every user-facing error becomes one readable line
        if args.debug or isinstance(exc, (AssertionError, NameError, TypeError, AttributeError)):
            raise  # programming errors keep their traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
