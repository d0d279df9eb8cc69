"""Regression test for the PySide6 6.12.0 defect that drops references to ``None`` and ``True``.

On CPython < 3.12, PySide6 6.12.0 released one reference to ``None`` on every call of a C++ method returning
``void`` and one to ``True`` on every ``Signal.emit(True)``; after about a thousand emits the interpreter aborted
with "Fatal Python error: bool_dealloc". pyproject.toml excludes that release; this test runs the same probe on
whatever PySide6 is installed, in a subprocess (a crash there fails the test instead of killing pytest), so a
future release with the same defect is caught.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import json, sys
    from PySide6.QtCore import QCoreApplication, QObject, Signal

    class Emitter(QObject):
        fired = Signal(bool)

    app = QCoreApplication([])
    received = []
    emitter = Emitter()
    emitter.fired.connect(received.append)
    before = {"None": sys.getrefcount(None), "True": sys.getrefcount(True)}
    for _ in range(10_000):
        emitter.setObjectName("probe")  # a C++ method returning void
        emitter.fired.emit(True)
    after = {"None": sys.getrefcount(None), "True": sys.getrefcount(True)}
    received.clear()
    after_clear = {"None": sys.getrefcount(None), "True": sys.getrefcount(True)}
    print(json.dumps({"before": before, "after": after_clear, "emits": 10_000}))
    """
)


def test_void_calls_and_emits_keep_singleton_refcounts():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"the probe crashed (exit {done.returncode}):\n{done.stderr[-2000:]}"
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    # The defect drops one reference per call (10,000 here); the interpreter's own bookkeeping moves a count by a
    # few now and then (one fewer None was seen once in a full run), so the test allows 1% of the calls.
    for name in ("None", "True"):
        assert abs(counts["after"][name] - counts["before"][name]) < counts["emits"] // 100, counts
