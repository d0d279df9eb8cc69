"""Optuna studies shared by any number of worker processes: storage, study construction, the worker loop.

A sweep is an Optuna study in a database (by default a SQLite file in the sweep's folder; PostgreSQL or MySQL
for many machines). Every process that runs the same sweep command opens the same study and works on it until
nothing is left; nothing here schedules work. Optuna's own mechanisms decide who runs what:

- **Grid** (:class:`optuna.samplers.GridSampler`, same seed everywhere): trial number *k* < grid size gets grid
  cell *k*, and trial numbers are unique in the storage, so the first pass over the grid never runs a cell
  twice, whatever the number of processes and machines.
- **Dead workers**: every running trial sends a heartbeat (:class:`optuna.storages.RDBStorage`); a trial whose
  process died (killed, machine lost) goes stale, is marked FAIL by the next worker that looks
  (:func:`optuna.storages.fail_stale_trials`) and re-queued once as a WAITING trial with the same grid cell
  (:class:`optuna.storages.RetryHeartbeatStaleTrialCallback`). Taking a WAITING trial is one atomic state change in the
  database, so exactly one worker gets it. A trial stopped by the user (Ctrl+C) or ended by an error is re-queued
  the same way, so running the command again continues it.
- **Late trials**: a trial numbered beyond the grid (created while the last cells were still running) may be
  given a cell that another trial holds (Optuna documents this); it checks the storage first and, if the cell is
  taken, ends as PRUNED with ``status=duplicate`` without training.
- **SQLite**: every transaction starts with ``BEGIN IMMEDIATE`` (SQLAlchemy's documented pysqlite recipe), so
  Optuna's read-then-write state changes are as atomic on a shared SQLite file as on PostgreSQL with row locks.

Each trial records its outcome in the user attribute ``status``: ``complete``, ``pruned`` (search, by the
pruner), ``diverged``, ``duplicate``, or, on FAIL trials, ``stopped``/``error``; and ``first_trial``, the number
of the first trial of a chain of re-queued ones (a job keyed on it continues the same run folder).

Kept in one module: storage, study and worker loop are one protocol between processes.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

STORAGE_FILE = "study.db"
DEFAULT_STUDY = "sweep"
#: Seconds between a running trial's heartbeats; a trial silent for ``GRACE_FACTOR`` times this is dead.
DEFAULT_HEARTBEAT = 20
GRACE_FACTOR = 3
#: A running trial that never sent a heartbeat is taken over after this many heartbeat intervals.
SILENT_FACTOR = 10
#: How often an error in a trial is retried (by a rerun of the command) before its cell is reported failed.
MAX_ERROR_RETRIES = 2


class StudyError(RuntimeError):
    """A study cannot be opened or continued as asked (bad storage URL, server down, different settings)."""


class TrialStopped(RuntimeError):
    """The user stopped the trial's job; the trial is re-queued and a rerun of the command continues it."""


class _Diverged(Exception):
    """The trial's job diverged: a result for its cell (not retried)."""


@dataclass
class Outcome:
    """What one trial's job produced: the objective ``value`` (validation accuracy) and its ``status``.

    ``status`` is ``complete``, ``pruned``, ``diverged`` or ``stopped``; ``attrs`` go to the trial's user
    attributes (test accuracy, run folder, seconds, ...).
    """

    status: str
    value: float | None = None
    attrs: dict[str, Any] | None = None


# ------------------------------------------------------------------------------------------------ storage


def default_storage_url(out_dir: str | Path) -> str:
    """The SQLite file ``out_dir/study.db`` as a storage URL."""
    return f"sqlite:///{(Path(out_dir) / STORAGE_FILE).resolve()}"


def normalize_url(url: str) -> str:
    """``postgresql://`` with the psycopg (3) driver when psycopg2 is absent; other URLs unchanged."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            import importlib.util

            if (
                importlib.util.find_spec("psycopg2") is None
                and importlib.util.find_spec("psycopg") is not None
            ):
                return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _redact(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL that does not parse is shown as given
        return url


def open_storage(url: str, heartbeat: int = DEFAULT_HEARTBEAT) -> RDBStorage:
    """An Optuna RDB storage for ``url`` with heartbeats and re-queuing of dead workers' trials.

    Raises
    ------
    StudyError
        The URL is malformed, its database driver is missing, or the database cannot be reached.
    """
    import sqlalchemy
    from sqlalchemy import Connection, event

    if int(heartbeat) != heartbeat or heartbeat < 1:
        raise StudyError(f"heartbeat must be a whole number of seconds >= 1, got {heartbeat}")
    url = normalize_url(url)
    sqlite = url.startswith("sqlite")
    if sqlite:
        # isolation_level=None: pysqlite leaves transactions to us, and "begin" below makes each one IMMEDIATE.
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 120, "isolation_level": None}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    last_error: Exception | None = None
    for attempt in range(
        5
    ):  # processes creating the tables of a new database at the same instant may collide
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=int(heartbeat),
                    grace_period=GRACE_FACTOR * int(heartbeat),
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=None),
                )
            break
        except ImportError as exc:
            raise StudyError(
                f"no database driver for {_redact(url)} ({exc}); for PostgreSQL: "
                "pip install 'digit-distill[postgresql]'"
            ) from exc
        except sqlalchemy.exc.ArgumentError as exc:
            raise StudyError(f"not a database URL: {_redact(url)} ({exc})") from exc
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            last_error = exc
            collided = isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in str(exc)
            if not collided or attempt == 4:
                raise StudyError(f"cannot open the study storage {_redact(url)}: {_first_line(exc)}") from exc
            time.sleep(0.2 * (attempt + 1))
    else:  # pragma: no cover - the loop either breaks or raises
        raise StudyError(f"cannot open the study storage {_redact(url)}: {last_error}")
    if sqlite:

        @event.listens_for(storage.engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        storage.engine.dispose()
    return storage


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_study(
    storage: RDBStorage,
    name: str,
    config: dict[str, Any],
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Create the study ``name`` (maximising validation accuracy) or load it, checking it was made for ``config``.

    ``config`` (JSON) describes what the study's trials mean (recipe, teacher, grid or ranges, epochs, data);
    it is stored with the study and a process opening it with different settings is refused, naming them.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        sampler=sampler,
        pruner=pruner or optuna.pruners.NopPruner(),
        direction="maximize",
        load_if_exists=True,
    )
    saved = study.user_attrs.get("config")
    if saved is None:
        study.set_user_attr("config", config)
    elif saved != _jsonable(config):
        differ = sorted(k for k in set(saved) | set(config) if saved.get(k) != _jsonable(config).get(k))
        detail = ", ".join(f"{k}: study has {saved.get(k)!r}, asked {config.get(k)!r}" for k in differ)
        raise StudyError(
            f"study {name!r} in {_redact(storage.url)} was made with other settings ({detail}); use the same "
            "settings to continue it, or another --study name / --out folder for a new one"
        )
    return study


def _jsonable(obj: dict[str, Any]) -> dict[str, Any]:
    import json

    copy: dict[str, Any] = json.loads(json.dumps(obj))
    return copy


# --------------------------------------------------------------------------------------------- trial states


def superseded(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that were re-queued (their retry stands for them)."""
    out: set[int] = set()
    for t in trials:
        out.update(t.system_attrs.get("retry_history", []))
    return out


def trial_status(t: FrozenTrial, retried: set[int]) -> str:
    """What a trial means for its cell.

    ``complete``, ``pruned``, ``diverged``, ``duplicate``, ``running``, ``waiting``, ``retried`` (a failed
    trial re-queued as a later one), or ``failed`` (an error with no retry left).
    """
    status = t.user_attrs.get("status")
    if t.state == TrialState.COMPLETE:
        return "complete"
    if t.state == TrialState.RUNNING:
        return "running"
    if t.state == TrialState.WAITING:
        return "waiting"
    if t.state == TrialState.PRUNED:
        return "duplicate" if status == "duplicate" else "pruned"
    if status == "diverged":
        return "diverged"
    return "retried" if t.number in retried else "failed"


#: Statuses that settle a cell (grid) or count towards the number of trials asked (search).
FINAL = ("complete", "pruned", "diverged", "failed")
LIVE = ("running", "waiting")


def grid_cell(t: FrozenTrial, size: int) -> int | None:
    """The grid cell (GridSampler's grid id) a trial holds; a trial just created may not have written it yet."""
    cell = t.system_attrs.get("grid_id")
    if cell is None and t.number < size and "fixed_params" not in t.system_attrs:
        return t.number  # GridSampler gives trial k < size the cell k
    return cell


# ------------------------------------------------------------------------------------------------- workers


class Work:
    """One study and the job that runs a trial of it, worked on by :func:`run_worker`.

    Parameters
    ----------
    storage
        The study's storage (:func:`open_storage`).
    study
        The study (grid: GridSampler; search: any sampler, usually with a pruner).
    job
        ``job(trial) -> Outcome``: suggests the trial's parameters (the grid's names for a grid), runs one job,
        reports per-epoch validation accuracy through ``trial.report`` for pruning.
    grid_size
        Number of grid cells (GridSampler), or None for a search.
    n_trials
        For a search: how many settled trials are asked for (all processes together).
    """

    def __init__(
        self,
        storage: RDBStorage,
        study: optuna.Study,
        job: Callable[[optuna.Trial], Outcome],
        *,
        grid_size: int | None = None,
        n_trials: int | None = None,
    ):
        if (grid_size is None) == (n_trials is None):
            raise ValueError("a Work is either a grid (grid_size) or a search (n_trials)")
        self.study = study
        self.storage = storage
        self.job = job
        self.grid_size = grid_size
        self.n_trials = n_trials
        self._current: optuna.Trial | None = None

    # ---- what is left
    def _statuses(self) -> list[tuple[FrozenTrial, str]]:
        trials = self.study.get_trials(deepcopy=False)
        retried = superseded(trials)
        return [(t, trial_status(t, retried)) for t in trials]

    def has_work(self) -> bool:
        """Whether this process can start something now: a queued trial, a free cell, or search budget."""
        statuses = self._statuses()
        if any(s == "waiting" for _, s in statuses):
            return True
        if self.grid_size is not None:
            taken = {grid_cell(t, self.grid_size) for t, s in statuses if s in FINAL + LIVE}
            return len(taken - {None}) < self.grid_size
        return self.n_trials is not None and sum(s in FINAL + LIVE for _, s in statuses) < self.n_trials

    def has_running(self) -> bool:
        """Whether some trial is running (here, elsewhere, or in a dead process not yet detected)."""
        return any(s == "running" for _, s in self._statuses())

    def fail_silent(self) -> None:
        """Fail and re-queue running trials that never sent a heartbeat, started ``SILENT_FACTOR`` beats ago.

        Optuna's stale-trial check only sees trials with a heartbeat; a process killed between taking a trial and
        its first heartbeat (a few milliseconds) would otherwise leave the trial running forever.
        """
        from datetime import datetime

        limit = SILENT_FACTOR * (self.storage.heartbeat_interval or DEFAULT_HEARTBEAT)
        study_id = self.storage.get_study_id_from_name(self.study.study_name)
        for t in self.storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            if "first_trial" in t.user_attrs or t.datetime_start is None:
                continue  # it has sent a heartbeat: Optuna's own check covers it
            if (datetime.now() - t.datetime_start).total_seconds() <= limit:
                continue
            if "first_trial" in self.storage.get_trial(t._trial_id).user_attrs:
                continue  # its first heartbeat came just now
            try:
                if not self.storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker got there first
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                RetryHeartbeatStaleTrialCallback(max_retry=None)(
                    self.study, self.storage.get_trial(t._trial_id)
                )

    # ---- running one trial
    def _is_duplicate(self, trial: optuna.Trial, frozen: FrozenTrial) -> int | None:
        """For a late grid trial: the number of another trial holding its cell, or None."""
        if self.grid_size is None or trial.number < self.grid_size or "failed_trial" in frozen.system_attrs:
            return None
        cell = grid_cell(frozen, self.grid_size)
        for t, s in self._statuses():
            if (
                t.number != trial.number
                and s in ("complete", "running", "waiting")
                and grid_cell(t, self.grid_size) == cell
            ):
                return t.number
        return None

    def _objective(self, trial: optuna.Trial) -> float:
        self._current = trial
        # A first heartbeat now, before any work: Optuna only detects a dead trial by a stale heartbeat, and its
        # heartbeat thread may not have written one yet when a process is killed early in the trial.
        self.storage.record_heartbeat(trial._trial_id)
        frozen = self.storage.get_trial(trial._trial_id)
        # The first trial of a chain of re-queued ones: a job keyed on it continues the same run folder.
        trial.set_user_attr("first_trial", frozen.system_attrs.get("failed_trial", trial.number))
        other = self._is_duplicate(trial, frozen)
        if other is not None:
            trial.set_user_attr("status", "duplicate")
            trial.set_user_attr("duplicate_of", other)
            raise optuna.TrialPruned(f"cell already held by trial {other}")
        outcome = self.job(trial)
        for key, value in (outcome.attrs or {}).items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("status", outcome.status)
        if outcome.status == "complete":
            if outcome.value is None or not math.isfinite(outcome.value):
                raise ValueError(f"a complete trial needs a finite value, got {outcome.value}")
            return outcome.value
        if outcome.status == "pruned":
            raise optuna.TrialPruned()
        if outcome.status == "diverged":
            raise _Diverged()
        if outcome.status == "stopped":
            raise TrialStopped("stopped; run the same command again to continue")
        raise ValueError(f"unknown job status {outcome.status!r}")

    def run_one(self) -> None:
        """Ask the study for one trial (a queued one first) and run it; a stop or an error re-queues it."""
        self._current = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.optimize(self._objective, n_trials=1, catch=(_Diverged,), gc_after_trial=False)
        except BaseException as exc:
            if self._current is not None:
                self._requeue(self._current.number, exc)
            raise

    def _requeue(self, number: int, exc: BaseException) -> None:
        """Queue the failed trial ``number`` again (a stop always; an error up to MAX_ERROR_RETRIES times)."""
        frozen = next((t for t in self.study.get_trials(deepcopy=False) if t.number == number), None)
        if frozen is None or frozen.state != TrialState.FAIL:
            return
        stopped = isinstance(exc, TrialStopped | KeyboardInterrupt)
        status = "stopped" if stopped else "error"
        self.study._storage.set_trial_user_attr(frozen._trial_id, "status", status)
        if not stopped:
            self.study._storage.set_trial_user_attr(frozen._trial_id, "error", f"{type(exc).__name__}: {exc}")
        if stopped or len(frozen.system_attrs.get("retry_history", [])) < MAX_ERROR_RETRIES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                RetryHeartbeatStaleTrialCallback(max_retry=None)(self.study, frozen)


def run_worker(
    works: list[Work],
    should_stop: Callable[[], bool] = lambda: False,
    poll: float = DEFAULT_HEARTBEAT,
    on_wait: Callable[[], None] | None = None,
) -> None:
    """Work on ``works`` in order until none has anything left to start or running.

    Each round fails the trials of dead workers (re-queuing them), then runs one trial of the first study
    that has work; when none has, it waits ``poll`` seconds while other processes' trials are running (one of
    them may be dead and will be re-queued once its heartbeat is stale), and returns when nothing is running.
    """
    while not should_stop():
        for work in works:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(work.study)
            work.fail_silent()
        ready = next((w for w in works if w.has_work()), None)
        if ready is not None:
            ready.run_one()
            continue
        if not any(w.has_running() for w in works):
            return
        if on_wait:
            on_wait()
        deadline = time.monotonic() + poll
        while time.monotonic() < deadline and not should_stop():
            time.sleep(min(0.5, poll))
