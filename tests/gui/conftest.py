"""GUI test fixtures shared by every Qt test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def never_block_on_close(monkeypatch):
    """A window closed by pytest-qt's teardown while a job still runs must not wait on a modal question.

    Without this, a test that fails with a job running hangs the whole suite in teardown (the "stop it and quit?"
    box is modal and nobody answers it offscreen). Tests of the question itself set ``confirm_close`` explicitly.
    """
    from app.gui.window import ToolWindow

    monkeypatch.setattr(ToolWindow, "_ask_to_stop", lambda self, jobs: True)


@pytest.fixture()
def deployed():
    """What a finished deploy hands the Draw tab: a model on an Ascend310 board (the figures are not read)."""
    from atlas_bridge.results import DeployResult

    return DeployResult(
        om_path="/home/u/digit-distill/model/model.om",
        om_bytes=1000,
        soc_version="Ascend310",
        model_dir="/home/u",
        set_env="/s",
        cann_version="7.0.0",
        reused_om=False,
        evaluated=1,
        agreement=1.0,
        max_probability_difference=0.0,
        board_accuracy=None,
        local_accuracy=None,
        board_ms_per_image=1.0,
        local_ms_per_image=0.1,
    )
