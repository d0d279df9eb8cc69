r"""Text that came from a board, made inert before anyone shows it: no control characters, no ANSI escapes.

A board (or anything pretending to be one) can print terminal escape sequences, carriage returns or bells; shown
raw in a terminal or a log view they could recolour, erase or overwrite what the person reads. :func:`inert`
replaces every C0/C1 control character except tab with a visible ``\xNN`` escape, so the text reads the same
and does nothing.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def inert(text: str, keep_newlines: bool = False) -> str:
    r"""``text`` with control characters (ESC, CR, BEL, C1...) shown as ``\xNN``; tabs kept, newlines on request."""
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
