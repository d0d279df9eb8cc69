"""The paper's experiment, reproduced: teacher, the student trained normally, the distilled student, over seeds.

``reproduce`` trains (or reuses) one teacher, then for every seed a plain student and a distilled student with
identical epochs, optimiser and data, and writes a ``results.json`` with the paper's three measures (parameter
reduction, accuracy gap, KD gain). Every job is a :class:`core.jobs.JobSpec` run by :func:`core.jobs.run_job` in
its own named folder under ``DIR/runs`` (config, per-epoch metrics, checkpoint, ONNX), so each number traces back
to the job that produced it, and an interrupted ``reproduce`` continues where it stopped when started again
with the same ``DIR`` (a complete job there is reused; one with other settings is refused).

The recipe's writing styles and augmentation pool apply exactly as they do to ``digit-distill distill`` (both
go through :mod:`core.jobdata`); one :class:`core.jobdata.JobCache` shares the pool and the teacher's logits on
it between the seeds and both students.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core import jobs, runs
from core.data import MNIST
from core.drawn import DrawnDigits
from core.experiments import ExperimentError, ExperimentStopped
from core.experiments.report import RESULTS, summarize
from core.fileio import atomic_write_json
from core.jobdata import JobCache
from core.progress import NullProgress, Progress
from core.recipes import RECIPES, Recipe, get_recipe
from core.training import KDConfig, resolve_device


@dataclass
class ReproduceOptions:
    """How ``reproduce`` runs: seeds, device and the quick-mode knobs."""

    seeds: int = 3
    device: str = "auto"
    epochs_scale: float = 1.0
    max_train_samples: int | None = None
    teacher: Path | None = None
    temperature: float | None = None
    alpha: float | None = None
    drawn_path: Path | None = None
    command: str = ""


def _summary(result: jobs.JobResult, drawn: float | None) -> dict[str, Any]:
    return {
        "accuracy": result.test_accuracy,
        "params": result.params,
        "seconds": round(result.seconds, 2),
        "epochs": len(result.history),
        "run_dir": str(result.run_dir) if result.run_dir else None,
        "drawn_accuracy": drawn,
        "history": [
            {k: h[k] for k in ("epoch", "loss", "train_acc", "test_acc", "seconds")} for h in result.history
        ],
    }


def _epochs(recipe: Recipe, role: str, scale: float) -> int | None:
    """The scaled epoch count (at least one) as an override, or None at scale 1."""
    if not scale > 0:
        raise ValueError(f"epochs scale must be > 0, got {scale}")
    return None if scale == 1.0 else max(1, round(recipe.train_for(role).epochs * scale))


def reproduce(
    recipe_name: str,
    out_dir: Path,
    data: MNIST,
    options: ReproduceOptions,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the paper's experiment with one recipe and write ``out_dir/results.json``.

    Parameters
    ----------
    recipe_name
        A name from :data:`core.recipes.RECIPES`.
    out_dir
        Results folder; job folders go to ``out_dir/runs/<job>``. Complete jobs there are reused.
    data
        MNIST in memory.
    options
        Seeds, device, quick-mode knobs, an optional already-trained teacher, the drawn-digits file.
    progress
        Receives every job's progress and one status line per step.

    Returns
    -------
    dict
        The content of ``results.json`` (keys documented in docs/RESULTS.md).
    """
    if options.seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {options.seeds}")
    recipe = get_recipe(recipe_name)
    progress = progress or NullProgress()
    kd = KDConfig(
        temperature=recipe.kd.temperature if options.temperature is None else options.temperature,
        alpha=recipe.kd.alpha if options.alpha is None else options.alpha,
    )
    out_dir = Path(out_dir)
    run_root = out_dir / "runs"
    drawn = DrawnDigits(options.drawn_path) if options.drawn_path else None
    cache = JobCache()
    t0 = time.perf_counter()
    steps: dict[str, float] = {}
    n_steps = 1 + 2 * options.seeds
    step_no = 0

    def run(role: str, seed: int, name: str, teacher_run: Path | None = None) -> jobs.JobResult:
        nonlocal step_no
        step_no += 1
        progress.status(f"[{step_no}/{n_steps}] {name}: {run_root / name}")
        overrides: dict[str, Any] = {"epochs": _epochs(recipe, role, options.epochs_scale)}
        if role == "distilled":
            overrides |= {"temperature": options.temperature, "alpha": options.alpha}
        spec = jobs.JobSpec(
            recipe=recipe_name,
            role=role,
            overrides=overrides,
            teacher_run=teacher_run,
            seed=seed,
            device=options.device,
            max_train_samples=options.max_train_samples,
            runs_root=run_root,
            run_name=name,
        )
        try:
            result = jobs.run_job(spec, progress, data=data, cache=cache)
        except jobs.JobError as exc:
            raise ExperimentError(str(exc)) from exc
        if result.status == "stopped":
            raise ExperimentStopped(f"stopped during {name}; run the same command again to continue")
        if result.status == "diverged":
            raise ExperimentError(f"{name} diverged: {result.message}")
        if result.export_error:
            progress.status(f"{name}: no ONNX export ({result.export_error})")
        return result

    # 1. The teacher: trained here once (seed 0), or reused from a given run folder.
    if options.teacher is not None:
        progress.status(f"[1/{n_steps}] teacher: reusing {options.teacher}")
        teacher_path = Path(options.teacher)
        try:
            teacher_model, _ = jobs.load_teacher(teacher_path)
        except jobs.JobError as exc:
            raise ExperimentError(str(exc)) from exc
        info = runs.read_run(teacher_path if teacher_path.is_dir() else teacher_path.parent)
        step_no = 1
        teacher_summary = {
            "accuracy": info.test_accuracy,
            "params": info.params,
            "seconds": round(sum(h["seconds"] for h in info.history), 2),
            "epochs": info.epochs_done,
            "run_dir": str(teacher_path),
            "reused": True,
            "history": [
                {k: h[k] for k in ("epoch", "loss", "train_acc", "test_acc", "seconds")} for h in info.history
            ],
        }
    else:
        result = run("teacher", 0, "teacher")
        if result.run_dir is None or result.model is None:
            raise ExperimentError("the teacher's job left no run folder or model")
        teacher_path, teacher_model = result.run_dir, result.model
        teacher_summary = _summary(result, None) | {"reused": result.reused}
    steps["teacher"] = teacher_summary["seconds"]
    if drawn is not None:
        teacher_summary["drawn_accuracy"] = drawn.accuracy(teacher_model)

    # 2. Per seed: the student trained normally and the distilled student, with identical budgets and data.
    per_seed: dict[str, list[dict[str, Any]]] = {"student": [], "distilled": []}
    threads = torch.get_num_threads()
    if resolve_device(options.device).type == "cpu":
        torch.set_num_threads(1)  # a 42k-parameter student gains nothing from threads and loses on a busy CPU
    try:
        for seed in range(options.seeds):
            for role in ("student", "distilled"):
                name = f"{role}-seed{seed}"
                result = run(role, seed, name, teacher_path if role == "distilled" else None)
                model = result.model
                summary = _summary(result, drawn.accuracy(model) if drawn and model is not None else None)
                summary["seed"] = seed
                per_seed[role].append(summary)
                steps[name] = summary["seconds"]
    finally:
        torch.set_num_threads(threads)

    results = summarize(recipe, kd, teacher_summary, per_seed, options)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    results["step_seconds"] = steps
    results["device"] = str(resolve_device(options.device))
    results["torch_threads"] = torch.get_num_threads()
    results["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    atomic_write_json(out_dir / RESULTS, results)
    return results


def job_run_summary(run_dir: Path, drawn: DrawnDigits | None) -> dict[str, Any]:
    """What ``results.json`` records of one complete job-runner run, drawn-digit accuracy measured here."""
    info = runs.read_run(run_dir)
    if not info.finished:
        raise ExperimentError(f"{run_dir} is not complete ({info.epochs_done}/{info.epochs} epochs)")
    model, _ = runs.load_checkpoint(Path(run_dir) / runs.CHECKPOINT)
    return {
        "accuracy": info.test_accuracy,
        "params": info.params,
        "seconds": round(sum(h["seconds"] for h in info.history), 2),
        "epochs": info.epochs_done,
        "run_dir": str(run_dir),
        "drawn_accuracy": drawn.accuracy(model) if drawn else None,
        "seed": info.config["train"]["seed"],
        "role": info.role,
        "recipe": info.recipe,
        "teacher_run": info.teacher_run,
        "history": [
            {k: h[k] for k in ("epoch", "loss", "train_acc", "test_acc", "seconds")} for h in info.history
        ],
    }


def results_from_runs(
    recipe_name: str,
    teacher_dir: Path,
    student_dirs: list[Path],
    distilled_dirs: list[Path],
    drawn_path: Path | None,
    command: str = "",
) -> dict[str, Any]:
    """A ``results.json`` (the :func:`reproduce` format) from job-runner run folders (``digit-distill train-*``).

    Only complete runs count; the students are paired by seed, and every run must come from ``recipe_name``
    (and the distilled ones from ``teacher_dir``). Accuracy on drawn digits is measured here.
    """
    recipe = get_recipe(recipe_name)
    drawn = DrawnDigits(drawn_path) if drawn_path else None

    def same_teacher(name: str | None) -> bool:
        """A teacher of ``name`` is this recipe's teacher (``canvas-mlp`` shares the ``canvas`` teacher)."""
        other = RECIPES.get(name or "")
        return other is not None and (other.teacher_model, other.teacher) == (
            recipe.teacher_model,
            recipe.teacher,
        )

    def summary(run_dir: Path, role: str) -> dict[str, Any]:
        row = job_run_summary(run_dir, drawn)
        if role == "teacher" and row["role"] == "teacher" and same_teacher(row["recipe"]):
            return row
        if row["role"] != role or row["recipe"] != recipe_name:
            raise ExperimentError(
                f"{run_dir} is a {row['recipe']} {row['role']} run, not a {recipe_name} {role}"
            )
        if role == "distilled" and Path(row["teacher_run"] or "").resolve() != Path(teacher_dir).resolve():
            raise ExperimentError(f"{run_dir} was distilled from {row['teacher_run']}, not {teacher_dir}")
        return row

    teacher = summary(teacher_dir, "teacher") | {"reused": False}
    per_seed = {
        "student": sorted((summary(d, "student") for d in student_dirs), key=lambda r: r["seed"]),
        "distilled": sorted((summary(d, "distilled") for d in distilled_dirs), key=lambda r: r["seed"]),
    }
    seeds = [r["seed"] for r in per_seed["student"]]
    if not seeds or seeds != [r["seed"] for r in per_seed["distilled"]]:
        raise ExperimentError(f"students and distilled students must have the same seeds, got {per_seed}")
    options = ReproduceOptions(seeds=len(seeds), drawn_path=drawn_path, command=command)
    results = summarize(recipe, recipe.kd, teacher, per_seed, options)
    steps = {"teacher": teacher["seconds"]}
    for role, rows in per_seed.items():
        steps |= {f"{role}-seed{r['seed']}": r["seconds"] for r in rows}
    results["step_seconds"] = steps
    results["seconds"] = round(sum(steps.values()), 1)
    results["collected_from_runs"] = True
    results["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return results
