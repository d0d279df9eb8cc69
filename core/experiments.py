"""The paper's experiment, reproduced: teacher, the student trained normally, the distilled student; and sweeps.

``reproduce`` trains (or reuses) one teacher, then for every seed a plain student and a distilled student with
identical epochs, optimiser and augmentation, and writes a ``results.json`` with the paper's three measures
(parameter reduction, accuracy gap, KD gain). Every job has its own run folder under ``DIR/runs`` (config,
per-epoch metrics, checkpoint, ONNX), so each number traces back to the job that produced it, and an
interrupted ``reproduce`` continues where it stopped when started again with the same ``DIR``.

When a recipe asks for an augmentation pool (``Recipe.pool_copies > 0``), the students do not jitter online:
the training set plus ``pool_copies`` jittered copies are drawn once (fixed seed) and the teacher's logits on
that pool are computed once, then shared by every seed and by both students. Both students see exactly the
same images; only the targets differ. This keeps a CPU-only reproduction affordable: the teacher's forward
pass on every batch would otherwise cost more than the student's whole training.

Sweeps over distillation settings are Optuna studies: :mod:`core.sweep`.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core import jobdata, runs
from core.augment import random_affine
from core.data import MNIST
from core.export import ExportError
from core.fileio import atomic_write_json
from core.models import ModelConfig, count_params
from core.recipes import Recipe, get_recipe
from core.styles import add_styles
from core.training import KDConfig, NullProgress, Progress, TrainConfig, TrainResult, predict_logits, train

#: The paper's table (accuracies as fractions) and its distillation temperature.
PAPER = {
    "teacher": 0.9832,
    "student": 0.8968,
    "distilled": 0.9163,
    "temperature": 6.0,
    "teacher_params": 5_592_010,
    "student_params": 42_310,
}
#: Tolerances the issue asks of the ``paper`` recipe (absolute, in accuracy fractions).
PAPER_TOLERANCE = {"teacher": 0.005, "student": 0.015, "distilled": 0.015}
#: Targets of the ``strong`` recipe (means over seeds).
STRONG_TARGETS = {"teacher": 0.992, "student": 0.976, "distilled": 0.982}
#: Targets of the canvas recipes (issue 11): MNIST test and the drawn-digits development set.
CANVAS_TARGETS = {
    "canvas": {"teacher": 0.992, "distilled": 0.994, "teacher_drawn": 0.985, "distilled_drawn": 0.975},
    "canvas-mlp": {"distilled": 0.986},
}
RESULTS = "results.json"
POOL_SEED = 1234


class ExperimentError(RuntimeError):
    """An experiment cannot run as asked (a bad teacher folder, an inconsistent results folder, ...)."""


class ExperimentStopped(RuntimeError):
    """The user stopped the experiment; finished jobs are kept and a rerun with the same folder continues."""


# --------------------------------------------------------------------------------------------- helpers


def scaled_config(
    cfg: TrainConfig,
    *,
    seed: int,
    device: str = "auto",
    epochs_scale: float = 1.0,
    max_train_samples: int | None = None,
    augment: bool | None = None,
    epochs: int | None = None,
) -> TrainConfig:
    """``cfg`` with a seed, device, optional subset and epochs scaled (at least one epoch) for quick runs."""
    if not epochs_scale > 0:
        raise ValueError(f"epochs scale must be > 0, got {epochs_scale}")
    n_epochs = epochs if epochs is not None else max(1, round(cfg.epochs * epochs_scale))
    changes = {"seed": seed, "device": device, "epochs": n_epochs, "max_train_samples": max_train_samples}
    if augment is not None:
        changes["augment"] = augment
    return replace(cfg, **changes)


class TorchClassifier:
    """Adapter giving a PyTorch model the ``logits(x)`` method :func:`core.strokes.evaluate_drawn` expects."""

    def __init__(self, model: nn.Module):
        self.model = model.eval().cpu()

    def logits(self, x) -> np.ndarray:
        """``(N, 10)`` logits of float32 ``(N, 1, 28, 28)`` images."""
        return predict_logits(self.model, torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


class _CaptureInputs:
    """A stand-in classifier that keeps the images :func:`core.strokes.evaluate_drawn` renders."""

    inputs: np.ndarray | None = None

    def logits(self, x) -> np.ndarray:
        self.inputs = np.ascontiguousarray(x, dtype=np.float32)
        return np.zeros((len(x), 10), dtype=np.float32)


class DrawnDigits:
    """A drawn-digit set rendered once, by :func:`core.strokes.evaluate_drawn` itself, then reused for many models.

    Parameters
    ----------
    path
        Drawn-digits ``.npz``.
    limit
        Use only this many samples, evenly spaced through the file (the same pick as ``evaluate_drawn``).
    """

    def __init__(self, path: str | Path, limit: int | None = None):
        from core.strokes import load_drawn

        self.path = Path(path)
        self.limit = limit
        labels = np.array([s.label for s in load_drawn(self.path)], dtype=np.int64)
        if limit is not None and limit < len(labels):
            labels = labels[np.linspace(0, len(labels) - 1, limit).round().astype(int)]
        self.labels = labels
        self.inputs: np.ndarray | None = None

    def render(self) -> np.ndarray:
        """The rendered, preprocessed images ``(N, 1, 28, 28)`` (rendered on the first call only)."""
        from core.strokes import evaluate_drawn

        if self.inputs is None:
            capture = _CaptureInputs()
            result = evaluate_drawn(capture, self.path, limit=self.limit)
            if result["n"] != len(self.labels):
                raise ExperimentError(
                    f"{self.path}: rendered {result['n']} samples for {len(self.labels)} labels"
                )
            self.inputs = capture.inputs
        return self.inputs

    def accuracy(self, model: nn.Module) -> float:
        """Accuracy of ``model`` on the drawn digits, rendered like the app's canvas."""
        logits = TorchClassifier(model).logits(self.render())
        return float((logits.argmax(1) == self.labels).mean())


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def styled_training_set(data: MNIST, recipe: Recipe, seed: int = POOL_SEED) -> MNIST:
    """``data`` with the recipe's fixed redrawings: European styles, then the canvas pen (:func:`jobdata.styled`)."""
    return jobdata.styled(data, recipe.styles, seed, restroke_share=recipe.restroke)


def augmentation_pool(data: MNIST, recipe: Recipe, copies: int, seed: int = POOL_SEED) -> MNIST:
    """The training set followed by ``copies`` jittered, restyled copies of it (fixed seed)."""
    aug = recipe.distilled.augmentation
    gen = torch.Generator().manual_seed(seed + 1)
    parts, labels = [data.train_images], [data.train_labels]
    for _ in range(copies):
        chunks = []
        for x, y in zip(data.train_images.split(10_000), data.train_labels.split(10_000)):
            if recipe.styles:
                x = add_styles(x, y, recipe.styles, gen)
            chunks.append(random_affine(x, aug, gen))
        parts.append(torch.cat(chunks))
        labels.append(data.train_labels)
    return MNIST(
        train_images=torch.cat(parts),
        train_labels=torch.cat(labels),
        test_images=data.test_images,
        test_labels=data.test_labels,
        data_dir=data.data_dir,
    )


def _with_train(data: MNIST, images: torch.Tensor, labels: torch.Tensor) -> MNIST:
    return MNIST(
        train_images=images,
        train_labels=labels,
        test_images=data.test_images,
        test_labels=data.test_labels,
        data_dir=data.data_dir,
    )


def _subset_first(data: MNIST, n: int | None) -> MNIST:
    """The training subset ``train()`` would take for ``max_train_samples=n`` (test set unchanged)."""
    if n is None or n >= len(data.train_images):
        return data
    keep = torch.randperm(len(data.train_images), generator=torch.Generator().manual_seed(0))[:n]
    return _with_train(data, data.train_images[keep], data.train_labels[keep])


def _run_summary(result: TrainResult, drawn: float | None) -> dict:
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


def _train_step(
    label: str,
    role: str,
    recipe: Recipe,
    cfg: TrainConfig,
    data: MNIST,
    run_dir: Path,
    progress: Progress,
    **kwargs,
) -> TrainResult:
    """Train one job in ``run_dir``, continuing a previous attempt there (a finished one is just reloaded)."""
    progress.status(f"{label}: {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    result = train(
        role,
        recipe.preset,
        recipe.model_for(role),
        cfg,
        data,
        progress=progress,
        run_dir=run_dir,
        resume=(run_dir / runs.CHECKPOINT).exists(),
        **kwargs,
    )
    if result.stopped:
        raise ExperimentStopped(f"stopped during {label}; run the same command again to continue")
    if not (run_dir / runs.ONNX).exists():
        try:
            runs.export_run(run_dir, data)
        except ExportError as exc:  # a degenerate model (huge logits) must not end a whole experiment
            progress.status(f"{label}: no ONNX export ({exc})")
    return result


def load_teacher(path: Path) -> tuple[nn.Module, dict]:
    """A trained teacher from a run folder or checkpoint, with its metadata; clear errors otherwise."""
    try:
        model, meta = runs.load_checkpoint(path)
    except (FileNotFoundError, ValueError) as exc:
        raise ExperimentError(f"cannot use {path} as the teacher: {exc}") from exc
    if meta.get("role") != "teacher":
        raise ExperimentError(f"{path} holds a {meta.get('role')} model, not a teacher")
    return model, meta


# ----------------------------------------------------------------------------------------- reproduce


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


def reproduce(
    recipe_name: str,
    out_dir: Path,
    data: MNIST,
    options: ReproduceOptions,
    progress: Progress | None = None,
) -> dict:
    """Run the paper's experiment with one recipe and write ``out_dir/results.json``.

    Parameters
    ----------
    recipe_name
        A name from :data:`core.recipes.RECIPES`.
    out_dir
        Results folder; job folders go to ``out_dir/runs/<job>``. Finished jobs there are reused.
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
    run_root.mkdir(parents=True, exist_ok=True)
    drawn = DrawnDigits(options.drawn_path) if options.drawn_path else None
    data = styled_training_set(data, recipe)
    t0 = time.perf_counter()
    steps: dict[str, float] = {}
    n_steps = 1 + 2 * options.seeds + (1 if recipe.pool_copies else 0)
    step_no = 0

    def announce(text: str) -> str:
        nonlocal step_no
        step_no += 1
        label = f"[{step_no}/{n_steps}] {text}"
        progress.status(label)
        return label

    # 1. The teacher: trained here once (seed 0), or reused from a given run folder.
    if options.teacher is not None:
        announce(f"teacher: reusing {options.teacher}")
        teacher, meta = load_teacher(options.teacher)
        teacher_path = Path(options.teacher)
        t_hist = meta["history"]
        teacher_summary = {
            "accuracy": meta["test_accuracy"],
            "params": count_params(teacher),
            "seconds": round(sum(h["seconds"] for h in t_hist), 2),
            "epochs": len(t_hist),
            "run_dir": str(teacher_path),
            "reused": True,
            "history": [
                {k: h[k] for k in ("epoch", "loss", "train_acc", "test_acc", "seconds")} for h in t_hist
            ],
        }
    else:
        label = announce("teacher")
        cfg = scaled_config(
            recipe.teacher,
            seed=0,
            device=options.device,
            epochs_scale=options.epochs_scale,
            max_train_samples=options.max_train_samples,
        )
        result = _train_step(label, "teacher", recipe, cfg, data, run_root / "teacher", progress)
        teacher, teacher_path = result.model, run_root / "teacher"
        teacher_summary = _run_summary(result, None) | {"reused": False}
    steps["teacher"] = teacher_summary["seconds"]
    if drawn is not None:
        teacher_summary["drawn_accuracy"] = drawn.accuracy(teacher)
    teacher_info = {"path": str(teacher_path), "test_accuracy": teacher_summary["accuracy"]}

    # 2. The students' training set: online jitter as configured, or a fixed pool with cached teacher logits.
    student_data, pool_logits, augment = data, None, None
    if recipe.pool_copies:
        announce(f"augmentation pool: training set + {recipe.pool_copies} jittered copies, teacher logits")
        t_pool = time.perf_counter()
        student_data = augmentation_pool(
            _subset_first(data, options.max_train_samples), recipe, recipe.pool_copies
        )
        pool_logits = predict_logits(teacher.to(_device_of(options.device)), student_data.train_images).cpu()
        teacher.cpu()
        augment = False
        steps["pool"] = round(time.perf_counter() - t_pool, 2)

    # 3. Per seed: the student trained normally and the distilled student, with identical budgets.
    per_seed: dict[str, list[dict]] = {"student": [], "distilled": []}
    threads = torch.get_num_threads()
    if _device_of(options.device).type == "cpu":
        torch.set_num_threads(1)  # a 42k-parameter student gains nothing from threads and loses on a busy CPU
    try:
        for seed in range(options.seeds):
            for role in ("student", "distilled"):
                label = announce(f"{role} seed {seed}")
                cfg = scaled_config(
                    recipe.train_for(role),
                    seed=seed,
                    device=options.device,
                    epochs_scale=options.epochs_scale,
                    max_train_samples=None if recipe.pool_copies else options.max_train_samples,
                    augment=augment,
                )
                extra = {}
                if role == "distilled":
                    extra = {"kd": kd, "teacher": teacher, "teacher_info": teacher_info}
                    if pool_logits is not None:
                        extra["teacher_logits"] = pool_logits
                result = _train_step(
                    label, role, recipe, cfg, student_data, run_root / f"{role}-seed{seed}", progress, **extra
                )
                summary = _run_summary(result, drawn.accuracy(result.model) if drawn else None)
                summary["seed"] = seed
                per_seed[role].append(summary)
                steps[f"{role}-seed{seed}"] = summary["seconds"]
    finally:
        torch.set_num_threads(threads)

    results = summarize(recipe, kd, teacher_summary, per_seed, options)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    results["step_seconds"] = steps
    results["device"] = str(_device_of(options.device))
    results["torch_threads"] = torch.get_num_threads()
    results["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    atomic_write_json(out_dir / RESULTS, results)
    return results


def _device_of(name: str) -> torch.device:
    from core.training import resolve_device

    return resolve_device(name)


def summarize(recipe: Recipe, kd: KDConfig, teacher: dict, per_seed: dict, options: ReproduceOptions) -> dict:
    """The ``results.json`` content from the teacher's and the students' per-seed summaries."""
    out = {
        "recipe": recipe.name,
        "description": recipe.description,
        "preset": recipe.preset,
        "temperature": kd.temperature,
        "alpha": kd.alpha,
        "seeds": options.seeds,
        "command": options.command,
        "quick": options.epochs_scale != 1.0 or options.max_train_samples is not None,
        "epochs_scale": options.epochs_scale,
        "max_train_samples": options.max_train_samples,
        "pool_copies": recipe.pool_copies,
        "teacher": teacher,
    }
    for role in ("student", "distilled"):
        rows = per_seed[role]
        acc_mean, acc_std = mean_std([r["accuracy"] for r in rows])
        entry = {
            "accuracy_mean": acc_mean,
            "accuracy_std": acc_std,
            "params": rows[0]["params"],
            "runs": rows,
        }
        drawn = [r["drawn_accuracy"] for r in rows if r["drawn_accuracy"] is not None]
        if drawn:
            entry["drawn_accuracy_mean"], entry["drawn_accuracy_std"] = mean_std(drawn)
        out[role] = entry
    student, distilled = out["student"], out["distilled"]
    out["compression_ratio"] = teacher["params"] / distilled["params"]
    out["accuracy_gap"] = teacher["accuracy"] - distilled["accuracy_mean"]
    out["kd_gain"] = distilled["accuracy_mean"] - student["accuracy_mean"]
    gains = [d["accuracy"] - s["accuracy"] for s, d in zip(student["runs"], distilled["runs"])]
    out["kd_gain_per_seed"] = gains
    out["kd_gain_std"] = mean_std(gains)[1]
    out["paper"] = dict(PAPER)
    out["checks"] = checks(out)
    return out


def checks(results: dict) -> dict:
    """Whether the results meet the issue's targets for their recipe (``{}`` for other recipes)."""
    t = results["teacher"]["accuracy"]
    s = results["student"]["accuracy_mean"]
    d = results["distilled"]["accuracy_mean"]
    if results["recipe"] == "paper":
        return {
            "teacher_within_0.5pp": abs(t - PAPER["teacher"]) <= PAPER_TOLERANCE["teacher"],
            "student_within_1.5pp": abs(s - PAPER["student"]) <= PAPER_TOLERANCE["student"],
            "distilled_within_1.5pp": abs(d - PAPER["distilled"]) <= PAPER_TOLERANCE["distilled"],
            "gain_positive": results["kd_gain"] > 0,
        }
    if results["recipe"] == "strong":
        spread = max(results["student"]["accuracy_std"], results["distilled"]["accuracy_std"])
        return {
            "teacher_>=99.2%": t >= STRONG_TARGETS["teacher"],
            "student_>=97.6%": s >= STRONG_TARGETS["student"],
            "distilled_>=98.2%": d >= STRONG_TARGETS["distilled"],
            "gain_>_2_std": results["kd_gain"] > 2 * spread,
        }
    if results["recipe"] in CANVAS_TARGETS:
        want = CANVAS_TARGETS[results["recipe"]]
        measured = {
            "teacher": t,
            "distilled": d,
            "teacher_drawn": results["teacher"].get("drawn_accuracy"),
            "distilled_drawn": results["distilled"].get("drawn_accuracy_mean"),
        }
        out = {
            f"{key.replace('_', ' on ')} >={100 * target:.1f}%": measured[key] is not None
            and measured[key] >= target
            for key, target in want.items()
        }
        several = len(results["kd_gain_per_seed"]) > 1
        spread = max(results["student"]["accuracy_std"], results["distilled"]["accuracy_std"])
        out["gain > 2 std (MNIST)"] = several and results["kd_gain"] > 2 * spread
        s_drawn, d_drawn = results["student"], results["distilled"]
        if "drawn_accuracy_mean" in s_drawn and "drawn_accuracy_mean" in d_drawn:
            drawn_spread = max(s_drawn["drawn_accuracy_std"], d_drawn["drawn_accuracy_std"])
            drawn_gain = d_drawn["drawn_accuracy_mean"] - s_drawn["drawn_accuracy_mean"]
            out["gain > 2 std (drawn)"] = several and drawn_gain > 2 * drawn_spread
        return out
    return {"gain_positive": results["kd_gain"] > 0}


def job_run_summary(run_dir: Path, drawn: DrawnDigits | None) -> dict:
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
) -> dict:
    """A ``results.json`` (the :func:`reproduce` format) from job-runner run folders (``digit-distill train-*``).

    Only complete runs count; the students are paired by seed, and every run must come from ``recipe_name``
    (and the distilled ones from ``teacher_dir``). Accuracy on drawn digits is measured here.
    """
    recipe = get_recipe(recipe_name)
    drawn = DrawnDigits(drawn_path) if drawn_path else None

    def summary(run_dir: Path, role: str) -> dict:
        row = job_run_summary(run_dir, drawn)
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
    results["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return results


def format_table(results: dict) -> str:
    """The results beside the paper's numbers, as a plain-text table."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:6.2f}%"

    def pm(mean: float, std: float) -> str:
        return f"{100 * mean:6.2f}% +- {100 * std:.2f}"

    r = results
    lines = [
        f"recipe {r['recipe']}: T={r['temperature']:g}, alpha={r['alpha']:g}, {r['seeds']} seed(s), "
        f"{r['seconds']:.0f} s",
        f"{'model':<28}{'params':>11}  {'paper':>8}  {'ours':>17}  {'drawn digits':>12}",
        f"{'teacher 784-2000-2000-10' if r.get('preset', 'paper') == 'paper' else 'teacher (' + r['preset'] + ')':<28}{r['teacher']['params']:>11,}  {pct(PAPER['teacher']):>8}  "
        f"{pct(r['teacher']['accuracy']):>17}  {pct(r['teacher'].get('drawn_accuracy')):>12}",
    ]
    for role, name in (("student", "student, trained normally"), ("distilled", "student, distilled")):
        e = r[role]
        lines.append(
            f"{name:<28}{e['params']:>11,}  {pct(PAPER[role]):>8}  "
            f"{pm(e['accuracy_mean'], e['accuracy_std']):>17}  {pct(e.get('drawn_accuracy_mean')):>12}"
        )
    paper_gap = PAPER["teacher"] - PAPER["distilled"]
    paper_gain = PAPER["distilled"] - PAPER["student"]
    paper_ratio = PAPER["teacher_params"] / PAPER["student_params"]
    lines += [
        f"parameter reduction: paper {paper_ratio:.1f}x, ours {r['compression_ratio']:.1f}x",
        f"accuracy gap (teacher - distilled): paper {100 * paper_gap:.2f} pp, ours {100 * r['accuracy_gap']:.2f} pp",
        f"KD gain (distilled - normal): paper {100 * paper_gain:+.2f} pp, ours {100 * r['kd_gain']:+.2f} pp "
        f"(per-seed std {100 * r['kd_gain_std']:.2f} pp)",
    ]
    if r.get("checks"):
        lines.append("checks: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["checks"].items()))
    return "\n".join(lines)


def read_results(path: Path) -> dict:
    """A results.json (or a folder holding one), with a clear error when it is missing or corrupt."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ExperimentError(f"cannot read results from {path}: {exc}") from exc


def model_config_of(run_dir: Path) -> ModelConfig:
    """The architecture stored in a run folder's config.json."""
    return ModelConfig.from_dict(json.loads((Path(run_dir) / runs.CONFIG).read_text())["model"])
