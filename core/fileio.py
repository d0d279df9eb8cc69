"""Atomic file writes (a crash mid-write never leaves a half-written file behind) and safe reads of input files.

Each write goes to a new temporary file in the destination's folder, is flushed to disk, renamed over the
destination (``os.replace``, atomic on one file system) and the folder itself is flushed so that the rename
survives a power cut. The temporary file is created with mode ``0o666`` and the kernel applies the process
umask, so the final file gets the usual permissions without this module ever reading or changing the umask
(``os.umask`` sets it process-wide: a race with any other thread creating files).

Reads of input files (:func:`open_regular_file`, :func:`read_regular_file`) accept regular files only, checked on
the open descriptor, and can refuse a file over a size limit before reading it.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


class NotARegularFileError(OSError):
    """The path is a FIFO, socket or device (or a folder), which cannot be read as a data file."""


class FileTooLargeError(OSError):
    """The file is larger than the reader accepts."""


def open_regular_file(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open ``path`` for binary reading, refusing anything but a regular file (no gap between check and use).

    The file is opened with ``O_NONBLOCK`` (so opening a FIFO cannot block) and checked with ``fstat`` on the
    open descriptor: a FIFO named ``x.png`` would otherwise block forever, and a device (``/dev/zero``) never ends.

    Raises
    ------
    FileNotFoundError, PermissionError, IsADirectoryError, NotARegularFileError, OSError
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
        if not stat.S_ISREG(mode):
            raise NotARegularFileError(
                errno.EINVAL, "not a regular file (a pipe, socket or device cannot be read as one)", str(path)
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The whole content of the regular file ``path``, refusing one over ``limit`` bytes before reading it.

    Raises
    ------
    FileNotFoundError, PermissionError, IsADirectoryError, NotARegularFileError, FileTooLargeError, OSError
    """
    with open_regular_file(path) as f:
        size = os.fstat(f.fileno()).st_size
        if limit is not None and size > limit:
            raise FileTooLargeError(
                errno.EFBIG, f"{size:,} bytes, more than the {limit:,} accepted", str(path)
            )
        data: bytes = f.read() if limit is None else f.read(limit + 1)
    if limit is not None and len(data) > limit:  # grew while being read
        raise FileTooLargeError(errno.EFBIG, f"more than the {limit:,} bytes accepted", str(path))
    return data


_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def _create_temporary(folder: Path, name: str) -> Path:
    """Create an empty, new file ``.<name>.<random>.tmp`` in ``folder`` with mode 0o666 minus the umask."""
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, _TMP_FLAGS, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(folder))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename in it) to disk, where the OS supports it.

    Windows cannot open a folder this way, and some file systems refuse ``fsync`` on one (EINVAL); the rename is
    then as durable as the OS makes it, which is all that can be done.
    """
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES, errno.EPERM):
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    Parameters
    ----------
    path
        Final destination. Its folder is created if needed.

    Yields
    ------
    Path
        A new, empty temporary file in the same folder (same file system, so ``os.replace`` is atomic). Write it
        by path (``open(tmp, "wb")``, ``torch.save``, ``onnx.save``...). On an exception, here or in the body,
        the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temporary(path.parent, path.name)
    try:
        yield tmp_path
        _fsync_file(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        try:
            tmp_path.unlink()
        except OSError:
            pass  # already gone, or the folder became read-only: the original error matters more
        raise
    fsync_folder(path.parent)


def atomic_write(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``writer`` with a binary file object and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        writer(f)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically.

    The object is serialised before anything is written: one JSON cannot hold raises ``TypeError`` and leaves
    ``path`` untouched.
    """
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8"))
