"""What the benchmarks print: measured medians in one aligned column, and each target with its verdict."""

from __future__ import annotations

from collections.abc import Sequence


def verdict(met: bool) -> str:
    """``met`` or ``NOT met``: the word every benchmark ends a target with."""
    return "met" if met else "NOT met"


def print_target(text: str, met: bool) -> None:
    """One target line: ``text`` (the ratio measured and the target), a colon and the :func:`verdict`."""
    print(f"{text}: {verdict(met)}")


def print_medians(heading: str, rows: Sequence[tuple[str, float, str]]) -> None:
    """``heading``, then one line per ``(label, value, unit)`` with the labels padded so the values align."""
    print(heading)
    width = max(len(label) for label, _, _ in rows)
    for label, value, unit in rows:
        print(f"{label:<{width}}   {value:8.3f} {unit}")
