"""Qt user interface of digit-distill: the main window and its tabs.

Importing this package applies one guard (:func:`guard_none_refcount`) against a PySide6 defect: the PySide6 6.12
wheels, on CPython older than 3.12, drop a reference to ``None`` on every call of a C++ method that returns
``void``, and one to ``True`` on every ``Signal.emit()`` (they treat these singletons as immortal, which they
only are from Python 3.12). After a few thousand such calls, i.e. seconds of drawing, the interpreter aborts
with "Fatal Python error: none_dealloc" (or "bool_dealloc"). The guard probes for the defect once and, only
where it is present, raises the reference counts of ``None``, ``True`` and ``False`` far out of reach.
"""

from __future__ import annotations

import ctypes
import sys

_NONE_HEADROOM = 1 << 60


def _void_call_drops_none() -> bool:
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(8):
        probe.setObjectName("probe")  # a C++ method returning void
    return sys.getrefcount(None) < before


def guard_none_refcount() -> bool:
    """Make ``None``, ``True`` and ``False`` effectively immortal if this PySide6 build leaks their references.

    Returns True if the guard is in force.
    """
    if sys.version_info >= (3, 12) or not _void_call_drops_none():
        return False
    for singleton in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt: the first field of every object
        if refcount.value < _NONE_HEADROOM:
            refcount.value += _NONE_HEADROOM
    return True


guard_none_refcount()
