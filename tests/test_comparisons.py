"""Honest comparisons: a distilled student only against its own teacher and a matching normal student."""

from __future__ import annotations

import pytest

from app.cli import main
from core import comparisons, jobs, runs


@pytest.fixture(scope="module")
def trained(mnist, tmp_path_factory):
    """A teacher, a student trained differently, a stopped student, and a distilled student (paper recipe)."""
    root = tmp_path_factory.mktemp("runs")
    tiny = mnist.subset(600, 200)
    base = {"recipe": "paper", "device": "cpu", "runs_root": root, "export": False, "max_train_samples": 300}
    teacher = jobs.run_job(jobs.JobSpec(role="teacher", overrides={"epochs": 1}, **base), data=tiny)
    other = jobs.run_job(jobs.JobSpec(role="student", overrides={"epochs": 2}, **base), data=tiny)
    distilled = jobs.run_job(
        jobs.JobSpec(role="distilled", overrides={"epochs": 1}, teacher_run=teacher.run_dir, **base),
        data=tiny,
    )
    return root, tiny, base, teacher, other, distilled


def test_mismatched_student_gives_no_gain(trained, capsys):
    root, _, _, teacher, other, distilled = trained
    infos = runs.list_runs(root)
    c = comparisons.compare(runs.read_run(distilled.run_dir), infos)
    assert c.teacher.path == teacher.run_dir and c.student is None and c.gain is None
    assert "no normally trained student" in c.note
    assert not comparisons.matches(runs.read_run(other.run_dir), runs.read_run(distilled.run_dir))
    assert main(["runs", "--runs-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "KD gain" not in out and "no normally trained student" in out
    assert f"teacher {teacher.run_dir.name}" in out


def test_matching_student_gives_a_gain_naming_its_run(trained, capsys):
    root, tiny, base, _, _, distilled = trained
    spec = comparisons.baseline_spec(runs.read_run(distilled.run_dir), root)
    baseline = jobs.run_job(jobs.JobSpec(**{**spec.__dict__, "export": False}), data=tiny)
    c = comparisons.latest("paper", root)
    assert c.distilled.path == distilled.run_dir and c.student.path == baseline.run_dir
    assert c.gain == pytest.approx(distilled.test_accuracy - baseline.test_accuracy)
    assert main(["runs", "--runs-dir", str(root)]) == 0
    assert f"vs {baseline.run_dir.name}" in capsys.readouterr().out
    # A stopped run never enters a comparison.
    stopped = jobs.run_job(
        jobs.JobSpec(**{**spec.__dict__, "export": False, "overrides": {"epochs": 3}}),
        _StopAfter(5 + 2),  # 5 batches an epoch: stopped in epoch 2
        data=tiny,
    )
    assert stopped.status == "stopped" and stopped.run_dir is not None
    assert comparisons.latest("paper", root).student.path == baseline.run_dir


class _StopAfter:
    def __init__(self, n):
        self.n, self.training = n, False

    def on_batch(self, info):
        pass

    def on_epoch(self, info):
        pass

    def status(self, text):
        self.training = self.training or text.startswith("training ")

    def should_stop(self):  # counts training batches only (preparation checks too, between its steps)
        self.n -= self.training
        return self.n < 0
