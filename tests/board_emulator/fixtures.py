"""pytest fixtures for the bridge tests: one emulated board per test session and a small trained student ONNX.

tests/conftest.py registers them for every test module with ``pytest_plugins``.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from core.bundled import bundled_model
from tests.board_emulator.server import SSHD, BoardEmulator, EmulatorConfig

BUNDLED_STUDENT = bundled_model("student")
__all__ = [
    "_emulator",
    "board",
    "remote_dir",
    "student_onnx",
    "opset17_onnx",
    "test_images",
    "copy_as",
    "with_node",
]


# Each test module that star-imports these fixtures gets its own copy of them; the session-wide objects are
# shared through this dict so that one emulator and one trained student serve the whole test session.
_shared: dict = {}


@pytest.fixture(scope="session")
def _emulator():
    if not SSHD.exists():
        pytest.skip(f"{SSHD} is absent: install openssh-server to run the board emulator tests")
    if "emulator" not in _shared:
        _shared["emulator"] = BoardEmulator().start()
    yield _shared["emulator"]
    emulator = _shared.pop("emulator", None)
    if emulator is not None:
        emulator.stop()


@pytest.fixture()
def board(_emulator):
    """The session's emulated board, restored to the default configuration after each test."""
    yield _emulator
    _emulator.thaw_connections()
    (_emulator.dir / "state" / "wedge-next-execute").unlink(missing_ok=True)
    defaults = asdict(EmulatorConfig())
    if asdict(_emulator.config) != defaults:
        _emulator.configure(**defaults)


@pytest.fixture()
def remote_dir():
    """A fresh remote folder name (relative to the board user's home) for one test."""
    return f"deploy-{uuid.uuid4().hex[:8]}"


def _train_student(path: Path, mnist) -> None:
    import torch

    from core.export import export_onnx
    from core.models import PRESETS, build_model

    torch.manual_seed(0)
    model = build_model(PRESETS["paper"].student)
    x, y = mnist.train_images[:8000], mnist.train_labels[:8000]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _epoch in range(1):
        for i in range(0, len(x), 128):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[i : i + 128]), y[i : i + 128])
            loss.backward()
            optimizer.step()
    model.eval()
    export_onnx(
        model, path, metadata={"preset": "paper", "role": "student"}, verify_images=mnist.test_images[:64]
    )


@pytest.fixture(scope="session")
def student_onnx(tmp_path_factory, mnist) -> Path:
    """The bundled student when it exists, else a paper student (784-50-50-10) trained briefly and exported."""
    if BUNDLED_STUDENT.exists():
        return BUNDLED_STUDENT
    if "student" not in _shared:
        path = tmp_path_factory.mktemp("models") / "student.onnx"
        _train_student(path, mnist)
        _shared["student"] = path
    return _shared["student"]


@pytest.fixture(scope="session")
def opset17_onnx(tmp_path_factory, student_onnx) -> Path:
    """The student declared at opset 17 (too new for the Atlas 200 DK's ATC)."""
    import onnx

    if "opset17" in _shared:
        return _shared["opset17"]
    model = onnx.load(str(student_onnx))
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = 17
    path = tmp_path_factory.mktemp("models") / "student17.onnx"
    onnx.save(model, str(path))
    _shared["opset17"] = path
    return path


@pytest.fixture(scope="session")
def test_images(mnist):
    """200 MNIST test images and labels as numpy."""
    return mnist.test_images[:200].numpy().astype(np.float32), mnist.test_labels[:200].numpy()


def copy_as(src: Path, folder: Path, name: str) -> Path:
    """Copy a model under an arbitrary (hostile) file name."""
    dest = folder / name
    shutil.copy(src, dest)
    return dest


def with_node(src: Path, dest: Path, op: str | None, opset: int | None = None) -> Path:
    """The model with an ``op`` node (e.g. ``Identity``) inserted before its output and/or another opset."""
    import onnx
    from onnx import helper

    model = onnx.load(str(src))
    if op is not None:
        last = model.graph.node[-1]
        last.output[0], output = last.output[0] + "_pre", last.output[0]
        model.graph.node.append(helper.make_node(op, [last.output[0]], [output], name=f"extra_{op.lower()}"))
    if opset is not None:
        for entry in model.opset_import:
            if entry.domain in ("", "ai.onnx"):
                entry.version = opset
    onnx.save(model, str(dest))
    return dest
