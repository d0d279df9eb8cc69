"""Run an .om digit classifier on an Ascend board with pyACL: once over a file of images, or as a server.

This file is uploaded to the board and runs there with plain ``python3`` + numpy + ``acl`` (after
``. set_env.sh``). It must stay importable on old board Pythons (3.7): no walrus, no builtin generics.

Usage::

    python3 acl_runner.py --model model.om --inputs images.npy     # one run, one JSON line
    python3 acl_runner.py --model model.om --serve                 # load once, answer framed requests

Server mode (the board session): the model is loaded once; requests arrive on stdin and answers leave on stdout
as frames, logs go to stderr. A request is ``<4sBII`` (magic ``DDRQ``, op, request id, payload bytes) followed by
the payload: op 1 = classify (float32 ``(N, 1, 28, 28)`` pixels), 2 = ping, 3 = quit. An answer is ``<4sII``
(magic ``DDRS``, request id, JSON bytes) then the JSON. The first answer (id 0) says ``ready`` with the process'
``pid`` (the bridge ends a wedged runner by that PID) or why loading failed. End of stdin ends the server.

``images.npy`` holds float32 ``(N, 1, 28, 28)`` pixels in [0, 1]. The model's batch is read from the .om; images
are sent batch by batch (the last batch padded with zeros, padded rows dropped). The last stdout line is
``ACL_RUNNER_RESULT {json}`` with ``predictions``, ``probabilities``, ``times_ms`` (per executed batch:
host->device copy + execute + device->host copy) and ``batch``; on failure it is ``{"ok": false, "error": ...}``
and the exit status is 1. Every acquired resource is released in reverse order even after an error
(device memory, data buffers, datasets, model, description, stream, context, device, acl itself).

``execute_ms`` is the time around ``acl.mdl.execute`` alone (the NPU's share); ``times_ms`` adds the copies.
pyACL is recognised by its API (``acl.init``, ``acl.rt.set_device``, ``acl.mdl.load_from_file``): the unrelated
PyPI package named ``acl`` is reported as such, not used.

Both pyACL pointer APIs are supported: ``bytes_to_ptr``/``ptr_to_bytes`` (CANN >= 6) and
``numpy_to_ptr``/``ptr_to_numpy`` (older), chosen at run time.

One file on purpose: it is uploaded to the board and run there as it is.
"""

from __future__ import annotations  # annotations stay strings: builtin generics parse on the board's 3.7

import argparse
import json
import os
import struct
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import numpy as np

RESULT_MARKER = "ACL_RUNNER_RESULT "
REQUEST = struct.Struct("<4sBII")
RESPONSE = struct.Struct("<4sII")
REQUEST_MAGIC = b"DDRQ"
RESPONSE_MAGIC = b"DDRS"
OP_CLASSIFY, OP_PING, OP_QUIT = 1, 2, 3
IMAGE_BYTES = 28 * 28 * 4
ACL_API = ("init", "rt.set_device", "mdl.load_from_file")
ACL_SUCCESS = 0
ACL_MEM_MALLOC_NORMAL_ONLY = 2
ACL_MEMCPY_HOST_TO_DEVICE = 1
ACL_MEMCPY_DEVICE_TO_HOST = 2
ACL_MEMCPY_DEVICE_TO_DEVICE = 3
ACL_DEVICE = 0
ACL_FLOAT = 0
ACL_FLOAT16 = 1
NPY_FLOAT32 = 11
NPY_FLOAT16 = 23


class AclCallError(RuntimeError):
    """A pyACL call returned a non-zero status."""

    def __init__(self, call: str, ret: object) -> None:
        RuntimeError.__init__(self, f"{call} failed with ACL error {ret}")
        self.call = call
        self.ret = ret


class ForeignAclError(ImportError):
    """``import acl`` found a module that is not CANN's pyACL (e.g. the PyPI package named ``acl``)."""


def import_acl() -> Any:
    """Import CANN's pyACL, refusing a module named ``acl`` that lacks its API."""
    import acl

    missing: list[str] = []
    for dotted in ACL_API:
        obj: Any = acl
        for part in dotted.split("."):
            obj = getattr(obj, part, None)
        if not callable(obj):
            missing.append("acl." + dotted)
    if missing:
        where = getattr(acl, "__file__", None) or "unknown path"
        raise ForeignAclError(
            f"the module 'acl' at {where} is not CANN's pyACL (no {', '.join(missing)}): probably the unrelated "
            "PyPI package 'acl'"
        )
    return acl


def check(ret: int, call: str) -> None:
    """Raise :class:`AclCallError` unless ``ret`` is ACL_SUCCESS."""
    if ret != ACL_SUCCESS:
        raise AclCallError(call, ret)


def log(message: str) -> None:
    """Progress on stderr (the bridge streams it)."""
    sys.stderr.write(f"[acl_runner] {message}\n")
    sys.stderr.flush()


class Resources:
    """A stack of release functions, run in reverse order even when some of them fail."""

    def __init__(self) -> None:
        self._stack: list[tuple[str, Callable[..., object], tuple[object, ...]]] = []

    def push(self, name: str, release: Callable[..., object], *args: object) -> None:
        self._stack.append((name, release, args))

    def release_all(self) -> list[str]:
        failures: list[str] = []
        while self._stack:
            name, release, args = self._stack.pop()
            try:
                ret = release(*args)
                if isinstance(ret, int) and ret != ACL_SUCCESS:
                    failures.append(f"{name} -> {ret}")
            except Exception as exc:  # noqa: BLE001 - keep releasing the rest
                failures.append(f"{name} -> {exc}")
        return failures


class Pointers:
    """Host pointer helpers for either pyACL generation."""

    def __init__(self, acl: Any) -> None:
        self.acl = acl
        self.new_api = "bytes_to_ptr" in dir(acl.util)
        self._keep: list[object] = []

    @property
    def name(self) -> str:
        return "bytes_to_ptr" if self.new_api else "numpy_to_ptr"

    def from_array(self, array: np.ndarray) -> int:
        array = np.ascontiguousarray(array)
        if self.new_api:
            data = array.tobytes()
            self._keep = [data]  # the pointer is valid only while the bytes object lives
            return int(self.acl.util.bytes_to_ptr(data))
        self._keep = [array]
        return int(self.acl.util.numpy_to_ptr(array))

    def to_array(self, ptr: int, size: int, shape: list[int], dtype: type[np.floating[Any]]) -> np.ndarray:
        raw: np.ndarray
        if self.new_api:
            raw = np.frombuffer(self.acl.util.ptr_to_bytes(ptr, size), dtype)
        else:
            code = NPY_FLOAT16 if dtype == np.float16 else NPY_FLOAT32
            raw = np.array(self.acl.util.ptr_to_numpy(ptr, tuple(shape), code))
        out: np.ndarray = raw.reshape(shape).copy()
        return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e: np.ndarray = np.exp(z)
    probabilities: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return probabilities


class Model:
    """One loaded .om with its buffers: :meth:`open` once, :meth:`infer` many times, :meth:`close` once."""

    def __init__(self, model_path: str, device_id: int = 0) -> None:
        self.model_path = model_path
        self.device_id = device_id
        self.res = Resources()

    def open(self) -> Model:
        """Initialise pyACL, load the model, allocate the buffers and warm up (raises on any ACL failure)."""
        acl = self.acl = import_acl()
        res, device_id, model_path = self.res, self.device_id, self.model_path
        check(acl.init(), "acl.init")
        res.push("acl.finalize", acl.finalize)
        check(acl.rt.set_device(device_id), "acl.rt.set_device")
        res.push("acl.rt.reset_device", acl.rt.reset_device, device_id)
        context, ret = acl.rt.create_context(device_id)
        check(ret, "acl.rt.create_context")
        res.push("acl.rt.destroy_context", acl.rt.destroy_context, context)
        stream, ret = acl.rt.create_stream()
        check(ret, "acl.rt.create_stream")
        res.push("acl.rt.destroy_stream", acl.rt.destroy_stream, stream)
        run_mode, ret = acl.rt.get_run_mode()
        check(ret, "acl.rt.get_run_mode")
        self.run_mode = run_mode
        self.to_device = ACL_MEMCPY_DEVICE_TO_DEVICE if run_mode == ACL_DEVICE else ACL_MEMCPY_HOST_TO_DEVICE
        self.to_host = ACL_MEMCPY_DEVICE_TO_DEVICE if run_mode == ACL_DEVICE else ACL_MEMCPY_DEVICE_TO_HOST

        model_id, ret = acl.mdl.load_from_file(model_path)
        check(ret, f"acl.mdl.load_from_file({model_path})")
        res.push("acl.mdl.unload", acl.mdl.unload, model_id)
        self.model_id = model_id
        desc = acl.mdl.create_desc()
        if not desc:
            raise AclCallError("acl.mdl.create_desc", "null")
        res.push("acl.mdl.destroy_desc", acl.mdl.destroy_desc, desc)
        check(acl.mdl.get_desc(desc, model_id), "acl.mdl.get_desc")
        if acl.mdl.get_num_inputs(desc) != 1 or acl.mdl.get_num_outputs(desc) != 1:
            raise RuntimeError("the model must have exactly one input and one output")

        in_dims, ret = acl.mdl.get_input_dims(desc, 0)
        check(ret, "acl.mdl.get_input_dims")
        out_dims, ret = acl.mdl.get_output_dims(desc, 0)
        check(ret, "acl.mdl.get_output_dims")
        self.in_shape, self.out_shape = list(in_dims["dims"]), list(out_dims["dims"])
        self.batch = int(self.in_shape[0])
        if self.in_shape[1:] != [1, 28, 28]:
            raise RuntimeError(f"model input {self.in_shape} does not take (1, 28, 28) images")
        self.in_size = acl.mdl.get_input_size_by_index(desc, 0)
        self.out_size = acl.mdl.get_output_size_by_index(desc, 0)
        out_type = acl.mdl.get_output_data_type(desc, 0)
        out_dtype = {ACL_FLOAT: np.float32, ACL_FLOAT16: np.float16}.get(out_type)
        if out_dtype is None:
            raise RuntimeError(f"unsupported output data type {out_type}")
        self.out_dtype: type[np.floating[Any]] = out_dtype

        datasets: list[tuple[int, int]] = []
        for label, size in (("input", self.in_size), ("output", self.out_size)):
            buf, ret = acl.rt.malloc(size, ACL_MEM_MALLOC_NORMAL_ONLY)
            check(ret, f"acl.rt.malloc({label})")
            res.push(f"acl.rt.free({label})", acl.rt.free, buf)
            data_buffer = acl.create_data_buffer(buf, size)
            if not data_buffer:
                raise AclCallError(f"acl.create_data_buffer({label})", "null")
            res.push(f"acl.destroy_data_buffer({label})", acl.destroy_data_buffer, data_buffer)
            dataset = acl.mdl.create_dataset()
            if not dataset:
                raise AclCallError(f"acl.mdl.create_dataset({label})", "null")
            res.push(f"acl.mdl.destroy_dataset({label})", acl.mdl.destroy_dataset, dataset)
            _, ret = acl.mdl.add_dataset_buffer(dataset, data_buffer)
            check(ret, f"acl.mdl.add_dataset_buffer({label})")
            datasets.append((buf, dataset))
        (self.in_buf, self.in_ds), (self.out_buf, self.out_ds) = datasets
        self.host_out, ret = acl.rt.malloc_host(self.out_size)
        check(ret, "acl.rt.malloc_host")
        res.push("acl.rt.free_host", acl.rt.free_host, self.host_out)

        self.pointers = Pointers(acl)
        log(
            f"model {model_path}: input {self.in_shape}, output {self.out_shape}, batch {self.batch}, "
            f"{self.pointers.name} API, run mode {run_mode}"
        )
        self._infer_batch(np.zeros(self.in_shape, np.float32))  # warm-up, not timed
        return self

    def _infer_batch(self, chunk: np.ndarray) -> tuple[np.ndarray, float]:
        acl = self.acl
        src = self.pointers.from_array(chunk.astype(np.float32))
        check(
            acl.rt.memcpy(self.in_buf, self.in_size, src, chunk.nbytes, self.to_device),
            "acl.rt.memcpy(input)",
        )
        t0 = time.perf_counter()
        check(acl.mdl.execute(self.model_id, self.in_ds, self.out_ds), "acl.mdl.execute")
        execute_ms = (time.perf_counter() - t0) * 1000.0
        check(
            acl.rt.memcpy(self.host_out, self.out_size, self.out_buf, self.out_size, self.to_host),
            "acl.rt.memcpy(output)",
        )
        return self.pointers.to_array(
            self.host_out, self.out_size, self.out_shape, self.out_dtype
        ), execute_ms

    def infer(self, images: np.ndarray) -> dict[str, Any]:
        """Probabilities for ``images`` ``(N, 1, 28, 28)``: the result dict (batches padded, padding dropped)."""
        outputs: list[np.ndarray] = []
        times: list[float] = []
        executes: list[float] = []
        batch = self.batch
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch]
            real = len(chunk)
            if real < batch:
                chunk = np.concatenate([chunk, np.zeros((batch - real,) + chunk.shape[1:], chunk.dtype)])
            t0 = time.perf_counter()
            out, execute_ms = self._infer_batch(chunk)
            times.append((time.perf_counter() - t0) * 1000.0)
            executes.append(execute_ms)
            outputs.append(out.reshape(batch, -1)[:real].astype(np.float32))
        logits = np.concatenate(outputs) if outputs else np.zeros((0, 10), np.float32)
        probs = softmax(logits)
        return {
            "ok": True,
            "predictions": [int(p) for p in probs.argmax(axis=1)],
            "probabilities": probs.round(7).tolist(),
            "times_ms": [round(t, 4) for t in times],
            "execute_ms": [round(t, 4) for t in executes],
            "batch": batch,
            "images": int(len(images)),
            "api": self.pointers.name,
            "run_mode": int(self.run_mode),
            "input_dims": self.in_shape,
            "output_dims": self.out_shape,
        }

    def close(self) -> None:
        """Release everything in reverse order (logs what failed to release)."""
        failures = self.res.release_all()
        if failures:
            log("teardown problems: " + "; ".join(failures))


def run(model_path: str, images: np.ndarray, device_id: int = 0) -> dict[str, Any]:
    """Run ``images`` through the .om once; return the result dict (raises on any ACL failure)."""
    model = Model(model_path, device_id)
    try:
        model.open()
        return model.infer(images)
    finally:
        model.close()


def failure(exc: BaseException) -> dict[str, Any]:
    """The JSON-able description of an exception, the same in both modes."""
    if isinstance(exc, ForeignAclError):
        return {"ok": False, "error": str(exc), "kind": "acl_foreign"}
    if isinstance(exc, ImportError):
        return {"ok": False, "error": f"cannot import pyACL: {exc}", "kind": "acl_missing"}
    if isinstance(exc, AclCallError):
        return {"ok": False, "error": str(exc), "kind": "acl", "call": exc.call, "ret": str(exc.ret)}
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "kind": "runner"}


def _read_exact(stream: IO[bytes], count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = stream.read(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _send(stream: IO[bytes], request_id: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode("utf-8")
    stream.write(RESPONSE.pack(RESPONSE_MAGIC, request_id, len(body)) + body)
    stream.flush()


def serve(
    model_path: str, device_id: int = 0, stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None
) -> int:
    """Load the model once and answer framed requests until quit or end of input; returns the exit status."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    model = Model(model_path, device_id)
    try:
        try:
            model.open()
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the bridge as JSON
            _send(stdout, 0, dict(failure(exc), pid=os.getpid()))
            return 1
        _send(
            stdout,
            0,
            {
                "ok": True,
                "ready": True,
                "pid": os.getpid(),
                "batch": model.batch,
                "api": model.pointers.name,
                "input_dims": model.in_shape,
            },
        )
        while True:
            head = _read_exact(stdin, REQUEST.size)
            if head is None:
                return 0
            magic, op, request_id, length = REQUEST.unpack(head)
            payload = _read_exact(stdin, length) if length else b""
            if magic != REQUEST_MAGIC or payload is None:
                log("bad request frame: stopping")
                return 2
            if op == OP_QUIT:
                _send(stdout, request_id, {"ok": True, "bye": True})
                return 0
            if op == OP_PING:
                _send(stdout, request_id, {"ok": True, "pong": True})
                continue
            try:
                if op != OP_CLASSIFY or length % IMAGE_BYTES:
                    raise ValueError(f"bad request: op {op}, {length} bytes")
                images = np.frombuffer(payload, np.float32).reshape(-1, 1, 28, 28)
                answer = model.infer(images)
            except Exception as exc:  # noqa: BLE001 - one bad request must not end the server
                answer = failure(exc)
            _send(stdout, request_id, answer)
    finally:
        model.close()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description="Run an .om digit classifier with pyACL.")
    parser.add_argument("--model", required=True, help=".om file")
    parser.add_argument("--inputs", help=".npy with float32 (N, 1, 28, 28) images")
    parser.add_argument(
        "--serve", action="store_true", help="load once, answer framed requests on stdin/stdout"
    )
    parser.add_argument("--device", type=int, default=0)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.model, args.device)
    if not args.inputs:
        parser.error("--inputs is required without --serve")
    try:
        images = np.load(args.inputs).astype(np.float32)
        if images.ndim != 4:
            raise ValueError(f"inputs must be (N, 1, 28, 28), got {images.shape}")
        result = run(args.model, images, args.device)
    except Exception as exc:  # noqa: BLE001 - report every failure as JSON for the bridge
        result = failure(exc)
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
