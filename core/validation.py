"""One range check per option and form field, shared by the CLI (argparse ``type=``), the app's forms and the configs.

Each field is a :class:`NumberField` (an :class:`IntField` or a :class:`FloatField`: whole numbers or not) that
knows its name and its allowed range.
``field.check(value)`` is the check, ``field.parse(text)`` reads a typed-in value and checks it, and
``field.argtype`` is the same as an argparse ``type=``; the Qt forms take their spin-box ranges from the same
object (``app/gui/fields.py``). A refused value gets a :class:`FieldError` naming the field, the value and the
range: ``connect timeout: -5 is out of range; allowed: more than 0 and at most 600 seconds``.

Training hyperparameters (T, alpha, learning rate, epochs, batch size...) are checked where they live, in
``core.training.TrainConfig``/``KDConfig``; this module holds every other numeric field.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

N = TypeVar("N", int, float)


class FieldError(ValueError):
    """A value outside its field's allowed range (or not a number); the message names both."""


def _number_text(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) or float(x).is_integer() and abs(x) >= 10_000 else f"{x:g}"


@dataclass(frozen=True)
class NumberField(Generic[N]):
    """A numeric option or form field with its allowed range (:class:`IntField` or :class:`FloatField`).

    Attributes
    ----------
    label
        What the user calls it (``"connect timeout"``); messages start with it.
    integer
        Whole numbers only (``True`` for :class:`IntField`).
    low, high
        Bounds, both finite (NaN and infinities are always refused).
    low_open
        ``True``: ``low`` itself is refused (a timeout must be more than 0).
    unit
        Shown after the range (``"seconds"``, ``"images"``).
    """

    integer: ClassVar[bool]

    label: str
    low: float
    high: float
    low_open: bool = False
    unit: str = ""

    @property
    def allowed(self) -> str:
        """The range in words: ``more than 0 and at most 600 seconds``, ``a whole number from 1 to 65,535``."""
        unit = f" {self.unit}" if self.unit else ""
        if self.integer:
            return f"a whole number from {_number_text(self.low)} to {_number_text(self.high)}{unit}"
        lower = (
            f"more than {_number_text(self.low)}" if self.low_open else f"at least {_number_text(self.low)}"
        )
        return f"{lower} and at most {_number_text(self.high)}{unit}"

    def _refuse(self, shown: str) -> FieldError:
        return FieldError(f"{self.label}: {shown} is out of range; allowed: {self.allowed}")

    def check(self, value: object) -> N:
        """Return ``value`` (as int for whole-number fields) if allowed, else raise :class:`FieldError`."""
        raise NotImplementedError

    def _checked(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                value = float(value)  # numpy scalars, Decimal...
            except (TypeError, ValueError):
                raise FieldError(
                    f"{self.label}: {value!r} is not a number; allowed: {self.allowed}"
                ) from None
        if not math.isfinite(value):
            raise self._refuse(str(value))
        if self.integer:
            if value != int(value):
                raise FieldError(f"{self.label}: {value} is not a whole number; allowed: {self.allowed}")
            value = int(value)
        too_low = value <= self.low if self.low_open else value < self.low
        if too_low or value > self.high:
            raise self._refuse(_number_text(value) if self.integer else f"{value:g}")
        checked: float = value
        return checked

    def check_optional(self, value: object) -> N | None:
        """Like :meth:`check`, with ``None`` meaning "not set" (the default applies)."""
        return None if value is None else self.check(value)

    def parse(self, text: str) -> N:
        """Read a typed-in value (``"15"``, ``"2.5"``) and check it."""
        raw = str(text).strip()
        try:
            value = int(raw) if self.integer else float(raw)
        except ValueError:
            kind = "a whole number" if self.integer else "a number"
            raise FieldError(f"{self.label}: {raw!r} is not {kind}; allowed: {self.allowed}") from None
        return self.check(value)

    def argtype(self, text: str) -> N:
        """Argparse ``type=``: :meth:`parse` with argparse's error type (argparse names the option)."""
        try:
            return self.parse(text)
        except FieldError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


class IntField(NumberField[int]):
    """A whole-number field: :meth:`check` returns an ``int``."""

    integer = True

    def check(self, value: object) -> int:  # noqa: D102
        return int(self._checked(value))


class FloatField(NumberField[float]):
    """A field taking any number (an ``int`` given is returned as it is)."""

    integer = False

    def check(self, value: object) -> float:  # noqa: D102
        return self._checked(value)


# ---- connections and deploy (CLI deploy options, Deploy tab, atlas_bridge configs) ----
PORT = IntField("SSH port", low=1, high=65535)
CONNECT_TIMEOUT = FloatField("connect timeout", low=0, high=600, low_open=True, unit="seconds")
COMMAND_TIMEOUT = FloatField("command timeout", low=0, high=86400, low_open=True, unit="seconds")
ATC_TIMEOUT = FloatField("ATC timeout", low=0, high=86400, low_open=True, unit="seconds")
RUN_TIMEOUT = FloatField("board run timeout", low=0, high=86400, low_open=True, unit="seconds")
KEEPALIVE = IntField("SSH keepalive interval", low=0, high=3600, unit="seconds")
DEPLOY_IMAGES = IntField("images evaluated on the board", low=1, high=10000, unit="images")
DEPLOY_BATCH = IntField("board batch size", low=1, high=1024, unit="images")
STALL_TIMEOUT = FloatField("upload stall timeout", low=0, high=3600, low_open=True, unit="seconds")

# ---- evaluation, quantization ----
CALIBRATION_SAMPLES = IntField("calibration samples", low=1, high=60000, unit="images")
TEST_SAMPLES = IntField("test samples", low=1, high=10000, unit="images")
LATENCY_REPEATS = IntField("latency repeats", low=1, high=1_000_000, unit="calls")

# ---- experiments (reproduce, sweep) ----
SEEDS = IntField("seeds", low=1, high=100)
WORKERS = IntField("worker processes", low=1, high=256)
THREADS = IntField("threads per worker (0: cores / workers)", low=0, high=1024)
EPOCHS_SCALE = FloatField("epochs scale", low=0, high=100, low_open=True)
SEARCH_TRIALS = IntField("search trials", low=1, high=100_000, unit="trials")
VALIDATION_IMAGES = IntField("validation images", low=1, high=59_999, unit="images")
HEARTBEAT = IntField("heartbeat interval", low=1, high=3600, unit="seconds")
