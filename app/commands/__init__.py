"""CLI subcommands: each module exposes ``register(subparsers)`` which adds its parser with ``func=run``.

``run(args) -> int`` returns the exit status; errors the user can fix raise ``app.commands.CommandError``
(or a typed error from core/atlas_bridge), which the CLI prints on stderr as one clear line.
"""


class CommandError(Exception):
    """An error the user can fix; printed without a traceback."""
