"""The one progress protocol: what training, the MNIST download, a deploy and a sweep report to.

``Progress`` has four methods: ``on_batch(dict)`` (frequent, small), ``on_epoch(dict)`` (one unit of work done),
``status(text)`` (a line for a log or status bar) and ``should_stop()`` (polled; True cancels). Each kind of work
fills the dicts its own way:

- training: batches and epochs (:func:`core.training.train`);
- a byte transfer (the MNIST download, a deploy's uploads): ``on_batch(transfer(step, file, done, total))``;
- a deploy: each step change is an ``on_epoch`` (:class:`atlas_bridge.results.StepEvent`);
- a sweep: each finished trial is an ``on_epoch`` (:func:`core.sweep.is_trial_event`); its trials' jobs report
  to the sweep, which keeps their batches and epochs to itself.

The Qt worker implements it (``app.gui.workers.TaskState``), the CLI prints (``app.commands.common``), tests
record. Nothing heavy is imported here: the download and the bridge use it without loading torch.
"""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    """What long work reports to; the Qt worker turns each call into a signal."""

    def on_batch(self, info: dict[str, Any]) -> None:
        """Every few batches: epoch, batch, batches, step, loss, soft, hard, lr (or a :func:`transfer`)."""

    def on_epoch(self, info: dict[str, Any]) -> None:
        """After each epoch: epoch, epochs, loss, soft, hard, train_acc, test_acc, seconds, lr (and val_acc).

        ``val_acc`` is there when the data has a validation split (:meth:`core.data.MNIST.hold_out_validation`).
        """

    def status(self, text: str) -> None:
        """A human-readable line for a log or status bar."""

    def should_stop(self) -> bool:
        """True to stop after the current batch (chunk, step)."""


class NullProgress:
    """Progress that ignores everything and never stops."""

    def on_batch(self, info: dict[str, Any]) -> None:  # noqa: D102
        pass

    def on_epoch(self, info: dict[str, Any]) -> None:  # noqa: D102
        pass

    def status(self, text: str) -> None:  # noqa: D102
        pass

    def should_stop(self) -> bool:  # noqa: D102
        return False


def transfer(step: str, file: str, done: int, total: int) -> dict[str, Any]:
    """The ``on_batch`` dict of a byte transfer: ``done`` of ``total`` bytes of ``file`` during ``step``."""
    return {"step": step, "file": file, "done": done, "total": total}


def is_transfer(info: dict[str, Any]) -> bool:
    """True for an ``on_batch`` dict made by :func:`transfer`."""
    return {"step", "file", "done", "total"} <= info.keys()
