"""A recording deploy progress shared by the board-emulator tests."""

from __future__ import annotations

from atlas_bridge.results import StepEvent


class Recorder:
    """The progress protocol (core.training.Progress) recording steps, log lines and upload progress."""

    def __init__(self, stop_when=None):
        self.steps, self.lines, self.batches = [], [], []
        self.stop_when = stop_when

    def on_epoch(self, info):
        event = StepEvent.from_dict(info)
        self.steps.append((event.step, event.state.value))

    def on_batch(self, info):
        self.batches.append(info)

    def status(self, text):
        self.lines.append(text)

    def should_stop(self):
        return bool(self.stop_when and self.stop_when(self))
