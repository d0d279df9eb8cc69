"""reproduce on tiny subsets: results.json contract, traceable run folders, resuming, drawn digits."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from app.cli import main
from core import runs
from core.drawn import DrawnDigits, TorchClassifier
from core.experiments import ExperimentError
from core.experiments.report import checks, format_table
from core.experiments.reproduce import ReproduceOptions, reproduce
from core.jobdata import augmentation_pool, styled
from core.models import build_model, get_preset
from core.paper import PAPER
from core.recipes import get_recipe
from core.strokes import evaluate_drawn

QUICK = {"epochs_scale": 0.01, "max_train_samples": 300, "device": "cpu"}
TOP_KEYS = {"recipe", "temperature", "alpha", "seeds", "seconds", "teacher", "student", "distilled"}
MEASURES = {"compression_ratio", "accuracy_gap", "kd_gain"}


@pytest.fixture(scope="module")
def small(mnist):
    return mnist.subset(2000, 500)


@pytest.fixture(scope="module")
def paper_results(small, tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    return out, reproduce("paper", out, small, ReproduceOptions(seeds=2, **QUICK))


def test_reproduce_writes_the_documented_results(paper_results):
    out, results = paper_results
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert TOP_KEYS | MEASURES <= set(saved)
    assert saved["recipe"] == "paper" and saved["temperature"] == 6.0 and saved["seeds"] == 2
    assert saved["teacher"]["params"] == 5_592_010
    for role in ("student", "distilled"):
        entry = saved[role]
        assert {"accuracy_mean", "accuracy_std", "params"} <= set(entry)
        accs = [r["accuracy"] for r in entry["runs"]]
        assert len(accs) == 2 and entry["accuracy_mean"] == pytest.approx(np.mean(accs))
        assert entry["accuracy_std"] == pytest.approx(np.std(accs, ddof=1))
        assert 0 <= entry["accuracy_mean"] <= 1
    assert saved["compression_ratio"] == pytest.approx(5_592_010 / 42_310)
    assert saved["kd_gain"] == pytest.approx(
        saved["distilled"]["accuracy_mean"] - saved["student"]["accuracy_mean"]
    )
    assert saved["accuracy_gap"] == pytest.approx(
        saved["teacher"]["accuracy"] - saved["distilled"]["accuracy_mean"]
    )
    assert saved["quick"] is True
    assert set(saved["step_seconds"]) == {
        "teacher",
        "student-seed0",
        "distilled-seed0",
        "student-seed1",
        "distilled-seed1",
    }


def test_every_number_has_its_run_folder(paper_results):
    out, results = paper_results
    for name in ("teacher", "student-seed0", "distilled-seed1"):
        info = runs.read_run(out / "runs" / name)
        assert info.finished and info.onnx_path is not None
    distilled = json.loads((out / "runs" / "distilled-seed1" / "config.json").read_text())
    assert distilled["kd"] == {"temperature": 6.0, "alpha": results["alpha"]}
    assert distilled["train"]["seed"] == 1
    assert distilled["teacher"]["run"] == str(out / "runs" / "teacher")
    student = json.loads((out / "runs" / "student-seed1" / "config.json").read_text())
    assert student["train"] == distilled["train"]  # the fair comparison, checked on what actually ran


def test_rerun_reuses_finished_jobs(paper_results, small):
    out, first = paper_results
    checkpoints = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/checkpoint.pt")}
    assert len(checkpoints) == 1 + 2 * 2  # the teacher, and a student and a distilled student per seed
    again = reproduce("paper", out, small, ReproduceOptions(seeds=2, **QUICK))
    assert again["teacher"]["reused"] and not first["teacher"]["reused"]
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == checkpoints  # nothing trained or written again
    assert again["teacher"]["accuracy"] == first["teacher"]["accuracy"]
    assert [r["accuracy"] for r in again["distilled"]["runs"]] == [
        r["accuracy"] for r in first["distilled"]["runs"]
    ]


def test_table_sits_beside_the_papers_numbers(paper_results):
    text = format_table(paper_results[1])
    assert "98.32%" in text and "89.68%" in text and "91.63%" in text
    assert "KD gain" in text and "parameter reduction" in text and "132.2x" in text


def test_checks_follow_the_issue_targets():
    base = {
        "teacher": {"accuracy": 0.985},
        "student": {"accuracy_mean": 0.90, "accuracy_std": 0.001},
        "distilled": {"accuracy_mean": 0.92, "accuracy_std": 0.001},
        "kd_gain": 0.02,
    }
    assert all(checks({**base, "recipe": "paper"}).values())
    assert not checks({**base, "recipe": "paper", "kd_gain": -0.01})["gain_positive"]
    strong = checks({**base, "recipe": "strong"})
    assert strong["gain_>_2_std"] and not strong["teacher_>=99.2%"]
    assert not checks({**base, "recipe": "strong", "kd_gain": 0.0015})["gain_>_2_std"]


def test_strong_recipe_pool_and_reused_teacher(paper_results, small, tmp_path):
    """The strong recipe's fixed augmentation pool; a teacher from another run is reused, not retrained."""
    teacher_dir = paper_results[0] / "runs" / "teacher"
    options = ReproduceOptions(seeds=1, teacher=teacher_dir, **QUICK)
    results = reproduce("strong", tmp_path, small, options)
    assert results["teacher"]["reused"] and results["teacher"]["run_dir"] == str(teacher_dir)
    assert not (tmp_path / "runs" / "teacher").exists()
    copies = get_recipe("strong").pool_copies
    metrics = json.loads((tmp_path / "runs" / "student-seed0" / "metrics.json").read_text())
    assert metrics["finished"]
    config = json.loads((tmp_path / "runs" / "student-seed0" / "config.json").read_text())
    assert results["pool_copies"] == copies and config["data"]["pool_copies"] == copies
    assert config["train"]["augment"] is False and config["data"]["styles"] == get_recipe("strong").styles


def test_distill_command_matches_reproduces_distilled_student(paper_results, mnist, tmp_path):
    """A recipe's pool and styles apply wherever the recipe is used: same teacher, seed and subset, same weights."""
    teacher_dir = paper_results[0] / "runs" / "teacher"
    options = ReproduceOptions(
        seeds=1, teacher=teacher_dir, epochs_scale=0.01, max_train_samples=300, device="cpu"
    )
    reproduce("strong", tmp_path / "rep", mnist, options)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as reproduce trains its students
    try:
        argv = [
            "distill",
            "--recipe",
            "strong",
            "--seed",
            "0",
            "--teacher",
            str(teacher_dir),
            "--epochs",
            "1",
        ]
        argv += [
            "--max-train-samples",
            "300",
            "--device",
            "cpu",
            "--runs-dir",
            str(tmp_path / "cli"),
            "--no-export",
        ]
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    (cli_run,) = (tmp_path / "cli").iterdir()
    rep_run = tmp_path / "rep" / "runs" / "distilled-seed0"
    a = torch.load(rep_run / "checkpoint.pt", weights_only=True)["state_dict"]
    b = torch.load(cli_run / "checkpoint.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rep_config, cli_config = (json.loads((d / "config.json").read_text()) for d in (rep_run, cli_run))
    assert rep_config.pop("created") and cli_config.pop("created") and rep_config == cli_config


def test_augmentation_pool_is_deterministic(small):
    recipe = get_recipe("strong")
    a = augmentation_pool(small.subset(50, 10), 2, recipe.distilled.augmentation, recipe.styles)
    b = augmentation_pool(small.subset(50, 10), 2, recipe.distilled.augmentation, recipe.styles)
    assert a.train_images.shape == (150, 1, 28, 28) and torch.equal(a.train_images, b.train_images)
    assert torch.equal(a.train_images[:50], small.subset(50, 10).train_images)
    assert not torch.equal(a.train_images[50:100], a.train_images[:50])
    assert torch.equal(a.train_labels[100:], a.train_labels[:50])


def test_canvas_training_set_redraws_a_fixed_share_with_the_pen(small):
    recipe = get_recipe("canvas")
    data = small.subset(400, 10)
    a, b = (styled(data, recipe.styles, restroke_share=recipe.restroke) for _ in range(2))
    assert torch.equal(a.train_images, b.train_images)  # drawn once, with a fixed seed
    assert torch.equal(a.train_labels, data.train_labels)
    changed = (a.train_images != data.train_images).flatten(1).any(1).float().mean().item()
    assert 0.4 < changed < 0.7  # half re-drawn with the pen, plus some styled 0, 1 and 7
    # re-drawn digits are crisp: much more of their ink is at full strength than MNIST's
    redrawn = a.train_images[(a.train_images != data.train_images).flatten(1).any(1)]
    assert (redrawn > 0.99).float().mean() > 1.2 * (data.train_images > 0.99).float().mean()


def test_bad_teacher_is_refused(paper_results, small, tmp_path):
    student_dir = paper_results[0] / "runs" / "student-seed0"
    with pytest.raises(ExperimentError, match="not a teacher"):
        reproduce("paper", tmp_path, small, ReproduceOptions(seeds=1, teacher=student_dir, **QUICK))


def test_drawn_digits_match_evaluate_drawn(drawn_digits_path):
    model = build_model(get_preset("paper").student)
    drawn = DrawnDigits(drawn_digits_path, limit=40)
    assert drawn.render().shape == (40, 1, 28, 28)
    expected = evaluate_drawn(TorchClassifier(model), drawn_digits_path, limit=40)["accuracy"]
    assert drawn.accuracy(model) == pytest.approx(expected)


def test_paper_constants():
    assert PAPER["teacher"] == 0.9832 and PAPER["student"] == 0.8968 and PAPER["distilled"] == 0.9163


def test_styles_change_only_zeros_ones_and_sevens(small):
    from core.styles import add_styles

    x, y = small.train_images[:300], small.train_labels[:300]
    out = add_styles(x, y, 1.0, torch.Generator().manual_seed(0))
    changed = (out != x).flatten(1).any(1)
    assert torch.equal(changed, (y == 0) | (y == 1) | (y == 7))
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert torch.equal(add_styles(x, y, 0.0), x)
    with pytest.raises(ValueError, match="probability"):
        add_styles(x, y, 1.5)


def test_strong_teacher_trains_on_styled_digits(small):
    out = styled(small, get_recipe("strong").styles)
    assert out.train_images.shape == small.train_images.shape
    assert not torch.equal(out.train_images, small.train_images)
    assert torch.equal(out.test_images, small.test_images)
    assert styled(small, get_recipe("paper").styles) is small


def test_renormalize_puts_ink_in_a_20_pixel_box_around_the_centre_of_mass(small):
    from core.styles import _ink_boxes, renormalize

    x = small.train_images[:50]
    shifted = torch.zeros_like(x)
    shifted[:, :, 3:, :-2] = x[:, :, :-3, 2:]  # MNIST digits sit in a 20 px box: nothing is cut off
    out = renormalize(shifted)
    box = _ink_boxes(out)
    side = torch.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
    assert ((side - 20).abs() <= 2).all()
    coords = torch.arange(28.0) + 0.5
    mass = out[:, 0].sum((1, 2))
    cy = (out[:, 0].sum(2) * coords).sum(1) / mass
    cx = (out[:, 0].sum(1) * coords).sum(1) / mass
    assert ((cx - 14).abs() < 1).all() and ((cy - 14).abs() < 1).all()


def test_canvas_checks_name_the_issue_targets():
    def results(t, d, s_seeds, d_seeds, drawn_t, s_drawn, d_drawn):
        return {
            "recipe": "canvas",
            "teacher": {"accuracy": t, "drawn_accuracy": drawn_t},
            "student": {
                "accuracy_mean": float(np.mean(s_seeds)),
                "accuracy_std": float(np.std(s_seeds, ddof=1)),
                "drawn_accuracy_mean": float(np.mean(s_drawn)),
                "drawn_accuracy_std": float(np.std(s_drawn, ddof=1)),
            },
            "distilled": {
                "accuracy_mean": d,
                "accuracy_std": float(np.std(d_seeds, ddof=1)),
                "drawn_accuracy_mean": float(np.mean(d_drawn)),
                "drawn_accuracy_std": float(np.std(d_drawn, ddof=1)),
            },
            "kd_gain": d - float(np.mean(s_seeds)),
            "kd_gain_per_seed": [a - b for a, b in zip(d_seeds, s_seeds)],
        }

    good = checks(results(0.993, 0.995, [0.990, 0.991], [0.995, 0.995], 0.986, [0.96, 0.961], [0.977, 0.978]))
    assert good == {
        "teacher >=99.2%": True,
        "distilled >=99.4%": True,
        "teacher on drawn >=98.5%": True,
        "distilled on drawn >=97.5%": True,
        "gain > 2 std (MNIST)": True,
        "gain > 2 std (drawn)": True,
    }
    # a gain inside the seed spread, and a teacher under its drawn-digit target
    bad = checks(results(0.993, 0.991, [0.988, 0.992], [0.990, 0.992], 0.98, [0.96, 0.97], [0.965, 0.968]))
    assert not bad["gain > 2 std (MNIST)"] and not bad["gain > 2 std (drawn)"]
    assert not bad["teacher on drawn >=98.5%"] and bad["teacher >=99.2%"]


def test_job_run_summary_reads_finished_runs_only(small, tmp_path):
    from core.experiments.reproduce import job_run_summary
    from core.training import TrainConfig, train

    student = get_preset("paper").student
    cfg = TrainConfig(epochs=1, batch_size=100, lr=0.05, device="cpu", max_train_samples=300)
    train("student", "paper", student, cfg, small, run_dir=tmp_path / "done")
    row = job_run_summary(tmp_path / "done", None)
    assert row["role"] == "student" and row["seed"] == 0 and row["epochs"] == 1
    assert (
        row["accuracy"]
        == json.loads((tmp_path / "done" / runs.METRICS).read_text())["history"][-1]["test_acc"]
    )

    class StopEarly:
        def on_batch(self, info): ...
        def on_epoch(self, info): ...
        def status(self, text): ...
        def should_stop(self):
            return True

    train(
        "student",
        "paper",
        student,
        replace(cfg, epochs=2),
        small,
        run_dir=tmp_path / "stopped",
        progress=StopEarly(),
    )
    with pytest.raises(ExperimentError, match="not complete"):
        job_run_summary(tmp_path / "stopped", None)


def _stems(n: int) -> torch.Tensor:
    """``n`` upright strokes 2 px wide from (14, 4) to (14, 24) on 28x28: the stem of a one."""
    from core.styles import _segments

    return _segments(
        28,
        torch.tensor([[14.0, 4.0]]).repeat(n, 1),
        torch.tensor([[14.0, 24.0]]).repeat(n, 1),
        torch.full((n,), 2.0),
    )


@pytest.mark.parametrize("min_angle", [0.0, 15.0, 40.0])
def test_european_ones_flags_leave_the_top_within_the_angle_range(min_angle):
    import math

    from core.styles import FLAG_MAX_ANGLE, european_ones

    stem = _stems(200)
    flagged = european_ones(stem, torch.Generator().manual_seed(1), base=0.0, min_angle=min_angle)
    angles = []
    for added in (flagged - stem)[:, 0].clamp_min(0):
        ys, xs = torch.nonzero(added > 0.05, as_tuple=True)
        w = added[ys, xs]
        cx, cy = ((xs + 0.5) * w).sum() / w.sum(), ((ys + 0.5) * w).sum() / w.sum()
        # The flag starts at the top of the stem's ink (x 14, y 3.5): its ink's centre lies along its direction.
        angles.append(math.degrees(math.atan2((cy - 3.5).item(), (14.0 - cx).item())))
    assert min(angles) >= min_angle - 6 and max(angles) <= FLAG_MAX_ANGLE + 6  # pixel-grid tolerance
    assert min(angles) < min_angle + 6 and max(angles) > FLAG_MAX_ANGLE - 6  # the whole range is used
    with pytest.raises(ValueError, match="shallowest flag"):
        european_ones(stem, min_angle=75.0)


def test_recipes_record_the_flag_angle_their_data_used():
    from core.jobs import JobSpec, resolve

    flags = resolve(JobSpec(role="teacher", recipe="canvas-flags"))
    long = resolve(JobSpec(role="teacher", recipe="canvas-long"))
    assert (flags.data.flag_min_angle, long.data.flag_min_angle) == (0.0, 15.0)


def test_curved_ones_bend_only_ones_sideways_within_the_amplitude():
    from core.styles import curve, curve_ones

    n = 100
    stem = _stems(n)
    bent = curve(stem, torch.Generator().manual_seed(0), amplitude=(0.2, 0.25))
    cols = torch.arange(28).float() + 0.5
    rows = bent[:, 0, 4:24]  # the stem's rows
    centre = (rows * cols).sum(-1) / rows.sum(-1).clamp_min(1e-6)
    offset = (centre - 14.0).abs().amax(1)  # widest sideways move of each stem, in pixels
    height = 21.0  # the stem's ink box: rows 3 to 24
    assert (offset > 0.15 * height).all() and (offset < 0.3 * height).all()
    assert torch.allclose(
        curve(stem, torch.Generator().manual_seed(0), amplitude=(0.0, 0.0)), stem, atol=1e-5
    )

    labels = torch.tensor([1, 7] * (n // 2))
    out = curve_ones(stem, labels, 1.0, torch.Generator().manual_seed(0))
    changed = (out != stem).flatten(1).any(1)
    assert torch.equal(changed, labels == 1)
    with pytest.raises(ValueError, match="curved ones"):
        curve_ones(stem, labels, 1.5)
