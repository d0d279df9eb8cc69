"""One training job everywhere: a job description, its full configuration, and one runner.

A :class:`JobSpec` is resolved against its recipe into a :class:`JobConfig` (what config.json holds; both live in
:mod:`core.jobconfig`, re-exported here) and run by :func:`run_job` (or continued by :func:`resume_job`). This
module is the runner, kept whole: one path from a resolved config to a finished run folder.

The CLI's ``train-teacher``/``train-student``/``distill``, the Train tab's worker, ``reproduce``, ``sweep`` and the
torchrun entry point (:mod:`core.distributed`) all describe a job as a :class:`JobSpec` and call :func:`run_job`;
nothing else builds models, optimisers, augmentation pools or run folders. Defaults live in the recipes only
(:mod:`core.recipes`): a spec names a recipe and a role and lists what it changes (``overrides``); an override
equal to the recipe's value is dropped, so the same choices give the same config.json from every caller.

A run folder's life: created (named ``<date>-<time>-<recipe>-<role>``) and locked, config.json written once,
status ``running``; every epoch a checkpoint with every random state; at the end ``complete`` (exported to ONNX),
``stopped`` (resumable), ``diverged`` (no ONNX) or ``failed``. A job stopped before its first epoch ends leaves
no folder behind. :func:`resume_job` continues a run from its own config.json, bit for bit on a CPU.
"""

from __future__ import annotations

import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core import runs
from core.data import MNIST
from core.jobconfig import (
    CONFIG_FORMAT,
    DATA_KEYS,
    KD_KEYS,
    OVERRIDE_KEYS,
    TRAIN_KEYS,
    DataConfig,
    JobConfig,
    JobError,
    JobSpec,
    config_differences,
    load_config,
    recipe_values,
    resolve,
    resume_conflicts,
)
from core.jobdata import JobCache
from core.progress import NullProgress, Progress
from core.tensorboard import tensorboard_progress
from core.training import (
    TrainConfig,
    TrainingDiverged,
    TrainResult,
    rank_and_world,
    resolve_device,
    train,
)

# What a job is (core.jobconfig) and running it (here), one entry point for the callers.
__all__ = [
    "CONFIG_FORMAT",
    "DATA_KEYS",
    "EXIT_CODES",
    "KD_KEYS",
    "OVERRIDE_KEYS",
    "TRAIN_KEYS",
    "DataConfig",
    "JobConfig",
    "JobError",
    "JobResult",
    "JobSpec",
    "config_differences",
    "find_teacher",
    "load_config",
    "load_teacher",
    "recipe_values",
    "resolve",
    "resume_conflicts",
    "resume_job",
    "run_job",
    "teacher_runs",
]
#: Exit status of a CLI command per job status (130: stopped by the person, as after Ctrl+C).
EXIT_CODES = {"complete": 0, "failed": 1, "diverged": 3, "stopped": 130}


@dataclass
class JobResult:
    """What a job left behind."""

    status: str
    run_dir: Path | None
    config: JobConfig
    history: list[dict[str, Any]]
    test_accuracy: float | None
    params: int
    seconds: float
    model: nn.Module | None = None
    onnx_path: Path | None = None
    export_error: str | None = None
    message: str = ""
    reused: bool = False

    @property
    def exit_code(self) -> int:
        """The CLI's exit status for this result (see :data:`EXIT_CODES`)."""
        return EXIT_CODES[self.status]


def teacher_runs(
    recipe: str | None, root: Path | None = None, complete_only: bool = True
) -> list[runs.RunInfo]:
    """Teacher runs of ``recipe`` (any recipe for None), newest first; only complete ones unless told."""
    return [
        r
        for r in runs.list_runs(root)
        if r.role == "teacher"
        and (recipe is None or r.recipe == recipe)
        and (r.finished if complete_only else r.epochs_done > 0)
    ]


def find_teacher(recipe: str, root: Path | None = None) -> Path:
    """The newest complete teacher run of ``recipe`` (the one chosen when none is named)."""
    found = teacher_runs(recipe, root)
    if not found:
        raise JobError(
            f"no complete {recipe!r} teacher run in {root or runs.default_runs_root()}: run "
            f"`digit-distill train-teacher --recipe {recipe}` first or pass --teacher RUN"
        )
    return found[0].path


# -------------------------------------------------------------------------------------------- running


def load_teacher(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """A trained teacher from a run folder or checkpoint, with its metadata; clear errors otherwise."""
    try:
        model, meta = runs.load_checkpoint(path)
    except (FileNotFoundError, ValueError) as exc:
        raise JobError(f"cannot use {path} as the teacher: {exc}") from exc
    if meta.get("role") != "teacher":
        raise JobError(f"{path} holds a {meta.get('role')} model, not a teacher")
    return model, meta


def run_job(
    spec: JobSpec,
    progress: Progress | None = None,
    *,
    data: MNIST | None = None,
    cache: JobCache | None = None,
) -> JobResult:
    """Run ``spec`` in a new run folder (or in ``runs_root/run_name``: continued if it holds the same job).

    ``data`` (MNIST in memory) is loaded from ``spec.data_dir`` when not given; ``cache`` shares prepared data
    and teacher logits between the jobs of an experiment. Returns a :class:`JobResult` whose ``status`` is
    ``complete``, ``stopped`` or ``diverged``; other failures raise after recording ``failed``.
    """
    config = resolve(spec)
    run_dir, resume = None, False
    if spec.run_name:
        run_dir = Path(spec.runs_root or runs.default_runs_root()) / spec.run_name
        if (run_dir / runs.CONFIG).exists():
            saved = load_config(run_dir)
            differ = config_differences(saved, config)
            if differ:
                raise JobError(
                    f"{run_dir} holds a job with other settings ({', '.join(differ)}); "
                    "use another folder or remove it"
                )
            if runs.read_run(run_dir).finished:
                return _reused(run_dir, saved, data, spec.export)
            resume = True
    return _execute(
        config,
        progress,
        run_dir=run_dir,
        resume=resume,
        runs_root=spec.runs_root,
        data=data,
        data_dir=spec.data_dir,
        cache=cache,
        export=spec.export,
    )


def resume_job(
    run: Path,
    progress: Progress | None = None,
    *,
    epochs: int | None = None,
    device: str | None = None,
    data: MNIST | None = None,
    data_dir: Path | None = None,
    cache: JobCache | None = None,
    export: bool = True,
) -> JobResult:
    """Continue a run from its own config.json (never rewritten); ``epochs`` above the saved count extends it.

    ``device`` changes where it runs, not what it computes. The extension is recorded in status.json.
    """
    run_dir = Path(run)
    if run_dir.is_file():
        run_dir = run_dir.parent
    config = load_config(run_dir)
    info = runs.read_run(run_dir)
    target = info.epochs if epochs is None else int(epochs)
    if target < 1 or target < info.epochs_done:
        raise JobError(
            f"--epochs {target}: the run {run_dir.name} has already done {info.epochs_done} epoch(s)"
        )
    if info.finished and target <= info.epochs_done:
        raise JobError(
            f"{run_dir.name} is complete ({info.epochs_done}/{info.epochs} epochs); "
            "to train it longer, pass --epochs N with N above that"
        )
    extension = None
    if target != info.epochs:
        extension = {"from": info.epochs, "to": target, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    return _execute(
        config,
        progress,
        run_dir=run_dir,
        resume=True,
        runs_root=None,
        data=data,
        data_dir=data_dir,
        cache=cache,
        export=export,
        epochs=target,
        extension=extension,
        device=device,
    )


def _reused(run_dir: Path, config: JobConfig, data: MNIST | None, export: bool) -> JobResult:
    """A complete run found again (an experiment run a second time): its model and numbers, no training."""
    model, meta = runs.load_checkpoint(run_dir)
    info = runs.read_run(run_dir)
    onnx, export_error = info.onnx_path, None
    if onnx is None and export:
        onnx, export_error = _export(run_dir, data)
    return _result(info, config, model, onnx, export_error, reused=True)


def _export(run_dir: Path, data: MNIST | None) -> tuple[Path | None, str | None]:
    from core.export import ExportError

    try:
        return runs.export_run(run_dir, data).path, None
    except (
        ExportError
    ) as exc:  # a degenerate model (huge logits): the weights are kept, only the ONNX is missing
        return None, str(exc)


def _stopped(run_dir: Path | None, config: JobConfig, seconds: float, message: str) -> JobResult:
    """A job stopped before its first epoch ended: no history, no model; ``run_dir`` only when it was resumed."""
    return JobResult("stopped", run_dir, config, [], None, 0, seconds, message=message)


def _result(
    info: runs.RunInfo,
    config: JobConfig,
    model: nn.Module | None,
    onnx: Path | None,
    export_error: str | None,
    reused: bool = False,
    seconds: float | None = None,
) -> JobResult:
    return JobResult(
        status=info.status,
        run_dir=info.path,
        config=config,
        history=info.history,
        test_accuracy=info.test_accuracy,
        params=info.params,
        seconds=seconds if seconds is not None else sum(h["seconds"] for h in info.history),
        model=model,
        onnx_path=onnx,
        export_error=export_error,
        message=info.message,
        reused=reused,
    )


def _execute(
    config: JobConfig,
    progress: Progress | None,
    *,
    run_dir: Path | None,
    resume: bool,
    runs_root: Path | None,
    data: MNIST | None,
    data_dir: Path | None,
    cache: JobCache | None,
    export: bool,
    epochs: int | None = None,
    extension: dict[str, Any] | None = None,
    device: str | None = None,
) -> JobResult:
    from core.data import load_mnist

    progress = progress or NullProgress()
    cache = cache or JobCache()
    rank, world = rank_and_world()
    t_prepare = time.perf_counter()

    def stopped_while_preparing() -> JobResult | None:
        # Preparing (loading, redrawing digits, the teacher) can take a minute: Stop is honoured between steps.
        if world > 1 or not progress.should_stop():
            return None
        return _stopped(
            run_dir if resume else None,
            config,
            time.perf_counter() - t_prepare,
            "stopped while preparing, before the first epoch: nothing was kept",
        )

    if data is None:
        progress.status("loading MNIST")
        data = load_mnist(data_dir)
    if (stop := stopped_while_preparing()) is not None:
        return stop
    # What train() gets: the subset is already taken by the data preparation; device and epochs may differ
    # from config.json on a resume (where it runs; an extension), never what each step computes.
    cfg = replace(config.train, max_train_samples=None)
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    if device is not None:
        cfg = replace(cfg, device=device)
    torch_device = resolve_device(cfg.device)
    if config.data.styles or config.data.restroke or config.data.pool_copies:
        progress.status("preparing the training data (European styles, canvas-pen digits, jittered copies)")
    prepared = cache.data(
        data,
        styles=config.data.styles,
        restroke=config.data.restroke,
        flag_min_angle=config.data.flag_min_angle,
        curved_ones=config.data.curved_ones,
        pool_copies=config.data.pool_copies,
        augmentation=config.train.augmentation,
        max_train_samples=config.train.max_train_samples,
        max_test_samples=config.data.max_test_samples,
        validation=config.data.validation,
    )
    if config.data.personal:
        from core.jobdata import with_personal

        progress.status(f"adding the personal digits of {config.data.personal}")
        prepared = with_personal(
            prepared,
            Path(config.data.personal),
            config.data.personal_indices,
            config.data.personal_copies,
            config.train.augmentation,
            seed=config.data.pool_seed,
        )
    if (stop := stopped_while_preparing()) is not None:
        return stop
    initial_state = None
    if config.init is not None and not resume:
        from core.weights import load_state

        progress.status(f"starting from the weights of {config.init['path']}")
        _, initial_state = load_state(config.init["path"])
    teacher: nn.Module | None = None
    teacher_logits: torch.Tensor | None = None
    if config.role == "distilled":
        if config.teacher is None:
            raise JobError("the distilled job's config names no teacher; start a new run")
        if config.teacher.get("onnx"):
            from core.weights import OnnxTeacher

            teacher_path = Path(config.teacher["onnx"])
            progress.status(f"teacher: {teacher_path}")
            teacher = cache.teacher(teacher_path, lambda p: (OnnxTeacher(p), {}))[0]
        else:
            teacher_path = Path(config.teacher["run"])
            progress.status(f"teacher: {teacher_path}")
            teacher, _ = cache.teacher(teacher_path, load_teacher)
        if not cfg.augment:
            progress.status("computing the teacher's logits on the training set")
            teacher_logits = cache.logits(teacher_path, teacher, prepared, torch_device)
    if (stop := stopped_while_preparing()) is not None:
        return stop

    created = False
    if rank == 0:
        if run_dir is None:
            run_dir = runs.new_run_dir(config.role, config.recipe, runs_root)
            created = True
        elif not run_dir.exists():
            with runs.saving(run_dir):
                run_dir.mkdir(parents=True)
            created = True
    if world > 1:
        names = [str(run_dir) if rank == 0 else None]
        torch.distributed.broadcast_object_list(names, src=0)
        run_dir = Path(str(names[0]))
    assert run_dir is not None  # rank 0 made it; the other processes got its name

    remove = False
    t0 = time.perf_counter()
    lock = runs.RunLock(run_dir) if rank == 0 else nullcontext()
    try:
        with lock:
            result = _train_locked(
                config,
                cfg,
                progress,
                prepared,
                teacher,
                teacher_logits,
                run_dir,
                resume,
                rank,
                extension,
                initial_state,
            )
            if result is None:
                info = runs.read_run(run_dir) if rank == 0 else None
                if info is not None and info.status == "diverged":
                    return _result(info, config, None, None, None, seconds=time.perf_counter() - t0)
                remove = created  # stopped before the first epoch ended: nothing worth a run folder
                return _stopped(
                    None if created else run_dir,
                    config,
                    time.perf_counter() - t0,
                    "stopped before the first epoch ended: nothing was kept",
                )
            if world > 1:
                torch.distributed.barrier()
            onnx = export_error = None
            if rank == 0 and result is not None and not result.stopped and export:
                progress.status("exporting to ONNX and checking it against PyTorch")
                onnx, export_error = _export(run_dir, data)
            if rank != 0:
                return JobResult(
                    "complete",
                    run_dir,
                    config,
                    result.history,
                    result.test_accuracy,
                    result.params,
                    result.seconds,
                )
            info = runs.read_run(run_dir)
            return _result(info, config, result.model, onnx, export_error, seconds=result.seconds)
    except BaseException:
        if rank == 0 and created and not (run_dir / runs.CHECKPOINT).exists():
            remove = True
        raise
    finally:
        if remove:
            shutil.rmtree(run_dir, ignore_errors=True)


def _hparams(config: JobConfig, cfg: TrainConfig) -> dict[str, Any]:
    """The job's hyperparameters as TensorBoard shows them (HParams tab)."""
    return {
        "recipe": config.recipe,
        "role": config.role,
        "temperature": config.kd.temperature if config.kd else None,
        "alpha": config.kd.alpha if config.kd else None,
        "lr": cfg.lr,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "optimizer": cfg.optimizer,
        "seed": cfg.seed,
        "pool_copies": config.data.pool_copies,
        "teacher": (config.teacher or {}).get("name"),
    }


def _train_locked(
    config: JobConfig,
    cfg: TrainConfig,
    progress: Progress,
    prepared: MNIST,
    teacher: nn.Module | None,
    teacher_logits: torch.Tensor | None,
    run_dir: Path,
    resume: bool,
    rank: int,
    extension: dict[str, Any] | None,
    initial_state: dict[str, Any] | None = None,
) -> TrainResult | None:
    """Train with the run folder locked; records the status. Returns None when stopped before any epoch."""
    if rank == 0:
        runs.clean_temp_files(run_dir)
        if not (run_dir / runs.CONFIG).exists():
            runs.write_json(
                run_dir / runs.CONFIG,
                config.to_dict()
                | {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "torch": torch.__version__},
            )
        extra: dict[str, Any] = {}
        if extension is not None:
            extra = {
                "epochs": extension["to"],
                "extensions": runs.read_status(run_dir).get("extensions", []) + [extension],
            }
        runs.write_status(run_dir, "running", **extra)
    # TensorBoard event files in the run folder (when the optional package is installed), by an adapter of the
    # progress object: the training loop knows nothing of it.
    logged = (
        tensorboard_progress(progress, run_dir, _hparams(config, cfg)) if rank == 0 else nullcontext(progress)
    )
    try:
        with logged as progress:
            result = train(
                config.role,
                config.preset,
                config.model,
                cfg,
                prepared,
                kd=config.kd,
                teacher=teacher,
                progress=progress,
                run_dir=run_dir,
                resume=resume,
                teacher_info=config.teacher,
                teacher_logits=teacher_logits,
                initial_state=initial_state,
            )
    except TrainingDiverged as exc:
        if rank == 0:
            runs.write_status(run_dir, "diverged", str(exc))
        return None
    except KeyboardInterrupt:
        if rank == 0:
            runs.write_status(run_dir, "stopped", "interrupted")
        raise
    except Exception as exc:
        if rank == 0:
            try:
                runs.write_status(run_dir, "failed", str(exc))
            except runs.RunSaveError:
                pass  # the disk is full: the original error says so already
        raise
    if rank == 0:
        if result.stopped:
            done = len(result.history)
            runs.write_status(
                run_dir,
                "stopped",
                f"stopped after {done} epoch(s); resume with `--resume {run_dir.name}`",
            )
        else:
            runs.write_status(run_dir, "complete")
    if not result.history and not resume:
        return None
    return result
