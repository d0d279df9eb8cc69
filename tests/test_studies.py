"""Optuna studies shared by several processes: every grid cell runs once, a killed worker's cell is re-run once.

The workers here run a trivial job (``tests/study_worker.py``) so that the tests are about the study machinery;
tests/test_sweep.py runs the real ``digit-distill sweep`` command the same way.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import optuna
import pytest

from core.studies import (
    Outcome,
    StudyError,
    Work,
    default_storage_url,
    open_storage,
    open_study,
    run_worker,
    superseded,
    trial_status,
)

ROOT = Path(__file__).resolve().parents[1]
CELLS = {"T2-a0.5", "T2-a0.9", "T4-a0.5", "T4-a0.9"}
DEFAULT_POSTGRES = "postgresql://digit_distill:digit_distill@127.0.0.1:5432/digit_distill_test"


def _worker(url: str, name: str, log: Path, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tests.study_worker", url, name, str(log), "--seconds", str(seconds)]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _finish(*procs: subprocess.Popen) -> None:
    try:
        for p in procs:
            out, _ = p.communicate(timeout=240)
            assert p.returncode == 0, out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _log_lines(log: Path) -> list[tuple[str, str, int]]:
    if not log.exists():
        return []
    return [(w[0], w[1], int(w[2])) for w in (line.split() for line in log.read_text().splitlines())]


def _check_one_complete_trial_per_cell(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=url)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.user_attrs["cell"] for t in complete) == sorted(CELLS)
    return study.trials


def _two_workers_share_one_study(url: str, name: str, log: Path) -> None:
    a, b = _worker(url, name, log, 0.5), _worker(url, name, log, 0.5)
    _finish(a, b)
    trials = _check_one_complete_trial_per_cell(url, name)
    assert len(trials) == 4
    lines = _log_lines(log)
    starts = collections.Counter(cell for what, cell, _ in lines if what == "start")
    assert starts == dict.fromkeys(CELLS, 1)  # no cell's job ever started twice


def test_two_processes_run_each_grid_cell_once(tmp_path):
    _two_workers_share_one_study(default_storage_url(tmp_path), "grid", tmp_path / "log")


def test_a_killed_worker_is_replaced_and_finished_cells_are_not_repeated(tmp_path):
    url, log = default_storage_url(tmp_path), tmp_path / "log"
    a, b = _worker(url, "grid", log, 3.0), _worker(url, "grid", log, 3.0)
    procs = [a, b]
    try:
        deadline = time.monotonic() + 120
        while not any(what == "start" and pid == a.pid for what, _, pid in _log_lines(log)):
            assert time.monotonic() < deadline and a.poll() is None, "worker A never started a cell"
            time.sleep(0.1)
        a.send_signal(signal.SIGKILL)  # mid-way through its cell: no chance to clean up
        a.wait()
        killed_cell = next(cell for what, cell, pid in _log_lines(log) if what == "start" and pid == a.pid)
        procs.append(_worker(url, "grid", log, 3.0))  # the same command again
        _finish(*procs[1:])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    trials = _check_one_complete_trial_per_cell(url, "grid")
    lines = _log_lines(log)
    ends = collections.Counter(cell for what, cell, _ in lines if what == "end")
    starts = collections.Counter(cell for what, cell, _ in lines if what == "start")
    assert ends == dict.fromkeys(CELLS, 1)
    assert starts == {**dict.fromkeys(CELLS, 1), killed_cell: 2}  # only the killed cell ran again
    # The killed trial went stale (no heartbeat), was failed and re-queued once.
    retried = superseded(trials)
    statuses = collections.Counter(trial_status(t, retried) for t in trials)
    assert statuses == {"complete": 4, "retried": 1}


def test_a_trial_taken_by_a_process_that_died_before_its_first_heartbeat_is_taken_over(tmp_path, monkeypatch):
    import core.studies
    from tests.study_worker import GRID

    # Taken over after 1 silent heartbeat interval (1 s) instead of 10: the test waits 1.2 s, not 10.5 s.
    monkeypatch.setattr(core.studies, "SILENT_FACTOR", 1)
    storage = open_storage(default_storage_url(tmp_path), heartbeat=1)
    study = open_study(storage, "grid", {"grid": GRID}, optuna.samplers.GridSampler(GRID, seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UserWarning
        )  # "heartbeat ... supposed to be used with Study.optimize"
        orphan = study.ask()  # RUNNING, no heartbeat, and its process "gone"
    time.sleep(1.2)  # longer than SILENT_FACTOR heartbeats (1 x 1 s)
    ran = []

    def job(trial):
        t = trial.suggest_float("temperature", 2.0, 4.0, log=True)
        a = trial.suggest_float("alpha", 0.5, 0.9)
        ran.append((t, a))
        return Outcome("complete", value=t * a)

    run_worker([Work(storage, study, job, grid_size=4)], poll=1)
    assert sorted(ran) == sorted((t, a) for t in GRID["temperature"] for a in GRID["alpha"])
    trials = study.get_trials()
    assert trials[orphan.number].state == optuna.trial.TrialState.FAIL
    retried = superseded(trials)
    assert collections.Counter(trial_status(t, retried) for t in trials) == {"complete": 4, "retried": 1}


def test_a_study_with_other_settings_is_refused(tmp_path):
    storage = open_storage(default_storage_url(tmp_path), heartbeat=5)
    sampler = optuna.samplers.GridSampler({"alpha": [0.5]}, seed=0)
    open_study(storage, "s", {"alphas": [0.5], "epochs": 1}, sampler)
    assert open_study(storage, "s", {"alphas": [0.5], "epochs": 1}, sampler).study_name == "s"
    with pytest.raises(StudyError, match=r"other settings \(epochs: study has 1, asked 2\)"):
        open_study(storage, "s", {"alphas": [0.5], "epochs": 2}, sampler)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nosuchdb://x", "no database driver|not a database URL|cannot open"),
        ("postgresql://u:secret@127.0.0.1:1/db", "cannot open the study storage postgresql"),
    ],
)
def test_bad_storage_is_a_clear_error(url, message):
    with pytest.raises(StudyError, match=message) as info:
        open_storage(url)
    assert "secret" not in str(info.value)


@pytest.fixture(scope="module")
def postgres_url():
    """A reachable PostgreSQL server: $DIGIT_DISTILL_TEST_POSTGRES, else the one .ci/start-postgres starts."""
    url = os.environ.get("DIGIT_DISTILL_TEST_POSTGRES") or DEFAULT_POSTGRES
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'digit-distill[postgresql]')")
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        pytest.skip(
            f"no PostgreSQL server at {url.split('@')[-1]} ({str(exc).strip().splitlines()[0]}); "
            "`bash .ci/start-postgres` starts one (as root), or set DIGIT_DISTILL_TEST_POSTGRES"
        )
    return url


def test_two_processes_share_a_study_on_postgresql(postgres_url, tmp_path):
    _two_workers_share_one_study(postgres_url, f"grid-{uuid.uuid4().hex[:8]}", tmp_path / "log")
