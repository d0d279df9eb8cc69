"""The board emulator's .om container (test double): a real 256-byte OM header around a JSON payload.

Layout (ATLAS.md section 4): little-endian header with magic ``IMOD`` (u32 0x444F4D49), headsize 256, version,
``length`` = payload bytes after the header, model name, platform version; then a partition table with one
MODEL_DEF entry whose data is JSON: the inputs/outputs (name, dims, dtype), the soc_version the model was built
for and the ONNX model itself (base64), which the stand-in pyACL runs with onnxruntime.
This file is copied into the emulator's toolkit tree and imported by the stand-in ``atc`` and ``acl``.
"""

import base64
import json
import struct

MAGIC = 0x444F4D49
HEADER_SIZE = 256
VERSION_V2 = 0x20000000
MODEL_DEF = 0


class OmFormatError(ValueError):
    """The file is not a valid .om (bad magic, wrong length or unreadable payload)."""


def build_om(meta, onnx_bytes, name, platform_version):
    """Return the bytes of an emulator .om holding ``meta`` (a dict) and the ONNX model."""
    payload = dict(meta)
    payload["onnx"] = base64.b64encode(onnx_bytes).decode("ascii")
    data = json.dumps(payload).encode("utf-8")
    body = struct.pack("<I", 1) + struct.pack("<III", MODEL_DEF, 0, len(data)) + data
    header = bytearray(HEADER_SIZE)
    struct.pack_into("<III", header, 0, MAGIC, HEADER_SIZE, VERSION_V2)
    struct.pack_into("<I", header, 76, len(body))
    header[84 : 84 + 31] = name.encode("utf-8")[:31].ljust(31, b"\0")
    struct.pack_into("<I", header, 156, 1)
    header[160 : 160 + 19] = platform_version.encode("ascii")[:19].ljust(19, b"\0")
    return bytes(header) + body


def read_om(data):
    """Parse emulator .om bytes; return ``(meta, onnx_bytes)`` or raise :class:`OmFormatError`."""
    if len(data) < HEADER_SIZE + 4:
        raise OmFormatError("file shorter than an OM header")
    magic, headsize, _version = struct.unpack_from("<III", data, 0)
    if magic != MAGIC or headsize != HEADER_SIZE:
        raise OmFormatError("bad OM magic or header size")
    (length,) = struct.unpack_from("<I", data, 76)
    if length != len(data) - HEADER_SIZE:
        raise OmFormatError(f"OM length field {length} != payload size {len(data) - HEADER_SIZE}")
    (count,) = struct.unpack_from("<I", data, HEADER_SIZE)
    table = HEADER_SIZE + 4
    start = table + 12 * count
    for i in range(count):
        kind, offset, size = struct.unpack_from("<III", data, table + 12 * i)
        if kind == MODEL_DEF:
            try:
                meta = json.loads(data[start + offset : start + offset + size].decode("utf-8"))
                return meta, base64.b64decode(meta.pop("onnx"))
            except (ValueError, KeyError) as exc:
                raise OmFormatError(f"unreadable model payload: {exc}") from exc
    raise OmFormatError("no MODEL_DEF partition")
