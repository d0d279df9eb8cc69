"""``sweep``: the distilled student's temperature and alpha chosen on a validation split, as an Optuna study.

Two ways to look for good settings, both Optuna studies run through :mod:`core.studies` (storage, workers,
dead-worker recovery) and both choosing on the validation split, never on the test set:

- a **grid** of temperatures x alphas (x seeds) with :class:`optuna.samplers.GridSampler`;
- a **search** (``search=N``): N trials of Optuna's default sampler (TPE) over T in [1, 20] (log), alpha in
  [0, 1] and, if asked, the learning rate (log) and the number of epochs, with a median pruner on the per-epoch
  validation accuracy.

Every trial is one job of the one job runner (:func:`core.jobs.run_job`): the recipe's distilled student,
without the augmentation pool (the teacher's logits are computed once per process), in its own run folder under
``out_dir/runs`` (a grid cell's folder is named after the cell, so a re-queued trial continues its checkpoint).
The plain student of the same recipe, same epochs and same data is trained per seed in a second, small study
(``<name>-baseline``) so that each cell's gain is measured against a matching baseline.

The validation split is the last ``validation`` (default 5,000) images of the training set
(:meth:`core.data.MNIST.hold_out_validation`); the trials never train on them. :func:`sweep_report` reads a
study back: validation accuracy per cell (the heatmap), the chosen settings, and their test accuracy, reported
separately.

Kept in one module: the grid and the search share the trial code, the studies and the report.
"""

from __future__ import annotations

import math
import multiprocessing
import signal
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage

from core.data import VALIDATION_SIZE
from core.fileio import atomic_write_json
from core.progress import NullProgress, Progress
from core.studies import (
    DEFAULT_HEARTBEAT,
    DEFAULT_STUDY,
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

SWEEP_RESULTS = "sweep.json"
DEFAULT_TEMPERATURES = (1.0, 2.0, 4.0, 6.0, 10.0, 20.0)
DEFAULT_ALPHAS = (0.1, 0.5, 0.9)
#: The search's ranges (issue 16): temperature on a log scale, alpha linear.
SEARCH_TEMPERATURE = (1.0, 20.0)
SEARCH_ALPHA = (0.0, 1.0)


class SweepStopped(RuntimeError):
    """The person stopped the sweep; running the same command again continues the study."""


@dataclass
class SweepOptions:
    """One sweep: what it trains, what it searches, where the study lives, how this process runs."""

    teacher: Path | None
    out_dir: Path
    recipe: str = "strong"
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    seeds: int = 1
    search: int | None = None
    search_lr: tuple[float, float] | None = None
    search_epochs: tuple[int, int] | None = None
    epochs: int | None = None
    max_train_samples: int | None = None
    validation: int = VALIDATION_SIZE
    device: str = "auto"
    threads: int = 0
    data_dir: str | None = None
    storage: str | None = None
    study: str = DEFAULT_STUDY
    heartbeat: int = DEFAULT_HEARTBEAT
    command: str = ""

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.temperatures = tuple(float(t) for t in self.temperatures)
        self.alphas = tuple(float(a) for a in self.alphas)
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        for t in self.temperatures:
            if not (t > 0 and math.isfinite(t)):
                raise ValueError(f"temperatures must be finite and > 0, got {t}")
        for a in self.alphas:
            if not 0 <= a <= 1:
                raise ValueError(f"alphas must be in [0, 1], got {a}")
        if not self.temperatures or not self.alphas:
            raise ValueError("a grid needs at least one temperature and one alpha")
        if len(set(self.temperatures)) != len(self.temperatures) or len(set(self.alphas)) != len(self.alphas):
            raise ValueError("temperatures and alphas must not repeat a value")
        if self.search is not None and self.search < 1:
            raise ValueError(f"--search needs a number of trials >= 1, got {self.search}")
        for name, rng in (("learning-rate", self.search_lr), ("epochs", self.search_epochs)):
            if rng is not None and not (0 < rng[0] < rng[1] and math.isfinite(rng[1])):
                raise ValueError(f"the {name} range must be MIN,MAX with 0 < MIN < MAX, got {rng}")
        if (self.search_lr or self.search_epochs) and self.search is None:
            raise ValueError("learning-rate and epochs ranges are for --search")

    @property
    def storage_url(self) -> str:
        """The study's database: ``--storage`` or the SQLite file in the sweep's folder."""
        return self.storage or default_storage_url(self.out_dir)

    @property
    def mode(self) -> str:
        """``grid`` or ``search``."""
        return "grid" if self.search is None else "search"


def study_config(o: SweepOptions) -> dict[str, Any]:
    """What the study's trials mean; a process opening the study with other settings is refused."""
    config: dict[str, Any] = {
        "mode": o.mode,
        "recipe": o.recipe,
        "teacher": teacher_name(o.teacher),
        "epochs": o.epochs,
        "max_train_samples": o.max_train_samples,
        "validation": o.validation,
        "seeds": o.seeds,
    }
    if o.mode == "grid":
        config |= {"temperatures": list(o.temperatures), "alphas": list(o.alphas)}
    else:
        config |= {
            "temperature_range": list(SEARCH_TEMPERATURE),
            "alpha_range": list(SEARCH_ALPHA),
            "lr_range": list(o.search_lr) if o.search_lr else None,
            "epochs_range": list(o.search_epochs) if o.search_epochs else None,
        }
    return config


def teacher_name(path: Path | None) -> str | None:
    """The teacher's run-folder name: the same on every machine, wherever the folder was copied to."""
    if path is None:
        return None
    path = Path(path).expanduser().resolve()
    return (path.parent if path.is_file() else path).name


# ---------------------------------------------------------------------------------------------- trials


def is_trial_event(info: dict[str, Any]) -> bool:
    """True for the ``on_epoch`` dict of a finished trial (what a sweep reports to its progress)."""
    return {"study", "number", "status", "params"} <= info.keys()


class _TrialProgress(NullProgress):
    """The job's progress for one trial: reports each epoch's validation accuracy to Optuna, stops if pruned.

    The job's batches, epochs and status lines stay here: the sweep's own progress hears of finished trials.
    """

    def __init__(self, trial: optuna.Trial, sweep: Progress, prune: bool):
        self.trial, self.sweep, self.prune = trial, sweep, prune
        self.pruned = False

    def on_epoch(self, info: dict[str, Any]) -> None:  # noqa: D102
        if info.get("val_acc") is not None:
            self.trial.report(info["val_acc"], info["epoch"])
            if self.prune and self.trial.should_prune():
                self.pruned = True

    def should_stop(self) -> bool:  # noqa: D102
        return self.pruned or self.sweep.should_stop()


class _Jobs:
    """One process's side of a sweep: the data and the job cache shared by its trials."""

    def __init__(self, o: SweepOptions, progress: Progress):
        from core.data import load_mnist
        from core.jobdata import JobCache

        self.o = o
        self.progress = progress
        self.data = load_mnist(o.data_dir)
        self.cache = JobCache()  # the prepared data and the teacher's logits, shared by this process's trials

    def run(self, trial: optuna.Trial, role: str) -> Outcome:
        """Suggest the trial's settings, run its job, and say what came of it."""
        from core.jobs import JobSpec, run_job

        o = self.o
        overrides: dict[str, Any] = {"pool_copies": 0, "augment": False, "epochs": o.epochs}
        if role == "student":
            seed = trial.suggest_int("seed", 0, o.seeds - 1)
            name = f"student-seed{seed}"
        elif o.mode == "grid":
            t = trial.suggest_float("temperature", min(o.temperatures), max(o.temperatures), log=True)
            a = trial.suggest_float("alpha", min(o.alphas), max(o.alphas))
            seed = trial.suggest_int("seed", 0, o.seeds - 1)
            overrides |= {"temperature": t, "alpha": a}
            name = f"T{t:g}-a{a:g}-seed{seed}"
        else:
            overrides["temperature"] = trial.suggest_float("temperature", *SEARCH_TEMPERATURE, log=True)
            overrides["alpha"] = trial.suggest_float("alpha", *SEARCH_ALPHA)
            if o.search_lr:
                overrides["lr"] = trial.suggest_float("lr", *o.search_lr, log=True)
            if o.search_epochs:
                overrides["epochs"] = trial.suggest_int(
                    "epochs", int(o.search_epochs[0]), int(o.search_epochs[1])
                )
            seed = 0
            name = f"trial{trial.user_attrs['first_trial']:04d}"  # a re-queued trial continues its run
        spec = JobSpec(
            recipe=o.recipe,
            role="distilled" if role != "student" else "student",
            overrides={k: v for k, v in overrides.items() if v is not None},
            teacher_run=o.teacher if role != "student" else None,
            seed=seed,
            device=o.device,
            max_train_samples=o.max_train_samples,
            validation=o.validation,
            data_dir=Path(o.data_dir) if o.data_dir else None,
            runs_root=o.out_dir / "runs",
            run_name=name,
            export=False,
        )
        progress = _TrialProgress(trial, self.progress, prune=o.mode == "search" and role != "student")
        result = run_job(spec, progress, data=self.data, cache=self.cache)
        history = result.history
        last = history[-1] if history else {}
        status = result.status
        if status == "stopped" and progress.pruned:
            status = "pruned"
        attrs = {
            "role": role,
            "run": name,
            "val_acc": last.get("val_acc"),
            "test_acc": last.get("test_acc"),
            "epochs_done": len(history),
            "seconds": round(sum(h["seconds"] for h in history), 2),
            "message": result.message or None,
        }
        self.progress.on_epoch(
            {
                "study": trial.study.study_name,
                "number": trial.number,
                "status": status,
                "params": dict(trial.params),
                **attrs,
            }
        )
        return Outcome(
            status, value=last.get("val_acc"), attrs={k: v for k, v in attrs.items() if v is not None}
        )


def _samplers(
    o: SweepOptions,
) -> tuple[
    optuna.samplers.BaseSampler, int | None, optuna.pruners.BasePruner | None, optuna.samplers.BaseSampler
]:
    if o.mode == "grid":
        space: dict[str, list[float] | list[int]] = {
            "temperature": list(o.temperatures),
            "alpha": list(o.alphas),
            "seed": list(range(o.seeds)),
        }
        main: optuna.samplers.BaseSampler = optuna.samplers.GridSampler(space, seed=0)
        size: int | None = len(o.temperatures) * len(o.alphas) * o.seeds
        pruner: optuna.pruners.BasePruner | None = None
    else:
        main = optuna.samplers.TPESampler()
        size = None
        pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    baseline = optuna.samplers.GridSampler({"seed": list(range(o.seeds))}, seed=0)
    return main, size, pruner, baseline


def open_sweep(o: SweepOptions) -> tuple[RDBStorage, optuna.Study, optuna.Study]:
    """The storage and the two studies of a sweep (created, or loaded and checked against ``o``)."""
    storage = open_storage(o.storage_url, o.heartbeat)
    main_sampler, _, pruner, base_sampler = _samplers(o)
    config = study_config(o)
    base_config = {k: config[k] for k in ("recipe", "epochs", "max_train_samples", "validation", "seeds")}
    base_config["role"] = "student"
    main = open_study(storage, o.study, config, main_sampler, pruner)
    baseline = open_study(storage, f"{o.study}-baseline", base_config, base_sampler)
    if o.mode == "search":
        main.set_user_attr("trials", max(o.search, main.user_attrs.get("trials", 0)))
    main.set_user_attr("command", o.command)
    if o.teacher is not None and "teacher_info" not in main.user_attrs:
        from core import runs

        info = runs.read_run(Path(o.teacher).parent if Path(o.teacher).is_file() else Path(o.teacher))
        main.set_user_attr("teacher_info", {"test_accuracy": info.test_accuracy, "epochs": info.epochs_done})
    return storage, baseline, main


def run_sweep_worker(o: SweepOptions, progress: Progress | None = None) -> None:
    """Work on the sweep's studies in this process until nothing is left to start or running.

    ``progress`` hears of each finished trial as one ``on_epoch`` dict (:func:`is_trial_event`: study, number,
    status, params, role, run, val_acc, test_acc, epochs_done, seconds, message); its ``should_stop()`` stops
    the running trial after its batch.

    Raises :class:`SweepStopped` when the person stopped it (the interrupted trial is re-queued).
    """
    import torch

    from core.studies import TrialStopped

    progress = progress or NullProgress()
    if o.threads:
        torch.set_num_threads(o.threads)
    storage, baseline, main = open_sweep(o)
    _, size, _, _ = _samplers(o)
    jobs = _Jobs(o, progress)
    works = [
        Work(storage, baseline, lambda trial: jobs.run(trial, "student"), grid_size=o.seeds),
        Work(storage, main, lambda trial: jobs.run(trial, "distilled"), grid_size=size, n_trials=o.search),
    ]
    try:
        run_worker(works, should_stop=progress.should_stop, poll=o.heartbeat)
    except TrialStopped as exc:
        raise SweepStopped("sweep stopped; run the same command again to continue") from exc
    if progress.should_stop():
        raise SweepStopped("sweep stopped; run the same command again to continue")


class _WorkerProgress(NullProgress):
    """A ``--workers`` process's progress: the trials go to (a copy of) the caller's, Ctrl+C here stops."""

    def __init__(self, inner: Progress):
        self.inner = inner
        self.stop = False

    def on_epoch(self, info: dict[str, Any]) -> None:  # noqa: D102
        self.inner.on_epoch(info)

    def status(self, text: str) -> None:  # noqa: D102
        self.inner.status(text)

    def should_stop(self) -> bool:  # noqa: D102
        return self.stop


def _worker_process(o: SweepOptions, progress: Progress) -> None:
    """Entry point of a ``--workers`` process: Ctrl+C stops its current trial after the batch."""
    worker = _WorkerProgress(progress)
    signal.signal(signal.SIGINT, lambda *_: setattr(worker, "stop", True))
    try:
        run_sweep_worker(o, worker)
    except SweepStopped:
        raise SystemExit(130) from None


def sweep(
    o: SweepOptions,
    workers: int = 1,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the sweep with ``workers`` Optuna worker processes here, then write and return ``out_dir/sweep.json``.

    Other machines (or other commands) may work on the same study at the same time; this returns when no trial
    is left to start or running anywhere. ``progress`` hears of each finished trial of this machine (see
    :func:`run_sweep_worker`); with ``workers`` > 1 each worker process reports to a copy of it (it must pickle),
    and its ``should_stop()`` is checked when they have ended.
    """
    o.out_dir.mkdir(parents=True, exist_ok=True)
    open_sweep(o)  # create (or check) the studies once, before the workers start
    if workers <= 1:
        run_sweep_worker(o, progress)
    else:
        ctx = multiprocessing.get_context("spawn")
        report = progress or NullProgress()
        procs = [ctx.Process(target=_worker_process, args=(o, report), daemon=False) for _ in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        codes = [p.exitcode for p in procs]
        if any(c == 130 for c in codes) or (progress and progress.should_stop()):
            raise SweepStopped("sweep stopped; run the same command again to continue")
        failed = [c for c in codes if c != 0]
        if failed:
            raise StudyError(f"{len(failed)} of {workers} worker processes failed (see their messages above)")
    result = sweep_report(o.storage_url, o.study)
    atomic_write_json(o.out_dir / SWEEP_RESULTS, result)
    return result


# ---------------------------------------------------------------------------------------------- report


def _rows(study: optuna.Study) -> list[dict[str, Any]]:
    trials = study.get_trials(deepcopy=False)
    retried = superseded(trials)
    rows = []
    for t in trials:
        status = trial_status(t, retried)
        if status in ("retried", "duplicate"):
            continue
        rows.append(
            {
                "trial": t.number,
                "status": status,
                **{k: t.params[k] for k in sorted(t.params)},
                "val_acc": t.user_attrs.get("val_acc"),
                "test_acc": t.user_attrs.get("test_acc"),
                "epochs_done": t.user_attrs.get("epochs_done"),
                "seconds": t.user_attrs.get("seconds"),
                "run": t.user_attrs.get("run"),
            }
        )
    return rows


def _recipe_epochs(recipe: str | None) -> int | None:
    from core.recipes import RECIPES

    return RECIPES[recipe].distilled.epochs if recipe in RECIPES else None


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def sweep_report(storage_url: str, study_name: str = DEFAULT_STUDY) -> dict[str, Any]:
    """A study read back: validation accuracy per setting, the settings chosen on it, their test accuracy.

    The content of ``sweep.json`` (documented in docs/RESULTS.md). Accuracies are fractions; a grid cell with
    no complete trial has ``None`` and its trials' statuses in ``cells``.
    """
    storage = open_storage(storage_url)
    names = {s.study_name for s in optuna.study.get_all_study_summaries(storage)}
    if study_name not in names:
        raise StudyError(
            f"no study {study_name!r} in {storage_url} (studies there: {sorted(names) or 'none'})"
        )
    main = optuna.load_study(study_name=study_name, storage=storage)
    config = main.user_attrs.get("config", {})
    rows = _rows(main)
    base_rows = []
    if f"{study_name}-baseline" in names:
        base_rows = _rows(optuna.load_study(study_name=f"{study_name}-baseline", storage=storage))
    done = [r for r in rows if r["status"] == "complete"]
    base_done = [r for r in base_rows if r["status"] == "complete"]
    out = {
        "study": study_name,
        "storage": storage_url if storage_url.startswith("sqlite") else storage_url.split("@")[-1],
        "mode": config.get("mode"),
        "config": config,
        "command": main.user_attrs.get("command", ""),
        "recipe": config.get("recipe"),
        "teacher": config.get("teacher"),
        "teacher_accuracy": main.user_attrs.get("teacher_info", {}).get("test_accuracy"),
        "teacher_epochs": main.user_attrs.get("teacher_info", {}).get("epochs"),
        "epochs": config.get("epochs") or _recipe_epochs(config.get("recipe")),
        "seeds": config.get("seeds"),
        "selection": "validation accuracy (last epoch); test accuracy reported separately",
        "validation": {"source": "training set", "count": config.get("validation"), "last": True},
        "student_val_accuracy": _mean([r["val_acc"] for r in base_done]),
        "student_test_accuracy": _mean([r["test_acc"] for r in base_done]),
        "trials": rows,
        "baseline_trials": base_rows,
        "counts": {s: sum(r["status"] == s for r in rows) for s in sorted({r["status"] for r in rows})},
        "seconds": round(sum(r["seconds"] or 0 for r in rows + base_rows), 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    best = None
    if config.get("mode") == "grid":
        temps, alphas = config["temperatures"], config["alphas"]
        val, test, cells = [], [], []
        for t in temps:
            val_line, test_line, cell_line = [], [], []
            for a in alphas:
                mine = [r for r in rows if r.get("temperature") == t and r.get("alpha") == a]
                ok = [r for r in mine if r["status"] == "complete"]
                val_line.append(_mean([r["val_acc"] for r in ok]))
                test_line.append(_mean([r["test_acc"] for r in ok]))
                cell_line.append(sorted({r["status"] for r in mine}) or ["missing"])
                if ok and (best is None or val_line[-1] > best["val_accuracy"]):
                    best = {
                        "temperature": t,
                        "alpha": a,
                        "val_accuracy": val_line[-1],
                        "test_accuracy": test_line[-1],
                        "seeds": len(ok),
                    }
            val.append(val_line)
            test.append(test_line)
            cells.append(cell_line)
        out |= {
            "temperatures": temps,
            "alphas": alphas,
            "val_accuracy": val,
            "test_accuracy": test,
            "cells": cells,
        }
    elif done:
        top = max(done, key=lambda r: r["val_acc"])
        best = {k: top.get(k) for k in ("temperature", "alpha", "lr", "epochs") if top.get(k) is not None}
        best |= {"val_accuracy": top["val_acc"], "test_accuracy": top["test_acc"], "trial": top["trial"]}
    out["best"] = best
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def format_sweep(result: dict[str, Any]) -> str:
    """The study as plain text: the grid (validation accuracy) or the best trials, and the chosen settings."""
    base = result.get("student_val_accuracy")
    lines = []
    if result.get("mode") == "grid":
        lines.append("validation accuracy (gain over the student trained normally, in pp)")
        lines.append(f"{'T / alpha':>10}" + "".join(f"{a:>18g}" for a in result["alphas"]))
        for t, line, cells in zip(result["temperatures"], result["val_accuracy"], result["cells"]):
            shown = []
            for acc, status in zip(line, cells):
                if acc is None:
                    shown.append("/".join(status))
                else:
                    gain = f" ({100 * (acc - base):+.2f})" if base is not None else ""
                    shown.append(f"{100 * acc:.2f}%{gain}")
            lines.append(f"{t:>10g}" + "".join(f"{c:>18}" for c in shown))
    else:
        done = sorted((r for r in result["trials"] if r["status"] == "complete"), key=lambda r: -r["val_acc"])
        lines.append(
            f"{'trial':>6} {'T':>7} {'alpha':>6} {'lr':>9} {'epochs':>6} {'validation':>10} {'test':>8}"
        )
        for r in done[:10]:
            lines.append(
                f"{r['trial']:>6} {r['temperature']:>7.3g} {r['alpha']:>6.3f} {r.get('lr') or '-':>9.3g} "
                f"{r.get('epochs') or '-':>6} {_pct(r['val_acc']):>10} {_pct(r['test_acc']):>8}"
            )
        lines.append("trials: " + ", ".join(f"{n} {s}" for s, n in result["counts"].items()))
    if base is not None:
        lines.append(
            f"student trained normally: validation {_pct(base)}, test {_pct(result['student_test_accuracy'])}"
        )
    best = result.get("best")
    if best:
        chosen = ", ".join(
            f"{k}={best[k]:g}" for k in ("temperature", "alpha", "lr", "epochs") if best.get(k) is not None
        )
        lines.append(
            f"chosen on validation: {chosen}: validation {_pct(best['val_accuracy'])}; "
            f"its test accuracy {_pct(best['test_accuracy'])}"
        )
    return "\n".join(lines)
