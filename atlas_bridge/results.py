"""Typed data that crosses from the bridge into the app: deploy steps, board answers, board state.

Plain dataclasses with ``to_dict``/``from_dict`` (JSON-ready), no Qt and nothing heavy to import, so the app's
views render fields instead of digging in dicts, and the GUI can import these at start-up cheaply.

Deploy progress uses the trainer's progress protocol (``core.progress.Progress``); a deploy's steps are its
"epochs": each step change is one ``on_epoch(StepEvent.to_dict())`` call (``epoch``/``epochs`` = step number and
count, plus ``step``, ``state``, ``detail``), log lines are ``status(text)``, upload progress is
``on_batch({"step": "upload", "done": bytes, "total": bytes})`` and ``should_stop()`` cancels the deploy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any

#: The deploy's steps, in order, with their titles.
STEPS = (
    ("check", "Check the board"),
    ("upload", "Upload the ONNX model"),
    ("convert", "Convert with ATC"),
    ("run", "Run on the board"),
    ("compare", "Compare with local onnxruntime"),
)
STEP_NAMES = tuple(name for name, _ in STEPS)


class StepState(str, Enum):
    """Where a deploy step stands."""

    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class StepEvent:
    """A deploy step changed state (``detail``: what it found, or why it failed)."""

    step: str
    state: StepState
    detail: str = ""

    def __post_init__(self) -> None:
        if self.step not in STEP_NAMES:
            raise ValueError(f"unknown deploy step {self.step!r}; steps are {STEP_NAMES}")
        object.__setattr__(self, "state", StepState(self.state))

    @property
    def index(self) -> int:
        """0-based position of the step."""
        return STEP_NAMES.index(self.step)

    def to_dict(self) -> dict[str, Any]:
        """The ``on_epoch`` dict of the progress protocol: ``epoch``/``epochs`` are the step's number and count."""
        return {
            "epoch": self.index + 1,
            "epochs": len(STEPS),
            "step": self.step,
            "state": self.state.value,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepEvent:  # noqa: D102
        return cls(str(data["step"]), StepState(data["state"]), str(data.get("detail", "")))


def _known_fields(cls: type, data: dict[str, Any], what: str) -> dict[str, Any]:
    """``data`` when every key is a field of the dataclass ``cls``; otherwise a ValueError naming ``what``."""
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown keys in {what}: {sorted(unknown)}")
    return data


def is_step_event(info: dict[str, Any]) -> bool:
    """True when an ``on_epoch`` dict is a deploy step (not a training epoch)."""
    return "step" in info and "state" in info


@dataclass(frozen=True)
class BoardPrediction:
    """The board's answer for one drawing.

    Attributes
    ----------
    digit
        The board's predicted digit.
    probabilities
        Ten probabilities (softmax of the board's logits).
    npu_ms
        Milliseconds around ``acl.mdl.execute`` on the board (the NPU's share).
    round_trip_ms
        Milliseconds from sending the drawing to having the answer here (SSH, copies, Python on both sides).
    restarted
        True when the runner had died or hung and was restarted for this answer.
    """

    digit: int
    probabilities: tuple[float, ...]
    npu_ms: float
    round_trip_ms: float
    restarted: bool = False

    def __post_init__(self) -> None:
        probabilities = tuple(float(p) for p in self.probabilities)
        if len(probabilities) != 10:
            raise ValueError(f"a board answer has 10 probabilities, not {len(probabilities)}")
        if not 0 <= int(self.digit) <= 9:
            raise ValueError(f"a board answer's digit is 0-9, not {self.digit}")
        object.__setattr__(self, "probabilities", probabilities)
        object.__setattr__(self, "digit", int(self.digit))

    def to_dict(self) -> dict[str, Any]:  # noqa: D102
        d = asdict(self)
        d["probabilities"] = list(self.probabilities)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BoardPrediction:
        """Build from plain data; unknown keys are an error."""
        return cls(**_known_fields(cls, data, "a board answer"))


class BoardStatus(str, Enum):
    """Whether the board can classify drawings now."""

    OFFLINE = "offline"  # no model deployed in this session
    CONNECTING = "connecting"  # opening the SSH connection / starting the runner
    READY = "ready"  # a runner holds the model and answers
    FAILED = "failed"  # the last attempt failed (message says why); the next request tries again


@dataclass(frozen=True)
class BoardState:
    """The board as the app shows it: status, the model it runs, the chip, and a message."""

    status: BoardStatus = BoardStatus.OFFLINE
    model: str = ""
    soc_version: str = ""
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", BoardStatus(self.status))

    @property
    def usable(self) -> bool:
        """A model is deployed: drawings can be sent (a failed runner is restarted on the next request)."""
        return self.status in (BoardStatus.CONNECTING, BoardStatus.READY, BoardStatus.FAILED)

    def to_dict(self) -> dict[str, Any]:  # noqa: D102
        return {
            "status": self.status.value,
            "model": self.model,
            "soc_version": self.soc_version,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BoardState:  # noqa: D102
        return cls(
            BoardStatus(data["status"]),
            data.get("model", ""),
            data.get("soc_version", ""),
            data.get("message", ""),
        )


@dataclass
class DeployResult:
    """Everything a deploy found; :meth:`summary` is the CLI's ``--json`` line."""

    om_path: str
    om_bytes: int
    soc_version: str
    model_dir: str
    set_env: str
    cann_version: str
    reused_om: bool
    evaluated: int
    agreement: float
    max_probability_difference: float
    board_accuracy: float | None
    local_accuracy: float | None
    board_ms_per_image: float
    local_ms_per_image: float
    board_npu_ms_per_image: float = 0.0
    om_layout: str = ""
    board_predictions: list[int] = field(default_factory=list)
    local_predictions: list[int] = field(default_factory=list)
    labels: list[int] | None = None

    @property
    def model_name(self) -> str:
        """The .om's file name, for labels."""
        return self.om_path.rsplit("/", 1)[-1] or "the deployed model"

    def summary(self) -> dict[str, Any]:
        """The fields the issue asks for in ``--json`` output."""
        return {
            "om_path": self.om_path,
            "om_bytes": self.om_bytes,
            "soc_version": self.soc_version,
            "evaluated": self.evaluated,
            "board_accuracy": self.board_accuracy,
            "agreement": self.agreement,
            "max_probability_difference": self.max_probability_difference,
            "board_ms_per_image": self.board_ms_per_image,
            "board_npu_ms_per_image": self.board_npu_ms_per_image,
            "local_ms_per_image": self.local_ms_per_image,
        }

    def to_dict(self) -> dict[str, Any]:  # noqa: D102
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeployResult:
        """Build from :meth:`to_dict` output; unknown keys are an error."""
        return cls(**_known_fields(cls, data, "a deploy result"))
