"""Packaging and start-up: bundled models as package data, a wheel that works from any folder, a light CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.bundled import BUNDLED_DIR, ROLES, bundled_model

ROOT = Path(__file__).resolve().parents[1]


def _digit_png(path: Path) -> Path:
    """A light "1" on a dark background, as a user's scan might look."""
    image = np.zeros((64, 64), np.uint8)
    image[10:54, 29:35] = 255
    Image.fromarray(image).save(path)
    return path


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without PYTHONPATH, so a subprocess imports the installed package, not this checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(QT_QPA_PLATFORM="offscreen", **extra)
    return env


def _run(cmd: list, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    """Run ``cmd`` to its end with its output captured as text; a failure fails the test with the end of stderr."""
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_bundled_models_are_package_data():
    assert BUNDLED_DIR == ROOT / "core" / "bundled"
    for role in ROLES:
        assert bundled_model(role).is_file()
        assert bundled_model(role).with_suffix(".json").is_file()
    with pytest.raises(ValueError, match="teacher, student"):
        bundled_model("distilled")


HEAVY = ("torch", "PySide6", "pyqtgraph", "onnx", "onnxruntime", "numpy")


@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        (["--help"], ()),
        (["--version"], ()),
        (["predict", "--help"], ("onnx", "onnxruntime", "numpy")),  # only the chosen subcommand's module
    ],
)
def test_help_and_version_import_nothing_heavy(argv, allowed):
    code = (
        "import json, sys\nfrom app.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print('heavy:', json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = _run([sys.executable, "-c", code], cwd=ROOT, timeout=120)
    heavy = done.stdout.strip().splitlines()[-1]
    assert heavy.startswith("heavy: ") and set(json.loads(heavy[7:])) <= set(allowed), done.stdout


def test_predict_without_model_uses_the_bundled_student(tmp_path, capsys):
    from app.cli import main

    image = _digit_png(tmp_path / "one.png")
    assert main(["predict", "--json", str(image)]) == 0
    default = json.loads(capsys.readouterr().out)
    assert main(["predict", "--json", "--model", str(bundled_model("student")), str(image)]) == 0
    explicit = json.loads(capsys.readouterr().out)
    assert default == explicit and default["digit"] == 1


@pytest.mark.slow
def test_wheel_installs_and_runs_from_another_folder(tmp_path):
    """Build a wheel, install it into a fresh venv (torch etc. from the system), run it elsewhere."""
    source, wheels = tmp_path / "source", tmp_path / "wheels"
    ignore = shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".venv", "runs", "out"
    )
    shutil.copytree(ROOT, source, ignore=ignore)  # pip builds in the source folder: keep the checkout clean
    pip = [sys.executable, "-m", "pip"]
    _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, source],
        tmp_path,
        timeout=600,
    )
    (wheel,) = wheels.glob("digit_distill-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # Without PYTHONPATH: pip would take this checkout, when it is on it, for an installed digit-distill.
    _run(
        [*pip, "--python", python, "install", "--no-index", "-q", wheel], tmp_path, _clean_env(), timeout=600
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _digit_png(elsewhere / "one.png")
    env = _clean_env(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    code = "import app, core.bundled; print(app.__file__); print(core.bundled.BUNDLED_DIR)"
    where = _run([python, "-c", code], elsewhere, env, timeout=120)
    assert all(line.startswith(str(env_dir)) for line in where.stdout.split()), where.stdout

    script = env_dir / "bin" / "digit-distill"
    predict = _run([script, "predict", "--json", "one.png"], elsewhere, env)
    assert json.loads(predict.stdout)["digit"] == 1
    smoke = _run([script, "--smoke"], elsewhere, env)
    assert "main window painted" in smoke.stdout
