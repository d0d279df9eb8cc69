"""Qt form fields take their ranges from ``core.validation``: the one place each field's allowed values live."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox

from core.validation import NumberField


def apply_range(spin: QSpinBox | QDoubleSpinBox, field: NumberField) -> None:
    """Limit ``spin`` to ``field``'s range (a typed-in value outside it cannot be entered) and say so in its tooltip.

    For a field whose lower bound is excluded (a timeout must be more than 0), a double spin box starts one step
    of its precision above it.
    """
    low = field.low
    if field.low_open:
        low = field.low + (1 if isinstance(spin, QSpinBox) else 10 ** -spin.decimals())
    if isinstance(spin, QSpinBox):
        spin.setRange(int(low), int(field.high))
    else:
        spin.setRange(low, field.high)
    tip = spin.toolTip()
    allowed = f"{field.label[:1].upper()}{field.label[1:]}: {field.allowed}."
    spin.setToolTip(f"{tip}\n{allowed}" if tip else allowed)
