"""Honest comparisons: a distilled student beside its own teacher and a normally trained student that matches it.

A normally trained student matches a distilled one when both come from the same recipe and were trained with the
same architecture, the same training settings (seed and device aside) and the same data (subset, styles, pool).
Only complete runs are compared. Where no matching student exists there is no gain to report: the Train tab,
``digit-distill runs`` and the report say so, and offer the job that would train it (:func:`baseline_spec`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import runs

if TYPE_CHECKING:
    from core.jobs import JobSpec

#: Training settings that do not make two runs incomparable (where and with which seed they ran).
IGNORED_TRAIN_KEYS = ("seed", "device")


def _settings(info: runs.RunInfo) -> tuple[Any, ...]:
    config = info.config
    train = {k: v for k, v in (config.get("train") or {}).items() if k not in IGNORED_TRAIN_KEYS}
    return (config.get("recipe"), config.get("model"), train, config.get("data"))


def matches(student: runs.RunInfo, distilled: runs.RunInfo) -> bool:
    """True when ``student`` (trained normally) is a fair baseline for ``distilled``."""
    return (
        student.role == "student"
        and distilled.role == "distilled"
        and student.recipe is not None
        and _settings(student) == _settings(distilled)
    )


@dataclass
class Comparison:
    """The runs one comparison is made of (each ``None`` when missing) and why something is missing."""

    teacher: runs.RunInfo | None = None
    student: runs.RunInfo | None = None
    distilled: runs.RunInfo | None = None
    note: str = ""

    @property
    def anchored(self) -> bool:
        """True when built around a distilled student (its teacher and baseline were matched to it)."""
        return self.distilled is not None

    @property
    def gain(self) -> float | None:
        """Distilled minus matching normally trained student accuracy (None without a matching baseline)."""
        if self.distilled is None or self.student is None:
            return None
        if self.distilled.test_accuracy is None or self.student.test_accuracy is None:
            return None
        return self.distilled.test_accuracy - self.student.test_accuracy

    def runs(self) -> list[runs.RunInfo]:
        """The runs present, teacher first."""
        return [r for r in (self.teacher, self.student, self.distilled) if r is not None]


def baseline_for(distilled: runs.RunInfo, candidates: list[runs.RunInfo]) -> runs.RunInfo | None:
    """The newest complete matching student, preferring one with the distilled run's seed."""
    found = [r for r in candidates if r.finished and matches(r, distilled)]
    seed = distilled.config.get("train", {}).get("seed")
    same_seed = [r for r in found if r.config.get("train", {}).get("seed") == seed]
    return same_seed[0] if same_seed else found[0] if found else None


def teacher_of(distilled: runs.RunInfo, candidates: list[runs.RunInfo]) -> runs.RunInfo | None:
    """The complete teacher run ``distilled`` learned from (None when gone or not complete)."""
    path = distilled.teacher_run
    if not path:
        return None
    for r in candidates:
        if r.role == "teacher" and r.finished and Path(r.path).resolve() == Path(path).resolve():
            return r
    return None


def compare(distilled: runs.RunInfo, candidates: list[runs.RunInfo]) -> Comparison:
    """``distilled`` with its own teacher and a matching baseline, and a note on what is missing."""
    teacher, student = teacher_of(distilled, candidates), baseline_for(distilled, candidates)
    notes = []
    if student is None:
        notes.append("no normally trained student with the same recipe, settings and data: no gain to show")
    if teacher is None:
        notes.append("its teacher run is missing or not complete")
    return Comparison(teacher, student, distilled, "; ".join(notes))


def latest(recipe: str, root: Path | None = None) -> Comparison:
    """The newest complete distilled run of ``recipe``, compared honestly.

    Without a distilled run: the newest complete teacher and student of the recipe, side by side, not compared.
    """
    candidates = [r for r in runs.list_runs(root) if r.recipe == recipe and r.finished]
    distilled = next((r for r in candidates if r.role == "distilled"), None)
    if distilled is not None:
        return compare(distilled, candidates)
    teacher = next((r for r in candidates if r.role == "teacher"), None)
    student = next((r for r in candidates if r.role == "student"), None)
    return Comparison(teacher, student, None, "no distilled student yet: nothing to compare")


def baseline_spec(
    distilled: runs.RunInfo, runs_root: Path | None = None, data_dir: Path | None = None
) -> JobSpec:
    """The :class:`core.jobs.JobSpec` of the normally trained student that would match ``distilled``."""
    from core.jobs import KD_KEYS, JobSpec

    config = distilled.config
    train = config["train"]
    return JobSpec(
        recipe=config["recipe"],
        role="student",
        overrides={k: v for k, v in config.get("overrides", {}).items() if k not in KD_KEYS},
        seed=train["seed"],
        device=train["device"],
        max_train_samples=train["max_train_samples"],
        max_test_samples=(config.get("data") or {}).get("max_test_samples"),
        data_dir=data_dir,
        runs_root=runs_root,
    )
