"""Recipes: the paper's architectures, fair budgets for the two students, clear errors."""

from __future__ import annotations

import pytest

from core.models import build_model, count_params
from core.recipes import RECIPES, get_recipe


def test_paper_and_strong_use_the_papers_architectures():
    for name in ("paper", "strong", "app"):
        recipe = get_recipe(name)
        assert recipe.teacher_model.kind == recipe.student_model.kind == "mlp"
        assert recipe.teacher_model.hidden == (2000, 2000)
        assert recipe.student_model.hidden == (50, 50)
        assert count_params(build_model(recipe.teacher_model)) == 5_592_010
        assert count_params(build_model(recipe.student_model)) == 42_310


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_both_students_get_the_same_budget(name):
    """The comparison is fair: same epochs, optimiser, schedule and augmentation; only the targets differ."""
    recipe = get_recipe(name)
    assert recipe.student.to_dict() == recipe.distilled.to_dict()
    assert recipe.model_for("student") == recipe.model_for("distilled") == recipe.student_model
    assert recipe.train_for("teacher") is recipe.teacher


def test_paper_recipe_is_the_papers_regime():
    recipe = get_recipe("paper")
    assert recipe.kd.temperature == 6.0
    assert recipe.student_model.activation == "sigmoid"
    assert recipe.student.optimizer == "sgd" and recipe.student.momentum == 0.0
    assert not recipe.student.augment and not recipe.teacher.augment
    assert recipe.teacher_model.dropout == 0.0


def test_strong_recipe_regularises_the_teacher_and_augments():
    recipe = get_recipe("strong")
    assert recipe.teacher_model.dropout > 0
    assert recipe.teacher.augment and recipe.student.augment
    assert recipe.pool_copies >= 1 and 0 < recipe.styles < 1


def test_unknown_recipe_names_the_choices():
    with pytest.raises(ValueError, match="paper"):
        get_recipe("nope")


def test_canvas_recipes_distil_patiently_and_consistently():
    """No fixed pool: the teacher runs online on the student's jittered, mixup-blended batches."""
    for name in ("canvas", "canvas-long", "canvas-euro", "canvas-mlp"):
        recipe = get_recipe(name)
        assert recipe.pool_copies == 0
        assert recipe.distilled.augment and recipe.distilled.mixup > 0
        assert recipe.distilled.augmentation.elastic > 0
        assert 0 < recipe.restroke < 1 and 0 < recipe.styles < 1
        # the student is no larger than the paper's 784-50-50-10
        assert count_params(build_model(recipe.student_model)) <= 42_310
    assert get_recipe("canvas").student_model.kind == "cnn"
    assert get_recipe("canvas-mlp").student_model.hidden == (50, 50)


def test_a_recipe_holding_out_validation_images_reaches_the_job_config():
    """canvas-long holds out the last 5,000 training images (calibration fits on them); a spec can still say."""
    from core.jobs import JobSpec, resolve

    assert resolve(JobSpec(recipe="canvas-long", role="teacher")).data.validation == 5000
    assert resolve(JobSpec(recipe="canvas-long", role="teacher", validation=100)).data.validation == 100
    assert resolve(JobSpec(recipe="canvas", role="teacher")).data.validation is None


def test_architectures_describe_themselves_in_one_line():
    """What the job log names (the recipe's preset family alone read "canvas" for canvas-deep's deeper teacher)."""
    assert get_recipe("paper").teacher_model.describe() == "MLP 784-2000-2000-10"
    assert get_recipe("paper").student_model.describe() == "MLP 784-50-50-10"
    assert get_recipe("canvas-deep").teacher_model.describe() == "CNN conv32-conv64-conv128-fc256-10 (3x3)"
    assert get_recipe("canvas").teacher_model.describe() != get_recipe("canvas-deep").teacher_model.describe()


def test_how_each_recipe_teaches_is_read_from_the_recipe():
    """The report's "teaching" column: a jitter pool drawn once, or the teacher online on the student's batches."""
    assert get_recipe("strong").teaching() == get_recipe("cnn").teaching() == "cached pool"
    assert (
        get_recipe("canvas-deep").teaching()
        == get_recipe("canvas-mlp").teaching()
        == "patient and consistent"
    )
    assert get_recipe("paper").teaching() is None  # no jitter at all


def test_every_canvas_recipe_gets_the_issues_targets_by_its_students_kind():
    from core.experiments.report import canvas_targets

    for name, recipe in RECIPES.items():
        want = canvas_targets(name)
        if recipe.preset != "canvas":
            assert want is None, name
        elif recipe.student_model.kind == "cnn":
            assert want is not None and want["distilled"] == 0.994 and want["teacher_drawn"] == 0.985, name
        else:
            assert want == {"distilled": 0.986}, name
