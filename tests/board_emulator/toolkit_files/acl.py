"""Stand-in pyACL (``import acl``) of the board emulator: a test double, not Huawei's library.

Follows pyACL's conventions (ATLAS.md section 3): most calls return ``ret`` (0 = success), creators and
queries return ``(value, ret)``; call order is enforced (init -> set_device -> load; a second init is 100002);
.om files with a bad header are refused with 145006, a model built for another soc with 545001; memcpy
checks ``count <= dest_max``; execute checks the datasets' buffer counts and sizes and computes the outputs
with onnxruntime from the ONNX embedded in the .om (which the stand-in ATC rewrote for force_fp16, so the
outputs carry float16 rounding like the NPU's). ``emulator.json`` picks the API generation
(``bytes_to_ptr``/``ptr_to_bytes`` or ``numpy_to_ptr``/``ptr_to_numpy``) and can inject an execute failure.
At exit, a ledger line records which resources were never released (the tests check the runner's teardown).
"""

import atexit
import json
import os
import sys
import time

import numpy as np

_TOOLKIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
import emulator_omformat as _omformat  # noqa: E402

with open(os.path.join(_TOOLKIT, "emulator.json")) as _f:
    _CONFIG = json.load(_f)

ACL_SUCCESS = 0
ACL_ERROR_INVALID_PARAM = 100000
ACL_ERROR_UNINITIALIZE = 100001
ACL_ERROR_REPEAT_INITIALIZE = 100002
ACL_ERROR_INVALID_RESOURCE_HANDLE = 100004
ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID = 145002
ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID = 145006
ACL_ERROR_GE_LOAD_MODEL = 545001
ACL_ERROR_RT_CONTEXT_NULL = 107002
ACL_ERROR_RT_AICORE_EXCEPTION = 507015

_DTYPES = {
    "float32": (0, np.float32),
    "float16": (1, np.float16),
    "int32": (3, np.int32),
    "uint8": (4, np.uint8),
}
_NPY = {11: np.float32, 23: np.float16, 5: np.int32, 2: np.uint8}


class _State:
    def __init__(self):
        self.initialized = False
        self.finalized = False
        self.device = None
        self.next_handle = 1
        self.next_addr = 0x10000000
        self.memory = {}  # addr -> [bytearray, kind]
        self.contexts, self.streams = {}, {}  # handle -> None
        self.data_buffers = {}  # handle -> (addr, size)
        self.datasets = {}  # handle -> list of data buffer handles
        self.models = {}  # model id -> (meta, onnx bytes)
        self.descs = {}  # handle -> model id or None
        self.sessions = {}
        self.errors = []

    def handle(self):
        self.next_handle += 1
        return self.next_handle

    def new_handle(self, table, value=None):
        """A fresh handle, recorded in ``table`` (mapped to ``value``): what every ``create_*`` call returns."""
        h = self.handle()
        table[h] = value
        return h

    def release(self, table, handle):
        """Drop ``handle`` from ``table``: ACL_SUCCESS, or ACL_ERROR_INVALID_PARAM when ``table`` lacks it."""
        if handle not in table:
            return ACL_ERROR_INVALID_PARAM
        del table[handle]
        return ACL_SUCCESS

    def allocate(self, size, kind, data=None):
        addr = self.next_addr
        self.next_addr += (size + 0xFFFF) & ~0xFFF
        buf = bytearray(size) if data is None else bytearray(data)
        self.memory[addr] = [buf, kind]
        return addr

    def region(self, addr, count):
        """Return (buffer, offset) for ``count`` bytes at ``addr`` or None."""
        for base, (buf, _kind) in self.memory.items():
            if base <= addr and addr + count <= base + len(buf):
                return buf, addr - base
        return None

    def ready(self):
        return self.initialized and self.device is not None


_state = _State()


def init(config_path=None):
    if _state.initialized:
        return ACL_ERROR_REPEAT_INITIALIZE
    _state.initialized = True
    return ACL_SUCCESS


def finalize():
    if not _state.initialized:
        return ACL_ERROR_UNINITIALIZE
    _state.initialized = False
    _state.finalized = True
    return ACL_SUCCESS


def create_data_buffer(data, size):
    if _state.region(data, size) is None:
        return 0
    return _state.new_handle(_state.data_buffers, (data, size))


def destroy_data_buffer(buffer):
    return _state.release(_state.data_buffers, buffer)


def get_data_buffer_addr(buffer):
    return _state.data_buffers.get(buffer, (0, 0))[0]


def get_data_buffer_size_v2(buffer):
    return _state.data_buffers.get(buffer, (0, 0))[1]


class _Rt:
    def set_device(self, device_id):
        if not _state.initialized:
            return ACL_ERROR_UNINITIALIZE
        if device_id != 0:
            return ACL_ERROR_INVALID_PARAM
        _state.device = device_id
        return ACL_SUCCESS

    def reset_device(self, device_id):
        if _state.device != device_id:
            return ACL_ERROR_INVALID_PARAM
        _state.device = None
        return ACL_SUCCESS

    def get_run_mode(self):
        if not _state.initialized:
            return None, ACL_ERROR_UNINITIALIZE
        return 0, ACL_SUCCESS  # ACL_DEVICE: the 200 DK runs in RC mode

    def create_context(self, device_id):
        if not _state.ready() or device_id != _state.device:
            return 0, ACL_ERROR_INVALID_PARAM
        return _state.new_handle(_state.contexts), ACL_SUCCESS

    def destroy_context(self, context):
        return _state.release(_state.contexts, context)

    def create_stream(self):
        if not _state.contexts:
            return 0, ACL_ERROR_RT_CONTEXT_NULL
        return _state.new_handle(_state.streams), ACL_SUCCESS

    def destroy_stream(self, stream):
        return _state.release(_state.streams, stream)

    def _malloc(self, size, kind, policy_ok=True):
        if not _state.ready():
            return 0, ACL_ERROR_RT_CONTEXT_NULL
        if size <= 0 or not policy_ok:
            return 0, ACL_ERROR_INVALID_PARAM
        return _state.allocate(size, kind), ACL_SUCCESS

    def malloc(self, size, policy):
        return self._malloc(size, "device", policy in (0, 1, 2))

    def malloc_host(self, size):
        return self._malloc(size, "host")

    def _free(self, ptr, kind):
        entry = _state.memory.get(ptr)
        if entry is None or entry[1] != kind:
            return ACL_ERROR_INVALID_PARAM
        del _state.memory[ptr]
        return ACL_SUCCESS

    def free(self, ptr):
        return self._free(ptr, "device")

    def free_host(self, ptr):
        return self._free(ptr, "host")

    def memcpy(self, dst, dest_max, src, count, kind):
        if not _state.ready():
            return ACL_ERROR_RT_CONTEXT_NULL
        if kind not in (0, 1, 2, 3) or count > dest_max or count < 0:
            return ACL_ERROR_INVALID_PARAM
        target, source = _state.region(dst, dest_max), _state.region(src, count)
        if target is None or source is None:
            return ACL_ERROR_INVALID_PARAM
        (tbuf, toff), (sbuf, soff) = target, source
        tbuf[toff : toff + count] = sbuf[soff : soff + count]
        return ACL_SUCCESS


class _Mdl:
    def load_from_file(self, path):
        if not _state.ready():
            return 0, ACL_ERROR_RT_CONTEXT_NULL
        if not isinstance(path, str) or not os.path.isfile(path):
            return 0, ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID
        with open(path, "rb") as f:
            data = f.read()
        try:
            meta, onnx_bytes = _omformat.read_om(data)
        except _omformat.OmFormatError:
            return 0, ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID
        if meta.get("soc_version") != _CONFIG.get("soc_version"):
            sys.stderr.write(
                f"[ERROR] model built for {meta.get('soc_version')}, this device is {_CONFIG.get('soc_version')}\n"
            )
            return 0, ACL_ERROR_GE_LOAD_MODEL
        return _state.new_handle(_state.models, (meta, onnx_bytes)), ACL_SUCCESS

    def unload(self, model_id):
        _state.sessions.pop(model_id, None)
        return _state.release(_state.models, model_id)

    def create_desc(self):
        return _state.new_handle(_state.descs)

    def destroy_desc(self, desc):
        return _state.release(_state.descs, desc)

    def get_desc(self, desc, model_id):
        if desc not in _state.descs or model_id not in _state.models:
            return ACL_ERROR_INVALID_PARAM
        _state.descs[desc] = model_id
        return ACL_SUCCESS

    def _meta(self, desc):
        model_id = _state.descs.get(desc)
        return _state.models[model_id][0] if model_id in _state.models else None

    def _spec(self, desc, side, index):
        meta = self._meta(desc)
        if meta is None or not 0 <= index < len(meta[side]):
            return None
        return meta[side][index]

    def get_num_inputs(self, desc):
        meta = self._meta(desc)
        return len(meta["inputs"]) if meta else 0

    def get_num_outputs(self, desc):
        meta = self._meta(desc)
        return len(meta["outputs"]) if meta else 0

    def _size(self, spec):
        return int(np.prod(spec["dims"])) * np.dtype(_DTYPES[spec["dtype"]][1]).itemsize if spec else 0

    def get_input_size_by_index(self, desc, index):
        return self._size(self._spec(desc, "inputs", index))

    def get_output_size_by_index(self, desc, index):
        return self._size(self._spec(desc, "outputs", index))

    def _dims(self, spec):
        if spec is None:
            return None, ACL_ERROR_INVALID_PARAM
        return {"name": spec["name"], "dimCount": len(spec["dims"]), "dims": list(spec["dims"])}, ACL_SUCCESS

    def get_input_dims(self, desc, index):
        return self._dims(self._spec(desc, "inputs", index))

    def get_output_dims(self, desc, index):
        return self._dims(self._spec(desc, "outputs", index))

    def get_cur_output_dims(self, desc, index):
        return self._dims(self._spec(desc, "outputs", index))

    def get_input_name_by_index(self, desc, index):
        spec = self._spec(desc, "inputs", index)
        return spec["name"] if spec else ""

    def get_output_name_by_index(self, desc, index):
        spec = self._spec(desc, "outputs", index)
        return spec["name"] if spec else ""

    def get_input_data_type(self, desc, index):
        spec = self._spec(desc, "inputs", index)
        return _DTYPES[spec["dtype"]][0] if spec else -1

    def get_output_data_type(self, desc, index):
        spec = self._spec(desc, "outputs", index)
        return _DTYPES[spec["dtype"]][0] if spec else -1

    def create_dataset(self):
        return _state.new_handle(_state.datasets, [])

    def destroy_dataset(self, dataset):
        return _state.release(_state.datasets, dataset)

    def add_dataset_buffer(self, dataset, data_buffer):
        if dataset not in _state.datasets or data_buffer not in _state.data_buffers:
            return dataset, ACL_ERROR_INVALID_PARAM
        _state.datasets[dataset].append(data_buffer)
        return dataset, ACL_SUCCESS

    def get_dataset_num_buffers(self, dataset):
        return len(_state.datasets.get(dataset, []))

    def get_dataset_buffer(self, dataset, index):
        buffers = _state.datasets.get(dataset, [])
        return buffers[index] if 0 <= index < len(buffers) else 0

    def _session(self, model_id):
        if model_id not in _state.sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            # The float16 round trips ATC's force_fp16 put into the model must stay: no graph rewriting.
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            _state.sessions[model_id] = ort.InferenceSession(
                _state.models[model_id][1], options, providers=["CPUExecutionProvider"]
            )
        return _state.sessions[model_id]

    def _buffers(self, dataset, specs):
        buffers = _state.datasets.get(dataset)
        if buffers is None or len(buffers) != len(specs):
            return None
        regions = []
        for handle, spec in zip(buffers, specs):
            addr, size = _state.data_buffers.get(handle, (0, 0))
            region = _state.region(addr, size)
            if region is None or size != self._size(spec):
                return None
            regions.append((region, spec))
        return regions

    def execute(self, model_id, input_dataset, output_dataset):
        if not _state.ready():
            return ACL_ERROR_RT_CONTEXT_NULL
        if model_id not in _state.models:
            return ACL_ERROR_INVALID_PARAM
        meta = _state.models[model_id][0]
        ins = self._buffers(input_dataset, meta["inputs"])
        outs = self._buffers(output_dataset, meta["outputs"])
        if ins is None or outs is None:
            return ACL_ERROR_INVALID_PARAM
        if _CONFIG.get("fail_execute"):
            return ACL_ERROR_RT_AICORE_EXCEPTION
        _maybe_wedge()
        feeds = {}
        for (buf, off), spec in ins:
            dtype = _DTYPES[spec["dtype"]][1]
            count = self._size(spec)
            feeds[spec["name"]] = np.frombuffer(bytes(buf[off : off + count]), dtype).reshape(spec["dims"])
        results = self._session(model_id).run(None, feeds)
        for ((buf, off), spec), value in zip(outs, results):
            raw = np.ascontiguousarray(value, dtype=_DTYPES[spec["dtype"]][1]).tobytes()
            buf[off : off + len(raw)] = raw
        return ACL_SUCCESS


def _maybe_wedge():
    """Hang forever when the emulator asked for it (a wedged NPU call); only one process takes the order."""
    path = _CONFIG.get("wedge_file")
    if not path:
        return
    try:
        os.remove(path)
    except OSError:
        return
    while True:
        time.sleep(3600)


class _UtilNew:
    def bytes_to_ptr(self, data):
        return _state.allocate(len(data), "user", data)

    def ptr_to_bytes(self, ptr, size):
        region = _state.region(ptr, size)
        if region is None:
            raise ValueError("ptr_to_bytes: invalid pointer")
        buf, off = region
        return bytes(buf[off : off + size])


class _UtilOld:
    def numpy_to_ptr(self, array):
        if not isinstance(array, np.ndarray):
            raise TypeError("numpy_to_ptr needs a numpy array")
        return _state.allocate(array.nbytes, "user", np.ascontiguousarray(array).tobytes())

    def ptr_to_numpy(self, ptr, shape, npy_type):
        dtype = _NPY[npy_type]
        count = int(np.prod(shape)) * np.dtype(dtype).itemsize
        region = _state.region(ptr, count)
        if region is None:
            raise ValueError("ptr_to_numpy: invalid pointer")
        buf, off = region
        return np.frombuffer(bytes(buf[off : off + count]), dtype).reshape(shape)


rt = _Rt()
mdl = _Mdl()
util = _UtilOld() if _CONFIG.get("acl_api") == "old" else _UtilNew()


def _write_ledger():
    path = _CONFIG.get("ledger")
    if not path:
        return
    leaks = {
        "initialized": _state.initialized,
        "device_set": _state.device is not None,
        "device_memory": sum(1 for _b, k in _state.memory.values() if k == "device"),
        "host_memory": sum(1 for _b, k in _state.memory.values() if k == "host"),
        "data_buffers": len(_state.data_buffers),
        "datasets": len(_state.datasets),
        "models": len(_state.models),
        "descs": len(_state.descs),
        "streams": len(_state.streams),
        "contexts": len(_state.contexts),
    }
    with open(path, "a") as f:
        f.write(json.dumps({"finalized": _state.finalized, "leaks": leaks}) + "\n")


atexit.register(_write_ledger)
