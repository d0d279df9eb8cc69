"""core.data: loading the genuine files, rejecting damaged ones, resolving the folder, subsets, the CLI."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import pytest
import torch

from core import data
from core.data import DataError, MissingDataError, load_mnist, read_idx
from tests.conftest import run_command

TRAIN_HISTOGRAM = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_HISTOGRAM = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
NAMES = list(data.MNIST_FILES)


def raw(mnist_dir: Path, name: str) -> bytes:
    return gzip.decompress((mnist_dir / f"{name}.gz").read_bytes())


def make_folder(mnist_dir: Path, folder: Path, replace: dict[str, bytes]) -> Path:
    """A folder linking to the genuine files, except ``replace``: file name (with or without .gz) -> bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    replaced = {name.removesuffix(".gz") for name in replace}
    for name in NAMES:
        if name not in replaced:
            (folder / f"{name}.gz").symlink_to(mnist_dir / f"{name}.gz")
    for filename, content in replace.items():
        (folder / filename).write_bytes(content)
    return folder


def with_header(content: bytes, fmt: str, *values: int) -> bytes:
    head = struct.pack(fmt, *values)
    return head + content[len(head) :]


# --- the genuine files -----------------------------------------------------------------------------------


def test_genuine_files_load_with_shapes_dtypes_and_label_histogram(mnist, mnist_dir):
    assert mnist.train_images.shape == (60000, 1, 28, 28)
    assert mnist.test_images.shape == (10000, 1, 28, 28)
    assert mnist.train_images.dtype == torch.float32 and mnist.test_images.dtype == torch.float32
    assert mnist.train_labels.dtype == torch.int64 and mnist.test_labels.dtype == torch.int64
    assert mnist.train_labels.shape == (60000,) and mnist.test_labels.shape == (10000,)
    assert float(mnist.train_images.min()) == 0.0 and float(mnist.train_images.max()) == 1.0
    assert torch.bincount(mnist.train_labels, minlength=10).tolist() == TRAIN_HISTOGRAM
    assert torch.bincount(mnist.test_labels, minlength=10).tolist() == TEST_HISTOGRAM
    assert mnist.train_labels[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first training digits
    # Pixel values are the raw bytes / 255, in IDX order.
    first = raw(mnist_dir, "t10k-images-idx3-ubyte")[16 : 16 + 784]
    assert torch.equal(mnist.test_images[0].flatten(), torch.tensor(list(first), dtype=torch.float32) / 255)
    assert mnist.data_dir == mnist_dir


def test_second_load_of_same_folder_returns_the_cached_object(mnist, mnist_dir):
    assert load_mnist(mnist_dir) is mnist  # how much faster that is: python bench/data_load.py


def test_raw_files_are_accepted_and_a_changed_folder_is_reloaded(mnist, mnist_dir, tmp_path):
    folder = make_folder(mnist_dir, tmp_path / "mixed", {})
    first = load_mnist(folder)
    assert first is not mnist and torch.equal(first.test_labels, mnist.test_labels)
    # Adding the uncompressed labels changes which files are used: the cache must notice and reload.
    labels = raw(mnist_dir, "t10k-labels-idx1-ubyte")
    (folder / "t10k-labels-idx1-ubyte").write_bytes(labels)
    assert data.find_mnist_files(folder)["t10k-labels-idx1-ubyte"] == folder / "t10k-labels-idx1-ubyte"
    second = load_mnist(folder)
    assert second is not first
    assert torch.equal(second.test_labels, mnist.test_labels)


def test_a_new_folder_is_loaded_in_full_not_served_from_the_cache(mnist, mnist_dir, tmp_path):
    folder = make_folder(
        mnist_dir, tmp_path / "fresh", {}
    )  # its time against a bare gunzip: bench/data_load.py
    fresh = load_mnist(folder)
    assert fresh is not mnist and fresh.data_dir == folder
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(getattr(fresh, name), getattr(mnist, name)), name


# --- damaged and wrong files -------------------------------------------------------------------------------


def corruptions(mnist_dir: Path) -> dict[str, tuple[str, bytes, str]]:
    """Case -> (file name written, its bytes, expected words in the message)."""
    labels = raw(mnist_dir, "train-labels-idx1-ubyte")
    labels_gz = (mnist_dir / "train-labels-idx1-ubyte.gz").read_bytes()
    test_labels = raw(mnist_dir, "t10k-labels-idx1-ubyte")
    test_images = raw(mnist_dir, "t10k-images-idx3-ubyte")
    flipped = bytearray(labels)
    flipped[1000] = (flipped[1000] + 1) % 10
    bad_crc = bytearray(labels_gz)
    bad_crc[-8] ^= 0xFF  # the CRC-32 of the content, in the gzip trailer
    bad_method = bytearray(labels_gz)
    bad_method[2] = 7  # gzip only knows method 8 (deflate)
    name = "train-labels-idx1-ubyte"
    return {
        "truncated gzip": (f"{name}.gz", labels_gz[: len(labels_gz) // 2], "truncated"),
        "gzip CRC mismatch": (f"{name}.gz", bytes(bad_crc), "corrupt gzip data"),
        "bad gzip header": (f"{name}.gz", bytes(bad_method), "corrupt gzip data"),
        "truncated raw": (name, labels[:30000], "expected exactly 60008"),
        "padded raw": (name, labels + b"\0" * 10, "expected exactly 60008"),
        "wrong magic": (name, with_header(labels, ">I", 2052), "magic 2052"),
        "images file where labels expected": (name, test_images, "found magic 2051 (an IDX images file)"),
        "test labels where train labels expected": (name, test_labels, "holds 10000 labels, expected 60000"),
        "checksum mismatch": (name, bytes(flipped), "checksum mismatch"),
        "garbage raw": (name, os.urandom(5000), "wrong file"),
        "garbage named .gz": (f"{name}.gz", b"PK\x03\x04" + os.urandom(5000), "not gzip data"),
        "gzip of too much": (f"{name}.gz", gzip.compress(labels + b"\0" * 5000), "more than the expected"),
        "empty": (name, b"", "too short"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "truncated gzip",
        "gzip CRC mismatch",
        "bad gzip header",
        "truncated raw",
        "padded raw",
        "wrong magic",
        "images file where labels expected",
        "test labels where train labels expected",
        "checksum mismatch",
        "garbage raw",
        "garbage named .gz",
        "gzip of too much",
        "empty",
    ],
)
def test_damaged_file_raises_data_error_naming_file_and_fault(mnist_dir, tmp_path, case):
    filename, content, words = corruptions(mnist_dir)[case]
    path = tmp_path / filename
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_idx(path, "train-labels-idx1-ubyte")
    assert str(path) in str(info.value) and words in str(info.value)
    assert info.value.path == path


def test_wrong_image_size_is_reported(mnist_dir, tmp_path):
    images = raw(mnist_dir, "t10k-images-idx3-ubyte")
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(with_header(images, ">IIII", 2051, 10000, 32, 28))
    with pytest.raises(DataError, match="32x28, expected 28x28"):
        read_idx(path, "t10k-images-idx3-ubyte")


def test_load_mnist_reports_truncated_image_file(mnist_dir, tmp_path):
    images_gz = (mnist_dir / "train-images-idx3-ubyte.gz").read_bytes()
    folder = make_folder(mnist_dir, tmp_path / "bad", {"train-images-idx3-ubyte.gz": images_gz[:100_000]})
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: the gzip data is truncated"):
        load_mnist(folder)


def test_load_mnist_reports_swapped_train_and_test_images(mnist_dir, tmp_path):
    swapped = {
        "train-images-idx3-ubyte.gz": (mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes(),
        "t10k-images-idx3-ubyte.gz": (mnist_dir / "train-images-idx3-ubyte.gz").read_bytes(),
    }
    folder = make_folder(mnist_dir, tmp_path / "swapped", swapped)
    with pytest.raises(DataError) as info:
        load_mnist(folder)
    assert "train-images-idx3-ubyte.gz: holds 10000 images, expected 60000" in str(info.value)
    assert not isinstance(info.value, MissingDataError)


# --- missing files -----------------------------------------------------------------------------------------


def test_missing_files_raise_with_instructions(tmp_path):
    with pytest.raises(MissingDataError) as info:
        load_mnist(tmp_path / "empty")
    message = str(info.value)
    for name in NAMES:
        assert f"{name}.gz" in message
    for hint in (
        str(tmp_path / "empty"),
        "--data-dir",
        "DIGIT_DISTILL_DATA",
        "digit-distill data --download",
    ):
        assert hint in message


def test_one_missing_file_is_named(mnist_dir, tmp_path):
    folder = make_folder(mnist_dir, tmp_path / "partial", {})
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        MissingDataError, match=r"missing in .*partial \(given with --data-dir\): t10k-labels"
    ):
        load_mnist(folder)


# --- where the data comes from -----------------------------------------------------------------------------


def test_resolution_order_explicit_then_env_then_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("DIGIT_DISTILL_DATA", str(tmp_path / "env"))
    assert data.locate_data(tmp_path / "arg") == data.DataLocation(tmp_path / "arg", "argument")
    assert data.resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"
    assert data.locate_data() == data.DataLocation(tmp_path / "env", "environment")
    monkeypatch.setenv("DIGIT_DISTILL_DATA", "")  # empty counts as unset
    assert data.locate_data() == data.DataLocation(tmp_path / "xdg" / "digit-distill" / "mnist", "cache")
    monkeypatch.delenv("DIGIT_DISTILL_DATA")
    assert data.resolve_data_dir() == tmp_path / "xdg" / "digit-distill" / "mnist"


def test_describe_says_where_the_folder_came_from(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGIT_DISTILL_DATA", str(tmp_path / "env"))
    assert data.locate_data().describe() == f"{tmp_path / 'env'} (from DIGIT_DISTILL_DATA)"
    assert data.locate_data(tmp_path).describe() == f"{tmp_path} (given with --data-dir)"
    monkeypatch.delenv("DIGIT_DISTILL_DATA")
    assert data.locate_data().describe().endswith("(the user cache folder)")


def test_user_folders_follow_the_platform_convention(tmp_path, monkeypatch):
    """MNIST, runs, known_hosts and settings all come from core.userdirs (platformdirs), XDG honoured."""
    from core import userdirs
    from core.runs import default_runs_root

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "DIGIT_DISTILL_RUNS"):
        monkeypatch.delenv(name, raising=False)
    assert data.default_data_dir() == home / ".cache" / "digit-distill" / "mnist"
    assert default_runs_root() == home / ".local" / "share" / "digit-distill" / "runs"
    assert userdirs.known_hosts_file() == home / ".local" / "share" / "digit-distill" / "known_hosts"
    assert userdirs.settings_file() == home / ".config" / "digit-distill" / "settings.ini"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec says to ignore relative paths
    assert data.default_data_dir() == home / ".cache" / "digit-distill" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_data_dir() == tmp_path / "xdg" / "digit-distill" / "mnist"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert default_runs_root() == tmp_path / "share" / "digit-distill" / "runs"
    monkeypatch.setenv("DIGIT_DISTILL_RUNS", str(tmp_path / "mine"))
    assert default_runs_root() == tmp_path / "mine"


def test_load_uses_env_folder_when_no_argument(mnist, mnist_dir, monkeypatch):
    monkeypatch.setenv("DIGIT_DISTILL_DATA", str(mnist_dir))
    assert load_mnist() is mnist


# --- subsets -----------------------------------------------------------------------------------------------


def numbered_dataset(n_train: int = 50, n_test: int = 20) -> data.MNIST:
    """Image i is filled with the value i, label i % 10: a subset can be checked sample by sample."""

    def images(n):
        return torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 28, 28).clone()

    return data.MNIST(images(n_train), torch.arange(n_train) % 10, images(n_test), torch.arange(n_test) % 10)


def test_subset_is_deterministic_and_keeps_images_with_their_labels():
    full = numbered_dataset()
    a, b, other = full.subset(10, 5, seed=3), full.subset(10, 5, seed=3), full.subset(10, 5, seed=4)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    assert not torch.equal(a.train_images, other.train_images)
    assert a.train_images.shape == (10, 1, 28, 28) and a.test_images.shape == (5, 1, 28, 28)
    for images, labels in ((a.train_images, a.train_labels), (a.test_images, a.test_labels)):
        index = images[:, 0, 0, 0].long()
        assert torch.equal(labels, index % 10)
        assert len(set(index.tolist())) == len(index)  # no sample twice
        assert torch.all(index[1:] > index[:-1])  # original order kept


def test_subset_rejects_impossible_sizes():
    full = numbered_dataset()
    with pytest.raises(ValueError, match="n_train must be between 0 and 50"):
        full.subset(51, 5)
    with pytest.raises(ValueError, match="n_test"):
        full.subset(5, -1)


def test_subset_of_real_data(mnist):
    small = mnist.subset(1000, 200)
    assert small.train_images.shape == (1000, 1, 28, 28) and small.test_labels.shape == (200,)
    assert small.train_images.dtype == torch.float32 and small.train_labels.dtype == torch.int64
    assert set(small.train_labels.tolist()) == set(range(10))
    assert small.data_dir == mnist.data_dir


# --- the `digit-distill data` command ----------------------------------------------------------------------


def test_data_command_shows_folder_and_validates(mnist, mnist_dir, capsys):
    assert run_command(["data", "--data-dir", str(mnist_dir)]) == 0
    out = capsys.readouterr().out
    assert f"{mnist_dir} (given with --data-dir)" in out
    assert "train-images-idx3-ubyte.gz" in out
    assert "60000 training and 10000 test images" in out


def test_data_command_on_empty_folder_explains_how_to_get_the_files(tmp_path, capsys):
    with pytest.raises(MissingDataError, match="--download"):
        run_command(["data", "--data-dir", str(tmp_path)])
    assert "missing" in capsys.readouterr().out


def test_validation_split_is_the_end_of_the_training_set(mnist):
    split = mnist.hold_out_validation(5000)
    assert split.validation == {"source": "training set", "first": 55000, "count": 5000}
    assert len(split.train_labels) == 55000 and len(split.val_labels) == 5000
    assert torch.equal(split.val_images, mnist.train_images[55000:])
    assert torch.equal(split.train_labels, mnist.train_labels[:55000])
    assert split.test_images is mnist.test_images
    assert split.subset(100, 10).val_labels is split.val_labels  # a subset keeps the validation split whole
    with pytest.raises(ValueError, match="already has a validation split"):
        split.hold_out_validation(10)
    with pytest.raises(ValueError, match="between 1 and 59999"):
        mnist.hold_out_validation(60000)
