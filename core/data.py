r"""MNIST in memory: find the four IDX files, download them if asked, validate them, load them as tensors.

Where the files are looked for (first match wins, see :func:`locate_data`):

1. the ``data_dir`` argument (the CLI's ``--data-dir``);
2. the ``DIGIT_DISTILL_DATA`` environment variable;
3. the user cache folder (:func:`core.userdirs.mnist_dir`): ``$XDG_CACHE_HOME`` or ``~/.cache`` +
   ``digit-distill/mnist`` on Linux, ``~/Library/Caches/digit-distill/mnist`` on macOS,
   ``%LOCALAPPDATA%\digit-distill\Cache\mnist`` on Windows.

Each file may be gzip-compressed (``train-images-idx3-ubyte.gz``) or raw (``train-images-idx3-ubyte``); when
both are present the raw one is used. Every load checks the IDX header (magic number, count, 28x28), the
exact byte length and the SHA-256 of the uncompressed content, so a truncated, corrupt or misplaced file
raises :class:`DataError` naming the file and the fault.

Download safety: a file fetched from a mirror is accepted when its gzip bytes have the official MD5, or, when
the mirror re-compressed it, when its uncompressed content has the official length and SHA-256 (a strictly
stronger check than the gzip MD5; decompression is capped at the expected length, so a hostile mirror cannot
exhaust memory). The expected checksums are fixed in :data:`MNIST_FILES`, never taken from the caller.

Kept in one module: finding, downloading, validating and loading are the one path from files to tensors.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import struct
import threading
import urllib.error
import urllib.request
import weakref
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core import userdirs
from core.fileio import atomic_write_bytes, read_regular_file
from core.progress import NullProgress, Progress, transfer

ENV_VAR = "DIGIT_DISTILL_DATA"
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
IMAGE_SIZE = 28
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 64 * 1024
#: Default size of the validation split held out from the end of the training set (:meth:`MNIST.hold_out_validation`).
VALIDATION_SIZE = 5000
_REPLACE_HINT = "Replace it with a good copy, or delete it and run `digit-distill data --download`"


class DataError(Exception):
    """An MNIST file is unreadable, truncated, corrupt or not the expected file; the message names it."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None):
        super().__init__(message)
        self.path = path


class MissingDataError(DataError):
    """MNIST files are absent (and could not be downloaded); the message says how to provide them."""


class DownloadCancelled(Exception):
    """A download was stopped through its progress's ``should_stop()``; nothing partial was written."""


@dataclass(frozen=True)
class IdxFile:
    """One of the four MNIST files and what its content must be.

    Attributes
    ----------
    name
        File name without ``.gz``.
    kind
        ``"images"`` or ``"labels"``.
    count
        Number of items (60000 train, 10000 test).
    raw_bytes
        Exact length of the uncompressed file.
    raw_sha256
        SHA-256 of the uncompressed file.
    gz_md5
        MD5 of the official ``.gz`` as served by the mirrors.
    gz_bytes
        Length of the official ``.gz`` (progress total when a mirror sends no Content-Length).
    """

    name: str
    kind: str
    count: int
    raw_bytes: int
    raw_sha256: str
    gz_md5: str
    gz_bytes: int

    @property
    def magic(self) -> int:
        """The IDX magic number this file must start with."""
        return IMAGES_MAGIC if self.kind == "images" else LABELS_MAGIC

    @property
    def header_bytes(self) -> int:
        """Length of the IDX header (magic and dimensions)."""
        return 16 if self.kind == "images" else 8


MNIST_FILES: dict[str, IdxFile] = {
    f.name: f
    for f in (
        IdxFile(
            "train-images-idx3-ubyte",
            "images",
            60000,
            47040016,
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            9912422,
        ),
        IdxFile(
            "train-labels-idx1-ubyte",
            "labels",
            60000,
            60008,
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "d53e105ee54ea40749a09fcbcd1e9432",
            28881,
        ),
        IdxFile(
            "t10k-images-idx3-ubyte",
            "images",
            10000,
            7840016,
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "9fb629c4189551a2d022fa330f9573f3",
            1648877,
        ),
        IdxFile(
            "t10k-labels-idx1-ubyte",
            "labels",
            10000,
            10008,
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            "ec29112dd5afa0611ce80d1b7f02629c",
            4542,
        ),
    )
}
"""The four files, with the official sizes and checksums (see ``../shared/data/mnist/README.md``)."""
_LARGEST_FILE = max(f.raw_bytes for f in MNIST_FILES.values()) + 1024 * 1024  # plus gzip framing


# ---------------------------------------------------------------------------------------------------------
# Where the data lives


@dataclass(frozen=True)
class DataLocation:
    """The MNIST folder in use and why it was chosen.

    Attributes
    ----------
    path
        The folder.
    source
        ``"argument"`` (explicit ``data_dir`` / ``--data-dir``), ``"environment"`` (``DIGIT_DISTILL_DATA``)
        or ``"cache"`` (the user cache folder).
    """

    path: Path
    source: str

    def describe(self) -> str:
        """One line for people, e.g. ``/data/mnist (from DIGIT_DISTILL_DATA)``."""
        origin = {
            "argument": "given with --data-dir",
            "environment": f"from {ENV_VAR}",
            "cache": "the user cache folder",
        }[self.source]
        return f"{self.path} ({origin})"


def default_data_dir() -> Path:
    """The per-user cache folder for MNIST, by the platform's convention (:func:`core.userdirs.mnist_dir`)."""
    return userdirs.mnist_dir()


def locate_data(explicit: str | os.PathLike[str] | None = None) -> DataLocation:
    """Choose the MNIST folder: ``explicit``, else ``$DIGIT_DISTILL_DATA``, else :func:`default_data_dir`."""
    if explicit is not None and str(explicit) != "":
        return DataLocation(Path(explicit).expanduser(), "argument")
    env = os.environ.get(ENV_VAR, "")
    if env:
        return DataLocation(Path(env).expanduser(), "environment")
    return DataLocation(default_data_dir(), "cache")


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The MNIST folder that :func:`load_mnist` would use (see :func:`locate_data` for the order)."""
    return locate_data(explicit).path


def find_mnist_files(folder: str | os.PathLike[str]) -> dict[str, Path | None]:
    """Map each of the four file names to its file in ``folder`` (raw preferred over ``.gz``) or None."""
    folder = Path(folder)
    found: dict[str, Path | None] = {}
    for name in MNIST_FILES:
        candidates = (folder / name, folder / f"{name}.gz")
        found[name] = next((p for p in candidates if p.is_file()), None)
    return found


def how_to_provide(folder: Path) -> str:
    """Instructions for getting the MNIST files into ``folder``, for error messages."""
    names = ", ".join(f"{name}.gz" for name in MNIST_FILES)
    return (
        f"To provide MNIST: run `digit-distill data --download` (or load_mnist(download=True)); "
        f"or put the four files {names} (gzip or uncompressed) into {folder}; "
        f"or point --data-dir or the {ENV_VAR} environment variable at a folder that holds them."
    )


# ---------------------------------------------------------------------------------------------------------
# Reading and validating


def _gunzip(data: bytes, limit: int, where: str | os.PathLike[str]) -> bytes:
    """Decompress all gzip members of ``data``, refusing to produce more than ``limit`` bytes."""
    parts: list[bytes] = []
    total = 0
    rest = data
    try:
        while rest.strip(b"\0"):  # gzip allows zero padding after the last member
            stream = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            part = stream.decompress(rest, limit + 1 - total)
            total += len(part)
            parts.append(part)
            if total > limit:
                raise DataError(f"{where}: decompresses to more than the expected {limit} bytes", where)
            if not stream.eof:
                raise DataError(f"{where}: the gzip data is truncated (the file is incomplete)", where)
            rest = stream.unused_data
    except zlib.error as exc:
        raise DataError(f"{where}: corrupt gzip data ({exc})", where) from None
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _check_content(content: bytes, spec: IdxFile, where: str | os.PathLike[str]) -> None:
    """Check the IDX header, the length and the SHA-256 of one uncompressed file."""
    if len(content) < spec.header_bytes:
        raise DataError(
            f"{where}: only {len(content)} bytes, too short for an IDX header (truncated?)", where
        )
    (magic,) = struct.unpack(">I", content[:4])
    if magic != spec.magic:
        found = {IMAGES_MAGIC: "an IDX images file", LABELS_MAGIC: "an IDX labels file"}.get(magic, "not IDX")
        raise DataError(
            f"{where}: wrong file: expected {spec.kind} for {spec.name} (IDX magic {spec.magic}), "
            f"found magic {magic} ({found})",
            where,
        )
    (count,) = struct.unpack(">I", content[4:8])
    if count != spec.count:
        raise DataError(
            f"{where}: holds {count} {spec.kind}, expected {spec.count} for {spec.name} "
            f"(are the train and t10k files swapped?)",
            where,
        )
    if spec.kind == "images":
        rows, cols = struct.unpack(">II", content[8:16])
        if (rows, cols) != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"{where}: images are {rows}x{cols}, expected {IMAGE_SIZE}x{IMAGE_SIZE}", where)
    if len(content) != spec.raw_bytes:
        raise DataError(
            f"{where}: {len(content)} bytes of content, expected exactly {spec.raw_bytes} "
            "(truncated or padded)",
            where,
        )
    digest = hashlib.sha256(content).hexdigest()
    if digest != spec.raw_sha256:
        raise DataError(
            f"{where}: checksum mismatch (content SHA-256 {digest}, expected {spec.raw_sha256}): "
            "the file is corrupt",
            where,
        )


def read_idx(path: str | os.PathLike[str], name: str) -> bytes:
    """Read one MNIST file (gzip or raw) and return its validated, uncompressed content.

    Parameters
    ----------
    path
        The file.
    name
        Which of the four files it must be, e.g. ``"train-images-idx3-ubyte"``.

    Raises
    ------
    DataError
        Unreadable, bad gzip, wrong magic, count or size, or checksum mismatch; the message names ``path``.
    """
    spec = MNIST_FILES[name]
    path = Path(path)
    try:
        # Regular files only (a FIFO would block), and none larger than any MNIST file (a swapped file is read
        # far enough to be named by its header).
        data = read_regular_file(path, limit=_LARGEST_FILE)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})", path) from None
    try:
        if data[:2] == _GZIP_MAGIC:
            data = _gunzip(data, spec.raw_bytes, path)
        elif path.suffix == ".gz":
            raise DataError(f"{path}: named .gz but is not gzip data (corrupt or not an MNIST file)", path)
        _check_content(data, spec, path)
    except DataError as exc:
        raise DataError(f"{exc}. {_REPLACE_HINT}", path) from None
    return data


def _images(content: bytes, count: int) -> torch.Tensor:
    pixels = np.frombuffer(content, dtype=np.uint8, offset=16).astype(np.float32)
    return torch.from_numpy(pixels).div_(255.0).view(count, 1, IMAGE_SIZE, IMAGE_SIZE)


def _labels(content: bytes) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(content, dtype=np.uint8, offset=8).astype(np.int64))


# ---------------------------------------------------------------------------------------------------------
# The dataset


@dataclass(frozen=True, eq=False)
class MNIST:
    """The whole of MNIST in memory. Shared between callers: treat the tensors as read-only.

    Attributes
    ----------
    train_images, test_images
        float32 ``(N, 1, 28, 28)`` in ``[0, 1]``, ink bright on black.
    train_labels, test_labels
        int64 ``(N,)`` digits 0-9.
    data_dir
        The folder it was loaded from (None for a derived subset of unknown origin).
    val_images, val_labels
        A validation split held out from the training set (:meth:`hold_out_validation`), or None. Sweeps and
        searches choose settings on it, never on the test set.
    validation
        Where the validation split comes from (recorded in results), or None.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    data_dir: Path | None = None
    val_images: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None
    validation: dict[str, Any] | None = None

    def __repr__(self) -> str:
        val = f", validation={len(self.val_labels)}" if self.val_labels is not None else ""
        return (
            f"MNIST(train={len(self.train_labels)}{val}, test={len(self.test_labels)}, "
            f"data_dir={self.data_dir})"
        )

    def hold_out_validation(self, n: int = VALIDATION_SIZE) -> MNIST:
        """The last ``n`` training images as a validation split; the training set keeps the others.

        The split is positional (the last ``n`` of the training set in file order), so it is the same on every
        machine and is recorded in :attr:`validation` as ``{"source": "training set", "first": i, "count": n}``.
        """
        total = len(self.train_labels)
        if self.val_labels is not None:
            raise ValueError("this dataset already has a validation split")
        if not 0 < n < total:
            raise ValueError(f"validation size must be between 1 and {total - 1}, not {n}")
        first = total - n
        return MNIST(
            train_images=self.train_images[:first],
            train_labels=self.train_labels[:first],
            test_images=self.test_images,
            test_labels=self.test_labels,
            data_dir=self.data_dir,
            val_images=self.train_images[first:],
            val_labels=self.train_labels[first:],
            validation={"source": "training set", "first": first, "count": n},
        )

    def subset(self, n_train: int, n_test: int, seed: int = 0) -> MNIST:
        """A deterministic random subset (same ``seed``, same samples), kept in the original order.

        Parameters
        ----------
        n_train, n_test
            How many training and test samples to keep.
        seed
            Seed of the selection.
        """
        for label, n, total in (
            ("n_train", n_train, len(self.train_labels)),
            ("n_test", n_test, len(self.test_labels)),
        ):
            if not 0 <= n <= total:
                raise ValueError(f"{label} must be between 0 and {total}, not {n}")
        generator = torch.Generator().manual_seed(seed)
        train = torch.randperm(len(self.train_labels), generator=generator)[:n_train].sort().values
        test = torch.randperm(len(self.test_labels), generator=generator)[:n_test].sort().values
        return MNIST(
            self.train_images[train],
            self.train_labels[train],
            self.test_images[test],
            self.test_labels[test],
            self.data_dir,
            self.val_images,  # a validation split is kept whole
            self.val_labels,
            self.validation,
        )


_cache_lock = threading.Lock()
_cache: dict[Path, tuple[tuple[tuple[str, int, int], ...], weakref.ref[MNIST]]] = {}
_last_loaded: MNIST | None = None  # keeps the most recent dataset alive between trainings


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    progress: Progress | None = None,
    *,
    mirrors: Sequence[str] = DEFAULT_MIRRORS,
) -> MNIST:
    """Load MNIST from ``data_dir`` (or the usual places), downloading missing files if asked.

    A second call for the same folder, with the files unchanged, returns the same object at once: the most
    recently loaded dataset stays cached, others as long as something still references them.

    Parameters
    ----------
    data_dir
        Folder with the four files; None: ``$DIGIT_DISTILL_DATA``, then the user cache folder.
    download
        Fetch missing files from ``mirrors`` (see :func:`download_mnist`).
    progress, mirrors
        Passed to :func:`download_mnist`.

    Raises
    ------
    MissingDataError
        Files absent and ``download`` is False, or every mirror failed; the message says how to provide them.
    DataError
        A file is truncated, corrupt or not the expected one.
    DownloadCancelled
        ``progress.should_stop()`` returned True during a download.
    """
    global _last_loaded
    location = locate_data(data_dir)
    files = find_mnist_files(location.path)
    missing = [name for name, path in files.items() if path is None]
    if missing and download:
        download_mnist(location.path, mirrors=mirrors, progress=progress)
        files = find_mnist_files(location.path)
        missing = [name for name, path in files.items() if path is None]
    if missing:
        raise MissingDataError(
            f"MNIST files missing in {location.describe()}: {', '.join(missing)}. "
            f"{how_to_provide(location.path)}",
            location.path,
        )
    present = {name: path for name, path in files.items() if path is not None}  # all of them, checked above
    key = location.path.resolve()
    signature = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in present.values())
    with _cache_lock:  # concurrent loads of one folder wait for the first instead of loading it twice
        cached = _cache.get(key)
        if cached is not None and cached[0] == signature and (dataset := cached[1]()) is not None:
            _last_loaded = dataset
            return dataset
        content = {name: read_idx(path, name) for name, path in present.items()}
        dataset = MNIST(
            train_images=_images(content["train-images-idx3-ubyte"], 60000),
            train_labels=_labels(content["train-labels-idx1-ubyte"]),
            test_images=_images(content["t10k-images-idx3-ubyte"], 10000),
            test_labels=_labels(content["t10k-labels-idx1-ubyte"]),
            data_dir=location.path,
        )
        _cache[key] = (signature, weakref.ref(dataset))
        _last_loaded = dataset
        return dataset


# ---------------------------------------------------------------------------------------------------------
# Downloading


def _fetch(
    url: str,
    spec: IdxFile,
    progress: Progress,
    timeout: float,
) -> bytes:
    """GET ``url`` into memory in chunks, reporting each chunk to ``progress`` and honouring its ``should_stop``."""
    filename = f"{spec.name}.gz"
    limit = spec.raw_bytes + 1024 * 1024  # no honest mirror serves more than the raw file plus gzip framing
    request = urllib.request.Request(url, headers={"User-Agent": "digit-distill"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        announced = response.headers.get("Content-Length", "")
        expected = int(announced) if announced.isdigit() else None
        if expected is not None and expected > limit:
            raise DataError(f"{url}: announces {expected} bytes, far more than any MNIST file", url)
        total = expected if expected is not None else spec.gz_bytes
        buffer = bytearray()
        progress.on_batch(transfer("download", filename, 0, total))
        while True:
            if progress.should_stop():
                raise DownloadCancelled(f"download of {filename} cancelled")
            chunk = response.read(_CHUNK)
            if not chunk:
                break
            buffer += chunk
            if len(buffer) > limit:
                raise DataError(f"{url}: sends more than {limit} bytes, far more than any MNIST file", url)
            progress.on_batch(transfer("download", filename, len(buffer), max(total, len(buffer))))
    if expected is not None and len(buffer) != expected:
        raise DataError(f"{url}: transfer cut off after {len(buffer)} of {expected} bytes", url)
    return bytes(buffer)


def _verify_download(data: bytes, spec: IdxFile, url: str) -> None:
    """Accept the official gzip bytes, or any gzip whose content is the official file (see module doc)."""
    if hashlib.md5(data, usedforsecurity=False).hexdigest() == spec.gz_md5:
        return
    if data[:2] != _GZIP_MAGIC:
        raise DataError(f"{url}: not gzip data", url)
    _check_content(_gunzip(data, spec.raw_bytes, url), spec, url)


def _failure_reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    if isinstance(exc, DataError):
        return str(exc).split(": ", 1)[-1]
    return f"{type(exc).__name__}: {exc}"


def download_mnist(
    dest: str | os.PathLike[str] | None = None,
    *,
    mirrors: Sequence[str] = DEFAULT_MIRRORS,
    progress: Progress | None = None,
    timeout: float = 30.0,
) -> list[Path]:
    """Download the MNIST files missing from ``dest``, trying ``mirrors`` in order for each file.

    A mirror that fails (connection, HTTP error, cut-off transfer) or serves a file that fails verification
    is skipped for the next one. Each verified file is written atomically as ``<name>.gz``; files already in
    ``dest`` (raw or gzip) are left alone.

    Parameters
    ----------
    dest
        Target folder; None: as :func:`resolve_data_dir`.
    mirrors
        Base URLs; ``<mirror>/<name>.gz`` is fetched.
    progress
        The one progress protocol (:mod:`core.progress`): ``on_batch(transfer("download", "<name>.gz", done,
        total))`` after every chunk (bytes); ``should_stop()`` is polled between chunks, and when it returns
        True the download stops with :class:`DownloadCancelled`.
    timeout
        Seconds to wait for a mirror to connect or send data.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    MissingDataError
        Every mirror failed for some file; the message lists each failure and how to provide the files.
    """
    folder = resolve_data_dir(dest)
    progress = progress or NullProgress()
    present = find_mnist_files(folder)
    written = []
    for name, spec in MNIST_FILES.items():
        if present[name] is not None:
            continue
        failures = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + f"/{name}.gz"
            try:
                data = _fetch(url, spec, progress, timeout)
                _verify_download(data, spec, url)
            except (OSError, http.client.HTTPException, ValueError, DataError) as exc:
                failures.append(f"{url}: {_failure_reason(exc)}")
                continue
            written.append(atomic_write_bytes(folder / f"{name}.gz", data))
            break
        else:
            tried = "; ".join(failures) if failures else "no mirror given"
            raise MissingDataError(
                f"could not download {name}.gz ({tried}). {how_to_provide(folder)}", folder
            )
    return written
