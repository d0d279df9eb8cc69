"""The one way this app runs long work off the GUI thread: a function, a QThread, signals of plain data.

Usage, the same in every tab::

    self.runner = JobRunner(self)
    self.runner.epoch.connect(self.plots.add_epoch)
    self.runner.succeeded.connect(self.on_result)
    self.runner.failed.connect(self.on_error)          # a dict: message, kind, details
    self.runner.start("Train teacher", lambda state: train(..., progress=state))
    ...
    self.runner.stop()                                  # sets a flag; the job checks state.should_stop()
    self.runner.stop_and_wait(10_000)                   # in closeEvent / shutdown

The job function receives a :class:`TaskState`, which implements ``core.progress.Progress`` (``on_batch``,
``on_epoch``, ``status``, ``should_stop``) plus ``set_fraction`` for jobs that know only how far they are (the gallery).
It runs in the worker thread and must not touch widgets; whatever it returns arrives in ``succeeded``.
Batch reports are coalesced in the worker and sent at most every ``BATCH_EMIT_INTERVAL`` seconds, so a fast
loop cannot flood the GUI thread's event queue.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, TypedDict

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

log = logging.getLogger(__name__)

BATCH_EMIT_INTERVAL = 0.05
FRACTION_EMIT_INTERVAL = 0.05
JOB_SWITCH_INTERVAL = 0.001

_jobs_running = 0
_saved_switch_interval = sys.getswitchinterval()


def _job_began() -> None:
    """While any job runs, let the interpreter hand the GIL over every millisecond instead of every 5 ms.

    A busy Python loop in the worker otherwise makes the GUI thread wait up to 5 ms each time it re-enters
    Python (once per pyqtgraph item painted, per slot called), which adds up to visible stalls.
    """
    global _jobs_running, _saved_switch_interval
    if _jobs_running == 0:
        _saved_switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(_saved_switch_interval, JOB_SWITCH_INTERVAL))
    _jobs_running += 1


def _job_ended() -> None:
    global _jobs_running
    _jobs_running = max(0, _jobs_running - 1)
    if _jobs_running == 0:
        sys.setswitchinterval(_saved_switch_interval)


def describe_error(exc: BaseException) -> str:
    """One readable line for the person using the app.

    The app's own errors (``ValueError``, ``TrainingError``, ``DataError``, ``OSError``...) already carry
    messages written for people; an unexpected exception gets its type name in front so it can be reported.
    """
    text = str(exc).strip()
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"File not found: {exc.filename}"
    if not text:
        return f"Unexpected error ({exc.__class__.__name__})"
    own = type(exc).__module__.split(".")[0] in ("core", "atlas_bridge", "app")
    if own or isinstance(exc, (ValueError, OSError)):
        return text  # written for people already
    return f"{exc.__class__.__name__}: {text}"


class TaskState(QObject):
    """Progress reporting and cooperative cancellation for one job (``core.progress.Progress``).

    Methods are called from the worker thread; the signals are delivered to the GUI thread (queued).

    Signals
    -------
    batches(list)
        Coalesced ``on_batch`` dicts, oldest first.
    epoch(dict)
        One ``on_epoch`` dict (sent after any pending batches).
    message(str)
        A status line.
    fraction(float)
        Overall progress in [0, 1] for jobs that report it with :meth:`set_fraction`.
    """

    batches = Signal(list)
    epoch = Signal(dict)
    message = Signal(str)
    fraction = Signal(float)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._last_batch_emit = 0.0
        self._last_fraction_emit = 0.0

    # -- Progress protocol (worker thread) --------------------------------------------------------------
    def on_batch(self, info: dict[str, Any]) -> None:
        """Queue one batch report; send the queue when the last send is old enough."""
        now = time.monotonic()
        with self._lock:
            self._pending.append(dict(info))
            due = now - self._last_batch_emit >= BATCH_EMIT_INTERVAL
        if due:
            self.flush()

    def on_epoch(self, info: dict[str, Any]) -> None:
        """Send pending batches, then the epoch summary."""
        self.flush()
        self.epoch.emit(dict(info))

    def status(self, text: str) -> None:
        """Send a status line."""
        self.message.emit(str(text))

    def should_stop(self) -> bool:
        """True once :meth:`request_stop` was called."""
        return self._stop.is_set()

    # -- extras ---------------------------------------------------------------------------------------
    def set_fraction(self, value: float, force: bool = False) -> None:
        """Report overall progress in [0, 1] (throttled unless ``force`` or complete)."""
        now = time.monotonic()
        if force or value >= 1.0 or now - self._last_fraction_emit >= FRACTION_EMIT_INTERVAL:
            self._last_fraction_emit = now
            self.fraction.emit(float(min(max(value, 0.0), 1.0)))

    def flush(self) -> None:
        """Send any batch reports still queued."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._last_batch_emit = time.monotonic()
        if pending:
            self.batches.emit(pending)

    def request_stop(self) -> None:
        """Ask the job to stop (thread-safe; the job notices at its next ``should_stop`` check)."""
        self._stop.set()


class JobFailure(TypedDict):
    """What ``failed`` carries: the message for the person, the exception's class name, the traceback."""

    message: str
    kind: str
    details: str


class Worker(QObject):
    """Runs ``fn(state)`` once in whatever thread it lives in and reports the outcome as signals."""

    succeeded = Signal(object)
    failed = Signal(dict)
    finished = Signal()

    def __init__(self, fn: Callable[[TaskState], Any], state: TaskState):
        super().__init__()
        self._fn = fn
        self._state = state

    @Slot()
    def run(self) -> None:
        """Call the job function; never lets an exception escape into Qt."""
        try:
            result = self._fn(self._state)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the person
            log.exception("job failed")
            failure: JobFailure = {
                "message": describe_error(exc),
                "kind": exc.__class__.__name__,
                "details": traceback.format_exc(),
            }
            self.failed.emit(failure)
        else:
            self._state.flush()
            self.succeeded.emit(result)
        finally:
            self._state.flush()
            self.finished.emit()


class _ThreadKeeper(QObject):
    """Holds every job thread, with its worker and state, until the thread has ended.

    The keeper is module-level, so a thread never dies with the widget or runner that started it: if Python
    collected a runner (or Qt deleted a closed tab) while its job still ran, the QThread would be destroyed
    while running, which aborts the process. An ``atexit`` hook stops and joins whatever still runs.
    """

    def __init__(self) -> None:
        super().__init__()
        self._live: list[tuple[QThread, Worker, TaskState]] = []

    def add(self, thread: QThread, worker: Worker, state: TaskState) -> None:
        """Keep the three alive until ``thread`` has finished."""
        if not self._live:
            _job_began()
        self._live.append((thread, worker, state))
        thread.finished.connect(self._release)

    def running(self) -> list[tuple[QThread, TaskState]]:
        """Threads not yet released, with their states."""
        return [(thread, state) for thread, _, state in self._live]

    @Slot()
    def _release(self) -> None:
        thread = self.sender()
        for entry in [e for e in self._live if e[0] is thread]:
            entry[0].wait()  # returns at once: finished was its last signal; now nothing of it still runs
            self._live.remove(entry)
        if not self._live:
            _job_ended()

    def stop_all(self, timeout_ms: int = 10_000) -> None:
        """Ask every job to stop and wait for the threads (interpreter exit)."""
        for _, state in self.running():
            state.request_stop()
        for thread, _ in self.running():
            thread.wait(timeout_ms)


_keeper: _ThreadKeeper | None = None


def _thread_keeper() -> _ThreadKeeper:
    global _keeper
    if _keeper is None:  # created on first use, in the GUI thread (jobs start there)
        _keeper = _ThreadKeeper()
        atexit.register(_keeper.stop_all)
    return _keeper


class JobRunner(QObject):
    """Runs one job at a time in a fresh QThread and relays its signals.

    Signals
    -------
    started(str)
        The job's name, when it starts.
    batches, epoch, message, fraction
        Relayed from the job's :class:`TaskState`.
    succeeded(object)
        The job function's return value.
    failed(dict)
        ``{"message": str, "kind": exception class name, "details": traceback text}``.
    finished(str)
        The job's name; emitted after ``succeeded`` or ``failed``, when :meth:`is_running` is already False.
    """

    started = Signal(str)
    batches = Signal(list)
    epoch = Signal(dict)
    message = Signal(str)
    fraction = Signal(float)
    succeeded = Signal(object)
    failed = Signal(dict)
    finished = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._name = ""
        self._state: TaskState | None = None
        self._worker: Worker | None = None
        self._threads: list[QThread] = []  # this runner's threads not yet finished, for stop_and_wait

    @property
    def name(self) -> str:
        """Name of the running job ('' when idle)."""
        return self._name if self.is_running() else ""

    def is_running(self) -> bool:
        """True from :meth:`start` until just before ``finished`` is emitted."""
        return self._worker is not None

    def stop_requested(self) -> bool:
        """True when the running job was asked to stop."""
        return self._state is not None and self._state.should_stop()

    def start(self, name: str, fn: Callable[[TaskState], Any]) -> bool:
        """Start ``fn(state)`` in a new thread; refuse (return False) while another job runs."""
        if self.is_running():
            return False
        state = TaskState()
        worker = Worker(fn, state)
        thread = QThread()
        thread.setObjectName(f"job: {name}")
        worker.moveToThread(thread)
        state.batches.connect(self.batches)
        state.epoch.connect(self.epoch)
        state.message.connect(self.message)
        state.fraction.connect(self.fraction)
        worker.succeeded.connect(self._on_succeeded)
        worker.failed.connect(self._on_failed)
        # The wiring every tab shares: started->run, finished->quit (called directly from the worker thread;
        # QThread.quit is thread-safe, so waiting on the thread from the GUI thread cannot deadlock).
        # No deleteLater: these objects were created in Python, so PySide owns them. Qt deletes deferred
        # objects *after* emitting QThread.finished, in the worker thread, which would race with Python
        # freeing them; instead the thread keeper drops them in the GUI thread once the thread has ended.
        thread.started.connect(worker.run)
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        worker.finished.connect(self._on_finished)
        thread.finished.connect(self._on_thread_finished)
        self._name, self._state, self._worker = name, state, worker
        self._threads.append(thread)
        _thread_keeper().add(thread, worker, state)
        thread.start()
        self.started.emit(name)
        return True

    def stop(self) -> None:
        """Ask the running job to stop; returns at once."""
        if self._state is not None:
            self._state.request_stop()

    def stop_and_wait(self, timeout_ms: int = 10_000) -> bool:
        """Stop the job and block until its thread has ended; False if it is still running after the timeout."""
        self.stop()
        deadline = time.monotonic() + timeout_ms / 1000
        for thread in list(self._threads):
            remaining = max(0, int((deadline - time.monotonic()) * 1000))
            if not thread.wait(remaining):
                return False
        return True

    @Slot(object)
    def _on_succeeded(self, result: object) -> None:
        self.succeeded.emit(result)

    @Slot(dict)
    def _on_failed(self, error: JobFailure) -> None:
        self.failed.emit(error)

    @Slot()
    def _on_finished(self) -> None:
        name = self._name
        self._worker = None
        self._state = None
        self._name = ""
        self.finished.emit(name)

    @Slot()
    def _on_thread_finished(self) -> None:
        thread = self.sender()
        self._threads = [t for t in self._threads if t is not thread]
