"""Code style and layering, checked as part of the tests: ruff check, ruff format, and the import-linter contracts."""

import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(*cmd):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_is_clean():
    result = run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    """Every Python file is as `ruff format` writes it; fix with `ruff format .`."""
    result = run(sys.executable, "-m", "ruff", "format", "--check", "--diff", ".")
    assert result.returncode == 0, "run `ruff format .`:\n" + result.stdout + result.stderr


def test_no_formatter_escape_hatches():
    """No file opts out of the formatter: tables that need alignment are restructured, not exempted."""
    marker = re.compile(r"#\s*fmt:\s*(skip|off|on)\b")
    tracked = run("git", "ls-files", "*.py").stdout.split()
    assert len(tracked) > 100
    found = [
        f"{path}:{n}"
        for path in tracked
        for n, line in enumerate((ROOT / path).read_text(encoding="utf-8").splitlines(), 1)
        if marker.search(line)
    ]
    assert found == []


def test_ruff_format_check_sees_the_whole_tree():
    """The format check covers every tracked Python file, so a passing check says something about all of them."""
    result = run(sys.executable, "-m", "ruff", "format", "--check", ".")
    checked = re.search(r"(\d+) files? already formatted", result.stdout)
    assert checked, result.stdout + result.stderr
    tracked = [p for p in run("git", "ls-files", "*.py").stdout.split() if not p.startswith("docs/")]
    assert len(tracked) > 100
    assert int(checked.group(1)) >= len(tracked)


def test_ruff_format_check_fails_on_an_unformatted_file(tmp_path):
    """The check above can fail: the repository's settings report a hand-aligned table and show the fix."""
    bad = tmp_path / "table.py"
    bad.write_text('TABLE = {"a":  1,\n         "bb": 2}\n')
    result = run(
        sys.executable,
        "-m",
        "ruff",
        "format",
        "--check",
        "--diff",
        "--config",
        str(ROOT / "pyproject.toml"),
        str(bad),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "table.py" in result.stdout + result.stderr
    assert '+TABLE = {"a": 1, "bb": 2}' in result.stdout


def test_import_contracts_hold():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports (import-linter) is not installed: pip install -e '.[dev]'")
    result = run(exe)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " kept, 0 broken" in result.stdout
