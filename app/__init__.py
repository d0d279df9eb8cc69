"""User-facing entry points of digit-distill: the Qt GUI and the CLI."""
