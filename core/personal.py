"""The person's own digits: drawings corrected in the app, kept with their labels in the user data folder.

The set is one drawn-digits ``.npz`` (the format of ``../shared/data/drawn-digits-dev``, read by
:func:`core.strokes.load_drawn`), rewritten atomically on every change (:func:`core.strokes.save_drawn`), so a
crash never leaves half a file. It lives at ``<user data>/digit-distill/personal/strokes.npz``
(``core.userdirs.data_dir``), or in ``$DIGIT_DISTILL_PERSONAL`` when that is set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from core.strokes import DrawnSample, load_drawn, save_drawn

WRITER = "me"
INSTITUTION = "personal"


def default_personal_path() -> Path:
    """``$DIGIT_DISTILL_PERSONAL``, else the platform's user data folder / digit-distill / personal / strokes.npz."""
    if os.environ.get("DIGIT_DISTILL_PERSONAL"):
        return Path(os.environ["DIGIT_DISTILL_PERSONAL"]).expanduser()
    from core.userdirs import data_dir

    return data_dir() / "personal" / "strokes.npz"


def default_personal_model_dir() -> Path:
    """Where the app's Personalize writes ``model.onnx`` and ``report.json``: beside the personal set."""
    return default_personal_path().parent / "model"


class PersonalSet:
    """A person's labelled drawings in one ``.npz`` file (created on the first :meth:`add`).

    Parameters
    ----------
    path
        The ``.npz`` file (default :func:`default_personal_path`).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_personal_path()

    def samples(self) -> list[DrawnSample]:
        """Every sample, oldest first (none when the file does not exist yet)."""
        if not self.path.exists():
            return []
        return load_drawn(self.path)

    def __len__(self) -> int:
        return len(self.samples())

    def add(self, strokes: list[np.ndarray], label: int) -> int:
        """Append one drawing with its digit; returns its index. The file is rewritten atomically."""
        label = int(label)
        if not 0 <= label <= 9:
            raise ValueError(f"the label must be a digit 0-9, not {label}")
        strokes = [np.asarray(s, dtype=np.float32).reshape(-1, 2) for s in strokes if len(s)]
        if not strokes:
            raise ValueError("nothing drawn: only drawings (pen strokes) can go into the personal set")
        samples = self.samples()
        stamp = time.strftime("%Y-%m-%d")
        samples.append(
            DrawnSample(strokes=strokes, label=label, writer=WRITER, institution=f"{INSTITUTION} {stamp}")
        )
        save_drawn(samples, self.path)
        return len(samples) - 1

    def delete(self, indices: Iterable[int]) -> int:
        """Remove the samples at ``indices``; returns how many were removed."""
        drop = {int(i) for i in indices}
        samples = self.samples()
        kept = [s for i, s in enumerate(samples) if i not in drop]
        removed = len(samples) - len(kept)
        if removed:
            save_drawn(kept, self.path)
        return removed

    def counts(self) -> list[int]:
        """How many samples of each digit 0-9."""
        out = [0] * 10
        for sample in self.samples():
            out[sample.label] += 1
        return out
