"""The board emulator's .om container (test double): a real 256-byte OM header around a JSON payload.

Layout (ATLAS.md section 4): little-endian header with magic ``IMOD`` (u32 0x444F4D49), headsize 256, version,
model name, platform version, then a partition table with one MODEL_DEF entry whose data is JSON: the
inputs/outputs (name, dims, dtype), the soc_version the model was built for and the ONNX model itself (base64),
which the stand-in pyACL runs with onnxruntime.

Two header layouts, as GraphEngine reads them:

* ``current`` (ATC from 2023 on, the default): u64 ``model_length`` at offset 184 holds the payload size and the
  u32 ``length`` at 76 is 0; the partition table has 64-bit fields (u64 count, {u64 type, offset, size}).
* ``legacy``: ``length`` holds the payload size, ``model_length`` is 0; 32-bit table (u32 count, {u32 ...}).

The loader's rule (GE ModelParserBase): payload = ``model_length`` if non-zero, else ``length``; it must equal the
file size - 256 and the magic must be IMOD. This file is copied into the emulator's toolkit tree and imported by
the stand-in ``atc`` and ``acl``.
"""

import base64
import json
import struct

MAGIC = 0x444F4D49
HEADER_SIZE = 256
VERSION_V2 = 0x20000000
MODEL_DEF = 0
LAYOUTS = ("current", "legacy")


class OmFormatError(ValueError):
    """The file is not a valid .om (bad magic, wrong length or unreadable payload)."""


def build_om(meta, onnx_bytes, name, platform_version, layout="current"):
    """Return the bytes of an emulator .om holding ``meta`` (a dict) and the ONNX model."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    payload = dict(meta)
    payload["onnx"] = base64.b64encode(onnx_bytes).decode("ascii")
    data = json.dumps(payload).encode("utf-8")
    if layout == "current":
        body = struct.pack("<Q", 1) + struct.pack("<QQQ", MODEL_DEF, 0, len(data)) + data
    else:
        body = struct.pack("<I", 1) + struct.pack("<III", MODEL_DEF, 0, len(data)) + data
    header = bytearray(HEADER_SIZE)
    struct.pack_into("<III", header, 0, MAGIC, HEADER_SIZE, VERSION_V2)
    header[84 : 84 + 31] = name.encode("utf-8")[:31].ljust(31, b"\0")
    struct.pack_into("<I", header, 156, 1)  # model_num (v2 headers)
    header[160 : 160 + 19] = platform_version.encode("ascii")[:19].ljust(19, b"\0")
    if layout == "current":
        struct.pack_into("<I", header, 76, 0)
        struct.pack_into("<Q", header, 184, len(body))
    else:
        struct.pack_into("<I", header, 76, len(body))
    return bytes(header) + body


def payload_length(data):
    """The loader's rule: ``model_length`` if non-zero, else ``length``; raise if it does not fit the file."""
    if len(data) < HEADER_SIZE:
        raise OmFormatError("file shorter than an OM header")
    magic, _headsize, version = struct.unpack_from("<III", data, 0)
    if magic != MAGIC:
        raise OmFormatError("bad OM magic")
    shift = 0 if version >= VERSION_V2 else -4
    (length,) = struct.unpack_from("<I", data, 76)
    (model_length,) = struct.unpack_from("<Q", data, 184 + shift)
    payload = model_length or length
    if payload != len(data) - HEADER_SIZE:
        raise OmFormatError(f"OM payload length {payload} != file size - 256 = {len(data) - HEADER_SIZE}")
    return payload, bool(model_length)


def read_om(data):
    """Parse emulator .om bytes; return ``(meta, onnx_bytes)`` or raise :class:`OmFormatError`."""
    _payload, wide = payload_length(data)
    count_fmt, entry_fmt = ("<Q", "<QQQ") if wide else ("<I", "<III")
    count_size, entry_size = struct.calcsize(count_fmt), struct.calcsize(entry_fmt)
    try:
        (count,) = struct.unpack_from(count_fmt, data, HEADER_SIZE)
    except struct.error:
        raise OmFormatError("no partition table") from None
    table = HEADER_SIZE + count_size
    start = table + entry_size * count
    if start > len(data):
        raise OmFormatError("partition table larger than the file")
    for i in range(count):
        kind, offset, size = struct.unpack_from(entry_fmt, data, table + entry_size * i)
        if kind == MODEL_DEF:
            try:
                meta = json.loads(data[start + offset : start + offset + size].decode("utf-8"))
                return meta, base64.b64decode(meta.pop("onnx"))
            except (ValueError, KeyError) as exc:
                raise OmFormatError(f"unreadable model payload: {exc}") from exc
    raise OmFormatError("no MODEL_DEF partition")
