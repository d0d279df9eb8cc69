"""The bundled teacher and student: ONNX models with their model cards, shipped inside the package.

``scripts/make_bundled_models.py`` writes ``teacher.onnx``, ``student.onnx`` and their cards (``teacher.json``,
``student.json``) into this folder; the app's Draw tab and ``digit-distill predict`` use them when no other
model is chosen. They are package data (found with :mod:`importlib.resources`), so a wheel or ``pip install .``
carries them and they are found from any working folder.
"""

from __future__ import annotations

import atexit
import contextlib
from importlib import resources
from pathlib import Path

ROLES = ("teacher", "student")


def bundled_dir() -> Path:
    """The folder holding the bundled models, as a real file-system path (onnxruntime needs one)."""
    folder = resources.files(__name__)
    if isinstance(folder, Path):
        return folder
    # Installed inside a zip file: extract once for the life of the process.
    stack = contextlib.ExitStack()
    atexit.register(stack.close)
    return stack.enter_context(resources.as_file(folder))


BUNDLED_DIR = bundled_dir()
"""Where the bundled ``teacher.onnx`` / ``student.onnx`` and their model cards (``.json``) live."""


def bundled_model(role: str) -> Path:
    """The bundled ONNX model for ``role`` (``"teacher"`` or ``"student"``)."""
    if role not in ROLES:
        raise ValueError(f"no bundled model for role {role!r}; choose one of {', '.join(ROLES)}")
    return BUNDLED_DIR / f"{role}.onnx"
