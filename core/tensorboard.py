"""TensorBoard event files for a job: an adapter of the trainer's :class:`core.progress.Progress`.

The job runner wraps the progress object it was given with :func:`tensorboard_progress`; the adapter passes every
call on unchanged and also writes the scalars (loss and its soft/hard parts, accuracies, learning rate) and the
job's hyperparameters (temperature, alpha, learning rate, ... for TensorBoard's HParams tab) as event files in the
run folder, so ``tensorboard --logdir <runs folder>`` shows every run. The training loop knows nothing of it.

TensorBoard is optional (``pip install digit-distill[tensorboard]``): without it :func:`tensorboard_progress`
returns the progress object as it is and no event file is written.

Tags: ``batch/{loss,soft,hard,lr}`` every few steps (x: optimiser step), ``epoch/{loss,soft,hard,lr,seconds}`` and
``accuracy/{train,val,test}`` per epoch (x: epoch).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.progress import Progress

_EPOCH_SCALARS = {
    "loss": "epoch/loss",
    "soft": "epoch/soft",
    "hard": "epoch/hard",
    "lr": "epoch/lr",
    "seconds": "epoch/seconds",
    "train_acc": "accuracy/train",
    "val_acc": "accuracy/val",
    "test_acc": "accuracy/test",
}
_BATCH_SCALARS = {"loss": "batch/loss", "soft": "batch/soft", "hard": "batch/hard", "lr": "batch/lr"}


def available() -> bool:
    """Whether the optional ``tensorboard`` package is installed (event files are written only then)."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


def _hparam_value(value: object) -> bool | int | float | str | None:
    """A value TensorBoard's HParams plugin accepts (bool, int, float, str), or None to leave it out."""
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return None if value is None else str(value)


class TensorBoardProgress:
    """Passes every :class:`~core.progress.Progress` call to ``inner`` and logs its numbers to ``log_dir``.

    Parameters
    ----------
    inner
        The progress object the job was given (console, Qt worker, Optuna trial, ...).
    log_dir
        Folder of the event files (the job's run folder).
    hparams
        The job's hyperparameters (for example role, recipe, temperature, alpha, lr, epochs, batch_size, seed);
        values that are None are left out.
    """

    def __init__(self, inner: Progress, log_dir: str | Path, hparams: dict[str, Any]):
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        self.inner = inner
        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        self.hparams = {k: v for k, v in ((k, _hparam_value(v)) for k, v in hparams.items()) if v is not None}
        self._last_epoch: dict[str, Any] = {}
        # The experiment and session-start summaries go first, so a running job already shows in the HParams tab.
        metrics = {tag: math.nan for tag in ("accuracy/val", "accuracy/test", "accuracy/train", "epoch/loss")}
        experiment, session_start, self._session_end = hparams_summary(self.hparams, metrics)
        file_writer = self.writer._get_file_writer()
        file_writer.add_summary(experiment)
        file_writer.add_summary(session_start)
        self._closed = False

    def on_batch(self, info: dict[str, Any]) -> None:  # noqa: D102
        step = info.get("step")
        for key, tag in _BATCH_SCALARS.items():
            if info.get(key) is not None and step is not None:
                self.writer.add_scalar(tag, info[key], step)
        self.inner.on_batch(info)

    def on_epoch(self, info: dict[str, Any]) -> None:  # noqa: D102
        epoch = info["epoch"]
        for key, tag in _EPOCH_SCALARS.items():
            if info.get(key) is not None:
                self.writer.add_scalar(tag, info[key], epoch)
        self.writer.flush()
        self._last_epoch = dict(info)
        self.inner.on_epoch(info)

    def status(self, text: str) -> None:  # noqa: D102
        self.inner.status(text)

    def should_stop(self) -> bool:  # noqa: D102
        return self.inner.should_stop()

    def close(self) -> None:
        """Write the session-end summary and close the event file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.writer._get_file_writer().add_summary(self._session_end)
        self.writer.close()


@contextlib.contextmanager
def tensorboard_progress(
    progress: Progress, run_dir: str | Path, hparams: dict[str, Any]
) -> Iterator[Progress]:
    """``progress`` wrapped in a :class:`TensorBoardProgress` writing to ``run_dir`` (unchanged without TensorBoard).

    Use as ``with tensorboard_progress(progress, run_dir, hparams) as progress: train(..., progress=progress)``;
    the event file is closed when the block ends, however it ends.
    """
    if not available():
        yield progress
        return
    adapter = TensorBoardProgress(progress, run_dir, hparams)
    try:
        yield adapter
    finally:
        adapter.close()
