"""core.data downloads, against mirrors served by a local http.server on 127.0.0.1 (never the internet).

The local "good" mirror serves ../shared's .gz files, whose gzip bytes differ from the official ones: they are
accepted because their uncompressed content has the official length and SHA-256 (see core.data's docstring).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from core import data
from core.data import DownloadCancelled, MissingDataError, download_mnist, load_mnist
from core.progress import NullProgress
from tests.conftest import run_command

LABELS = ["train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"]
IMAGES = ["train-images-idx3-ubyte", "t10k-images-idx3-ubyte"]


class Transfers(NullProgress):
    """The progress protocol recording the download's ``(file, done, total)``; stops after ``stop_after`` reports."""

    def __init__(self, stop_after: int | None = None):
        self.calls: list[tuple[str, int, int]] = []
        self.stop_after = stop_after

    def on_batch(self, info):
        assert info["step"] == "download"
        self.calls.append((info["file"], info["done"], info["total"]))

    def should_stop(self):
        return self.stop_after is not None and len(self.calls) >= self.stop_after


def corrupt_crc(gz: bytes) -> bytes:
    bad = bytearray(gz)
    bad[-8] ^= 0xFF
    return bytes(bad)


def wrong_content(gz: bytes) -> bytes:
    """A well-formed gzip whose content is the right size and header but one changed label/pixel."""
    content = bytearray(gzip.decompress(gz))
    content[-1] = (content[-1] + 1) % 10
    return gzip.compress(bytes(content))


class MirrorHandler(BaseHTTPRequestHandler):
    """``GET /<behaviour>/<file>.gz``: serve the genuine file, a damaged one, a 404 or a cut-off transfer."""

    def do_GET(self):  # noqa: N802 - the name http.server dispatches to
        server: MirrorServer = self.server
        server.requests.append(self.path)
        behaviour, _, filename = self.path.strip("/").partition("/")
        path = server.files / filename
        if behaviour == "missing" or not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        if behaviour == "corrupt":
            body = corrupt_crc(body)
        elif behaviour == "wrong":
            body = wrong_content(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if behaviour == "huge":
            self.send_header("Content-Length", str(500_000_000))
            self.end_headers()
            return
        if behaviour != "nolength":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if behaviour == "truncated":
            body = body[: len(body) // 2]  # then the connection closes: fewer bytes than announced
        self.wfile.write(body)

    def log_message(self, format, *args):  # keep the test output clean
        pass


class MirrorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: Path):
        super().__init__(("127.0.0.1", 0), MirrorHandler)
        self.files = files
        self.requests: list[str] = []

    def url(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{behaviour}/"


@pytest.fixture(scope="module")
def server(mnist_dir):
    httpd = MirrorServer(mnist_dir)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture()
def mirror(server):
    server.requests.clear()
    return server


@pytest.fixture()
def dest_with_images(mnist_dir, tmp_path):
    """A folder that already holds the two image files, so tests download only the small label files."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in IMAGES:
        (folder / f"{name}.gz").symlink_to(mnist_dir / f"{name}.gz")
    return folder


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def assert_no_leftovers(folder: Path, expected: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == expected  # no temporary or partial files


def test_corrupt_file_on_first_mirror_falls_back_to_second(mirror, dest_with_images):
    written = download_mnist(dest_with_images, mirrors=[mirror.url("corrupt"), mirror.url("good")])
    assert [p.name for p in written] == [f"{name}.gz" for name in LABELS]
    assert mirror.requests == [
        "/corrupt/train-labels-idx1-ubyte.gz",
        "/good/train-labels-idx1-ubyte.gz",
        "/corrupt/t10k-labels-idx1-ubyte.gz",
        "/good/t10k-labels-idx1-ubyte.gz",
    ]
    for name in LABELS:
        data.read_idx(dest_with_images / f"{name}.gz", name)  # written file is valid
    assert_no_leftovers(dest_with_images, {f"{name}.gz" for name in LABELS + IMAGES})


@pytest.mark.parametrize("first", ["missing", "truncated", "wrong", "huge"])
def test_failing_first_mirror_falls_back(mirror, dest_with_images, first):
    written = download_mnist(dest_with_images, mirrors=[mirror.url(first), mirror.url("good")])
    assert len(written) == 2
    assert mirror.requests[:2] == [f"/{first}/train-labels-idx1-ubyte.gz", "/good/train-labels-idx1-ubyte.gz"]


def test_all_mirrors_failing_raise_missing_data_error_with_reasons_and_instructions(mirror, dest_with_images):
    unreachable = closed_port_url()
    mirrors = [
        mirror.url("missing"),
        mirror.url("truncated"),
        mirror.url("corrupt"),
        mirror.url("wrong"),
        unreachable,
    ]
    with pytest.raises(MissingDataError) as info:
        download_mnist(dest_with_images, mirrors=mirrors)
    message = str(info.value)
    assert "could not download train-labels-idx1-ubyte.gz" in message
    assert f"{mirror.url('missing')}train-labels-idx1-ubyte.gz: HTTP 404" in message
    assert "transfer cut off after" in message
    assert "corrupt gzip data" in message
    assert "checksum mismatch" in message
    assert f"{unreachable}train-labels-idx1-ubyte.gz: cannot connect" in message
    for hint in ("t10k-images-idx3-ubyte.gz", str(dest_with_images), "--data-dir", "DIGIT_DISTILL_DATA"):
        assert hint in message
    assert_no_leftovers(dest_with_images, {f"{name}.gz" for name in IMAGES})


def test_progress_reports_every_chunk_up_to_the_file_size(mirror, dest_with_images, mnist_dir):
    progress = Transfers()
    download_mnist(dest_with_images, mirrors=[mirror.url("good")], progress=progress)
    calls = progress.calls
    for name in LABELS:
        filename = f"{name}.gz"
        size = (mnist_dir / filename).stat().st_size
        mine = [(done, total) for f, done, total in calls if f == filename]
        assert mine[0] == (0, size) and mine[-1] == (size, size)
        assert [done for done, _ in mine] == sorted(done for done, _ in mine)
    # The large training labels arrive in several chunks, each reported.
    assert len([c for c in calls if c[0] == "train-labels-idx1-ubyte.gz"]) >= 2


def test_progress_total_falls_back_to_official_size_without_content_length(mirror, dest_with_images):
    progress = Transfers()
    download_mnist(dest_with_images, mirrors=[mirror.url("nolength")], progress=progress)
    first = next(c for c in progress.calls if c[0] == "t10k-labels-idx1-ubyte.gz")
    assert first == ("t10k-labels-idx1-ubyte.gz", 0, data.MNIST_FILES["t10k-labels-idx1-ubyte"].gz_bytes)
    assert (dest_with_images / "t10k-labels-idx1-ubyte.gz").is_file()


def test_should_stop_cancels_without_writing_anything(mirror, dest_with_images):
    progress = Transfers(stop_after=2)
    with pytest.raises(DownloadCancelled, match="train-labels-idx1-ubyte.gz"):
        download_mnist(dest_with_images, mirrors=[mirror.url("good")], progress=progress)
    assert len(progress.calls) == 2
    assert_no_leftovers(dest_with_images, {f"{name}.gz" for name in IMAGES})


def test_present_files_are_not_downloaded_again(mirror, mnist_dir, tmp_path):
    folder = tmp_path / "full"
    folder.mkdir()
    for name in IMAGES + LABELS[:1]:
        (folder / f"{name}.gz").symlink_to(mnist_dir / f"{name}.gz")
    (folder / LABELS[1]).write_bytes(gzip.decompress((mnist_dir / f"{LABELS[1]}.gz").read_bytes()))  # raw
    assert download_mnist(folder, mirrors=[mirror.url("good")]) == []
    assert mirror.requests == []


def test_official_gzip_md5_is_accepted_without_decompressing(
    mirror, dest_with_images, mnist_dir, monkeypatch
):
    """Pretend the shared labels files are the official .gz; the content check must then be skipped."""
    for name in LABELS:
        gz_md5 = hashlib.md5((mnist_dir / f"{name}.gz").read_bytes()).hexdigest()
        unreachable_content = dataclasses.replace(data.MNIST_FILES[name], gz_md5=gz_md5, raw_sha256="0" * 64)
        monkeypatch.setitem(data.MNIST_FILES, name, unreachable_content)
    assert len(download_mnist(dest_with_images, mirrors=[mirror.url("good")])) == 2
    # Without the gzip MD5 match the same bytes must fail on the content checksum.
    for path in dest_with_images.glob("*labels*"):
        path.unlink()
    monkeypatch.setitem(
        data.MNIST_FILES, LABELS[0], dataclasses.replace(data.MNIST_FILES[LABELS[0]], gz_md5="0" * 32)
    )
    with pytest.raises(MissingDataError, match="checksum mismatch"):
        download_mnist(dest_with_images, mirrors=[mirror.url("good")])


def test_load_mnist_without_download_never_contacts_a_mirror(mirror, tmp_path):
    with pytest.raises(MissingDataError, match="digit-distill data --download"):
        load_mnist(tmp_path / "empty", mirrors=[mirror.url("good")])
    assert mirror.requests == []


def test_load_mnist_downloads_everything_into_an_empty_folder(mirror, mnist, tmp_path):
    folder = tmp_path / "new" / "mnist"  # does not exist yet
    progress = Transfers()
    loaded = load_mnist(
        folder, download=True, progress=progress, mirrors=[mirror.url("missing"), mirror.url("good")]
    )
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{name}.gz" for name in data.MNIST_FILES)
    assert {e[0] for e in progress.calls} == {f"{name}.gz" for name in data.MNIST_FILES}
    assert torch.equal(loaded.train_labels, mnist.train_labels)
    assert torch.equal(loaded.test_images, mnist.test_images)
    requests = len(mirror.requests)
    assert load_mnist(folder, download=True, mirrors=[mirror.url("good")]) is loaded
    assert len(mirror.requests) == requests  # nothing fetched the second time


def test_data_command_downloads_with_text_progress(mirror, dest_with_images, capsys):
    assert (
        run_command(
            ["data", "--data-dir", str(dest_with_images), "--download", "--mirror", mirror.url("good")]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "downloaded 2 file(s)" in captured.out
    assert "60000 training and 10000 test images" in captured.out
    assert "t10k-labels-idx1-ubyte.gz: " in captured.err and "(100%)\n" in captured.err
