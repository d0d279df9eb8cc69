"""Bookkeeping for the bad-input and fault-injection suites: every input tried is counted by category and outcome.

A test hands each input to :func:`check` (or :func:`check_write` for a write under an injected fault). The call
must end in a correct result or one of the typed errors the test names; anything else is counted as a crash and
re-raised, a call still running after ``timeout`` seconds is interrupted and counted as a hang, and a write that
changed or lost the previous good file is counted as a file lost. ``tests/conftest.py`` writes the counts to the
JSON file named by ``$DIGIT_DISTILL_RELIABILITY_JSON`` at the end of the session; ``scripts/make_reliability.py``
turns that file into ``docs/RELIABILITY.md``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

OUTCOMES = ("ok", "typed_error", "crash", "hang", "file_lost")
ENV = "DIGIT_DISTILL_RELIABILITY_JSON"

#: category -> outcome -> count; filled by every test of the session that uses this module.
COUNTS: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
#: category -> one line saying what a correct answer is (shown in docs/RELIABILITY.md).
EXPECTATIONS: dict[str, str] = {}


class HangError(Exception):
    """A call ran longer than its time limit."""


class FileLostError(AssertionError):
    """A failed write changed or removed the file it was meant to replace, or left a stray file behind."""


@contextmanager
def time_limit(seconds: float):
    """Raise :class:`HangError` in the main thread when the body runs longer than ``seconds``.

    SIGALRM interrupts blocking system calls too (a read from a FIFO), so a hang becomes an exception instead
    of a stuck test run. Outside the main thread (or without SIGALRM) the body simply runs.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def _alarm(signum, frame):
        raise HangError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def describe(category: str, expectation: str) -> None:
    """Say what a correct answer is for ``category`` (once per category; shown in the report)."""
    EXPECTATIONS.setdefault(category, expectation)


def check(
    category: str,
    call: Callable[[], Any],
    errors: tuple[type[BaseException], ...],
    timeout: float = 20.0,
) -> Any:
    """Run ``call`` on one input; count its outcome under ``category``; return its result or the typed error.

    Returns the call's result (outcome "ok") or the instance of one of ``errors`` it raised ("typed_error").
    Any other exception is counted as a crash and re-raised, so the test fails and shows it.
    """
    counts = COUNTS[category]
    try:
        with time_limit(timeout):
            result = call()
    except HangError:
        counts["hang"] += 1
        raise
    except errors as exc:
        counts["typed_error"] += 1
        return exc
    except BaseException:
        counts["crash"] += 1
        raise
    counts["ok"] += 1
    return result


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> content), to compare before and after a write."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def check_write(
    category: str,
    folder: Path,
    call: Callable[[], Any],
    errors: tuple[type[BaseException], ...],
    timeout: float = 60.0,
) -> Any:
    """Run a write that is expected to fail (injected fault): it must raise one of ``errors`` and leave ``folder``
    exactly as it was (the previous good files intact, no temporary file left behind)."""
    before = snapshot(folder)
    outcome = check(category, call, errors, timeout)
    after = snapshot(folder)
    if after != before:
        COUNTS[category]["file_lost"] += 1
        changed = sorted(
            set(before) ^ set(after) | {k for k in before if k in after and before[k] != after[k]}
        )
        raise FileLostError(f"{category}: files changed by a failed write: {changed}")
    if not isinstance(outcome, errors):  # the write "succeeded" although the disk refused it: data lost
        COUNTS[category]["ok"] -= 1
        COUNTS[category]["file_lost"] += 1
        raise FileLostError(f"{category}: the injected fault did not surface as an error (got {outcome!r})")
    return outcome


def write_counts(path: str | os.PathLike, session: dict | None = None) -> None:
    """Add this session's counts to ``path`` (a JSON file, created if missing; earlier categories are kept).

    ``session``: facts about the pytest session (profile, exit status, tests run), appended to ``sessions``.
    """
    path = Path(path)
    data: dict = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
    categories = data.setdefault("categories", {})
    for category, counts in COUNTS.items():
        entry = categories.setdefault(category, dict.fromkeys(OUTCOMES, 0))
        for outcome in OUTCOMES:
            entry[outcome] = entry.get(outcome, 0) + counts[outcome]
        if category in EXPECTATIONS:
            entry["expectation"] = EXPECTATIONS[category]
    if session is not None:
        data.setdefault("sessions", []).append(session)
    from core.fileio import atomic_write_json

    atomic_write_json(path, data)
