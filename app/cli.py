"""The ``digit-distill`` command line: subcommands for training, export, inference and deploy; none starts the GUI.

Start-up stays fast: this module imports nothing heavy. The subcommands' modules (which import torch,
onnxruntime, ...) are imported only for the subcommand being run; ``--help`` and ``--version`` list the
subcommands from :data:`COMMANDS` alone. Each module's ``register(subparsers)`` adds its parsers without a
``help=`` (it comes from :data:`COMMANDS`, the one home of the one-line summaries).
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand -> (module that registers and runs it, one-line summary for ``digit-distill --help``).
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("app.commands.data", "show where MNIST is read from; download and check it"),
    "train-teacher": ("app.commands.train", "train the large teacher network"),
    "train-student": ("app.commands.train", "train the small student network normally (no teacher)"),
    "distill": ("app.commands.train", "train the small student by distillation from a trained teacher"),
    "evaluate": ("app.commands.evaluate", "test accuracy of a run, checkpoint or ONNX model"),
    "export": (
        "app.commands.export",
        "export a run or checkpoint to ONNX (opset 11, checked against PyTorch)",
    ),
    "predict": (
        "app.commands.predict",
        "classify digit images with an ONNX model (default: the bundled student)",
    ),
    "calibrate": (
        "app.commands.calibrate",
        "fit 'not sure' and 'not a digit' for ONNX models (stored in the model files)",
    ),
    "personalize": (
        "app.commands.personalize",
        "fine-tune the student on one person's digits (distilled from the teacher)",
    ),
    "reproduce": (
        "app.commands.reproduce",
        "reproduce the paper's table: teacher, student trained normally, distilled student",
    ),
    "sweep": ("app.commands.sweep", "distil the student over a temperature x alpha grid"),
    "quantize": ("app.commands.quantize", "INT8-quantize an ONNX model with onnxruntime and measure it"),
    "runs": ("app.commands.runs", "list training runs"),
    "deploy": (
        "app.commands.deploy",
        "deploy an ONNX model to an Atlas board over SSH and evaluate it there",
    ),
}


class _Subcommands:
    """Wraps argparse's subparsers: each ``add_parser(name)`` gets its summary from :data:`COMMANDS`."""

    def __init__(self, subparsers):
        self._subparsers = subparsers
        self.added: set[str] = set()

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        if name not in COMMANDS:
            raise KeyError(
                f"subcommand {name!r} is missing from app.cli.COMMANDS (module and one-line summary)"
            )
        kwargs["help"] = COMMANDS[name][1]
        self.added.add(name)
        return self._subparsers.add_parser(name, **kwargs)


def one_line(exc: BaseException) -> str:
    """An error's message on one line (messages from libraries sometimes run over several)."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


def version() -> str:
    """The installed package's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("digit-distill")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _chosen_command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option), if any."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the subcommand named in ``argv`` is fully registered (all of them without ``argv``).

    The other subcommands appear as summaries only, so parsing never imports their modules.
    """
    parser = argparse.ArgumentParser(
        prog="digit-distill",
        description="Knowledge-distillation workbench for handwritten digits. Without a subcommand, opens the app.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="open the app, close it once the Draw tab classifies and exit (checks that the app starts)",
    )
    sub = _Subcommands(parser.add_subparsers(dest="command", metavar="COMMAND"))
    chosen = _chosen_command(argv) if argv is not None else None
    modules = dict.fromkeys(module for module, _ in COMMANDS.values())
    if argv is not None:
        modules = {COMMANDS[chosen][0]: None} if chosen in COMMANDS else {}
    for module in modules:
        importlib.import_module(module).register(sub)
    for name in COMMANDS:
        if name not in sub.added:
            sub.add_parser(name, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; with no subcommand, start the GUI."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        from app.gui.shell import run_app

        return run_app(smoke=args.smoke)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every user-facing error becomes one readable line
        if args.debug or isinstance(exc, (AssertionError, NameError, TypeError, AttributeError)):
            raise  # programming errors keep their traceback
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
