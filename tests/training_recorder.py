"""A training progress (core.progress.Progress) that records everything, shared by the trainer's tests."""

from __future__ import annotations


class Recorder:
    """A Progress that records everything and can stop after a number of ``should_stop`` calls (one a batch)."""

    def __init__(self, stop_after_batches: int | None = None):
        self.batches, self.epochs, self.lines = [], [], []
        self.calls = 0
        self.stop_after = stop_after_batches

    def on_batch(self, info):
        self.batches.append(info)

    def on_epoch(self, info):
        self.epochs.append(info)

    def status(self, text):
        self.lines.append(text)

    def should_stop(self):
        self.calls += 1
        return self.stop_after is not None and self.calls > self.stop_after
