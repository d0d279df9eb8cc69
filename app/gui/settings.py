"""Persistent app settings (QSettings, INI format) with typed reads that never crash on a bad value.

Every widget reads and writes through :func:`app_settings`: one INI file, :func:`core.userdirs.settings_file`
(``~/.config/digit-distill/settings.ini`` on Linux), so tests redirect all of it with ``XDG_CONFIG_HOME``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QSettings

from core import userdirs

ORGANIZATION = "digit-distill"
APPLICATION = "digit-distill"

T = TypeVar("T", int, float, bool, str)


def app_settings() -> QSettings:
    """The app's settings store (an INI file in the user's config folder)."""
    return QSettings(str(userdirs.settings_file()), QSettings.Format.IniFormat)


def read_value(settings: QSettings, key: str, default: T) -> T:
    """Read ``key`` converted to the type of ``default``; a missing or unreadable value gives ``default``.

    INI files store everything as text (booleans as ``"true"``/``"false"``), so the conversion is done here
    rather than trusting ``QSettings.value(type=...)``, which raises on a hand-edited bad value.
    """
    raw: Any = settings.value(key, None)  # whatever the INI file holds
    if raw is None:
        return default
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            return default
        return type(default)(raw)
    except (TypeError, ValueError):
        return default


def read_path(settings: QSettings, key: str) -> Path | None:
    """A folder or file path stored under ``key``, or ``None`` when unset."""
    raw = settings.value(key, None)
    if raw in (None, ""):
        return None
    return Path(str(raw))


def write_values(settings: QSettings, group: str, values: dict[str, Any]) -> None:
    """Store plain values (numbers, booleans, strings, paths) under ``group/<key>``."""
    settings.beginGroup(group)
    try:
        for key, value in values.items():
            settings.setValue(key, str(value) if isinstance(value, Path) else value)
    finally:
        settings.endGroup()
