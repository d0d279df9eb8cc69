"""Run an .om digit classifier on an Ascend board with pyACL and print the results as one JSON line.

This file is uploaded to the board and runs there with plain ``python3`` + numpy + ``acl`` (after
``. set_env.sh``). It must stay importable on old board Pythons (3.7): no walrus, no builtin generics.

Usage::

    python3 acl_runner.py --model model.om --inputs images.npy

``images.npy`` holds float32 ``(N, 1, 28, 28)`` pixels in [0, 1]. The model's batch is read from the .om; images
are sent batch by batch (the last batch padded with zeros, padded rows dropped). The last stdout line is
``ACL_RUNNER_RESULT {json}`` with ``predictions``, ``probabilities``, ``times_ms`` (per executed batch:
host->device copy + execute + device->host copy) and ``batch``; on failure it is ``{"ok": false, "error": ...}``
and the exit status is 1. Every acquired resource is released in reverse order even after an error
(device memory, data buffers, datasets, model, description, stream, context, device, acl itself).

Both pyACL pointer APIs are supported: ``bytes_to_ptr``/``ptr_to_bytes`` (CANN >= 6) and
``numpy_to_ptr``/``ptr_to_numpy`` (older), chosen at run time.
"""

import argparse
import json
import sys
import time

import numpy as np

RESULT_MARKER = "ACL_RUNNER_RESULT "
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

    def __init__(self, call, ret):
        RuntimeError.__init__(self, f"{call} failed with ACL error {ret}")
        self.call = call
        self.ret = ret


def check(ret, call):
    """Raise :class:`AclCallError` unless ``ret`` is ACL_SUCCESS."""
    if ret != ACL_SUCCESS:
        raise AclCallError(call, ret)


def log(message):
    """Progress on stderr (the bridge streams it)."""
    sys.stderr.write(f"[acl_runner] {message}\n")
    sys.stderr.flush()


class Resources:
    """A stack of release functions, run in reverse order even when some of them fail."""

    def __init__(self):
        self._stack = []

    def push(self, name, release, *args):
        self._stack.append((name, release, args))

    def release_all(self):
        failures = []
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

    def __init__(self, acl):
        self.acl = acl
        self.new_api = "bytes_to_ptr" in dir(acl.util)
        self._keep = []

    @property
    def name(self):
        return "bytes_to_ptr" if self.new_api else "numpy_to_ptr"

    def from_array(self, array):
        array = np.ascontiguousarray(array)
        if self.new_api:
            data = array.tobytes()
            self._keep = [data]  # the pointer is valid only while the bytes object lives
            return self.acl.util.bytes_to_ptr(data)
        self._keep = [array]
        return self.acl.util.numpy_to_ptr(array)

    def to_array(self, ptr, size, shape, dtype):
        if self.new_api:
            return np.frombuffer(self.acl.util.ptr_to_bytes(ptr, size), dtype).reshape(shape).copy()
        code = NPY_FLOAT16 if dtype == np.float16 else NPY_FLOAT32
        return np.array(self.acl.util.ptr_to_numpy(ptr, tuple(shape), code)).reshape(shape).copy()


def softmax(logits):
    """Row-wise softmax in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def run(model_path, images, device_id=0):
    """Run ``images`` through the .om; return the result dict (raises on any ACL failure)."""
    import acl

    res = Resources()
    try:
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
        to_device = ACL_MEMCPY_DEVICE_TO_DEVICE if run_mode == ACL_DEVICE else ACL_MEMCPY_HOST_TO_DEVICE
        to_host = ACL_MEMCPY_DEVICE_TO_DEVICE if run_mode == ACL_DEVICE else ACL_MEMCPY_DEVICE_TO_HOST

        model_id, ret = acl.mdl.load_from_file(model_path)
        check(ret, f"acl.mdl.load_from_file({model_path})")
        res.push("acl.mdl.unload", acl.mdl.unload, model_id)
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
        in_shape, out_shape = list(in_dims["dims"]), list(out_dims["dims"])
        batch = int(in_shape[0])
        if in_shape[1:] != list(images.shape[1:]):
            raise RuntimeError(f"model input {in_shape} does not take images {list(images.shape[1:])}")
        in_size = acl.mdl.get_input_size_by_index(desc, 0)
        out_size = acl.mdl.get_output_size_by_index(desc, 0)
        out_type = acl.mdl.get_output_data_type(desc, 0)
        out_dtype = {ACL_FLOAT: np.float32, ACL_FLOAT16: np.float16}.get(out_type)
        if out_dtype is None:
            raise RuntimeError(f"unsupported output data type {out_type}")

        datasets = []
        for label, size in (("input", in_size), ("output", out_size)):
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
            datasets.append((buf, size, dataset))
        (in_buf, _, in_ds), (out_buf, _, out_ds) = datasets
        host_out, ret = acl.rt.malloc_host(out_size)
        check(ret, "acl.rt.malloc_host")
        res.push("acl.rt.free_host", acl.rt.free_host, host_out)

        pointers = Pointers(acl)
        log(
            f"model {model_path}: input {in_shape}, output {out_shape}, batch {batch}, "
            f"{pointers.name} API, run mode {run_mode}"
        )

        def infer(chunk):
            src = pointers.from_array(chunk.astype(np.float32))
            check(acl.rt.memcpy(in_buf, in_size, src, chunk.nbytes, to_device), "acl.rt.memcpy(input)")
            check(acl.mdl.execute(model_id, in_ds, out_ds), "acl.mdl.execute")
            check(acl.rt.memcpy(host_out, out_size, out_buf, out_size, to_host), "acl.rt.memcpy(output)")
            return pointers.to_array(host_out, out_size, out_shape, out_dtype)

        infer(np.zeros(in_shape, np.float32))  # warm-up, not timed
        logits, times = [], []
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch]
            real = len(chunk)
            if real < batch:
                chunk = np.concatenate([chunk, np.zeros((batch - real,) + chunk.shape[1:], chunk.dtype)])
            t0 = time.perf_counter()
            out = infer(chunk)
            times.append((time.perf_counter() - t0) * 1000.0)
            logits.append(out.reshape(batch, -1)[:real].astype(np.float32))
        logits = np.concatenate(logits) if logits else np.zeros((0, 10), np.float32)
        probs = softmax(logits)
        return {
            "ok": True,
            "predictions": [int(p) for p in probs.argmax(axis=1)],
            "probabilities": probs.round(7).tolist(),
            "times_ms": [round(t, 4) for t in times],
            "batch": batch,
            "images": int(len(images)),
            "api": pointers.name,
            "run_mode": int(run_mode),
            "input_dims": in_shape,
            "output_dims": out_shape,
        }
    finally:
        failures = res.release_all()
        if failures:
            log("teardown problems: " + "; ".join(failures))


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description="Run an .om digit classifier with pyACL.")
    parser.add_argument("--model", required=True, help=".om file")
    parser.add_argument("--inputs", required=True, help=".npy with float32 (N, 1, 28, 28) images")
    parser.add_argument("--device", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        images = np.load(args.inputs).astype(np.float32)
        if images.ndim != 4:
            raise ValueError(f"inputs must be (N, 1, 28, 28), got {images.shape}")
        result = run(args.model, images, args.device)
    except ImportError as exc:
        result = {"ok": False, "error": f"cannot import pyACL: {exc}", "kind": "acl_missing"}
    except AclCallError as exc:
        result = {"ok": False, "error": str(exc), "kind": "acl", "call": exc.call, "ret": str(exc.ret)}
    except Exception as exc:  # noqa: BLE001 - report every failure as JSON for the bridge
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "kind": "runner"}
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
