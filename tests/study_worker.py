"""A sweep worker with a trivial job, for the concurrency tests: ``python -m tests.study_worker URL NAME LOG``.

Each trial appends ``start <cell> <pid>`` and ``end <cell> <pid>`` lines to LOG (one small O_APPEND write each)
and sleeps ``--seconds`` in between, so tests can count how often each cell's job started and finished.
"""

from __future__ import annotations

import argparse
import os
import time

import optuna

from core.studies import Outcome, Work, open_storage, open_study, run_worker

GRID = {"temperature": [2.0, 4.0], "alpha": [0.5, 0.9]}


def _log(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{text} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("name")
    parser.add_argument("log")
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--heartbeat", type=int, default=1)
    args = parser.parse_args()
    storage = open_storage(args.url, heartbeat=args.heartbeat)
    study = open_study(storage, args.name, {"grid": GRID}, optuna.samplers.GridSampler(GRID, seed=0))

    def job(trial: optuna.Trial) -> Outcome:
        t = trial.suggest_float("temperature", 2.0, 4.0, log=True)
        a = trial.suggest_float("alpha", 0.5, 0.9)
        cell = f"T{t:g}-a{a:g}"
        _log(args.log, f"start {cell}")
        time.sleep(args.seconds)
        _log(args.log, f"end {cell}")
        return Outcome("complete", value=t * a, attrs={"cell": cell})

    run_worker([Work(storage, study, job, grid_size=4)], poll=args.heartbeat)


if __name__ == "__main__":
    main()
