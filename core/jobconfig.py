"""What a training job is: the description a caller gives and the full configuration it resolves to.

A :class:`JobSpec` names a recipe, a role and what it changes; :class:`JobConfig` is the whole configuration, what a
run folder's config.json holds.

:func:`resolve` fills a spec from its recipe (:mod:`core.recipes`, the one home of the defaults) and validates it;
an override equal to the recipe's value is dropped, so the same choices give the same config.json from every caller.
:func:`load_config` reads a run folder's config back, :func:`config_differences` and :func:`resume_conflicts` say
whether a folder holds the same job. Running a job is :mod:`core.jobs`, which re-exports these names for callers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from core import runs
from core.augment import AugmentConfig
from core.jobdata import POOL_SEED
from core.models import ModelConfig
from core.recipes import RECIPES, get_recipe
from core.styles import FLAG_MAX_ANGLE, FLAG_MIN_ANGLE
from core.training import ROLES, KDConfig, TrainConfig

CONFIG_FORMAT = runs.CONFIG_FORMAT
#: TrainConfig fields a recipe fixes (seed, device and the subset belong to the job, not the recipe).
TRAIN_KEYS = tuple(
    f.name for f in fields(TrainConfig) if f.name not in ("seed", "device", "max_train_samples")
)
KD_KEYS = ("temperature", "alpha")
DATA_KEYS = ("styles", "restroke", "pool_copies")
OVERRIDE_KEYS = TRAIN_KEYS + KD_KEYS + DATA_KEYS


class JobError(RuntimeError):
    """A job cannot run as asked (unknown setting, no teacher, a run folder that does not match)."""


@dataclass(frozen=True)
class JobSpec:
    """What a person (or an experiment) asks for; :func:`resolve` turns it into the full configuration.

    Attributes
    ----------
    recipe, role
        A name from :data:`core.recipes.RECIPES`; ``"teacher"``, ``"student"`` or ``"distilled"``.
    overrides
        Recipe values changed for this job (keys in :data:`OVERRIDE_KEYS`); ``None`` values are ignored.
    teacher_run
        The teacher's run folder (distillation only).
    seed, device, max_train_samples, max_test_samples
        Per-job choices (the subsets are fixed random picks, for quick runs).
    validation
        Hold out the last ``validation`` training images as a validation split (sweeps choose on it; each
        epoch then reports ``val_acc``); None: train on the whole training set.
    data_dir, runs_root, run_name
        Where MNIST is, where run folders go, and a fixed folder name (experiments; default: a new name).
    export
        Export a complete run to ONNX.
    init_weights
        Start from these weights (an ``.onnx`` file, run folder or checkpoint; its architecture is used)
        instead of a random initialisation: fine-tuning, as in personalisation.
    personal, personal_indices
        A drawn-digits ``.npz`` (a person's own digits) whose samples (all, or those at ``personal_indices``)
        join the training data, rendered like the canvas, with the recipe's ``personal_copies`` jittered copies.
    """

    recipe: str = "strong"
    role: str = "teacher"
    overrides: dict[str, Any] = field(default_factory=dict)
    teacher_run: Path | None = None
    seed: int = 0
    device: str = "auto"
    max_train_samples: int | None = None
    max_test_samples: int | None = None
    validation: int | None = None
    data_dir: Path | None = None
    runs_root: Path | None = None
    run_name: str | None = None
    export: bool = True
    init_weights: Path | None = None
    personal: Path | None = None
    personal_indices: tuple[int, ...] | None = None


@dataclass(frozen=True)
class DataConfig:
    """The job's data: European-style digits, jittered pool copies (students), test subset, validation split."""

    styles: float = 0.0
    pool_copies: int = 0
    max_test_samples: int | None = None
    pool_seed: int = POOL_SEED
    validation: int | None = None
    restroke: float = 0.0
    flag_min_angle: float = FLAG_MIN_ANGLE
    curved_ones: float = 0.0
    personal: str | None = None
    personal_indices: list[int] | None = None
    personal_copies: int = 0

    def validate(self) -> None:
        """Refuse values out of range with a message naming the value."""
        if not 0.0 <= self.styles <= 1.0:
            raise ValueError(f"styles (share of European-style digits) must be in [0, 1], got {self.styles}")
        if not 0.0 <= self.restroke <= 1.0:
            raise ValueError(
                f"restroke (share of digits redrawn with the pen) must be in [0, 1], got {self.restroke}"
            )
        if not 0.0 <= self.flag_min_angle <= FLAG_MAX_ANGLE:
            raise ValueError(
                f"the shallowest flag of a European one must be in [0, {FLAG_MAX_ANGLE:g}] degrees, "
                f"got {self.flag_min_angle}"
            )
        if not 0.0 <= self.curved_ones <= 1.0:
            raise ValueError(f"curved ones (share of ones bent) must be in [0, 1], got {self.curved_ones}")
        if int(self.pool_copies) != self.pool_copies or self.pool_copies < 0:
            raise ValueError(f"pool copies must be an integer >= 0, got {self.pool_copies}")
        if self.max_test_samples is not None and self.max_test_samples < 1:
            raise ValueError(f"max test samples must be >= 1, got {self.max_test_samples}")
        if self.validation is not None and not 1 <= self.validation < 60000:
            raise ValueError(f"validation images must be between 1 and 59999, got {self.validation}")
        if int(self.personal_copies) != self.personal_copies or self.personal_copies < 0:
            raise ValueError(f"personal copies must be an integer >= 0, got {self.personal_copies}")


@dataclass
class JobConfig:
    """A resolved job: everything that decides its result (the content of config.json)."""

    recipe: str
    role: str
    preset: str
    overrides: dict[str, Any]
    model: ModelConfig
    train: TrainConfig
    kd: KDConfig | None
    data: DataConfig
    teacher: dict[str, Any] | None
    init: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (config.json without its ``created`` and ``torch`` entries)."""
        return {
            "format": CONFIG_FORMAT,
            "recipe": self.recipe,
            "role": self.role,
            "preset": self.preset,
            "overrides": {
                k: asdict(v) if isinstance(v, AugmentConfig) else v for k, v in self.overrides.items()
            },
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "kd": self.kd.to_dict() if self.kd else None,
            "data": asdict(self.data),
            "teacher": self.teacher,
            "init": self.init,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobConfig:
        """Rebuild from config.json."""
        return cls(
            recipe=d["recipe"],
            role=d["role"],
            preset=d["preset"],
            overrides=dict(d["overrides"]),
            model=ModelConfig.from_dict(d["model"]),
            train=TrainConfig.from_dict(d["train"]),
            kd=KDConfig.from_dict(d["kd"]) if d["kd"] else None,
            data=DataConfig(**d["data"]),
            teacher=d["teacher"],
            init=d.get("init"),
        )

    def value(self, key: str) -> Any:
        """The effective value of an override key (a training, distillation or data setting)."""
        if key in KD_KEYS:
            return getattr(self.kd, key) if self.kd else None
        if key in DATA_KEYS:
            return getattr(self.data, key)
        return getattr(self.train, key)


def recipe_values(recipe: str, role: str) -> dict[str, Any]:
    """The values ``recipe`` gives ``role`` for every key in :data:`OVERRIDE_KEYS` (what a form shows).

    The students of a recipe with an augmentation pool train on the pool without online jitter; the teacher
    never uses the pool. Temperature and alpha are given for every role (they only act on distillation).
    """
    if role not in ROLES:
        raise JobError(f"role must be one of {ROLES}, got {role!r}")
    r = get_recipe(recipe)
    cfg = r.train_for(role)
    values = {k: getattr(cfg, k) for k in TRAIN_KEYS}
    pool = r.pool_copies if role != "teacher" else 0
    if pool:
        values["augment"] = False
    values |= {
        "temperature": r.kd.temperature,
        "alpha": r.kd.alpha,
        "styles": r.styles,
        "restroke": r.restroke,
        "pool_copies": pool,
    }
    return values


def _coerce(default: Any, value: Any, key: str) -> Any:
    """``value`` in the type of the recipe's ``default`` (so 3.0 epochs records as 3), or a clear error."""
    try:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(default, int) and not isinstance(value, bool):
            if float(value) != int(float(value)):
                raise ValueError(f"{key} must be a whole number, got {value}")
            return int(float(value))
        if isinstance(default, float):
            return float(value)
        if isinstance(default, AugmentConfig) and isinstance(value, dict):
            return AugmentConfig(**value)
    except (TypeError, OverflowError):
        raise ValueError(f"{key} cannot be {value!r}") from None
    return value


def _teacher_info(path: Path) -> dict[str, Any]:
    path = Path(path).expanduser().resolve()
    if path.suffix == ".onnx":  # a teacher that exists only as an exported model (the bundled one)
        from core.inference import InvalidModelError, OnnxClassifier

        try:
            meta = OnnxClassifier(path).metadata
        except InvalidModelError as exc:
            raise JobError(f"cannot use {path} as the teacher: {exc}") from None
        accuracy = meta.get("accuracy")
        return {
            "onnx": str(path),
            "name": path.name,
            "recipe": meta.get("recipe"),
            "test_accuracy": float(accuracy) if accuracy else None,
        }
    folder = path if path.is_dir() else path.parent
    try:
        info = runs.read_run(folder)
    except (ValueError, KeyError) as exc:
        raise JobError(f"cannot use {path} as the teacher: {exc}") from exc
    if info.role != "teacher":
        raise JobError(f"{folder} holds a {info.role} run, not a teacher")
    if info.epochs_done == 0:
        raise JobError(f"the teacher run {folder} has no finished epoch to learn from")
    return {
        "run": str(folder),
        "name": folder.name,
        "recipe": info.recipe,
        "test_accuracy": info.test_accuracy,
    }


def resolve(spec: JobSpec) -> JobConfig:
    """The full configuration of ``spec``: its recipe's values with its overrides; everything validated.

    Raises ``ValueError``/:class:`JobError` with a message naming the value and what is allowed.
    """
    if spec.recipe not in RECIPES:
        raise JobError(f"unknown recipe {spec.recipe!r}; choose one of {sorted(RECIPES)}")
    values = recipe_values(spec.recipe, spec.role)
    given = {k: v for k, v in spec.overrides.items() if v is not None}
    unknown = sorted(set(given) - set(OVERRIDE_KEYS))
    if unknown:
        raise JobError(f"unknown setting(s) {unknown}; a job can change {list(OVERRIDE_KEYS)}")
    if spec.role != "distilled" and set(given) & set(KD_KEYS):
        raise JobError("temperature and alpha apply to distillation only")
    overrides = {k: _coerce(values[k], v, k) for k, v in given.items()}
    overrides = {k: v for k, v in sorted(overrides.items()) if v != values[k]}
    merged = values | overrides
    recipe = get_recipe(spec.recipe)
    max_train = spec.max_train_samples if spec.max_train_samples is not None else recipe.mnist_samples
    train_cfg = TrainConfig(
        **{k: merged[k] for k in TRAIN_KEYS},
        seed=spec.seed,
        device=spec.device,
        max_train_samples=max_train,
    )
    if int(spec.seed) != spec.seed or spec.seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {spec.seed}")
    personal: dict[str, Any] = {}
    if spec.personal is not None:
        path = Path(spec.personal).expanduser().resolve()
        if not path.is_file():
            raise JobError(f"{spec.personal}: no such strokes file")
        indices = sorted(int(i) for i in spec.personal_indices) if spec.personal_indices is not None else None
        personal = {
            "personal": str(path),
            "personal_indices": indices,
            "personal_copies": recipe.personal_copies,
        }
    data = DataConfig(
        styles=merged["styles"],
        pool_copies=merged["pool_copies"],
        max_test_samples=spec.max_test_samples,
        validation=spec.validation if spec.validation is not None else recipe.validation,
        restroke=merged["restroke"],
        flag_min_angle=recipe.flag_min_angle,
        curved_ones=recipe.curved_ones,
        **personal,
    )
    data.validate()
    model_cfg, init = recipe.model_for(spec.role), None
    if spec.init_weights is not None:
        from core.weights import WeightsError, model_config_of

        path = Path(spec.init_weights).expanduser().resolve()
        try:
            model_cfg = model_config_of(path)
        except (WeightsError, ValueError) as exc:
            raise JobError(f"cannot start from {spec.init_weights}: {exc}") from None
        init = {"path": str(path), "name": path.name}
    kd = teacher = None
    if spec.role == "distilled":
        kd = KDConfig(temperature=merged["temperature"], alpha=merged["alpha"])
        if spec.teacher_run is None:
            raise JobError("distillation needs a trained teacher run")
        teacher = _teacher_info(spec.teacher_run)
    return JobConfig(
        recipe=spec.recipe,
        role=spec.role,
        preset=recipe.preset,
        overrides=overrides,
        model=model_cfg,
        train=train_cfg,
        kd=kd,
        data=data,
        teacher=teacher,
        init=init,
    )


def load_config(run_dir: Path) -> JobConfig:
    """The job a run folder was started with (its config.json)."""
    path = Path(run_dir) / runs.CONFIG
    try:
        d = runs.read_json_object(path)
    except runs.RunFormatError as exc:
        raise JobError(f"{run_dir} is not a readable run folder: {exc}") from None
    if runs.newer_format(d.get("format"), CONFIG_FORMAT):
        raise JobError(
            f"{run_dir} was made by a newer digit-distill (format {d['format']}); update digit-distill to resume it"
        )
    if d.get("format") != CONFIG_FORMAT:
        raise JobError(
            f"{run_dir} was made by an older digit-distill; it cannot be resumed (start a new run)"
        )
    try:
        return JobConfig.from_dict(d)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise JobError(
            f"{path}: a damaged job config ({type(exc).__name__}: {exc}); start a new run"
        ) from None


def config_differences(a: JobConfig, b: JobConfig) -> list[str]:
    """The top-level config.json entries in which two jobs differ."""
    da, db = a.to_dict(), b.to_dict()
    return [k for k in da if da[k] != db.get(k)]


def resume_conflicts(saved: JobConfig, asked: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, asked value, saved value)`` for every choice in ``asked`` that contradicts the saved job.

    ``asked`` may hold ``recipe``, ``seed``, ``max_train_samples``, ``max_test_samples``, ``teacher_run`` and
    any key of :data:`OVERRIDE_KEYS`; ``None`` values are ignored. (Epochs are checked by :func:`resume_job`:
    more epochs than saved extend the run.)
    """
    conflicts: list[tuple[str, Any, Any]] = []
    for key, value in asked.items():
        if value is None:
            continue
        have: Any
        if key == "recipe":
            have = saved.recipe
        elif key in ("seed", "max_train_samples"):
            have = getattr(saved.train, key)
        elif key == "max_test_samples":
            have = saved.data.max_test_samples
        elif key == "teacher_run":
            have = (saved.teacher or {}).get("run")
            value = str(Path(value).expanduser().resolve())
        elif key in OVERRIDE_KEYS:
            have = saved.value(key)
            value = _coerce(have, value, key) if have is not None else value
        else:
            raise JobError(f"unknown setting {key!r}")
        if value != have:
            conflicts.append((key, value, have))
    return conflicts
