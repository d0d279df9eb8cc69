"""Learn one person's handwriting: fine-tune the student on their digits, distilled from the teacher.

:func:`personalize` splits the person's digits in two halves (per digit, fixed seed), measures the base
student on the held-out half and on MNIST test, runs the ``personal`` recipe through the one job runner
(:func:`core.jobs.run_job`: a distillation job that starts from the base student's weights and trains on a fixed
MNIST subset plus the person's fitting half with jittered copies), measures again, and writes ``DIR/model.onnx``
(same input and output as the bundled student, its architecture and a fresh calibration in the metadata) and
``DIR/report.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.progress import NullProgress
from core.strokes import DrawnSample, load_drawn, render_inputs

if TYPE_CHECKING:
    from core.data import MNIST
    from core.inference import OnnxClassifier
    from core.models import ModelConfig
    from core.progress import Progress

MIN_SAMPLES = 4
"""Fewest personal digits worth fine-tuning on (half of them are held out to measure)."""


class PersonalizeError(ValueError):
    """Personalisation cannot run as asked (too few digits, unusable base or teacher); the message says why."""


def split_halves(samples: list[DrawnSample], seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices of a fitting half and a test half, balanced per digit (odd counts give the extra one to fitting)."""
    rng = np.random.default_rng(seed)
    fit, test = [], []
    labels = np.array([s.label for s in samples])
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        rng.shuffle(idx)
        half = (len(idx) + 1) // 2
        fit += idx[:half].tolist()
        test += idx[half:].tolist()
    return sorted(fit), sorted(test)


def _accuracy(classifier: OnnxClassifier, x: np.ndarray, y: np.ndarray) -> float:
    return float((classifier.predict(x) == y).mean()) if len(y) else float("nan")


def default_models() -> tuple[Path, Path]:
    """The bundled student (base) and teacher."""
    from core.bundled import bundled_model

    return Path(bundled_model("student")), Path(bundled_model("teacher"))


def _onnx_of(path: Path) -> Path:
    """The ONNX file of a model given as a file or a run folder."""
    from core import runs

    if path.suffix == ".onnx":
        return path
    folder = path if path.is_dir() else path.parent
    onnx = folder / runs.ONNX
    if not onnx.is_file():
        raise PersonalizeError(f"{path}: no exported model.onnx in this run (export it first)")
    return onnx


def personalize(
    strokes: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    base: str | os.PathLike[str] | None = None,
    teacher: str | os.PathLike[str] | None = None,
    fit_indices: list[int] | None = None,
    test_indices: list[int] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    runs_root: Path | None = None,
    data: MNIST | None = None,
    calibrate: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``base`` on the digits in ``strokes`` and write ``out_dir/model.onnx`` and ``report.json``.

    Parameters
    ----------
    strokes
        The person's digits (a drawn-digits ``.npz``, e.g. the app's personal set).
    out_dir
        Where ``model.onnx`` and ``report.json`` go (created).
    base, teacher
        ONNX files or run folders (default: the bundled student and teacher).
    fit_indices, test_indices
        Which samples to fine-tune on and which to measure on (default: :func:`split_halves`).
    progress
        A :class:`core.progress.Progress` for the job (batches, epochs, stop requests) and for one-line notes on
        what is happening (``status``: the accuracy before and after, calibrating).
    runs_root, data
        Where the job's run folder goes; MNIST in memory (loaded when ``None``).
    calibrate
        Fit a calibration for the new model (``not sure``/``not a digit``; about half a minute).

    Returns
    -------
    dict
        The report (also written to ``out_dir/report.json``); ``status`` is ``complete``, ``stopped`` or
        ``diverged`` (then no model is written).
    """
    from core import jobs
    from core.data import load_mnist
    from core.inference import OnnxClassifier

    progress = progress or NullProgress()
    start = time.perf_counter()
    strokes = source = Path(strokes)
    out_dir = Path(out_dir)
    samples = load_drawn(strokes)
    # The job reads its digits from a file named in config.json: keep the exact digits used beside the model,
    # so a set that grows later does not change what this run trained on (a resume sees the same data).
    out_dir.mkdir(parents=True, exist_ok=True)
    snapshot = out_dir / "strokes.npz"
    if strokes.resolve() != snapshot.resolve():
        from core.strokes import save_drawn

        save_drawn(samples, snapshot)
    strokes = snapshot
    if len(samples) < MIN_SAMPLES:
        raise PersonalizeError(
            f"{strokes} holds {len(samples)} digits; personalising needs at least {MIN_SAMPLES} "
            "(half of them are kept aside to measure the result)"
        )
    if fit_indices is None or test_indices is None:
        fit_indices, test_indices = split_halves(samples, seed)
    default_base, default_teacher = default_models()
    base = Path(base) if base is not None else default_base
    teacher = Path(teacher) if teacher is not None else default_teacher
    base_onnx = _onnx_of(base)
    data = data if data is not None else load_mnist()

    test = [samples[i] for i in test_indices]
    x_test = render_inputs(test) if test else np.zeros((0, 1, 28, 28), np.float32)
    y_test = np.array([s.label for s in test], dtype=np.int64)
    mnist_x, mnist_y = data.test_images.numpy(), data.test_labels.numpy()

    def measure(model: OnnxClassifier, when: str) -> dict[str, float]:
        """The model's accuracy on the held-out personal digits and on MNIST's test set, also as a status line."""
        scores = {"personal": _accuracy(model, x_test, y_test), "mnist": _accuracy(model, mnist_x, mnist_y)}
        progress.status(
            f"{when}: {scores['personal']:.1%} on {len(test)} held-out personal digits, {scores['mnist']:.2%} MNIST"
        )
        return scores

    before_model = OnnxClassifier(base_onnx, threads=0)
    before = measure(before_model, "before")

    spec = jobs.JobSpec(
        recipe="personal",
        role="distilled",
        teacher_run=teacher,
        init_weights=base,
        personal=strokes,
        personal_indices=tuple(fit_indices),
        seed=seed,
        device="cpu",
        runs_root=runs_root,
    )
    result = jobs.run_job(spec, progress, data=data)
    report: dict[str, Any] = {
        "status": result.status,
        "strokes": str(strokes),
        "source": str(source),
        "base": str(base),
        "teacher": str(teacher),
        "run": str(result.run_dir) if result.run_dir else None,
        "samples": len(samples),
        "fit": len(fit_indices),
        "test": len(test_indices),
        "fit_indices": list(map(int, fit_indices)),
        "test_indices": list(map(int, test_indices)),
        "before": before,
        "recipe": "personal",
    }
    if result.status != "complete" or result.onnx_path is None:
        report["message"] = result.message or result.export_error or "no model was exported"
        report["seconds"] = round(time.perf_counter() - start, 1)
        return report

    model_path = out_dir / "model.onnx"
    _write_personal_model(result.onnx_path, model_path, result.config.model)
    after_model = OnnxClassifier(model_path, threads=0)
    after = measure(after_model, "after")
    report["after"] = after
    if len(test):
        report["predictions"] = {
            "labels": y_test.tolist(),
            "before": before_model.predict(x_test).tolist(),
            "after": after_model.predict(x_test).tolist(),
        }
    if calibrate:
        from core import trust as tr

        progress.status("calibrating the personal model (not sure / not a digit)")
        fit = tr.fit_data(data, tr.PERSONAL_SETTINGS, progress)
        fitted = tr.fit_trust(after_model, fit, tr.PERSONAL_SETTINGS)
        tr.write_trust(model_path, fitted)
        report["calibration"] = tr.summary(fitted)
    report["model"] = str(model_path)
    report["seconds"] = round(time.perf_counter() - start, 1)
    from core.fileio import atomic_write_json

    atomic_write_json(out_dir / "report.json", report)
    return report


def _write_personal_model(source: Path, dest: Path, model_cfg: ModelConfig) -> None:
    """Copy the job's ONNX with the architecture in its metadata (so it can be personalised again)."""
    import onnx

    from core.fileio import atomic_write_bytes
    from core.trust import TRUST_KEY
    from core.weights import MODEL_CONFIG_KEY

    model = onnx.load(str(source))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in (MODEL_CONFIG_KEY, TRUST_KEY)]
    del model.metadata_props[:]
    for key, value in [*kept, (MODEL_CONFIG_KEY, json.dumps(model_cfg.to_dict())), ("personalized", "true")]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    atomic_write_bytes(dest, model.SerializeToString())
