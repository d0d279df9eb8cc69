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
