"""Stand-in ``atc`` of the board emulator (a test double, not Huawei's tool).

Behaves as ATLAS.md section 1/6 describes: gflags-style ``--k=v`` / ``--k v`` arguments, every message on
stdout, the same start/success/failure lines and error codes as the real ATC, exit 255 on failure. On success
it writes ``<output>.om`` (or ``<output>_linux_aarch64.om`` when configured) holding the ONNX model, in the
current header layout unless configured otherwise. Every node is checked against the same operator table the
bridge uses (``core/atc_ops.py``, copied into the toolkit): an opset outside an op's range is E19010 (or E16002,
configurable: both are reported in the wild), an op outside the table EZ3003. With ``--precision_mode=force_fp16``
(ATC's default for inference) the stored model rounds its input, weights and every activation to float16, so the
stand-in runtime computes like the NPU. Configuration comes from ``emulator.json`` next to ``bin/``.
"""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.realpath(__file__))
TOOLKIT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOOLKIT, "python", "site-packages"))

import emulator_atc_ops as atc_ops  # noqa: E402
import emulator_omformat as omformat  # noqa: E402

START = "ATC start working now, please wait for a moment."
SUCCESS = "ATC run success, welcome to the next use."
FAILED = "ATC run failed, Please check the detail log, Try 'atc --help' for more information"
SOCS = ("Ascend310", "Ascend310P3", "Ascend310B1", "Ascend310B4")
LOG_LEVELS = ("debug", "info", "warning", "error", "null")
DYNAMIC = ("dynamic_batch_size", "dynamic_image_size", "dynamic_dims", "input_shape_range")
FRAMEWORKS = {"0", "1", "3", "5"}
PRECISION_MODES = (
    "force_fp16",
    "allow_fp32_to_fp16",
    "must_keep_origin_dtype",
    "allow_mix_precision",
    "force_fp32",
)


class AtcFailure(Exception):
    """One ATC error block: code, message and the Solution line."""

    def __init__(self, code, message, solution="Try again with a valid argument."):
        super().__init__(message)
        self.code, self.message, self.solution = code, message, solution


def load_config():
    with open(os.path.join(TOOLKIT, "emulator.json")) as f:
        return json.load(f)


def parse_flags(argv):
    flags = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            raise AtcFailure("E10001", f"Value [{arg}] for parameter [argv] is invalid. Reason: not a flag.")
        key = arg.lstrip("-")
        if "=" in key:
            key, value = key.split("=", 1)
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            i += 1
            value = argv[i]
        else:
            value = ""
        flags[key] = value
        i += 1
    return flags


def invalid(value, param, reason):
    return AtcFailure("E10001", f"Value [{value}] for parameter [--{param}] is invalid. Reason: {reason}")


def parse_input_shape(text):
    shapes = {}
    for item in text.split(";"):
        if not item:
            continue
        name, sep, dims = item.rpartition(":")
        if not sep or not name:
            raise AtcFailure("E10011", f"Input shape [{item}] is invalid. Reason: expected name:dims.")
        try:
            values = [int(d) for d in dims.split(",")]
        except ValueError:
            raise AtcFailure(
                "E10011",
                f"Input shape [{item}] is invalid. Reason: the dims must be integers separated by ','.",
            ) from None
        shapes[name] = values
    return shapes


def check_flags(flags, cfg):
    if not flags.get("model"):
        raise AtcFailure("E10004", "Value for --model is empty.", "Set --model to the model file.")
    if not flags.get("output"):
        raise AtcFailure("E10004", "Value for --output is empty.", "Set --output to the output file prefix.")
    if flags.get("framework") not in FRAMEWORKS:
        raise AtcFailure(
            "E10007",
            "[--framework] is required. The value must be [0(Caffe) or 1(MindSpore) or 3(TensorFlow) or 5(Onnx)].",
            "Set --framework to one of the supported values.",
        )
    soc = flags.get("soc_version", "")
    if not soc:
        raise AtcFailure(
            "E10054", "The required parameter [--soc_version] for ATC is empty.", "Set --soc_version."
        )
    if soc not in SOCS:
        raise invalid(soc, "soc_version", f"the value must be one of {', '.join(SOCS)}.")
    fmt = flags.get("input_format", "NCHW")
    if fmt not in ("NCHW", "ND"):
        raise invalid(fmt, "input_format", "for ONNX models the input format must be NCHW or ND.")
    log = flags.get("log", "null")
    if log not in LOG_LEVELS:
        raise AtcFailure(
            "E10010",
            f"Logger level [{log}] is invalid. The value must be debug, info, warning, error, or null.",
        )
    precision = flags.get("precision_mode", "force_fp16")
    if precision not in PRECISION_MODES:
        raise invalid(precision, "precision_mode", f"the value must be one of {', '.join(PRECISION_MODES)}.")
    if flags["output"].endswith("/"):
        raise AtcFailure(
            "E10022", f"Path [{flags['output']}] for parameter [--output] does not contain a file name."
        )
    given = [k for k in DYNAMIC if flags.get(k)]
    if len(given) > 1:
        raise AtcFailure(
            "E10009",
            f"Parameters [{', '.join('--' + k for k in given)}] cannot be specified at the same time.",
        )
    if given:
        raise AtcFailure("E19999", "Inner Error! (dynamic shapes are not implemented by the board emulator)")
    out_dir = os.path.dirname(os.path.abspath(flags["output"]))
    if not os.path.isdir(out_dir) or not os.access(out_dir, os.W_OK):
        raise invalid(flags["output"], "output", "the output directory does not exist or is not writable.")


def load_model(path, soc_version, cfg):
    import onnx

    try:
        model = onnx.load(path)
        onnx.checker.check_model(model)
    except Exception:  # noqa: BLE001 - the real ATC reports any parse failure this way
        raise AtcFailure(
            "E10041",
            f"Failed to load the model from {path}.",
            "Check that the model file is a valid ONNX model.",
        ) from None
    check_ops(model, soc_version, cfg)
    return model


def check_ops(model, soc_version, cfg):
    """Refuse the first node outside the operator table, the way ATC's parser and op kernels fail."""
    check = atc_ops.check_onnx_ops(model, soc_version)
    for problem in check.problems:
        if problem.kind == "opset":
            code = cfg.get("opset_error_code", "E19010")
            if code == "E16002":
                raise AtcFailure(
                    "E16002",
                    f"Op [{problem.node}] of type [ai.onnx::{problem.opset}::{problem.op}] is not supported by the "
                    "ONNX parser of this version.",
                    "Check the version of the installation package and reinstall the package, or use an opset the "
                    "operator specifications list.",
                )
            raise AtcFailure(
                "E19010",
                f"No parser is registered for Op [{problem.node}, optype [ai.onnx::{problem.opset}::{problem.op}]].",
                "Check the version of the installation package and reinstall the package. For details, see the "
                "operator specifications.",
            )
        raise AtcFailure(
            "EZ3003",
            f"No supported Ops kernel and engine are found for [{problem.node}], optype [{problem.op}].",
            "1. Check that the OPP component is installed properly. 2. Submit an issue to request for the support "
            f"of this operator type. ({problem.reason})",
        )


def force_fp16(model):
    """The model as the NPU computes it under force_fp16: input, weights and every activation rounded to float16."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, shape_inference

    for init in model.graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            rounded = numpy_helper.to_array(init).astype(np.float16).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(rounded, init.name))
    types = {}
    inferred = shape_inference.infer_shapes(model)
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        types[info.name] = info.type.tensor_type.elem_type
    nodes = []

    def round_trip(source, target):
        half = target + "__fp16"
        nodes.append(helper.make_node("Cast", [source], [half], to=TensorProto.FLOAT16))
        nodes.append(helper.make_node("Cast", [half], [target], to=TensorProto.FLOAT))

    initializers = {t.name for t in model.graph.initializer}
    renamed = {}
    for graph_input in model.graph.input:
        if graph_input.name not in initializers:
            renamed[graph_input.name] = graph_input.name + "__fp16_in"
            round_trip(graph_input.name, renamed[graph_input.name])
    for node in model.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    rounded = numpy_helper.to_array(attr.t).astype(np.float16).astype(np.float32)
                    attr.t.CopyFrom(numpy_helper.from_array(rounded))
            nodes.append(node)
            continue
        outputs = list(node.output)
        for i, name in enumerate(outputs):
            if types.get(name) == TensorProto.FLOAT:
                node.output[i] = name + "__fp32"
        nodes.append(node)
        for name in outputs:
            if types.get(name) == TensorProto.FLOAT:
                round_trip(name + "__fp32", name)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def resolve_shapes(model, flags):
    initializers = {t.name for t in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in initializers]
    shapes = parse_input_shape(flags.get("input_shape", ""))
    names = {i.name for i in graph_inputs}
    for name, dims in shapes.items():
        if name not in names:
            raise AtcFailure(
                "E10016",
                f"Opname [{name}] specified in [--input_shape] is not found in the model, confirm whether this "
                "node name exists, or node is not split with the specified delimiter ';'",
                "Add the correct node names to --input_shape.",
            )
        if any(d <= 0 for d in dims):
            raise AtcFailure(
                "E10018",
                f"Value [{','.join(map(str, dims))}] for shape [{name}] is invalid. When --dynamic_batch_size is "
                "included, only batch size N can be -1 in --input_shape.",
            )
    inputs = []
    for graph_input in graph_inputs:
        dims = shapes.get(graph_input.name)
        if dims is None:
            dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
            if any(d <= 0 for d in dims):
                raise AtcFailure(
                    "E10011", f"Input [{graph_input.name}] has a dynamic shape; set it with --input_shape."
                )
        inputs.append({"name": graph_input.name, "dims": dims, "dtype": "float32"})
    return inputs


def output_specs(onnx_bytes, inputs):
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    feeds = {i["name"]: np.zeros(i["dims"], dtype=np.float32) for i in inputs}
    results = session.run(None, feeds)
    return [
        {"name": o.name, "dims": list(r.shape), "dtype": "float32"}
        for o, r in zip(session.get_outputs(), results)
    ]


def _memo_paths(flags, cfg, source_bytes):
    """Where this emulator remembers a conversion of exactly these model bytes, flags and settings, or None.

    A conversion is a pure function of them, so a repeated one (the tests deploy the same model many times)
    reuses the stored result instead of importing onnx and rebuilding it. Failures are never remembered.
    """
    import hashlib

    if not cfg.get("ledger"):
        return None
    settings = {k: v for k, v in cfg.items() if k not in ("atc_delay_s", "ledger", "wedge_file")}
    options = {k: v for k, v in flags.items() if k not in ("model", "output")}
    digest = hashlib.sha256(source_bytes)
    digest.update(json.dumps([options, settings], sort_keys=True).encode())
    base = os.path.join(os.path.dirname(cfg["ledger"]), "atc-memo", digest.hexdigest())
    return base + ".json", base + ".onnx"


def _recall(paths):
    try:
        with open(paths[0]) as f, open(paths[1], "rb") as g:
            return json.load(f), g.read()
    except (OSError, ValueError):
        return None


def _remember(paths, meta, onnx_bytes):
    os.makedirs(os.path.dirname(paths[0]), exist_ok=True)
    for path, data in ((paths[1], onnx_bytes), (paths[0], json.dumps(meta).encode())):
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)


def convert(flags, cfg):
    check_flags(flags, cfg)
    try:
        with open(flags["model"], "rb") as f:
            source_bytes = f.read()
    except OSError:
        source_bytes = None  # load_model reports it
    memo = _memo_paths(flags, cfg, source_bytes) if source_bytes is not None else None
    recalled = _recall(memo) if memo else None
    if recalled is not None:
        meta, onnx_bytes = recalled
    else:
        model = load_model(flags["model"], flags["soc_version"], cfg)
        inputs = resolve_shapes(model, flags)
        onnx_bytes = source_bytes
        outputs = output_specs(onnx_bytes, inputs)
        precision = flags.get("precision_mode", "force_fp16")
        if precision == "force_fp16":
            onnx_bytes = force_fp16(model).SerializeToString()
        meta = {
            "soc_version": flags["soc_version"],
            "inputs": inputs,
            "outputs": outputs,
            "atc_version": cfg.get("cann_version", "7.0.0"),
            "precision_mode": precision,
        }
        if memo:
            _remember(memo, meta, onnx_bytes)
    delay = float(cfg.get("atc_delay_s", 0))
    if delay:
        time.sleep(delay)
    inputs, outputs = meta["inputs"], meta["outputs"]
    name = os.path.basename(flags["output"])
    data = omformat.build_om(
        meta, onnx_bytes, name, cfg.get("cann_version", "7.0.0"), cfg.get("om_layout", "current")
    )
    path = flags["output"] + cfg.get("om_suffix", "") + ".om"
    with open(path, "wb") as f:
        f.write(data)
    print(
        f"[INFO] Emulated build of {len(inputs)} input(s), {len(outputs)} output(s) for {flags['soc_version']}."
    )


def model_info(flags):
    path = flags.get("om", "")
    try:
        with open(path, "rb") as f:
            meta, _ = omformat.read_om(f.read())
    except (OSError, omformat.OmFormatError) as exc:
        raise AtcFailure("E10003", f"Value [{path}] for parameter [--om] is invalid. Reason: {exc}") from None
    print("============ Basic Info ============")
    print(f"ATC version        : {meta.get('atc_version')}")
    print(f"soc_version        : {meta['soc_version']}")
    print(f"precision_mode     : {meta.get('precision_mode', 'force_fp16')}")
    for i in meta["inputs"]:
        print(f"input              : {i['name']} {i['dims']} {i['dtype']}")
    for o in meta["outputs"]:
        print(f"output             : {o['name']} {o['dims']} {o['dtype']}")


def main(argv):
    print(START, flush=True)
    cfg = load_config()
    try:
        flags = parse_flags(argv)
        if flags.get("mode") == "6":
            model_info(flags)
        else:
            convert(flags, cfg)
    except AtcFailure as failure:
        stamp = time.strftime("%Y-%m-%d-%H:%M:%S")
        print(FAILED)
        print(f"[PID: {os.getpid()}] {stamp}.000.000 {failure.code}: {failure.message}")
        print(f"        Solution: {failure.solution}")
        print("        TraceBack (most recent call last):")
        print("        [emulator] ATC stand-in")
        return 255
    print(SUCCESS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
