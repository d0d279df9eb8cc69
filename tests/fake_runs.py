"""Complete run folders as the job runner writes them (config, metrics, status, checkpoint), untrained weights.

For tests of what reads run folders (scripts, damaged-file properties) without training anything.
"""

from __future__ import annotations

from pathlib import Path


def complete_run(root: Path, recipe: str = "paper", role: str = "student", seed: int = 0) -> Path:
    """A finished one-epoch run ``root/20261202-00000<seed>-<recipe>-<role>`` of ``recipe``'s ``role`` (not distilled)."""
    import torch

    from core import jobs, runs
    from core.models import build_model, count_params

    folder = Path(root) / f"20261202-00000{seed}-{recipe}-{role}"
    folder.mkdir(parents=True)
    config = jobs.resolve(jobs.JobSpec(recipe=recipe, role=role, seed=seed, runs_root=folder.parent))
    runs.write_json(folder / runs.CONFIG, config.to_dict() | {"created": "2026-12-02T00:00:00+0000"})
    history = [{"epoch": 1, "loss": 0.5, "train_acc": 0.9, "test_acc": 0.91, "seconds": 1.0}]
    torch.manual_seed(seed)
    model = build_model(config.model)
    runs.write_metrics(folder, role, config.preset, history, params=count_params(model), finished=True)
    runs.write_status(folder, "complete", epochs=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    runs.write_checkpoint(
        folder / runs.CHECKPOINT,
        model,
        optimizer,
        torch.Generator(),
        history,
        role,
        config.preset,
        config.model,
        config.train,
        None,
    )
    return folder
