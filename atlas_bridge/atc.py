"""ATC (ONNX -> .om): reading the ONNX inputs, building the command line, parsing failures, checking the .om.

All facts from ATLAS.md sections 1 and 4: ``--framework=5``, ``--input_shape`` built from the ONNX graph's real
input name, ``--input_format=NCHW``; ATC appends ``.om`` (newer CANN may add ``_linux_aarch64``), so the result
is found by globbing ``<output>*.om``; errors are ``E10016``/``EZ3003``/``EC0010``-style codes on stdout with
``Solution:`` lines; a valid .om starts with a 256-byte header with magic ``IMOD`` and ``length`` = file size - 256.

Batch size: the model is compiled for a static batch (default 1) and the runner loops over images, padding the
last batch when the batch is larger; dynamic batch (``--dynamic_batch_size``) is not used because it adds an
extra input and fixed gear sizes for no gain on single-image latency.
"""

from __future__ import annotations

import re
import shlex
import struct
from dataclasses import dataclass
from pathlib import Path

from atlas_bridge.errors import ModelError, OmFileError

SOC_VERSIONS = ("Ascend310", "Ascend310P3", "Ascend310B1", "Ascend310B4")
OM_MAGIC = b"IMOD"
OM_HEADER_SIZE = 256
MAX_OPSET = 13
SUCCESS_LINE = "ATC run success"
_CODE = re.compile(r"\b(E[0-9]{5}|E[A-Z][0-9A-Z]{4})\s*:\s*(.*)$")
_SOLUTION = re.compile(r"^\s*(Solution|Possible Cause)\s*:\s*(.*)$")


@dataclass(frozen=True)
class OnnxInput:
    """The model's (first) graph input: name, dims (``-1`` for a symbolic batch) and opset."""

    name: str
    dims: tuple[int, ...]
    opset: int


def read_onnx_input(path: str | Path) -> OnnxInput:
    """Read the graph input (excluding initializers) and the opset of an ONNX file.

    Raises :class:`ModelError` for unreadable files, several inputs, or an input that is not ``(N, 1, 28, 28)``.
    """
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx raises many types for corrupt files
        raise ModelError(f"Cannot read ONNX model {path}: {exc}", "Choose a valid .onnx file") from exc
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelError(f"{path} has {len(inputs)} inputs; a digit classifier has exactly one",
                         "Export the model with a single input (N, 1, 28, 28)")  # fmt: skip
    dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in inputs[0].type.tensor_type.shape.dim)
    if len(dims) != 4 or dims[1:] != (1, 28, 28):
        raise ModelError(f"{path} input {inputs[0].name!r} has shape {dims}, not (N, 1, 28, 28)",
                         "Export a model that takes (N, 1, 28, 28) float32 images")  # fmt: skip
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return OnnxInput(inputs[0].name, dims, opset)


def atc_command(model: str, output: str, soc_version: str, input_name: str, batch: int = 1,
                extra: dict[str, str] | None = None) -> str:  # fmt: skip
    """The ``atc`` command line, every argument shell-quoted (``--k=v`` form, the whole pair quoted)."""
    if soc_version not in SOC_VERSIONS:
        raise ValueError(f"soc_version must be one of {SOC_VERSIONS}, not {soc_version!r}")
    if batch < 1:
        raise ValueError("batch must be >= 1")
    args = {
        "model": model,
        "framework": "5",
        "output": output,
        "soc_version": soc_version,
        "input_shape": f"{input_name}:{batch},1,28,28",
        "input_format": "NCHW",
        "log": "error",
    }
    args.update(extra or {})
    return "atc " + " ".join(shlex.quote(f"--{k}={v}") for k, v in args.items())


@dataclass(frozen=True)
class AtcMessage:
    """One error block of ATC's output: code (``E10016``, ``EZ3003``...), its text and ``Solution:`` line."""

    code: str
    text: str
    solution: str = ""


def parse_atc_errors(lines: list[str]) -> list[AtcMessage]:
    """Extract the error codes with their text and Solution lines from ATC's console output."""
    found: list[AtcMessage] = []
    for line in lines:
        match = _CODE.search(line)
        if match:
            found.append(AtcMessage(match.group(1), match.group(2).strip()))
            continue
        sol = _SOLUTION.match(line)
        if sol and found and sol.group(1) == "Solution" and not found[-1].solution:
            last = found[-1]
            found[-1] = AtcMessage(last.code, last.text, sol.group(2).strip())
    unique: dict[tuple[str, str], AtcMessage] = {}
    for msg in found:
        unique.setdefault((msg.code, msg.text), msg)
    return list(unique.values())


ATC_HINTS = {
    "E10016": "The --input_shape name must be the ONNX graph input name (read from the model)",
    "E19010": f"Export the model at ONNX opset 11 (at most {MAX_OPSET}) for this CANN version",
    "E10041": "The ONNX file could not be parsed: re-export it and check the upload",
    "E40000": "ATC's Python dependencies are missing on the conversion machine (pip install decorator sympy ...)",
    "EC0010": "ATC's Python dependencies are missing on the conversion machine (pip install decorator sympy ...)",
    "E10054": "Choose a soc_version (Ascend310 for the Atlas 200 DK)",
}


def hint_for(errors: list[AtcMessage]) -> str:
    """A what-to-do sentence for known codes."""
    return " ".join(dict.fromkeys(ATC_HINTS[e.code] for e in errors if e.code in ATC_HINTS))


@dataclass(frozen=True)
class OmHeader:
    """Fields of a .om header that identify and size-check it."""

    version: int
    length: int
    name: str
    platform_version: str


def check_om_header(head: bytes, file_size: int, path: str = ".om") -> OmHeader:
    """Check the first 256 bytes of an .om: magic ``IMOD``, header size and ``length == file_size - 256``."""
    if len(head) < OM_HEADER_SIZE:
        raise OmFileError(f"{path} is {file_size} bytes, shorter than an OM header",
                          "The conversion did not finish: convert again")  # fmt: skip
    if head[:4] != OM_MAGIC:
        raise OmFileError(f"{path} does not start with the OM magic IMOD (found {head[:4]!r})",
                          "This is not an ATC model: convert again")  # fmt: skip
    (headsize,) = struct.unpack_from("<I", head, 4)
    (version,) = struct.unpack_from("<I", head, 8)
    (length,) = struct.unpack_from("<I", head, 76)
    if headsize != OM_HEADER_SIZE or length != file_size - OM_HEADER_SIZE:
        raise OmFileError(
            f"{path} header says {length} payload bytes but the file holds {file_size - OM_HEADER_SIZE}",
            "The file is truncated or corrupt: convert again",
        )
    name = head[84:116].split(b"\0", 1)[0].decode("utf-8", "replace")
    platform = head[160:180].split(b"\0", 1)[0].decode("ascii", "replace")
    return OmHeader(version, length, name, platform)
