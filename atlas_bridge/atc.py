"""ATC (ONNX -> .om): the operator check, the command line, failures, the .om header.

All facts from ATLAS.md sections 1, 4 and 7: ``--framework=5``, ``--input_shape`` built from the ONNX graph's real
input name (read by :func:`core.inference.read_input`), ``--input_format=NCHW``; ATC appends ``.om`` (newer CANN may add ``_linux_aarch64``), so the result
is found by globbing ``<output>*.om``; errors are ``E10016``/``EZ3003``/``EC0010``-style codes (any
``E[A-Z0-9]{5}``) on stdout with ``Solution:`` lines. Before anything is uploaded the model is checked against
ATC's operator table (:mod:`core.atc_ops`, the one home of that table). A valid .om starts with a 256-byte header
whose payload length (``model_length`` if set, else ``length``) equals the file size - 256: GraphEngine's own rule.

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
from typing import TYPE_CHECKING, Any

from atlas_bridge.errors import ModelError, OmFileError
from atlas_bridge.text import inert
from core.atc_ops import EXPORT_OPSET, SOC_VERSIONS, OpCheck, check_onnx_ops

if TYPE_CHECKING:
    import onnx

__all__ = ["SOC_VERSIONS", "EXPORT_OPSET"]
OM_MAGIC = b"IMOD"
OM_HEADER_SIZE = 256
OM_VERSION_V2 = 0x20000000
SUCCESS_LINE = "ATC run success"
#: Error codes: ``E`` and five capitals or digits with at least one digit (``E10016``, ``EZ3003``, ``EC0010``),
#: then a colon; the digit keeps words such as ``ERROR:`` or ``EXPORT:`` out.
_CODE = re.compile(r"(?<![A-Za-z0-9])(E(?=[A-Z0-9]{0,4}[0-9])[A-Z0-9]{5})(?![A-Za-z0-9])[ \t]*:[ \t]*(.*)$")
_DETAIL = re.compile(r"^\s*(Solution|Possible Cause)\s*:\s*(.*)$")
#: Codes reported when the model's opset is newer than the ATC parses (both have been seen in the wild).
OPSET_TOO_NEW_CODES = ("E19010", "E16002")


def _load_onnx(path: str | Path) -> onnx.ModelProto:
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx raises many types for corrupt files
        raise ModelError(f"Cannot read ONNX model {path}: {exc}", "Choose a valid .onnx file") from exc


SKIP_OP_CHECK_HINT = "To try ATC anyway, skip the check (CLI: --skip-op-check; Deploy tab: \u201cSkip the ATC operator check\u201d)"


def require_atc_ops(path: str | Path, soc_version: str) -> OpCheck:
    """Check the ONNX file against ATC's operator table (:mod:`core.atc_ops`) before anything is uploaded.

    Raises :class:`ModelError` naming the first node ATC would refuse (its op and opset) and what to do.
    """
    check = check_onnx_ops(_load_onnx(path), soc_version)
    if not check.ok:
        raise ModelError(check.message(Path(path).name), SKIP_OP_CHECK_HINT)
    return check


def atc_command(
    model: str,
    output: str,
    soc_version: str,
    input_name: str,
    batch: int = 1,
    extra: dict[str, str] | None = None,
) -> str:
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
    """One error block of ATC's output: code (``E10016``, ``EZ3003``...), its text, ``Solution:`` and cause."""

    code: str
    text: str
    solution: str = ""
    cause: str = ""

    def to_dict(self) -> dict[str, Any]:  # noqa: D102
        return {"code": self.code, "text": self.text, "solution": self.solution, "cause": self.cause}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AtcMessage:  # noqa: D102
        return cls(
            str(data["code"]), str(data["text"]), str(data.get("solution", "")), str(data.get("cause", ""))
        )

    @property
    def known(self) -> KnownCode | None:
        """What this project knows about the code (``None`` for codes not in :data:`KNOWN_CODES`)."""
        return KNOWN_CODES.get(self.code)


def parse_atc_errors(lines: list[str]) -> list[AtcMessage]:
    """Every error code in ATC's console output with its text and the ``Solution:`` / ``Possible Cause:`` lines.

    The lines are made inert first (no control characters survive into a message); the same code with the same
    text printed twice counts once.
    """
    found: list[AtcMessage] = []
    for raw in lines:
        line = inert(str(raw))
        match = _CODE.search(line)
        if match:
            found.append(AtcMessage(match.group(1), match.group(2).strip()))
            continue
        detail = _DETAIL.match(line)
        if detail and found:
            last, value = found[-1], detail.group(2).strip()
            if detail.group(1) == "Solution" and not last.solution:
                found[-1] = AtcMessage(last.code, last.text, value, last.cause)
            elif detail.group(1) == "Possible Cause" and not last.cause:
                found[-1] = AtcMessage(last.code, last.text, last.solution, value)
    unique: dict[tuple[str, str], AtcMessage] = {}
    for msg in found:
        unique.setdefault((msg.code, msg.text), msg)
    return list(unique.values())


@dataclass(frozen=True)
class KnownCode:
    """What an ATC error code means and what to do about it."""

    meaning: str
    what_to_do: str


_OPSET_FIX = f"Export the model at ONNX opset {EXPORT_OPSET} (digit-distill export does), then deploy again"
_PYTHON_DEPS = (
    "ATC's Python dependencies are missing on the conversion machine (pip3 install decorator sympy ...)"
)
#: The codes real pipelines hit (ATLAS.md sections 1, 5 and 7).
KNOWN_CODES: dict[str, KnownCode] = {
    "E10001": KnownCode(
        "an argument value is invalid (also an invalid .om)", "Check the ATC arguments in the log"
    ),
    "E10003": KnownCode("an argument value is invalid (also 'Invalid om file')", "Convert the model again"),
    "E10004": KnownCode(
        "a required argument (--model/--output) is empty", "Report this: the bridge sets both"
    ),
    "E10007": KnownCode(
        "--framework is missing or not 0/1/3/5", "Report this: the bridge passes --framework=5"
    ),
    "E10009": KnownCode("several dynamic-shape options at once", "Use only one of the dynamic options"),
    "E10010": KnownCode("invalid --log level", "Use debug, info, warning, error or null"),
    "E10011": KnownCode("invalid input dims", "The input must be (N, 1, 28, 28) with N >= 1"),
    "E10016": KnownCode(
        "the --input_shape name is not a graph input",
        "The --input_shape name must be the ONNX graph input name (read from the model)",
    ),
    "E10018": KnownCode("a negative or zero dim in --input_shape", "Use a static batch >= 1"),
    "E10022": KnownCode("--output has no file name", "Report this: the bridge gives a file prefix"),
    "E10031": KnownCode("dynamic batch misuse", "Use a static batch"),
    "E10041": KnownCode(
        "the ONNX model could not be loaded",
        "The ONNX file could not be parsed: re-export it and check the upload",
    ),
    "E10054": KnownCode("--soc_version is empty", "Choose a soc_version (Ascend310 for the Atlas 200 DK)"),
    "E16002": KnownCode("the ONNX parser does not support this op at this opset", _OPSET_FIX),
    "E19010": KnownCode("no parser is registered for this op at this opset (opset too new)", _OPSET_FIX),
    "E19999": KnownCode(
        "ATC inner error without a specific message", "Run ATC with --log=info on the board for details"
    ),
    "EZ3003": KnownCode(
        "no kernel supports this operator",
        "Export the model with operators ATC supports (see core/atc_ops.py)",
    ),
    "E40000": KnownCode("TBE / Python import failure", _PYTHON_DEPS),
    "EC0010": KnownCode("TBE / Python import failure", _PYTHON_DEPS),
}


def opset_too_new(errors: list[AtcMessage]) -> bool:
    """True when ATC said the opset is too new (E19010 or E16002)."""
    return any(e.code in OPSET_TOO_NEW_CODES for e in errors)


def hint_for(errors: list[AtcMessage]) -> str:
    """A what-to-do sentence for the known codes among ``errors``."""
    return " ".join(dict.fromkeys(KNOWN_CODES[e.code].what_to_do for e in errors if e.code in KNOWN_CODES))


@dataclass(frozen=True)
class OmHeader:
    """The fields of a .om header (GraphEngine ``ModelFileHeader``) that identify and size-check it.

    ``payload`` is what the loader checks: ``model_length`` if it is non-zero (current ATC), else ``length``.
    ``model_num`` exists only in version >= 0x20000000 headers (``None`` before). With ``model_length`` set the
    partition table after the header has 64-bit fields, else 32-bit ones.
    """

    version: int
    length: int
    model_length: int
    name: str
    platform_version: str
    model_num: int | None
    is_unknown_model: bool

    @property
    def payload(self) -> int:  # noqa: D102
        return self.model_length or self.length

    @property
    def layout(self) -> str:
        """``"current"`` (``model_length`` set, ATC from 2023 on) or ``"legacy"`` (only ``length``)."""
        return "current" if self.model_length else "legacy"

    @property
    def partition_table_bits(self) -> int:  # noqa: D102
        return 64 if self.model_length else 32


def check_om_header(head: bytes, file_size: int, path: str = ".om") -> OmHeader:
    """Check the first 256 bytes of an .om the way GraphEngine's loader does (ModelParserBase::ParseModelContent).

    The magic must be ``IMOD`` and the payload length (u64 ``model_length`` if non-zero, else u32 ``length``)
    must equal ``file_size - 256``; anything else is what the board reports as 145006 / "Invalid om file".
    Raises :class:`OmFileError` naming the fault.
    """
    head = bytes(head)
    if file_size < OM_HEADER_SIZE or len(head) < OM_HEADER_SIZE:
        size = min(file_size, len(head)) if len(head) < OM_HEADER_SIZE else file_size
        raise OmFileError(
            f"{path} is {size} bytes, shorter than an OM header ({OM_HEADER_SIZE} bytes): truncated",
            "The conversion did not finish: convert again",
        )
    if head[:4] != OM_MAGIC:
        raise OmFileError(
            f"{path} does not start with the OM magic IMOD (found {inert(repr(head[:4]))})",
            "This is not an ATC model: convert again",
        )
    version, length = struct.unpack_from("<I", head, 8)[0], struct.unpack_from("<I", head, 76)[0]
    v2 = version >= OM_VERSION_V2
    shift = 0 if v2 else -4  # older headers have no model_num: everything after it sits 4 bytes earlier
    (model_length,) = struct.unpack_from("<Q", head, 184 + shift)
    payload = model_length or length
    if payload != file_size - OM_HEADER_SIZE:
        field = "model_length" if model_length else "length"
        raise OmFileError(
            f"{path} header says {payload} payload bytes ({field}) but the file holds {file_size - OM_HEADER_SIZE}: "
            "truncated or corrupt",
            "The file is truncated or corrupt: convert again",
        )
    name = head[84:116].split(b"\0", 1)[0].decode("utf-8", "replace")
    platform = head[160 + shift : 180 + shift].split(b"\0", 1)[0].decode("ascii", "replace")
    return OmHeader(
        version=version,
        length=length,
        model_length=model_length,
        name=inert(name),
        platform_version=inert(platform),
        model_num=struct.unpack_from("<I", head, 156)[0] if v2 else None,
        is_unknown_model=bool(head[193 + shift]),
    )
