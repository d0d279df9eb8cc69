"""Property-based tests: every parser and loader, fed damaged and hostile input, ends in a typed error or a right answer.

Each generated input goes through ``tests.reliability.check``: the call must return a correct result or raise the
loader's own error type within its time limit; any other exception (a crash) or a hang fails the test and is
counted. ``HYPOTHESIS_PROFILE=long`` runs many more examples (profiles in tests/conftest.py). The counts feed
``docs/RELIABILITY.md`` (``scripts/make_reliability.py``).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from core import strokes as strokes_module
from core.bundled import bundled_model
from core.data import DataError, read_idx
from core.inference import InvalidModelError, OnnxClassifier
from core.preprocess import MAX_PIXELS, EmptyImageError, ImageReadError, load_image, to_mnist
from core.sanity import SanityReport, check_model
from core.strokes import DrawnSample, StrokesFormatError, load_drawn, render_strokes
from tests import reliability
from tests.conftest import MNIST_DIR

# ------------------------------------------------------------------------------------------------ IDX files
IDX = "IDX files (MNIST)"
reliability.describe(
    IDX, "the file's validated content when intact, else DataError naming the file and the fault"
)

LABELS, IMAGES = "t10k-labels-idx1-ubyte", "t10k-images-idx3-ubyte"


@pytest.fixture(scope="module")
def genuine():
    """The intact content of the two test-set files."""
    return {name: read_idx(MNIST_DIR / f"{name}.gz", name) for name in (LABELS, IMAGES)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("inputs")


#: 64 MB of zeros in 64 kB of gzip: must be refused after decompressing at most the expected length.
GZIP_BOMB = gzip.compress(b"\0" * (64 << 20), compresslevel=9)

MUTATIONS = ["none", "truncate", "flip", "magic", "count", "dims", "append", "random", "empty"]
ENCODINGS = [
    "raw",
    "gzip",
    "gzip-two-members",
    "gzip-truncated",
    "gzip-bomb",
    "gzip-corrupt",
    "not-gzip-but-.gz",
]


@given(
    name=st.sampled_from([LABELS, LABELS, LABELS, IMAGES]),
    mutation=st.sampled_from(MUTATIONS),
    encoding=st.sampled_from(ENCODINGS),
    where=st.floats(0, 1),
    value=st.integers(0, 2**32 - 1),
)
def test_idx_reader(genuine, folder, name, mutation, encoding, where, value):
    content = bytearray(genuine[name])
    at = min(int(where * len(content)), len(content) - 1)
    if mutation == "truncate":
        del content[at:]
    elif mutation == "flip":
        content[at] ^= value % 255 + 1  # always a change
    elif mutation == "magic":
        content[0:4] = (value if value not in (2049, 2051) else 7).to_bytes(4, "big")
    elif mutation == "count":
        content[4:8] = (value if value != 10000 else 60000).to_bytes(4, "big")
    elif mutation == "dims":
        assume(name == IMAGES)
        content[8:12] = (value if value != 28 else 29).to_bytes(4, "big")
    elif mutation == "append":
        content += value.to_bytes(4, "big")[: value % 4 + 1]
    elif mutation == "random":
        content = bytearray(np.random.default_rng(value).bytes(at))
    elif mutation == "empty":
        content = bytearray()
    data = bytes(content)
    path = folder / name
    if encoding == "gzip":
        data = gzip.compress(data, compresslevel=1)
    elif encoding == "gzip-two-members":
        data = gzip.compress(data[:at], compresslevel=1) + gzip.compress(data[at:], compresslevel=1)
    elif encoding == "gzip-truncated":
        data = gzip.compress(data, compresslevel=1)
        data = data[: int(where * (len(data) - 1))]
    elif encoding == "gzip-bomb":
        data = GZIP_BOMB
    elif encoding == "gzip-corrupt":
        data = bytearray(gzip.compress(data, compresslevel=1))
        data[min(len(data) - 1, 10 + int(where * (len(data) - 11)))] ^= 0xFF
        data = bytes(data)
    if encoding != "raw":
        path = folder / f"{name}.gz"
    for stale in (folder / name, folder / f"{name}.gz"):
        stale.unlink(missing_ok=True)
    path.write_bytes(data)

    result = reliability.check(IDX, lambda: read_idx(path, name), (DataError,))
    intact = mutation == "none" and encoding in ("raw", "gzip", "gzip-two-members")
    if intact:
        assert result == genuine[name]
    elif encoding == "gzip-corrupt" and not isinstance(result, DataError):
        assert result == genuine[name]  # the flipped byte was in the gzip header's unchecked fields
    else:
        assert isinstance(result, DataError), (mutation, encoding)
        assert str(path) in str(result)


def test_idx_reader_refuses_a_fifo_without_blocking(folder):
    path = folder / f"{LABELS}.gz"
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    try:
        error = reliability.check(IDX, lambda: read_idx(path, LABELS), (DataError,), timeout=10)
    finally:
        path.unlink()
    assert "not a regular file" in str(error)


# ------------------------------------------------------------------------------------------------ images
IMAGE_FILES = "image files (predict, Draw tab's Open image)"
reliability.describe(
    IMAGE_FILES,
    "a (28, 28) float32 input in [0, 1], or EmptyImageError, or ImageReadError naming the file and the fault",
)

#: Modes each format can store (PIL refuses the others).
FORMATS = {
    "PNG": ["1", "L", "P", "RGB", "RGBA", "LA", "I", "I;16"],
    "JPEG": ["L", "RGB", "CMYK"],
    "BMP": ["1", "L", "P", "RGB"],
    "TIFF": ["1", "L", "P", "RGB", "RGBA", "LA", "I", "I;16", "F", "CMYK"],
    "GIF": ["L", "P"],
    "WEBP": ["RGB", "RGBA"],
    "PPM": ["1", "L", "RGB"],
}
DAMAGE = ["none", "none", "truncate", "flip", "prefix", "empty", "random"]


def _pixels(mode: str, width: int, height: int, pattern: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    grey = np.full((height, width), 255, np.uint8)
    if pattern == "noise":
        grey = rng.integers(0, 256, (height, width), dtype=np.uint8)
    elif pattern == "bar":
        grey[
            height // 5 : height - height // 5 or 1, width // 2 - width // 8 : width // 2 + width // 8 + 1
        ] = 0
    image = Image.fromarray(grey, "L")
    if mode == "I;16":
        return Image.fromarray(grey.astype(np.uint16) * 257, "I;16")
    if mode == "F":
        return Image.fromarray(grey.astype(np.float32) / 255, "F")
    return image.convert(mode)


def damaged(data: bytes, damage: str, where: float, seed: int) -> bytes:
    """``data`` after ``damage`` at the share ``where`` of it: "truncate" there, "flip" that byte, "prefix" a PNG
    signature, "random" bytes as long as the part before it, "empty"; anything else ("none") leaves it whole."""
    data = bytearray(data)
    at = min(int(where * len(data)), len(data) - 1)
    if damage == "truncate":
        del data[at:]
    elif damage == "flip":
        data[at] ^= seed % 255 + 1
    elif damage == "prefix":
        data[:0] = b"\x89PNG\r\n\x1a\n"
    elif damage == "empty":
        data = bytearray()
    elif damage == "random":
        data = bytearray(np.random.default_rng(seed).bytes(at))
    return bytes(data)


@given(
    fmt=st.sampled_from(sorted(FORMATS)),
    mode_index=st.integers(0, 9),
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    pattern=st.sampled_from(["blank", "bar", "noise"]),
    damage=st.sampled_from(DAMAGE),
    where=st.floats(0, 1),
    seed=st.integers(0, 2**16),
)
def test_image_loader(folder, fmt, mode_index, width, height, pattern, damage, where, seed):
    mode = FORMATS[fmt][mode_index % len(FORMATS[fmt])]
    buffer = io.BytesIO()
    try:
        _pixels(mode, width, height, pattern, seed).save(buffer, fmt)
    except (OSError, ValueError, KeyError):
        assume(False)  # a combination PIL cannot write: not an input anyone has
    path = folder / f"image.{fmt.lower()}"
    path.write_bytes(damaged(buffer.getvalue(), damage, where, seed))

    def load_and_preprocess():
        image = load_image(path)
        assert image.dtype == np.uint8 and (image.ndim == 2 or image.shape[2:] == (4,)), image.shape
        return to_mnist(image)

    result = reliability.check(IMAGE_FILES, load_and_preprocess, (ImageReadError, EmptyImageError))
    if isinstance(result, ImageReadError):
        assert str(path) in str(result)
        assert damage != "none", result  # an intact image of any mode and size must load
    elif not isinstance(result, EmptyImageError):
        assert result.shape == (28, 28) and result.dtype == np.float32
        assert np.isfinite(result).all() and 0 <= result.min() and result.max() <= 1


def _png_header(width: int, height: int, bit_depth: int = 8, colour: int = 0) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.filterwarnings(
    "ignore::PIL.Image.DecompressionBombWarning"
)  # PIL's own notice, then our refusal
@given(width=st.integers(1, 2**31 - 1), height=st.integers(1, 2**31 - 1), depth=st.sampled_from([1, 8, 16]))
def test_huge_image_headers_are_refused_before_decoding(folder, width, height, depth):
    """Decompression bombs: a header claiming more than MAX_PIXELS is refused without decoding a pixel."""
    assume(width * height > MAX_PIXELS)
    path = folder / "bomb.png"
    path.write_bytes(_png_header(width, height, depth))
    error = reliability.check(IMAGE_FILES, lambda: load_image(path), (ImageReadError,))
    assert isinstance(error, ImageReadError) and "limit" in str(error) and str(path) in str(error)


def test_special_files_are_refused_without_blocking(folder):
    fifo = folder / "x.png"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    try:
        for path in (fifo, Path("/dev/zero"), folder):
            error = reliability.check(
                IMAGE_FILES, lambda p=path: load_image(p), (ImageReadError,), timeout=10
            )
            assert isinstance(error, ImageReadError) and str(path) in str(error)
    finally:
        fifo.unlink()


# ------------------------------------------------------------------------------------------ stroke files
STROKES = "stroke files (drawn-digits .npz)"
reliability.describe(
    STROKES, "the samples, each renderable, or StrokesFormatError naming the file and the fault"
)

STROKE_DAMAGE = [
    "none",
    "none",
    "drop-key",
    "extra-key",
    "offset-out-of-range",
    "offset-not-starting-at-0",
    "empty-stroke",
    "empty-sample",
    "nan-point",
    "inf-point",
    "label-out-of-range",
    "float-offsets",
    "string-labels",
    "points-3d",
    "writer-wrong-length",
    "object-array",
    "truncated",
    "random-bytes",
    "npy-not-npz",
    "zip-bomb",
]


@st.composite
def drawn_sets(draw):
    """A valid drawn-digits set: samples of 1-3 strokes of 1-8 points (any finite coordinates)."""
    n = draw(st.integers(0, 4))
    coordinate = st.floats(-1e6, 1e6, allow_nan=False, width=32)
    samples = [
        [
            np.array(draw(st.lists(st.tuples(coordinate, coordinate), min_size=1, max_size=8)), np.float32)
            for _ in range(draw(st.integers(1, 3)))
        ]
        for _ in range(n)
    ]
    labels = np.array([draw(st.integers(0, 9)) for _ in range(n)], np.uint8)
    return samples, labels


def _arrays(samples, labels) -> dict:
    strokes = [stroke for sample in samples for stroke in sample]
    points = np.concatenate(strokes) if strokes else np.zeros((0, 2), np.float32)
    return {
        "points": points.astype(np.float32),
        "stroke_offsets": np.cumsum([0] + [len(s) for s in strokes]).astype(np.int64),
        "sample_stroke_offsets": np.cumsum([0] + [len(s) for s in samples]).astype(np.int64),
        "labels": labels,
        "writer": np.array([f"w{i}" for i in range(len(labels))]),
    }


@given(data=drawn_sets(), damage=st.sampled_from(STROKE_DAMAGE), pick=st.integers(0, 2**16))
def test_strokes_loader(folder, data, damage, pick):
    samples, labels = data
    arrays = _arrays(samples, labels)
    path = folder / "strokes.npz"
    n_points, n_strokes = len(arrays["points"]), len(arrays["stroke_offsets"]) - 1
    if damage == "drop-key":
        del arrays[sorted(strokes_module._REQUIRED)[pick % 4]]
    elif damage == "extra-key":
        arrays["unexpected"] = np.arange(3)
    elif damage == "offset-out-of-range":
        key = ["stroke_offsets", "sample_stroke_offsets"][pick % 2]
        arrays[key] = arrays[key].copy()
        arrays[key][pick % len(arrays[key])] += [-(10**6), 1, 10**9][pick % 3]
    elif damage == "offset-not-starting-at-0":
        arrays["stroke_offsets"] = arrays["stroke_offsets"] + 1
    elif damage == "empty-stroke":
        assume(n_strokes > 0)
        arrays["stroke_offsets"] = np.insert(arrays["stroke_offsets"], 1, 0)
    elif damage == "empty-sample":
        assume(len(labels) > 0)
        arrays["sample_stroke_offsets"] = np.insert(arrays["sample_stroke_offsets"], 1, 0)
        arrays["labels"] = np.append(labels, 1).astype(np.uint8)
    elif damage in ("nan-point", "inf-point"):
        assume(n_points > 0)
        arrays["points"] = arrays["points"].copy()
        arrays["points"][pick % n_points, pick % 2] = np.nan if damage == "nan-point" else -np.inf
    elif damage == "label-out-of-range":
        assume(len(labels) > 0)
        arrays["labels"] = labels.astype(np.int64)
        arrays["labels"][pick % len(labels)] = [10, -1, 255][pick % 3]
    elif damage == "float-offsets":
        arrays["stroke_offsets"] = arrays["stroke_offsets"] + 0.5
    elif damage == "string-labels":
        arrays["labels"] = np.array([str(x) for x in labels] or ["x"])
    elif damage == "points-3d":
        arrays["points"] = np.zeros((n_points, 3), np.float32)
    elif damage == "writer-wrong-length":
        arrays["writer"] = np.array(["a"] * (len(labels) + 1))
    if damage == "object-array":
        arrays["labels"] = np.array([1, "x", None], dtype=object)
        _save_object_npz(path, arrays)
    elif damage == "truncated":
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        path.write_bytes(buffer.getvalue()[: pick % max(1, len(buffer.getvalue()))])
    elif damage == "random-bytes":
        path.write_bytes(np.random.default_rng(pick).bytes(pick % 2000))
    elif damage == "npy-not-npz":
        np.save(path.with_suffix(".npy"), arrays["points"])
        path.write_bytes(path.with_suffix(".npy").read_bytes())
    elif damage == "zip-bomb":
        strokes_module.MAX_NPZ_BYTES = 1 << 20
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays, padding=np.zeros(2 << 20, np.uint8))
        path.write_bytes(buffer.getvalue())
    else:
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    def load_and_render():
        loaded = load_drawn(path)
        for sample in loaded[:2]:
            image = render_strokes(sample.strokes)
            assert image.shape == (280, 280) and image.dtype == np.uint8
            try:
                to_mnist(image)
            except EmptyImageError:
                pass
        return loaded

    try:
        result = reliability.check(STROKES, load_and_render, (StrokesFormatError,))
    finally:
        strokes_module.MAX_NPZ_BYTES = _MAX_NPZ_BYTES
    if damage in ("none", "extra-key"):
        assert isinstance(result, list), result
        assert [s.label for s in result] == labels.tolist()
        assert all(isinstance(s, DrawnSample) for s in result)
        assert [len(s.strokes) for s in result] == [len(s) for s in samples]
    elif damage not in ("offset-out-of-range",):  # an out-of-range change can land on a consistent layout
        assert isinstance(result, StrokesFormatError), damage
    if isinstance(result, StrokesFormatError):
        assert str(path) in str(result)


_MAX_NPZ_BYTES = strokes_module.MAX_NPZ_BYTES


def _save_object_npz(path: Path, arrays: dict) -> None:
    """An .npz with a pickled object array (np.load must refuse it: allow_pickle=False)."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, value, allow_pickle=True)
            archive.writestr(f"{key}.npy", buffer.getvalue())


# ------------------------------------------------------------------------------------------------ ONNX files
ONNX_FILES = "ONNX model files"
reliability.describe(
    ONNX_FILES,
    "a classifier with a (batch, 1, 28, 28) float input and a (batch, 10) float output plus a sanity report, "
    "else InvalidModelError naming the file and the fault",
)
ELEM_TYPES = [
    TensorProto.FLOAT,
    TensorProto.DOUBLE,
    TensorProto.INT64,
    TensorProto.UINT8,
    TensorProto.FLOAT16,
]
DIM = st.one_of(st.none(), st.integers(0, 40), st.sampled_from([1, 10, 28, 784]))


@st.composite
def onnx_graphs(draw):
    """An ONNX model whose input and output signatures are drawn at random; the body fits when it can."""
    in_type, out_type = draw(st.sampled_from(ELEM_TYPES)), draw(st.sampled_from(ELEM_TYPES))
    in_shape = draw(st.one_of(st.just(["batch", 1, 28, 28]), st.lists(DIM, min_size=0, max_size=5)))
    out_shape = draw(st.one_of(st.just(["batch", 10]), st.lists(DIM, min_size=0, max_size=4)))
    body = draw(st.sampled_from(["linear", "identity", "nan", "constant"]))
    weights = np.random.default_rng(draw(st.integers(0, 1000))).normal(size=(784, 10)).astype(np.float32)
    if body in ("linear", "nan"):  # a linear layer; "nan": with a NaN bias, so every output is NaN
        bias = np.zeros(10, np.float32) if body == "linear" else np.full(10, np.nan, np.float32)
        nodes = [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "b"], ["logits"]),
        ]
        inits = [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")]
    elif body == "constant":
        nodes = [
            helper.make_node(
                "Constant", [], ["logits"], value=numpy_helper.from_array(np.ones((1, 10), np.float32))
            )
        ]
        inits = []
    else:
        nodes = [helper.make_node("Identity", ["input"], ["logits"])]
        inits = []
    graph = helper.make_graph(
        nodes,
        "fuzz",
        [helper.make_tensor_value_info("input", in_type, in_shape)],
        [helper.make_tensor_value_info("logits", out_type, out_shape)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    return model.SerializeToString()


ONNX_DAMAGE = ["none", "none", "truncate", "flip", "random", "empty"]


@given(
    data=st.one_of(onnx_graphs(), st.just(None)),
    damage=st.sampled_from(ONNX_DAMAGE),
    where=st.floats(0, 1),
    seed=st.integers(0, 2**16),
)
def test_onnx_loader(folder, data, damage, where, seed):
    if data is None:
        data = bundled_model("student").read_bytes()
    path = folder / "model.onnx"
    path.write_bytes(damaged(data, damage, where, seed))

    def load_and_check():
        classifier = OnnxClassifier(path)
        return classifier, check_model(classifier)

    result = reliability.check(ONNX_FILES, load_and_check, (InvalidModelError,))
    if isinstance(result, InvalidModelError):
        assert str(path) in str(result)
        return
    classifier, report = result
    assert isinstance(report, SanityReport)
    assert classifier.probabilities(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)
    if not report.ok:
        assert "model.onnx" in report.warning


# ------------------------------------------------------------------------------------------ run folders
RUN_FILES = "run folders (config.json, metrics.json, status.json)"
CHECKPOINTS = "checkpoint files"
reliability.describe(
    RUN_FILES,
    "a RunInfo with the documented types, or RunFormatError (JobError when resuming) naming the file; "
    "`digit-distill runs` lists the readable folders and skips the others",
)
reliability.describe(CHECKPOINTS, "the model rebuilt, or RunFormatError naming the file and the fault")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A complete run folder as the job runner writes it (config, metrics, status, checkpoint), and its files."""
    from core import runs
    from tests.fake_runs import complete_run

    folder = complete_run(tmp_path_factory.mktemp("runs"))
    return folder, {name: (folder / name).read_bytes() for name in (runs.CONFIG, runs.METRICS, runs.STATUS)}


def _paths(obj, prefix=()):
    """Every key path in a nested JSON object."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


JSON_DAMAGE = [
    "none",
    "delete",
    "delete",
    "replace",
    "replace",
    "replace",
    "newer",
    "top-level",
    "truncate",
    "flip",
    "non-utf8",
    "deep-nesting",
    "empty",
    "missing",
]


@given(
    which=st.sampled_from(["config.json", "metrics.json", "status.json"]),
    damage=st.sampled_from(JSON_DAMAGE),
    pick=st.integers(0, 2**16),
    value=json_values,
)
def test_run_folder_readers(good_run, which, damage, pick, value):
    import json

    from app.cli import main
    from core import jobs, runs

    folder, files = good_run
    for name, content in files.items():
        (folder / name).write_bytes(content)
    path = folder / which
    data = json.loads(files[which])
    raw = None
    if damage in ("delete", "replace"):
        keys = list(_paths(data))
        *parents, last = keys[pick % len(keys)]
        target = data
        for key in parents:
            target = target[key]
        if damage == "delete":
            del target[last]
        else:
            target[last] = value
    elif damage == "newer":
        data["format"] = "digit-distill-job/2" if which == "config.json" else value
    elif damage == "top-level":
        data = value
    elif damage == "truncate":
        raw = files[which][: pick % len(files[which])]
    elif damage == "flip":
        raw = bytearray(files[which])
        raw[pick % len(raw)] ^= pick % 255 + 1
        raw = bytes(raw)
    elif damage == "non-utf8":
        raw = b'{"role": "\xff\xfe"}'
    elif damage == "deep-nesting":
        raw = b"[" * 100_000 + b"]" * 100_000
    elif damage == "empty":
        raw = b""
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(raw if raw is not None else json.dumps(data).encode())

    def read():
        info = runs.read_run(folder)
        assert isinstance(info.role, str) and isinstance(info.preset, str) and isinstance(info.epochs, int)
        assert info.test_accuracy is None or isinstance(info.test_accuracy, float)
        assert isinstance(info.params, int) and info.status in runs.STATUSES
        assert isinstance(info.history, list) and all(isinstance(h, dict) for h in info.history)
        return info

    result = reliability.check(RUN_FILES, read, (runs.RunFormatError,))
    if damage == "none":
        assert result.status == "complete" and result.test_accuracy == 0.91 and result.epochs == 1
    elif damage in ("newer", "top-level", "deep-nesting", "non-utf8", "empty") and which == "config.json":
        assert isinstance(result, runs.RunFormatError)
    if isinstance(result, runs.RunFormatError):
        assert str(folder) in str(result)
    # The listing skips what it cannot read and never fails; resuming refuses a damaged config with JobError.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        listed = reliability.check(RUN_FILES, lambda: main(["runs", "--runs-dir", str(folder.parent)]), ())
    assert listed == 0
    out = out.getvalue()
    assert (folder.name in out) == (not isinstance(result, runs.RunFormatError))
    loaded = reliability.check(RUN_FILES, lambda: jobs.load_config(folder), (jobs.JobError,))
    if which == "config.json" and damage == "none":
        assert isinstance(loaded, jobs.JobConfig)


CHECKPOINT_DAMAGE = [
    "none",
    "delete",
    "replace",
    "newer",
    "foreign",
    "wrong-shape",
    "not-a-dict",
    "truncate",
    "flip",
    "random",
    "empty",
]


@given(damage=st.sampled_from(CHECKPOINT_DAMAGE), pick=st.integers(0, 2**16), value=json_values)
def test_checkpoint_readers(good_run, folder, damage, pick, value):
    import torch

    from core import runs

    run_folder, _ = good_run
    good = runs.read_checkpoint(run_folder)
    state = dict(good)
    path = folder / "checkpoint.pt"
    raw = None
    if damage == "delete":
        del state[sorted(state)[pick % len(state)]]
    elif damage == "replace":
        state[sorted(state)[pick % len(state)]] = value
    elif damage == "newer":
        state["format"] = "digit-distill-checkpoint/2"
    elif damage == "foreign":
        state["format"] = value
    elif damage == "wrong-shape":
        state["state_dict"] = {k: torch.zeros(pick % 5 + 1) for k in good["state_dict"]}
    elif damage == "not-a-dict":
        state = [value]
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    if damage == "truncate":
        raw = data[: pick % len(data)]
    elif damage == "flip":
        raw = bytearray(data)
        raw[pick % len(raw)] ^= pick % 255 + 1
        raw = bytes(raw)
    elif damage == "random":
        raw = np.random.default_rng(pick).bytes(pick % 5000)
    elif damage == "empty":
        raw = b""
    path.write_bytes(raw if raw is not None else data)

    result = reliability.check(CHECKPOINTS, lambda: runs.load_checkpoint(path), (runs.RunFormatError,))
    if damage == "none":
        model, meta = result
        assert meta["test_accuracy"] == 0.91 and isinstance(model, torch.nn.Module)
    elif damage in ("newer", "wrong-shape", "not-a-dict", "empty"):
        assert isinstance(result, runs.RunFormatError)
        if damage == "newer":
            assert "newer digit-distill" in str(result)
    if isinstance(result, runs.RunFormatError):
        assert str(path) in str(result)


def test_run_files_that_are_fifos_are_refused_without_blocking(good_run, folder):
    from core import runs

    run_folder, files = good_run
    for name, content in files.items():
        (run_folder / name).write_bytes(content)
    fifo = folder / "checkpoint.pt"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    metrics = run_folder / runs.METRICS
    metrics.unlink()
    os.mkfifo(metrics)
    try:
        error = reliability.check(CHECKPOINTS, lambda: runs.load_checkpoint(fifo), (runs.RunFormatError,), 10)
        assert isinstance(error, runs.RunFormatError) and "not a regular file" in str(error)
        error = reliability.check(RUN_FILES, lambda: runs.read_run(run_folder), (runs.RunFormatError,), 10)
        assert isinstance(error, runs.RunFormatError) and "not a regular file" in str(error)
    finally:
        fifo.unlink()
        metrics.unlink()
        metrics.write_bytes(files[runs.METRICS])
