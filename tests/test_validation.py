"""Options and form fields are checked at the door, by one NumberField per field (core.validation)."""

from __future__ import annotations

import argparse
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.cli import build_parser
from core import validation
from core.validation import FieldError, NumberField
from tests import reliability

FIELDS = {name: f for name, f in vars(validation).items() if isinstance(f, NumberField)}
CATEGORY = "option and form-field values"

#: Numeric options checked by the job's configs (core.training TrainConfig/KDConfig, issue 9; core.jobs DataConfig),
#: not here.
TRAINING_HYPERPARAMETERS = {
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "temperature",
    "alpha",
    "temperatures",
    "alphas",
    "max_train_samples",
    "max_test_samples",
    "seed",
}


def _in_range(field: NumberField, value) -> bool:
    low_ok = value > field.low if field.low_open else value >= field.low
    return low_ok and value <= field.high


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.sampled_from([0, -0.0, 1, 65535, 65536, 600, 600.0000001, 1e-300, 0.5, 10000, 10001]),
)


@given(name=st.sampled_from(sorted(FIELDS)), value=numbers)
def test_check_accepts_exactly_the_range(name, value):
    field = FIELDS[name]
    reliability.describe(
        CATEGORY, "the value back when in range, else FieldError naming field, value and range"
    )
    result = reliability.check(CATEGORY, lambda: field.check(value), (FieldError,))
    expected_ok = (
        math.isfinite(value) and _in_range(field, value) and (not field.integer or float(value).is_integer())
    )
    if expected_ok:
        assert result == value and not isinstance(result, FieldError)
        assert type(result) is (int if field.integer else type(value))
    else:
        assert isinstance(result, FieldError), result
        message = str(result)
        assert message.startswith(field.label + ":")
        assert "allowed: " + field.allowed in message


@given(name=st.sampled_from(sorted(FIELDS)), text=st.text(max_size=20))
def test_parse_of_any_text_is_a_value_or_a_field_error(name, text):
    field = FIELDS[name]
    result = reliability.check(CATEGORY, lambda: field.parse(text), (FieldError,))
    if not isinstance(result, FieldError):
        assert _in_range(field, result)
    else:
        assert field.label in str(result) and field.allowed in str(result)


def _numeric_options(parser: argparse.ArgumentParser):
    """(command, dest, type) for every option of every subcommand that converts its text to a number."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, subparser in sub.choices.items():
        for action in subparser._actions:
            if action.type in (int, float) or getattr(action.type, "__self__", None) in FIELDS.values():
                yield command, action.dest, action.type


def test_every_numeric_option_has_a_field_or_is_a_training_hyperparameter():
    unchecked = [
        f"{command} --{dest}"
        for command, dest, kind in _numeric_options(build_parser())
        if kind in (int, float) and dest not in TRAINING_HYPERPARAMETERS
    ]
    assert unchecked == []


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            ["deploy", "--host", "h", "--model", __file__, "--connect-timeout", "-5"],
            "connect timeout: -5 is out of range",
        ),
        (
            ["deploy", "--host", "h", "--model", __file__, "--atc-timeout", "inf"],
            "ATC timeout: inf is out of range",
        ),
        (
            ["deploy", "--host", "h", "--model", __file__, "--port", "70000"],
            "SSH port: 70,000 is out of range",
        ),
        (
            ["deploy", "--host", "h", "--model", __file__, "--evaluate", "0"],
            "a whole number from 1 to 10,000 images",
        ),
        (
            ["quantize", __file__, "--out", "o", "--repeats", "nan"],
            "latency repeats: 'nan' is not a whole number",
        ),
        (["sweep", "--teacher", ".", "--out", "o", "--workers", "0"], "worker processes: 0 is out of range"),
        (
            ["reproduce", "--out", "o", "--epochs-scale", "0"],
            "epochs scale: 0 is out of range; allowed: more than 0",
        ),
    ],
)
def test_cli_refuses_out_of_range_values_naming_them(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_bridge_configs_use_the_same_fields():
    from atlas_bridge.connection import ConnectionConfig
    from atlas_bridge.pipeline import DeployTarget

    with pytest.raises(FieldError, match="SSH port: 0 is out of range"):
        ConnectionConfig(host="h", port=0)
    with pytest.raises(FieldError, match="connect timeout: nan is out of range"):
        ConnectionConfig(host="h", connect_timeout=float("nan"))
    board = ConnectionConfig(host="h", port=22)
    with pytest.raises(FieldError, match="ATC timeout: -1 is out of range"):
        DeployTarget(board=board, atc_timeout=-1)
    with pytest.raises(FieldError, match="board batch size: 0 is out of range"):
        DeployTarget(board=board, batch=0)
