"""What the board-emulator tests share: a recording deploy progress and the ``digit-distill deploy`` command line."""

from __future__ import annotations

from atlas_bridge.results import StepEvent

SUMMARY_KEYS = {
    "om_path",
    "om_bytes",
    "soc_version",
    "evaluated",
    "board_accuracy",
    "agreement",
    "max_probability_difference",
    "board_ms_per_image",
    "board_npu_ms_per_image",
    "local_ms_per_image",
}
"""The keys of ``DeployResult.summary()`` (what ``digit-distill deploy --json`` prints)."""


class Recorder:
    """The progress protocol (core.progress.Progress) recording steps, log lines and upload progress."""

    def __init__(self, stop_when=None):
        self.events: list[StepEvent] = []
        self.lines, self.batches = [], []
        self.stop_when = stop_when

    @property
    def steps(self) -> list[tuple[str, str]]:
        """``(step, state)`` of every step event, in order."""
        return [(event.step, event.state.value) for event in self.events]

    def failed(self) -> list[tuple[str, str]]:
        """``(step, detail)`` of the steps that failed."""
        return [(event.step, event.detail) for event in self.events if event.state.value == "failed"]

    def on_epoch(self, info):
        self.events.append(StepEvent.from_dict(info))

    def on_batch(self, info):
        self.batches.append(info)

    def status(self, text):
        self.lines.append(text)

    def should_stop(self):
        return bool(self.stop_when and self.stop_when(self))


def deploy_args(board, remote_dir, model) -> list[str]:
    """``deploy`` to the emulated ``board`` as its user: the model and the remote folder (no login method yet)."""
    return [
        "deploy",
        "--host",
        board.host,
        "--port",
        str(board.port),
        "--user",
        board.user,
        "--model",
        str(model),
        "--remote-dir",
        remote_dir,
    ]
