"""Copy a reproduced teacher and distilled student into core/bundled/ with their model cards.

Usage::

    python scripts/make_bundled_models.py --results OUT/strong/results.json --seed 0
        [--teacher-command "digit-distill train-teacher ..."]
    python scripts/make_bundled_models.py --teacher-run RUNS/...-canvas-teacher --student-run RUNS/...-distilled
        --teacher-command "digit-distill train-teacher --recipe canvas" --command "digit-distill distill ..."

The ONNX files are the ones the runs exported (opset 11, checked against PyTorch at export). Each card records
the preset, recipe, T, alpha, test accuracy (measured again here with onnxruntime on the MNIST test set),
accuracy on the drawn-digits development set (``core.strokes.evaluate_drawn``, the app's own rendering and
preprocessing), parameters, the command that produced the model and the date.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import runs  # noqa: E402
from core.data import load_mnist  # noqa: E402
from core.fileio import atomic_path, atomic_write_json  # noqa: E402
from core.inference import OnnxClassifier  # noqa: E402
from core.strokes import evaluate_drawn  # noqa: E402

MODELS = ROOT / "core" / "bundled"
DRAWN = ROOT.parent / "shared" / "data" / "drawn-digits-dev" / "strokes.npz"


def card_for(onnx_path: Path, run_dir: Path, role: str, recipe: str, command: str, data, drawn: Path) -> dict:
    """Measure an ONNX model and describe where it came from."""
    config = json.loads((run_dir / runs.CONFIG).read_text())
    metrics = json.loads((run_dir / runs.METRICS).read_text())
    classifier = OnnxClassifier(onnx_path)
    x = np.ascontiguousarray(data.test_images.numpy())
    test_acc = float((classifier.predict(x) == data.test_labels.numpy()).mean())
    drawn_result = evaluate_drawn(classifier, drawn)
    kd = config.get("kd") or {}
    return {
        "role": role,
        "preset": config["preset"],
        "recipe": recipe,
        "architecture": config["model"],
        "temperature": kd.get("temperature"),
        "alpha": kd.get("alpha"),
        "test_accuracy": test_acc,
        "drawn_accuracy": drawn_result["accuracy"],
        "drawn_samples": drawn_result["n"],
        "drawn_per_digit": drawn_result["per_digit"],
        "drawn_set": "../shared/data/drawn-digits-dev/strokes.npz (development set; not used for training)",
        "parameters": metrics["params"],
        "epochs": len(metrics["history"]),
        "training_seconds": round(metrics["seconds"], 1),
        "train_config": config["train"],
        "teacher": config.get("teacher"),
        "command": command,
        "run": run_dir.name,
        "onnx_opset": 11,
        "date": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    """Copy and describe the two bundled models."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="results.json of a finished reproduce run")
    parser.add_argument("--reproduce-dir", type=Path, help="or: the folder of a reproduce run still going")
    parser.add_argument("--recipe", default="strong", help="with --reproduce-dir: its recipe")
    parser.add_argument("--command", help="with --reproduce-dir: the reproduce command")
    parser.add_argument(
        "--teacher-run", type=Path, help="or: a job-runner teacher run (digit-distill train-teacher)"
    )
    parser.add_argument("--student-run", type=Path, help="with --teacher-run: the student run to bundle")
    parser.add_argument("--seed", type=int, default=0, help="which distilled student to bundle")
    parser.add_argument("--teacher-command", help="command that trained a reused teacher")
    parser.add_argument("--data-dir", help="MNIST folder")
    parser.add_argument("--drawn", type=Path, default=DRAWN)
    parser.add_argument("--dest", type=Path, default=MODELS)
    args = parser.parse_args(argv)

    data = load_mnist(args.data_dir)
    if args.results:
        results = json.loads(args.results.read_text())
        recipe = results["recipe"]
        teacher_dir = Path(results["teacher"]["run_dir"])
        distilled = next(r for r in results["distilled"]["runs"] if r["seed"] == args.seed)
        student_dir = Path(distilled["run_dir"])
        command = results.get("command") or "digit-distill reproduce"
        reused = results["teacher"].get("reused")
    elif args.reproduce_dir and args.command:
        recipe, command, reused = args.recipe, args.command, False
        teacher_dir = args.reproduce_dir / "runs" / "teacher"
        student_dir = args.reproduce_dir / "runs" / f"distilled-seed{args.seed}"
        if not json.loads((student_dir / runs.METRICS).read_text())["finished"]:
            parser.error(f"{student_dir} has not finished training")
    elif args.teacher_run and args.student_run and args.command and args.teacher_command:
        teacher_dir, student_dir, command, reused = args.teacher_run, args.student_run, args.command, True
        recipe = None  # each run's own recipe: a student may come from another recipe than the teacher
        for run_dir in (teacher_dir, student_dir):
            if not runs.read_run(run_dir).finished:
                parser.error(f"{run_dir} has not finished training")
    else:
        parser.error(
            "give --results, or --reproduce-dir with --command, or --teacher-run and --student-run with "
            "--teacher-command and --command"
        )
    teacher_command = command if not reused else args.teacher_command or ""
    args.dest.mkdir(parents=True, exist_ok=True)
    for role, run_dir, cmd in (("teacher", teacher_dir, teacher_command), ("student", student_dir, command)):
        src = run_dir / runs.ONNX
        if not src.exists():
            src = runs.export_run(run_dir, data).path
        dst = args.dest / f"{role}.onnx"
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        card = card_for(dst, run_dir, role, recipe or runs.read_run(run_dir).recipe, cmd, data, args.drawn)
        atomic_write_json(args.dest / f"{role}.json", card)
        print(
            f"{dst}: test {card['test_accuracy']:.2%}, drawn digits {card['drawn_accuracy']:.2%}, "
            f"{card['parameters']:,} parameters"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
