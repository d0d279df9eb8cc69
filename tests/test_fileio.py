"""core.fileio: permissions without touching the umask, folder fsync, and faults injected at every write site.

Each fault (disk full, permission denied) is injected at one step of the atomic write: creating the temporary
file, writing it, flushing it, renaming it. The write must raise ``OSError`` with that errno and leave the folder
exactly as it was: the previous good file intact and no temporary file behind (tests/reliability.py counts them).
"""

from __future__ import annotations

import errno
import os
import stat

import pytest
import torch

import core.fileio as fileio
from core.fileio import atomic_path, atomic_write, atomic_write_bytes, atomic_write_json
from core.runs import RunSaveError
from tests import reliability

FAULTS = [
    ("create", errno.EACCES),
    ("create", errno.ENOSPC),
    ("write", errno.ENOSPC),
    ("fsync", errno.ENOSPC),
    ("fsync", errno.EIO),
    ("rename", errno.EACCES),
    ("rename", errno.ENOSPC),
]


def _raise(code: int):
    raise OSError(code, os.strerror(code))


@pytest.fixture()
def inject(monkeypatch):
    """``inject(step, errno)``: make that step of every atomic write in the test fail with that error."""

    def _inject(step: str, code: int) -> None:
        if step == "create":
            monkeypatch.setattr(fileio, "_create_temporary", lambda folder, name: _raise(code))
        elif step == "write":
            # The disk fills while the writer is writing: half the file is there, then the error.
            def full_disk(path):
                size = path.stat().st_size
                with open(path, "r+b") as f:
                    f.truncate(size // 2)
                _raise(code)

            monkeypatch.setattr(fileio, "_fsync_file", full_disk)
        elif step == "fsync":
            monkeypatch.setattr(fileio, "_fsync_file", lambda path: _raise(code))
        elif step == "rename":
            monkeypatch.setattr(fileio.os, "replace", lambda src, dst: _raise(code))
        else:
            raise ValueError(step)

    return _inject


def test_permissions_follow_the_umask_without_calling_umask(tmp_path, monkeypatch):
    umask = os.umask(0o022)
    os.umask(umask)

    def no_umask(mask):
        raise AssertionError("os.umask changes the process-wide mask: a race with other threads")

    monkeypatch.setattr(os, "umask", no_umask)
    target = atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"x")
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o666 & ~umask


def test_folder_is_flushed_after_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        return real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write_bytes(tmp_path / "a.bin", b"abc")
    assert events == ["fsync-file", "rename", "fsync-dir"]


def test_folder_fsync_refused_by_the_file_system_is_not_an_error(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            _raise(errno.EINVAL)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert atomic_write_bytes(tmp_path / "a.bin", b"abc").read_bytes() == b"abc"


def test_a_failing_writer_leaves_the_old_file(tmp_path):
    atomic_write_bytes(tmp_path / "b.bin", b"old")

    def failing_writer(f):
        f.write(b"half")
        raise OSError(errno.ENOSPC, "disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "b.bin", failing_writer)
    assert reliability.snapshot(tmp_path) == {"b.bin": b"old"}


def test_an_unserialisable_object_leaves_the_old_file(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "a.json", {"bad": object()})
    assert reliability.snapshot(tmp_path) == {"a.json": b'{\n  "ok": 1\n}\n'}


# ---- faults at every write site ----


def _site_json(folder):
    atomic_write_json(folder / "result.json", {"new": 2})


def _site_bytes(folder):
    atomic_write_bytes(folder / "data.gz", b"new data" * 100)


def _site_atomic_path(folder):
    with atomic_path(folder / "figure.png") as tmp:
        tmp.write_bytes(b"new figure" * 100)


def _site_checkpoint(folder):
    from core.models import build_model, get_preset
    from core.runs import write_checkpoint
    from core.training import TrainConfig

    cfg = get_preset("paper").student
    model = build_model(cfg)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    write_checkpoint(
        folder / "checkpoint.pt",
        model,
        optimizer,
        torch.Generator(),
        [],
        "student",
        "paper",
        cfg,
        TrainConfig(epochs=1, batch_size=10, lr=0.1),
        None,
    )


def _site_run_status(folder):
    from core.runs import write_status

    write_status(folder, "running", "epoch 1")


def _site_onnx_export(folder):
    from core.export import export_onnx
    from core.models import build_model, get_preset

    export_onnx(build_model(get_preset("paper").student), folder / "model.onnx", metadata={"role": "student"})


def _site_known_hosts(folder):
    import paramiko

    from atlas_bridge.hostkeys import record_host_key

    record_host_key(folder / "known_hosts", "[board]:2222", paramiko.RSAKey.generate(1024))


def _site_run_metrics(folder):
    from core.runs import write_metrics

    history = [{"epoch": 1, "test_acc": 0.9, "seconds": 1.0}]
    write_metrics(folder, "student", "paper", history, params=1000, finished=True)


SITES = {
    "atomic_write_json": (_site_json, "result.json"),
    "atomic_write_bytes (MNIST download)": (_site_bytes, "data.gz"),
    "atomic_path (figures, quantized models)": (_site_atomic_path, "figure.png"),
    "checkpoint.pt (torch.save)": (_site_checkpoint, "checkpoint.pt"),
    "metrics.json": (_site_run_metrics, "metrics.json"),
    "status.json": (_site_run_status, "status.json"),
    "ONNX export": (_site_onnx_export, "model.onnx"),
    "known_hosts": (_site_known_hosts, "known_hosts"),
}
WRITE_FAULTS = "write faults (ENOSPC, EACCES, EIO)"


@pytest.mark.parametrize("step,code", FAULTS, ids=[f"{s}-{errno.errorcode[c]}" for s, c in FAULTS])
@pytest.mark.parametrize("site", list(SITES))
def test_fault_at_write_site_keeps_the_previous_file(site, step, code, tmp_path, inject):
    write, name = SITES[site]
    reliability.describe(
        WRITE_FAULTS,
        "OSError with the injected errno (RunSaveError naming the file in run folders); the previous file byte "
        "for byte intact, no temporary file left",
    )
    write(tmp_path)  # the previous good file, written for real
    assert (tmp_path / name).exists()
    inject(step, code)
    exc = reliability.check_write(WRITE_FAULTS, tmp_path, lambda: write(tmp_path), (OSError, RunSaveError))
    if isinstance(exc, RunSaveError):  # run folders name the file and say "disk full" / "permission denied"
        assert str(tmp_path / name) in str(exc)
        exc = exc.__cause__
    assert exc.errno == code, exc
