"""The shared worker wiring: results, errors, coalesced progress, cooperative stop, one job at a time."""

from __future__ import annotations

import threading
import time

import pytest

from app.gui.workers import JobRunner, TaskState, describe_error

# Fail on any Qt warning, except the offscreen platform's note that it cannot resize native windows.
pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


@pytest.fixture()
def runner(qtbot):
    runner = JobRunner()
    yield runner
    assert runner.stop_and_wait(5000)


def test_result_arrives_from_worker_thread(qtbot, runner):
    seen = {}

    def job(state):
        seen["thread"] = threading.get_ident()
        return {"answer": 42}

    with qtbot.waitSignal(runner.succeeded, timeout=5000) as result:
        assert runner.start("answer", job)
    assert result.args == [{"answer": 42}]
    assert seen["thread"] != threading.get_ident()
    qtbot.waitUntil(lambda: not runner.is_running(), timeout=2000)


def test_finished_comes_after_result_and_runner_is_idle(qtbot, runner):
    order = []
    runner.succeeded.connect(lambda r: order.append(("succeeded", runner.is_running())))
    runner.finished.connect(lambda name: order.append(("finished", name, runner.is_running())))
    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.start("quick", lambda state: 1)
    assert order == [("succeeded", True), ("finished", "quick", False)]


def test_exception_becomes_a_readable_failure(qtbot, runner):
    def job(state):
        raise ValueError("learning rate must be > 0, got -1")

    with qtbot.waitSignal(runner.failed, timeout=5000) as failed:
        runner.start("bad", job)
    error = failed.args[0]
    assert error["message"] == "learning rate must be > 0, got -1"
    assert error["kind"] == "ValueError"
    assert "Traceback" in error["details"]


def test_batches_are_coalesced_in_order_and_precede_the_epoch(qtbot, runner):
    received: list[tuple] = []
    runner.batches.connect(lambda items: received.append(("batches", [b["batch"] for b in items])))
    runner.epoch.connect(lambda info: received.append(("epoch", info["epoch"])))

    def job(state: TaskState):
        for i in range(2000):
            state.on_batch({"epoch": 1, "batch": i, "batches": 2000, "loss": 1.0})
        state.on_epoch({"epoch": 1, "epochs": 1})
        return None

    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.start("many batches", job)
    batch_groups = [r[1] for r in received if r[0] == "batches"]
    flat = [b for group in batch_groups for b in group]
    assert flat == list(range(2000))
    assert len(batch_groups) < 200  # coalesced, not one signal per batch
    assert received[-1] == ("epoch", 1)


def test_stop_sets_a_flag_the_job_sees(qtbot, runner):
    started = threading.Event()

    def job(state: TaskState):
        started.set()
        while not state.should_stop():
            time.sleep(0.005)
        return "stopped"

    with qtbot.waitSignal(runner.succeeded, timeout=5000) as result:
        runner.start("loop", job)
        assert started.wait(5)
        runner.stop()
        assert runner.stop_requested()
    assert result.args == ["stopped"]  # the job saw the flag and returned (it loops until it does)


def test_one_job_at_a_time(qtbot, runner):
    release = threading.Event()
    runner.start("first", lambda state: release.wait(5))
    assert runner.is_running() and runner.name == "first"
    assert not runner.start("second", lambda state: None)
    release.set()
    qtbot.waitUntil(lambda: not runner.is_running(), timeout=5000)
    with qtbot.waitSignal(runner.finished, timeout=5000):
        assert runner.start("third", lambda state: None)


def test_stop_and_wait_blocks_until_the_thread_ended(qtbot):
    runner = JobRunner()
    done = threading.Event()

    def job(state):
        while not state.should_stop():
            time.sleep(0.01)
        time.sleep(0.2)  # some clean-up after the stop
        done.set()

    runner.start("loop", job)
    qtbot.wait(50)
    assert runner.stop_and_wait(5000)
    assert done.is_set()
    qtbot.waitUntil(lambda: not runner.is_running(), timeout=2000)


def test_fraction_is_throttled_but_reaches_one(qtbot, runner):
    values = []
    runner.fraction.connect(values.append)

    def job(state):
        for i in range(1, 10001):
            state.set_fraction(i / 10000)

    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.start("fraction", job)
    assert values[-1] == 1.0
    assert len(values) < 100


def test_describe_error_is_one_line_for_people():
    assert describe_error(ValueError("alpha must be in [0, 1], got 2")) == "alpha must be in [0, 1], got 2"
    assert (
        describe_error(FileNotFoundError(2, "No such file", "/x/model.onnx"))
        == "File not found: /x/model.onnx"
    )
    assert describe_error(KeyError("teacher")).startswith("KeyError: ")
    assert describe_error(ZeroDivisionError()) == "Unexpected error (ZeroDivisionError)"


def test_a_runner_collected_while_its_job_runs_does_not_take_the_thread_with_it(qtbot):
    import gc

    from app.gui.workers import _thread_keeper

    release = threading.Event()
    runner = JobRunner()
    runner.start("outlives its runner", lambda state: release.wait(5))
    del runner
    gc.collect()  # the QThread must survive: destroying a running QThread aborts the process
    release.set()
    qtbot.waitUntil(lambda: not _thread_keeper().running(), timeout=5000)
