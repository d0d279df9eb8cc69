"""The Train tab with real (tiny) training jobs: plots and table fill, Stop, responsiveness, data, settings."""

from __future__ import annotations

import gzip
import os
import sys
import threading
import time

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from app.gui.train_form import CHANGED_MARK
from app.gui.train_tab import TrainTab

# Fail on any Qt warning, except the offscreen platform's note that it cannot resize native windows.
pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

JOB_TIMEOUT_MS = 180_000


@pytest.fixture()
def tab(qtbot, isolated_home, mnist):
    # ``mnist`` loads the data set once per session, so the jobs below time training, not gunzip.
    tab = TrainTab(runs_root=isolated_home / "runs")
    qtbot.addWidget(tab)
    tab.resize(1300, 850)
    tab.show()
    qtbot.waitUntil(lambda: not tab.results_runner.is_running(), timeout=10_000)
    return tab


def quick(tab: TrainTab, epochs: int = 1, samples: int = 1000, batch: int = 128) -> None:
    """The strong recipe, shortened the same way for every role (so the students match)."""
    tab.form.set_values({"recipe": "strong", "epochs": epochs, "samples": samples, "batch_size": batch})


def long_job(tab: TrainTab) -> None:
    """A job to stop: 50 epochs of the paper recipe (no augmentation pool to draw before the first batch)."""
    tab.form.set_values({"recipe": "paper", "epochs": 50, "samples": 10000, "batch_size": 64})


def run_job(qtbot, tab: TrainTab, role: str) -> dict:
    errors = []
    tab.error_occurred.connect(errors.append)
    with qtbot.waitSignal(tab.job_finished, timeout=JOB_TIMEOUT_MS) as finished:
        assert tab.start_job(role)
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=5000)
    assert errors == []
    return finished.args[0]


def test_short_training_job_fills_plots_and_table(qtbot, tab):
    quick(tab, epochs=2, samples=2000)
    row = run_job(qtbot, tab, "student")

    counts = tab.plots.point_counts()
    assert counts["total"] >= 2 and counts["hard"] == counts["total"]
    assert counts["soft"] == 0  # not a distillation
    assert counts["train"] == 2 and counts["test"] == 2
    qtbot.waitUntil(lambda: tab.plots.curve_counts() == counts, timeout=2000)

    assert row["role"] == "student" and row["epochs_done"] == 2 and not row["stopped"]
    assert 0.5 < row["test_accuracy"] <= 1.0  # 2,000 images, 2 epochs: far better than chance
    assert tab.results.cell_text("student", "Test accuracy") == f"{row['test_accuracy']:.2%}"
    assert tab.results.cell_text("student", "Parameters") == "42,310"
    assert tab.results.cell_text("student", "ONNX size").endswith("kB")
    assert tab.results.cell_text("student", "Latency").endswith(" ms")
    assert "2/2 epochs" in tab.results.cell_text("student", "Run")
    assert tab.results.cell_text("teacher", "Test accuracy") == "—"
    assert tab.results.measure_text("gain") == "—"
    assert tab.results.measure_text("gain", paper=True) == "+1.95 pp"
    assert "test accuracy" in tab.log.toPlainText()
    assert tab.progress.value() == 1000
    assert tab.progress_label.text() == "done" and not tab.progress.isTextVisible()


def test_teacher_then_distill_fills_the_three_measures(qtbot, tab):
    quick(tab, epochs=1, samples=1000, batch=250)
    teacher = run_job(qtbot, tab, "teacher")
    assert teacher["params"] == 5_592_010
    assert tab.form.teacher.currentData() == teacher["run_dir"]
    assert tab.distill_button.isEnabled()
    shown = tab.form.teacher.currentText()
    assert "-strong-teacher" not in shown and shown.endswith("1/1 ep")
    assert tab.form.teacher.fontMetrics().horizontalAdvance(shown) < tab.form.teacher.width() - 20  # not cut

    run_job(qtbot, tab, "student")
    tab.form.temperature.set_value(6)
    tab.form.alpha.set_value(0.9)
    assert tab.form.overrides("distilled")["temperature"] == 6.0 and "alpha" not in tab.form.overrides(
        "distilled"
    )
    distilled = run_job(qtbot, tab, "distilled")
    assert distilled["kd"] == {"temperature": 6.0, "alpha": 0.9}
    assert tab.results.compared() and not tab.results.baseline_button.isVisible()
    assert tab.plots.point_counts()["soft"] > 0
    assert tab.plots.earlier_count() == 2  # the teacher's and the student's curves, greyed

    assert tab.results.measure_text("reduction").startswith("99.24%")
    for key in ("gap_student", "gap_distilled", "gain"):
        assert tab.results.measure_text(key).endswith(" pp")
    assert "T=6, α=0.9" in tab.results.cell_text("distilled", "Run")
    assert tab.results.cell_text("teacher", "Run").startswith(teacher["name"])  # its own teacher, named

    sent = []
    tab.models_ready.connect(lambda t, s: sent.append((t, s)))
    tab.results.send_button.click()
    assert sent and sent[0][0].name == "model.onnx" and sent[0][1].parent.name == distilled["name"]


def test_stop_ends_the_job_and_keeps_finished_epochs(qtbot, tab):
    # How long Stop takes, against one batch's time: python bench/train_tab_responsiveness.py
    long_job(tab)
    with qtbot.waitSignal(tab.runner.epoch, timeout=JOB_TIMEOUT_MS):
        assert tab.start_job("student")
    assert not tab.teacher_button.isEnabled() and tab.stop_button.isEnabled()
    with qtbot.waitSignal(tab.job_finished, timeout=JOB_TIMEOUT_MS) as finished:
        tab.stop_button.click()
    row = finished.args[0]
    assert row["stopped"] and row["status"] == "stopped" and 1 <= row["epochs_done"] < 50
    assert row["onnx_path"] is None  # nothing is exported after a stop
    assert (
        tab.results.cell_text("student", "Run") == "no complete run yet"
    )  # stopped runs never enter the table
    tab._fill_resume_menu()
    assert [a.text().split()[0] for a in tab.resume_menu.actions()] == [row["name"]]  # offered for resuming
    qtbot.waitUntil(lambda: tab.teacher_button.isEnabled(), timeout=2000)
    assert not tab.stop_button.isEnabled()


def test_training_runs_off_the_gui_thread_and_the_event_loop_keeps_turning(qtbot, tab, monkeypatch):
    """The job runs in a worker thread and the GUI thread's timers fire while it trains.

    How long the loop waits between turns while training, against idle: python bench/train_tab_responsiveness.py
    """
    from app.gui import train_tab

    job_threads = []
    real_job = train_tab.run_training_job

    def recording_job(*args, **kwargs):
        job_threads.append(threading.get_ident())
        # Hold the job until the GUI thread's timer has seen it running a few times (however fast the machine):
        # a job run on the GUI thread would wait here in vain, as no tick can come while it blocks the loop.
        deadline = time.monotonic() + 30
        while sum(ticks_during_job) < 5 and time.monotonic() < deadline:
            time.sleep(0.005)
        return real_job(*args, **kwargs)

    monkeypatch.setattr(train_tab, "run_training_job", recording_job)
    # The paper recipe: no augmentation pool to draw before the job starts.
    tab.form.set_values({"recipe": "paper", "epochs": 1, "samples": 1000, "batch_size": 64})
    ticks_during_job = []
    probe = QTimer()
    probe.setInterval(10)
    probe.timeout.connect(lambda: ticks_during_job.append(tab.is_running()))
    probe.start()
    try:
        row = run_job(qtbot, tab, "student")
    finally:
        probe.stop()
    assert row["epochs_done"] == 1
    assert job_threads and job_threads[0] != threading.get_ident()
    # A job run on the GUI thread would block the loop until it ends: no tick would see it running.
    assert sum(ticks_during_job) >= 5


def test_shutdown_stops_a_running_job(qtbot, tab):
    long_job(tab)
    with qtbot.waitSignal(tab.runner.batches, timeout=JOB_TIMEOUT_MS):
        tab.start_job("student")
    assert tab.shutdown()  # False when the job is still running after shutdown's own time-out
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=2000)


def test_one_job_at_a_time(qtbot, tab):
    long_job(tab)
    messages = []
    tab.status_message.connect(messages.append)
    assert tab.start_job("student")
    assert not tab.start_job("teacher")
    assert any("stop it first" in m for m in messages)
    assert not tab.teacher_action.isEnabled() and not tab.form.epochs.isEnabled()
    assert tab.shutdown()


def test_distill_needs_a_teacher(qtbot, tab):
    assert tab.form.teacher.currentData() is None
    assert not tab.distill_button.isEnabled()
    with qtbot.waitSignal(tab.error_occurred) as error:
        assert not tab.start_job("distilled")
    assert "train one first" in error.args[0]
    assert "ERROR" in tab.log.toPlainText()


def test_missing_data_offers_download_or_folder(qtbot, tab, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    tab.data_panel.set_data_dir(empty)
    assert "4 of 4 files missing" in tab.data_panel.state_label.text()
    assert not tab.start_job("student")
    boxes = [w for w in tab.data_panel.findChildren(QMessageBox) if w.isVisible()]
    assert len(boxes) == 1
    assert {b.text() for b in boxes[0].buttons()} >= {"Download…", "Choose folder…"}
    boxes[0].reject()


def test_corrupt_data_error_reaches_the_person(qtbot, tab, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (bad / f"{name}.gz").write_bytes(gzip.compress(b"not an idx file"))
    tab.data_panel.set_data_dir(bad)
    quick(tab)
    with qtbot.waitSignal(tab.error_details, timeout=JOB_TIMEOUT_MS) as error:
        assert tab.start_job("student")
    assert "idx" in error.args[0].lower()
    assert "Traceback" not in error.args[0]
    assert error.args[1].startswith("Traceback")  # for the dialog's "Show Details…"
    qtbot.waitUntil(lambda: tab.teacher_button.isEnabled(), timeout=5000)


def test_download_dialog_fetches_with_progress(qtbot, tab, tmp_path, mnist_dir):
    dest = tmp_path / "download"
    tab.data_panel.mirrors = (mnist_dir.as_uri() + "/",)  # a local "mirror": no network in tests
    tab.data_panel.set_data_dir(dest)
    reports = []
    with qtbot.waitSignal(tab.data_panel.data_dir_changed, timeout=60_000):
        dialog = tab.data_panel.start_download()
        dialog.runner.batches.connect(reports.extend)
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in mnist_dir.glob("*.gz"))
    last = reports[-1]  # the progress protocol's transfer reports, as the dialog's bar shows them
    assert last["step"] == "download" and last["done"] == last["total"] > 0
    assert {r["file"] for r in reports} <= {p.name for p in mnist_dir.glob("*.gz")}
    assert tab.data_panel.is_ready()
    assert "all four files found" in tab.data_panel.state_label.text()


def test_form_state_persists(qtbot, isolated_home):
    first = TrainTab(runs_root=isolated_home / "runs")
    qtbot.addWidget(first)
    first.form.set_values(
        {"recipe": "cnn", "epochs": 7, "lr": 0.01, "seed": 3, "samples": 5000}, roles=("student",)
    )
    first.form.show_role("student")
    first.form.save_settings()
    second = TrainTab(runs_root=isolated_home / "runs")
    qtbot.addWidget(second)
    assert second.form.recipe_name() == "cnn" and second.form.role() == "student"
    assert second.form.overrides("student") == {"epochs": 7, "lr": 0.01}
    assert second.form.overrides("teacher") == {}
    assert (
        second.form.epochs.value() == 7
        and second.form.seed.value() == 3
        and second.form.samples.value() == 5000
    )
    for t in (first, second):
        qtbot.waitUntil(lambda t=t: not t.results_runner.is_running(), timeout=10_000)


def test_form_shows_the_recipe_marks_overrides_and_resets(qtbot, tab, tmp_path):
    from core.recipes import get_recipe

    form = tab.form
    assert form.layout().itemAt(0).widget().title() == "Recipe"  # the first control is the recipe
    assert tab.settings_area.widget().layout().itemAt(0).widget() is form
    form.recipe.setCurrentIndex(form.recipe.findData("paper"))
    paper = get_recipe("paper")
    form.show_role("teacher")
    assert form.lr.value() == paper.teacher.lr and form.epochs.value() == paper.teacher.epochs
    form.show_role("student")
    assert form.lr.value() == paper.student.lr and form.epochs.value() == paper.student.epochs
    assert not form.reset_button.isEnabled() and not form.is_changed("lr")
    form.lr.setValue(0.02)
    assert form.is_changed("lr") and form._labels["lr"].text().endswith(CHANGED_MARK)
    assert form._labels["lr"].font().bold() and not form._labels["epochs"].font().bold()
    assert form.reset_button.isEnabled() and "1 change" in form.changed_label.text()
    form.show_role("teacher")
    assert not form.is_changed("lr") and form.lr.value() == paper.teacher.lr  # overrides are per role
    form.show_role("student")
    tab.grab().save(str(tmp_path / "train-form.png"))
    form.lr.setValue(paper.student.lr)  # typing the recipe's value back is no change
    assert not form.is_changed("lr")
    form.lr.setValue(0.02)
    form.reset_button.click()
    assert form.lr.value() == paper.student.lr and form.overrides("student") == {}
    assert not form.reset_button.isEnabled()


def test_app_and_cli_write_identical_config_json(qtbot, tab, tmp_path):
    """The same choices in the Train tab and on the command line give the same config.json."""
    import json

    from app.cli import main
    from app.gui.train_jobs import run_training_job
    from core.progress import NullProgress

    tab.form.set_values(
        {"recipe": "strong", "epochs": 1, "lr": 0.001, "seed": 2, "samples": 300}, roles=("student",)
    )
    spec = tab.form.job_spec("student", runs_root=tmp_path / "app")
    row = run_training_job(spec, NullProgress())
    assert row["status"] == "complete"
    argv = ["train-student", "--recipe", "strong", "--epochs", "1", "--lr", "0.001", "--seed", "2"]
    assert main([*argv, "--max-train-samples", "300", "--runs-dir", str(tmp_path / "cli")]) == 0
    (app_run,), (cli_run,) = (tmp_path / "app").iterdir(), (tmp_path / "cli").iterdir()
    app_config, cli_config = (json.loads((d / "config.json").read_text()) for d in (app_run, cli_run))
    assert app_config.pop("created") and cli_config.pop("created")
    assert app_config == cli_config
    assert app_config["overrides"] == {"epochs": 1, "lr": 0.001} and app_config["data"]["pool_copies"] == 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_a_job_lowers_only_its_worker_threads_priority_and_only_while_it_runs():
    """A job run on the main thread (a script, the test above) left it, and every thread it started later, at
    nice +10: the rest of this test process then crawled whenever another process wanted the CPU."""
    from app.gui.train_jobs import lower_thread_priority

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    main_before = nice()
    with lower_thread_priority() as lowered:
        assert not lowered and nice() == main_before
    seen = {}

    def work():
        seen["before"] = nice()
        with lower_thread_priority() as lowered:
            seen["lowered"], seen["during"] = lowered, nice()
        seen["after"] = nice()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert seen["lowered"] and seen["during"] == min(19, seen["before"] + 10)
    if os.geteuid() == 0:  # raising a priority again needs the privilege
        assert seen["after"] == seen["before"]


def test_diverged_job_is_shown_in_red_and_not_compared(qtbot, tab):
    quick(tab, epochs=1, samples=1000)
    tab.form.set_values({"lr": 1e6}, roles=("student",))
    errors = []
    tab.error_occurred.connect(errors.append)
    with qtbot.waitSignal(tab.job_finished, timeout=JOB_TIMEOUT_MS) as finished:
        assert tab.start_job("student")
    row = finished.args[0]
    assert row["status"] == "diverged" and row["onnx_path"] is None
    assert errors and "diverged" in errors[0] and "learning rate" in errors[0]
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=5000)
    assert tab.progress_label.text() == "diverged" and "#c62828" in tab.progress_label.styleSheet()
    assert tab.results.cell_text("student", "Test accuracy") == "—"  # a diverged run never enters the table


def test_results_table_fed_mismatched_runs_shows_no_gain(qtbot, tab, mnist):
    """A distilled student beside a student trained differently: no gain, the note says why, and an offer."""
    from core import jobs

    tiny = mnist.subset(600, 200)
    base = {
        "recipe": "paper",
        "device": "cpu",
        "runs_root": tab.runs_root,
        "export": False,
        "max_train_samples": 300,
    }
    teacher = jobs.run_job(jobs.JobSpec(role="teacher", overrides={"epochs": 1}, **base), data=tiny)
    jobs.run_job(jobs.JobSpec(role="student", overrides={"epochs": 2}, **base), data=tiny)  # not comparable
    distilled = jobs.run_job(
        jobs.JobSpec(role="distilled", overrides={"epochs": 1}, teacher_run=teacher.run_dir, **base),
        data=tiny,
    )
    tab.form.recipe.setCurrentIndex(tab.form.recipe.findData("paper"))
    qtbot.waitUntil(lambda: tab.results.row("distilled") is not None, timeout=20_000)
    assert tab.results.row("student") is None and tab.results.measure_text("gain") == "—"
    assert "no matching baseline" in tab.results.cell_text("student", "Run")
    assert "no normally trained student" in tab.results.comparison_note.text()
    assert tab.results.baseline_button.isVisible()
    assert tab.results.cell_text("teacher", "Run").startswith(teacher.run_dir.name)
    assert tab.results.measure_text("gap_distilled").endswith(" pp")  # against its own teacher
    spec = __import__("core.comparisons").comparisons.baseline_spec(
        __import__("core.runs").runs.read_run(distilled.run_dir)
    )
    assert (
        jobs.resolve(spec).train.to_dict() | {"seed": 0}
        == jobs.load_config(distilled.run_dir).train.to_dict()
    )


def test_sliders_show_their_values(qtbot, tab):
    tab.form.temperature.set_value(13)
    assert tab.form.temperature.label.text() == "13"
    tab.form.alpha.set_value(0.25)
    assert tab.form.alpha.label.text() == "0.25"
    assert tab.form.temperature.slider.minimum() == 1 and tab.form.temperature.slider.maximum() == 20


def test_paper_measures_computed_from_the_papers_numbers():
    from app.gui.results_table import PAPER_MEASURES, compute_measures, format_bytes, format_measure

    assert PAPER_MEASURES["reduction"] == pytest.approx(1 - 42_310 / 5_592_010)
    assert PAPER_MEASURES["ratio"] == pytest.approx(132.17, abs=0.01)
    assert PAPER_MEASURES["gap_student"] == pytest.approx(0.9832 - 0.8968)
    assert PAPER_MEASURES["gap_distilled"] == pytest.approx(0.9832 - 0.9163)
    assert PAPER_MEASURES["gain"] == pytest.approx(0.9163 - 0.8968)
    assert (
        format_measure("reduction", PAPER_MEASURES["reduction"], PAPER_MEASURES["ratio"])
        == "99.24%  (132× fewer)"
    )
    assert format_measure("gap_distilled", PAPER_MEASURES["gap_distilled"]) == "6.69 pp"
    assert format_measure("gain", -0.0123) == "-1.23 pp"
    partial = compute_measures({"teacher": 0.98, "student": 0.95}, {"teacher": 100, "student": 10})
    assert partial["gap_student"] == pytest.approx(0.03) and partial["gain"] is None
    assert partial["reduction"] == pytest.approx(0.9)
    assert (
        format_bytes(170_512) == "170.5 kB"
        and format_bytes(22_400_000) == "22.4 MB"
        and format_bytes(None) == "—"
    )


def test_failed_export_keeps_the_trained_run_and_says_why(qtbot, tab, monkeypatch):
    from core import runs
    from core.export import ExportError

    def refuse(run_dir, data=None, output=None):
        raise ExportError("onnxruntime and PyTorch disagree by 0.0006 (allowed 0.0001)")

    monkeypatch.setattr(runs, "export_run", refuse)
    quick(tab, epochs=1, samples=1000)
    errors = []
    tab.error_occurred.connect(errors.append)
    with qtbot.waitSignal(tab.job_finished, timeout=JOB_TIMEOUT_MS) as finished:
        assert tab.start_job("student")
    row = finished.args[0]
    assert row["epochs_done"] == 1 and row["onnx_path"] is None
    assert tab.results.cell_text("student", "Test accuracy").endswith("%")
    assert tab.results.cell_text("student", "ONNX size") == "—"
    assert errors == [
        "The student (normal) was trained and saved, but its ONNX export failed: "
        "onnxruntime and PyTorch disagree by 0.0006 (allowed 0.0001)"
    ]


def test_progress_text_sits_beside_the_bar_with_epoch_percent_and_eta(tab):
    tab._job_epochs, tab._job_t0 = 3, time.monotonic() - 20.0
    tab._on_batches([{"epoch": 2, "batch": 30, "batches": 100}])  # 130 of 300 batches
    assert tab.progress.value() == 433
    epoch, percent, eta = tab.progress_label.text().split(" · ")
    assert (epoch, percent) == ("epoch 2/3", "43%")
    assert eta.startswith("ETA 0:2")  # 20 s for 43%: about 26 s to go
    assert not tab.progress.isTextVisible()


def test_log_follows_the_newest_line_unless_scrolled_up(qtbot, tab):
    bar = tab.log.verticalScrollBar()
    for i in range(80):
        tab.append_log(f"line {i}: " + "a long message that wraps in the narrow log pane " * 2)
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=2000)
    assert bar.value() == bar.maximum()
    last = tab.log.document().lastBlock()
    assert last.text().endswith("pane ") and "line 79" in last.text()
    # Wrapped parts start under the message, not under the time stamp.
    assert (
        last.blockFormat().leftMargin() > 0
        and last.blockFormat().textIndent() == -last.blockFormat().leftMargin()
    )
    bar.setValue(0)  # the person scrolls up to read
    tab.append_log("one more")
    assert bar.value() == 0
    assert tab.log.toPlainText().splitlines()[-1].endswith("  one more")


def test_runs_stopped_in_the_app_resume_from_the_cli_and_the_other_way_round(qtbot, tab):
    """One runner, one config.json: a run the app stopped continues from the CLI, and the other way round."""
    import signal
    import subprocess
    import sys

    from app.cli import main
    from core import runs

    root = tab.runs_root
    tab.form.set_values({"recipe": "paper", "epochs": 3, "samples": 4000, "batch_size": 32})
    with qtbot.waitSignal(tab.runner.epoch, timeout=JOB_TIMEOUT_MS):
        assert tab.start_job("student")
    with qtbot.waitSignal(tab.job_finished, timeout=JOB_TIMEOUT_MS) as finished:
        tab.stop_button.click()
    app_run = finished.args[0]
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=5000)
    assert app_run["status"] == "stopped" and app_run["epochs_done"] < 3
    assert main(["train-student", "--resume", app_run["name"], "--runs-dir", str(root), "--no-export"]) == 0
    info = runs.read_run(root / app_run["name"])
    assert info.status == "complete" and info.epochs_done == 3

    argv = ["train-student", "--recipe", "paper", "--epochs", "3", "--max-train-samples", "4000"]
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            *argv,
            "--batch-size",
            "64",
            "--runs-dir",
            str(root),
            "--no-export",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in cli.stdout:
        if line.startswith("epoch 1/3"):
            cli.send_signal(signal.SIGINT)
    assert cli.wait(timeout=120) == 130
    (cli_dir,) = [d for d in root.iterdir() if d.name != app_run["name"]]
    assert runs.read_run(cli_dir).status == "stopped"
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=5000)
    with qtbot.waitSignal(tab.job_finished, timeout=JOB_TIMEOUT_MS) as finished:
        assert tab.resume_run(cli_dir)
    assert finished.args[0]["status"] == "complete" and runs.read_run(cli_dir).epochs_done == 3
