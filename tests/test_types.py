"""Static types, checked as part of the tests: mypy as pyproject.toml configures it (``[tool.mypy]``).

Strict on ``core/`` and ``atlas_bridge/``, mypy's default checks on ``app/``. The incremental cache goes to
``.mypy_cache/`` (git-ignored): a repeated run re-checks only what changed and takes seconds; the first run
on a fresh clone also analyses torch, numpy, onnx, PySide6... (about 35 s of CPU). So that first run does not
add to the suite's time, it runs beside other tests: under pytest-xdist (the default, see pyproject.toml) the
other worker goes on with other test files while this one waits for mypy; in a single process (``-n 0``) the
check starts when this module is collected and the test below waits for its verdict.
"""

import atexit
import os
import re
import subprocess
import sys

from tests.conftest import ROOT

PACKAGES = ("core", "atlas_bridge", "app")


def mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True, text=True, timeout=900
    )


def _start_whole_tree() -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mypy"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    atexit.register(lambda: proc.poll() is None and proc.kill())  # an interrupted session
    return proc


# Every xdist worker imports (collects) this module but only one runs its tests: there the test starts mypy.
_WHOLE_TREE = None if os.environ.get("PYTEST_XDIST_WORKER") else _start_whole_tree()


def test_mypy_passes_on_every_package():
    """`python -m mypy` on the configured packages; fix what it reports with real annotations, not ignores."""
    whole_tree = _WHOLE_TREE or _start_whole_tree()
    output, _ = whole_tree.communicate(timeout=900)
    assert whole_tree.returncode == 0, output
    checked = re.search(r"Success: no issues found in (\d+) source files", output)
    assert checked, output
    sources = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    assert int(checked.group(1)) == len(sources)  # every module of the three packages was checked


def _check_alone(module: str, extra: str, tmp_path) -> subprocess.CompletedProcess[str]:
    """Check ``module`` with ``extra`` appended (mypy's --shadow-file), with the repository's settings."""
    shadow = tmp_path / "shadow.py"
    shadow.write_text((ROOT / module).read_text() + "\n\n" + extra)
    return mypy(
        "--follow-imports=skip",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--shadow-file",
        module,
        str(shadow),
        module,
    )


def test_core_is_checked_strictly(tmp_path):
    """The check above can fail: in core/ a function without annotations is an error (strict mode)."""
    result = _check_alone("core/paper.py", "def untyped(x):\n    return x\n", tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "core/paper.py" in result.stdout
    assert "[no-untyped-def]" in result.stdout


def test_app_gets_the_default_checks(tmp_path):
    """In app/ unannotated functions pass (normal mode), and a real type error does not."""
    untyped = _check_alone("app/gui/qt_platform.py", "def untyped(x):\n    return x\n", tmp_path)
    assert untyped.returncode == 0, untyped.stdout + untyped.stderr
    wrong = _check_alone("app/gui/qt_platform.py", 'COUNT: int = "three"\n', tmp_path)
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "[assignment]" in wrong.stdout
