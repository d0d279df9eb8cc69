"""Run folders: where each training job's config, metrics, weights and ONNX live, and how to list them.

A run folder (named ``<date>-<time>-<recipe>-<role>``) holds ``config.json`` (the resolved job, written once and
never rewritten), ``metrics.json`` (per-epoch history, written every epoch), ``checkpoint.pt`` (weights, optimiser
and every random state: enough to resume bit for bit), ``status.json`` (running, complete, stopped, diverged or
failed, with a message) and, once exported, ``model.onnx``. A job holds ``.lock`` while it writes the folder.

Kept in one module: every file of a run folder, its format and its listing are one idea.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import userdirs
from core.fileio import atomic_path, atomic_write_json, open_regular_file, read_regular_file

if TYPE_CHECKING:
    import torch
    from torch import nn

    from core.data import MNIST
    from core.export import ExportReport
    from core.models import ModelConfig
    from core.training import KDConfig, TrainConfig

# torch is imported inside the functions that save or load weights: listing runs (the app's model choices)
# must not cost the seconds of importing it.

CONFIG = "config.json"
METRICS = "metrics.json"
CHECKPOINT = "checkpoint.pt"
ONNX = "model.onnx"
STATUS = "status.json"
LOCK = ".lock"
LOCK_PID = ".lock.pid"
CHECKPOINT_FORMAT = "digit-distill-checkpoint/1"
#: config.json's format (written by core.jobs); folders from before it have no "format" entry.
CONFIG_FORMAT = "digit-distill-job/1"
#: What a run folder can say about its job. Only ``complete`` runs are ever chosen automatically.
STATUSES = ("running", "complete", "stopped", "diverged", "failed")


class RunError(RuntimeError):
    """A run folder cannot be used as asked (in use by another job, not found, not writable)."""


class RunLockedError(RunError):
    """Another process holds the run folder's lock."""


class RunSaveError(RunError):
    """Saving into the run folder failed (disk full, permission denied); the previous files are kept."""


class RunFormatError(ValueError):
    """A run folder's file is missing, corrupt, of the wrong shape or from a newer version; the message names it."""


#: Largest config.json / metrics.json / status.json read (a 1,000-epoch history is about 300 kB).
MAX_JSON_BYTES = 64 * 1024 * 1024


def newer_format(found: object, known: str) -> bool:
    """True when ``found`` names a later version of the format ``known`` (``"name/2"`` against ``"name/1"``)."""
    if not isinstance(found, str) or "/" not in found:
        return False
    name, _, version = found.rpartition("/")
    known_name, _, known_version = known.rpartition("/")
    return name == known_name and version.isdigit() and int(version) > int(known_version)


def read_json_object(path: Path) -> dict[str, Any]:
    """A run folder's JSON file as a dict; :class:`RunFormatError` naming the file when it cannot be."""
    try:
        data = json.loads(read_regular_file(path, limit=MAX_JSON_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise RunFormatError(f"{path}: missing") from None
    except OSError as exc:
        raise RunFormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, nesting too deep
        raise RunFormatError(f"{path}: not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise RunFormatError(f"{path}: holds a JSON {type(data).__name__}, not an object")
    return data


def _entry(
    path: Path,
    data: dict[str, Any],
    key: str,
    kinds: type | tuple[type, ...],
    default: Any = None,
    required: bool = False,
) -> Any:
    """``data[key]`` checked to be of ``kinds`` (``bool`` never counts as a number); ``default`` when absent."""
    if key not in data or data[key] is None:
        if required:
            raise RunFormatError(f"{path}: no {key!r} entry")
        return default
    value = data[key]
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise RunFormatError(f"{path}: {key!r} must be {names}, not {type(value).__name__} {value!r:.60}")
    return value


def default_runs_root() -> Path:
    """``$DIGIT_DISTILL_RUNS``, else the user's data folder / runs (:func:`core.userdirs.runs_dir`)."""
    return userdirs.runs_dir()


def new_run_dir(role: str, recipe: str, root: Path | None = None) -> Path:
    """Create and return a fresh, uniquely named run folder such as ``20261127-193012-strong-teacher``."""
    root = Path(root) if root else default_runs_root()
    with saving(root):
        root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        name = f"{stamp}-{recipe}-{role}" + (f"-{i}" if i else "")
        try:
            (root / name).mkdir()
            return root / name
        except FileExistsError:
            continue
    raise RunError(f"could not create a new run folder in {root}")


def resolve_run(text: str | Path, root: Path | None = None) -> Path:
    """A run given as a path (folder or checkpoint) or as a name that ``digit-distill runs`` prints."""
    path = Path(text).expanduser()
    if path.exists():
        return path
    root = Path(root) if root else default_runs_root()
    if path.name == str(text) and (root / path.name).is_dir():
        return root / path.name
    raise RunError(
        f"no run {str(text)!r}: not an existing path, nor a run name in {root} "
        "(`digit-distill runs` lists the names; --runs-dir chooses the folder)"
    )


@contextmanager
def saving(path: Path) -> Iterator[None]:
    """Turn "disk full" and "permission denied" while writing ``path`` into a :class:`RunSaveError` naming it."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            what = "disk full"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            what = "permission denied"
        else:
            raise
        raise RunSaveError(
            f"{what} while saving {path} ({exc.strerror}); the last good files in {Path(path).parent} are kept"
        ) from exc


def write_config(
    run_dir: Path,
    role: str,
    preset: str,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    kd: KDConfig | None,
    teacher_info: dict[str, Any] | None = None,
) -> None:
    """Write config.json for a bare :func:`core.training.train` call (the job runner writes its own first).

    An existing config.json is never rewritten: it records what the run was started with.
    """
    import torch

    if (run_dir / CONFIG).exists():
        return
    write_json(
        run_dir / CONFIG,
        {
            "role": role,
            "preset": preset,
            "model": model_cfg.to_dict(),
            "train": train_cfg.to_dict(),
            "kd": kd.to_dict() if kd else None,
            "teacher": teacher_info,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "torch": torch.__version__,
        },
    )


def write_json(path: Path, obj: Any) -> None:
    """Write a run folder's JSON file atomically; disk-full and permission errors name the path."""
    with saving(path):
        atomic_write_json(path, obj)


def write_metrics(
    run_dir: Path,
    role: str,
    preset: str,
    history: list[dict[str, Any]],
    params: int,
    finished: bool,
    stopped: bool = False,
) -> None:
    """Write metrics.json: the per-epoch history so far."""
    write_json(
        run_dir / METRICS,
        {
            "role": role,
            "preset": preset,
            "params": params,
            "finished": finished,
            "stopped": stopped,
            "test_accuracy": history[-1]["test_acc"] if history else None,
            "seconds": sum(h["seconds"] for h in history),
            "history": history,
        },
    )


def write_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    history: list[dict[str, Any]],
    role: str,
    preset: str,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    kd: KDConfig | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Save weights, optimizer and RNG state, history and configs atomically.

    ``extra`` adds entries (the trainer's random states and divergence reference). On "disk full" or
    "permission denied" a :class:`RunSaveError` names the path and the previous checkpoint stays as it was.
    """
    import torch

    state = {
        "format": CHECKPOINT_FORMAT,
        "role": role,
        "preset": preset,
        "model_config": model_cfg.to_dict(),
        "train_config": train_cfg.to_dict(),
        "kd_config": kd.to_dict() if kd else None,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state().cpu(),
        "history": history,
        **(extra or {}),
    }
    with saving(path), atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint dict, with a clear error for a missing, corrupt, foreign or newer file.

    Raises
    ------
    FileNotFoundError
        No checkpoint there.
    RunFormatError
        (a ``ValueError``) anything else: not a regular file, not a torch file, not ours, a newer format.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.suffix.lower() == ".onnx":
        raise ValueError(f"{path} is an ONNX model, not a checkpoint: give a run folder or its {CHECKPOINT}")
    try:
        with open_regular_file(path) as f:  # a FIFO named checkpoint.pt would block torch.load
            state = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        reason = (
            str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        )  # torch adds paragraphs of advice
        raise RunFormatError(
            f"{path} is not a readable digit-distill checkpoint ({type(exc).__name__}: {reason})"
        ) from None
    found = state.get("format") if isinstance(state, dict) else None
    if newer_format(found, CHECKPOINT_FORMAT):
        raise RunFormatError(
            f"{path} was written by a newer digit-distill (format {found}; this version reads "
            f"{CHECKPOINT_FORMAT}): update digit-distill to use it"
        )
    if found != CHECKPOINT_FORMAT:
        raise RunFormatError(
            f"{path} is not a digit-distill checkpoint (format {CHECKPOINT_FORMAT} expected)"
        )
    checkpoint: dict[str, Any] = state
    return checkpoint


def load_checkpoint(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored in a run folder or checkpoint file; returns ``(model in eval mode, metadata)``.

    Raises ``FileNotFoundError`` or :class:`RunFormatError` (missing entries, wrong types, weights that do not
    fit the architecture).
    """
    from core.models import ModelConfig, build_model

    state = read_checkpoint(path)
    try:
        model = build_model(ModelConfig.from_dict(state["model_config"]))
        model.load_state_dict(state["state_dict"])
        history = state["history"]
        if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
            raise TypeError("history must be a list of per-epoch entries")
        test_accuracy = history[-1]["test_acc"] if history else None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise RunFormatError(
            f"{path}: a damaged checkpoint ({type(exc).__name__}: {exc}); the model cannot be rebuilt"
        ) from None
    meta = {k: v for k, v in state.items() if k not in ("state_dict", "optimizer", "generator", "rng")}
    meta["test_accuracy"] = test_accuracy
    return model.eval(), meta


# --------------------------------------------------------------------------------------- status and lock


def write_status(run_dir: Path, status: str, message: str = "", **extra: Any) -> None:
    """Record the job's state in status.json (entries of an earlier status, such as extensions, are kept)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    previous = read_status(run_dir)
    previous.pop("message", None)
    write_json(
        Path(run_dir) / STATUS,
        previous
        | extra
        | {
            "status": status,
            "message": message,
            "pid": os.getpid(),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )


def read_status(run_dir: Path) -> dict[str, Any]:
    """status.json as a dict (``{}`` when missing or unreadable)."""
    try:
        return read_json_object(Path(run_dir) / STATUS)
    except RunFormatError:
        return {}


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except (OSError, OverflowError):  # no such process, or a pid no process can have
        return False
    return True


class RunLock:
    """Exclusive use of a run folder by one job (an OS file lock, released even when the process dies).

    Raises :class:`RunLockedError` naming the other process when the folder is in use.
    """

    def __init__(self, run_dir: Path):
        from filelock import FileLock

        self.run_dir = Path(run_dir)
        self._lock = FileLock(str(self.run_dir / LOCK), timeout=0)

    def __enter__(self) -> RunLock:
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout:
            try:
                pid = (self.run_dir / LOCK_PID).read_text().strip()
            except OSError:
                pid = "unknown"
            raise RunLockedError(
                f"{self.run_dir} is in use by another job (process {pid}); wait for it to end or stop it first"
            ) from None
        with saving(self.run_dir / LOCK_PID):
            (self.run_dir / LOCK_PID).write_text(f"{os.getpid()}\n")
        return self

    def __exit__(self, *exc: object) -> None:
        (self.run_dir / LOCK_PID).unlink(missing_ok=True)
        self._lock.release()


def clean_temp_files(run_dir: Path) -> list[Path]:
    """Remove the temporary files a killed writer left behind (``.NAME.XXXX.tmp``); call with the lock held."""
    removed = []
    for tmp in Path(run_dir).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


# --------------------------------------------------------------------------------------------- listing


@dataclass
class RunInfo:
    """Summary of one run folder, read from its JSON files."""

    path: Path
    role: str
    preset: str
    created: str
    test_accuracy: float | None
    params: int
    epochs_done: int
    epochs: int
    status: str
    onnx_path: Path | None
    kd: dict[str, Any] | None
    recipe: str | None = None
    message: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The folder name."""
        return self.path.name

    @property
    def finished(self) -> bool:
        """True for a complete run (all epochs done; the only runs chosen automatically)."""
        return self.status == "complete"

    @property
    def teacher_run(self) -> str | None:
        """Path of the teacher a distilled run learned from (None for other roles)."""
        teacher = self.config.get("teacher") or {}
        return teacher.get("run") or teacher.get("path")


def _status_of(
    run_dir: Path, metrics: dict[str, Any], history: list[dict[str, Any]]
) -> tuple[str, str, dict[str, Any]]:
    saved = read_status(run_dir)
    if not saved:  # a folder from before status.json: judge by its metrics
        if metrics.get("finished"):
            return "complete", "", saved
        return ("stopped" if history else "failed"), "", saved
    status, message = saved.get("status", "failed"), saved.get("message", "")
    if status == "running" and saved.get("pid") != os.getpid() and not _alive(saved.get("pid")):
        status, message = "stopped", "the job's process ended without finishing (killed?)"
    return status, message, saved


def read_run(run_dir: Path) -> RunInfo:
    """Read one run folder.

    Raises
    ------
    RunFormatError
        (a ``ValueError``) config.json missing or corrupt, any of its JSON files of the wrong shape (missing
        entries, wrong types) or from a newer version of digit-distill; the message names the file.
    """
    run_dir = Path(run_dir)
    config_path, metrics_path, status_path = run_dir / CONFIG, run_dir / METRICS, run_dir / STATUS
    config = read_json_object(config_path)
    if newer_format(config.get("format"), CONFIG_FORMAT):
        raise RunFormatError(
            f"{config_path}: written by a newer digit-distill (format {config['format']}; this version reads "
            f"{CONFIG_FORMAT}): update digit-distill to use this run"
        )
    metrics = read_json_object(metrics_path) if metrics_path.exists() else {}
    train = _entry(config_path, config, "train", dict, required=True)
    history = _entry(metrics_path, metrics, "history", list, default=[])
    if not all(isinstance(h, dict) for h in history):
        raise RunFormatError(f"{metrics_path}: 'history' must be a list of per-epoch objects")
    status, message, saved = _status_of(run_dir, metrics, history)
    if status not in STATUSES:
        raise RunFormatError(f"{status_path}: status {status!r:.40} is not one of {', '.join(STATUSES)}")
    accuracy = _entry(metrics_path, metrics, "test_accuracy", (int, float))
    onnx_path = run_dir / ONNX
    return RunInfo(
        path=run_dir,
        role=_entry(config_path, config, "role", str, required=True),
        preset=_entry(config_path, config, "preset", str, required=True),
        created=_entry(config_path, config, "created", str, default=""),
        test_accuracy=None if accuracy is None else float(accuracy),
        params=_entry(metrics_path, metrics, "params", int, default=0),
        epochs_done=len(history),
        epochs=_entry(status_path, saved, "epochs", int, default=None)
        or _entry(config_path, train, "epochs", int, required=True),
        status=status,
        onnx_path=onnx_path if onnx_path.exists() else None,
        kd=_entry(config_path, config, "kd", dict),
        recipe=_entry(config_path, config, "recipe", str),
        message=str(message),
        config=config,
        history=history,
    )


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """All readable run folders under ``root``, newest first (unreadable folders are skipped)."""
    root = Path(root) if root else default_runs_root()
    if not root.is_dir():
        return []
    infos = []
    for d in root.iterdir():
        if (d / CONFIG).exists():
            try:
                infos.append(read_run(d))
            except (ValueError, KeyError):
                continue
    return sorted(infos, key=lambda r: r.path.name, reverse=True)


def export_run(run_dir: Path, data: MNIST | None = None, output: Path | None = None) -> ExportReport:
    """Export a run's checkpoint to ONNX (``run_dir/model.onnx`` unless ``output``), verified on 1,000 test images.

    ``run_dir`` may also be a checkpoint file. Returns :class:`core.export.ExportReport`.
    """
    from core.export import export_onnx

    run_dir = Path(run_dir)
    model, meta = load_checkpoint(run_dir)
    folder = run_dir if run_dir.is_dir() else run_dir.parent
    metadata: dict[str, str | float | int] = {
        "preset": meta["preset"],
        "role": meta["role"],
        "run": folder.name,
    }
    if meta["test_accuracy"] is not None:
        metadata["accuracy"] = meta["test_accuracy"]
    if meta.get("kd_config"):
        metadata["temperature"] = meta["kd_config"]["temperature"]
        metadata["alpha"] = meta["kd_config"]["alpha"]
    verify = data.test_images[:1000].numpy() if data is not None else None
    return export_onnx(model, output or folder / ONNX, metadata=metadata, verify_images=verify)
