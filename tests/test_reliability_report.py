"""The bad-input counter (tests/reliability.py) and the report script (scripts/make_reliability.py)."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from tests import reliability

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location(
        "make_reliability", ROOT / "scripts" / "make_reliability.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def counts(monkeypatch):
    """A fresh counter for this test (the session's own counts are left alone)."""
    fresh = type(reliability.COUNTS)(reliability.COUNTS.default_factory)
    monkeypatch.setattr(reliability, "COUNTS", fresh)
    return fresh


def test_check_counts_each_outcome(counts):
    assert reliability.check("c", lambda: 42, (ValueError,)) == 42
    assert isinstance(reliability.check("c", lambda: int("x"), (ValueError,)), ValueError)
    with pytest.raises(ZeroDivisionError):
        reliability.check("c", lambda: 1 / 0, (ValueError,))
    with pytest.raises(reliability.HangError):
        reliability.check("c", lambda: time.sleep(5), (ValueError,), timeout=0.2)
    assert counts["c"] == {"ok": 1, "typed_error": 1, "crash": 1, "hang": 1, "file_lost": 0}


def test_check_write_counts_a_changed_file_as_lost(counts, tmp_path):
    (tmp_path / "a").write_bytes(b"old")

    def clobber():
        (tmp_path / "a").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(reliability.FileLostError, match="files changed by a failed write"):
        reliability.check_write("w", tmp_path, clobber, (OSError,))
    (tmp_path / "a").write_bytes(b"old")
    with pytest.raises(reliability.FileLostError, match="did not surface"):
        reliability.check_write("w", tmp_path, lambda: None, (OSError,))
    assert counts["w"]["file_lost"] == 2


def test_report_states_the_counts(tmp_path, counts):
    results = tmp_path / "reliability.json"
    reliability.describe("images", "an image or ImageReadError")
    counts["images"].update(ok=7, typed_error=3)
    counts["writes"].update(typed_error=4, crash=1, hang=2, file_lost=5)
    reliability.write_counts(
        results, {"profile": "ci", "exit_status": 1, "tests": {"passed": 3, "failed": 1}}
    )
    out = tmp_path / "RELIABILITY.md"
    assert _script().main(["--results", str(results), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| images | an image or ImageReadError | 10 | 7 | 3 | 0 | 0 | 0 |" in text
    assert "| writes |  | 12 | 0 | 4 | 1 | 2 | 5 |" in text
    assert "**inputs tried: 22; crashes: 1; hangs: 2; files lost: 5**" in text
    assert "tests: 1 failed, 3 passed" in text


def test_committed_report_is_generated_from_the_committed_results():
    results = json.loads((ROOT / "docs" / "results" / "reliability.json").read_text())
    assert (ROOT / "docs" / "RELIABILITY.md").read_text() == _script().render(results)
    categories = results["categories"]
    assert all(c["crash"] == c["hang"] == c["file_lost"] == 0 for c in categories.values())
    assert results["exit_status"] == 0
