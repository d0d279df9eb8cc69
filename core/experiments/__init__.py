"""The paper's experiment and its variations, each job run by :mod:`core.jobs`.

- :mod:`core.experiments.reproduce`: teacher, plain student and distilled student over seeds -> results.json;
  a results.json from separate job runs (``results_from_runs``).
- :mod:`core.experiments.report`: summaries, the targets of each recipe, plain-text tables.

Sweeps over distillation settings are Optuna studies (:mod:`core.sweep`); the paper's own numbers live in
:mod:`core.paper`; accuracy on drawn digits in :mod:`core.drawn`.
"""

from __future__ import annotations


class ExperimentError(RuntimeError):
    """An experiment cannot run as asked (a bad teacher folder, an inconsistent results folder, ...)."""


class ExperimentStopped(RuntimeError):
    """The user stopped the experiment; finished jobs are kept and a rerun with the same folder continues."""
