"""What ATC (CANN's ONNX -> .om converter) accepts: one table of ONNX operators and opset ranges per soc_version.

The table (ATLAS.md section 7) lists the operators this project's models use with the opset range the CANN
operator support lists give for them, plus the restrictions reported for some (Gemm with alpha = beta = 1 and no
transA, Reshape with a constant shape, Softmax over the last axis, 2-D Conv with group 1 or depthwise). The ranges
are approximate (not verified per CANN release), so they live here as data, in one place, and callers can skip
the check (``digit-distill deploy --skip-op-check``). Anything not in the table is refused with the node's name,
its op and opset, and what to do.

Used by ``core.export`` (an export never writes an ONNX the board cannot take), by ``atlas_bridge`` before anything
is uploaded, and by the board emulator's stand-in ATC (the tests' board refuses exactly what this table refuses).
This module imports only the standard library and ``onnx``: the emulator copies it into its toolkit tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

#: The chips ATC compiles for (``--soc_version``); Atlas 200 DK = Ascend310.
SOC_VERSIONS = ("Ascend310", "Ascend310P3", "Ascend310B1", "Ascend310B4")
#: The opset models are exported at: the only one the Atlas 200 DK era documentation lists.
EXPORT_OPSET = 11

_ELEMENTWISE = ("MatMul", "Add", "Sub", "Mul", "Div")
_ACTIVATIONS = ("Relu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax")
_POOLING = ("MaxPool", "AveragePool", "GlobalAveragePool")

#: Operator -> (lowest, highest) ONNX opset ATC parses it at, for every soc unless ``SOC_OVERRIDES`` says otherwise.
OPSET_RANGES: dict[str, tuple[int, int]] = {
    "Gemm": (9, 13),
    **{op: (8, 13) for op in _ELEMENTWISE},
    **{op: (8, 13) for op in _ACTIVATIONS},
    "Flatten": (8, 15),
    "Reshape": (5, 13),
    "Constant": (8, 13),
    "Conv": (8, 13),
    **{op: (8, 13) for op in _POOLING},
    "BatchNormalization": (8, 13),
}
#: Per-chip differences from ``OPSET_RANGES``: the Atlas 200 DK's CANN parses Flatten only up to opset 11.
SOC_OVERRIDES: dict[str, dict[str, tuple[int, int]]] = {
    "Ascend310": {"Flatten": (8, 11)},
}
#: Operators that must not appear at all, with what to do instead.
FORBIDDEN = {
    "Dropout": "export the model in eval mode (model.eval()), which removes Dropout",
}
_DEFAULT_FIX = "export the model without it (these ops are a conversion risk for ATC)"


def op_table(soc_version: str) -> dict[str, tuple[int, int]]:
    """The operator -> opset range table for one chip."""
    if soc_version not in SOC_VERSIONS:
        raise ValueError(f"soc_version must be one of {SOC_VERSIONS}, not {soc_version!r}")
    return {**OPSET_RANGES, **SOC_OVERRIDES.get(soc_version, {})}


@dataclass(frozen=True)
class OpProblem:
    """One node ATC would not convert: which node, its op and opset, why, and what to do.

    ``kind`` is ``"opset"`` (op known, opset outside its range), ``"unsupported"`` (not in the table),
    ``"forbidden"`` (must not appear), ``"domain"`` (custom op domain) or ``"restriction"`` (an attribute or
    input form ATC does not take).
    """

    node: str
    op: str
    opset: int
    reason: str
    fix: str
    kind: str = "unsupported"

    def __str__(self) -> str:
        return f"node {self.node!r} ({self.op}, opset {self.opset}): {self.reason}; {self.fix}"

    def to_dict(self) -> dict[str, Any]:  # noqa: D102
        return {
            "node": self.node,
            "op": self.op,
            "opset": self.opset,
            "reason": self.reason,
            "fix": self.fix,
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpProblem:  # noqa: D102
        return cls(
            str(data["node"]),
            str(data["op"]),
            int(data["opset"]),
            str(data["reason"]),
            str(data["fix"]),
            str(data.get("kind", "unsupported")),
        )


@dataclass(frozen=True)
class OpCheck:
    """The result of checking a model against the table: the problems (empty when ATC should take it)."""

    soc_version: str
    opset: int
    ops: tuple[str, ...]
    problems: tuple[OpProblem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:  # noqa: D102
        return not self.problems

    def message(self, what: str = "the model") -> str:
        """One line: the first problem, and how many more there are."""
        if self.ok:
            return f"{what} uses only operators ATC converts for {self.soc_version} ({', '.join(self.ops)})"
        more = len(self.problems) - 1
        tail = f" (and {more} more node{'s' if more > 1 else ''})" if more else ""
        return f"ATC for {self.soc_version} cannot convert {what}: {self.problems[0]}{tail}"


class UnsupportedOpsError(ValueError):
    """A model uses an operator, opset or attribute ATC does not convert (``check`` lists every node)."""

    def __init__(self, check: OpCheck, what: str = "the model"):
        self.check = check
        super().__init__(check.message(what))


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    """Rank of every tensor whose shape ONNX shape inference can tell (empty when inference fails)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - a model inference cannot handle simply gets no ranks
        return {}
    ranks: dict[str, int] = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        t = info.type.tensor_type
        if t.HasField("shape"):
            ranks[info.name] = len(t.shape.dim)
    return ranks


def _restriction(
    node: onnx.NodeProto,
    attrs: dict[str, Any],
    opset: int,
    constants: set[str],
    shapes: dict[str, Any],
    ranks: dict[str, Any],
) -> str:
    """Why this (otherwise supported) node breaks a reported restriction, or ``""``."""
    op = node.op_type
    if op == "Gemm":
        if float(attrs.get("alpha", 1.0)) != 1.0 or float(attrs.get("beta", 1.0)) != 1.0:
            return f"alpha = {attrs.get('alpha', 1.0):g}, beta = {attrs.get('beta', 1.0):g} (only 1 and 1 are supported)"
        if int(attrs.get("transA", 0)) != 0:
            return "transA = 1 is not supported"
    elif op == "Reshape":
        if len(node.input) < 2 or node.input[1] not in constants:
            return "the target shape is computed at run time (a static .om needs a constant shape)"
    elif op in ("Softmax", "LogSoftmax"):
        axis = int(attrs.get("axis", 1 if opset < 13 else -1))
        rank = ranks.get(node.input[0]) if node.input else None
        last = axis == -1 or (rank is not None and axis == rank - 1)
        if not last:
            return f"axis = {axis} is not the last axis"
    elif op == "Conv":
        weight = shapes.get(node.input[1]) if len(node.input) > 1 else None
        kernel = attrs.get("kernel_shape") or (weight[2:] if weight else None)
        if kernel is not None and len(kernel) != 2:
            return f"a {len(kernel)}-D convolution (only 2-D is supported)"
        group = int(attrs.get("group", 1))
        if group != 1 and weight is not None and weight[1] != 1:
            return f"group = {group} is neither 1 nor depthwise"
    elif op == "BatchNormalization" and int(attrs.get("training_mode", 0)) != 0:
        return "training_mode = 1 (export in eval mode)"
    return ""


def check_onnx_ops(model: onnx.ModelProto, soc_version: str = "Ascend310") -> OpCheck:
    """Check every node of ``model`` (an ``onnx.ModelProto``) against the table for ``soc_version``."""
    table = op_table(soc_version)
    versions = {imp.domain or "ai.onnx": int(imp.version) for imp in model.opset_import}
    opset = versions.get("ai.onnx", 0)
    constants = {t.name for t in model.graph.initializer}
    shapes = {t.name: tuple(int(d) for d in t.dims) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            constants.update(node.output)
    needs_ranks = any(n.op_type in ("Softmax", "LogSoftmax") for n in model.graph.node)
    ranks = _ranks(model) if needs_ranks else {}
    problems: list[OpProblem] = []
    for index, node in enumerate(model.graph.node):
        name = node.name or f"#{index} {node.op_type}"
        domain = node.domain or "ai.onnx"
        node_opset = versions.get(domain, 0)
        if domain != "ai.onnx":
            problems.append(
                OpProblem(
                    name,
                    node.op_type,
                    node_opset,
                    f"custom op domain {domain!r}",
                    "export with standard ONNX operators only",
                    "domain",
                )
            )
            continue
        if node.op_type in FORBIDDEN:
            problems.append(
                OpProblem(
                    name,
                    node.op_type,
                    node_opset,
                    "must not appear in a model for ATC",
                    FORBIDDEN[node.op_type],
                    "forbidden",
                )
            )
            continue
        span = table.get(node.op_type)
        if span is None:
            problems.append(
                OpProblem(
                    name,
                    node.op_type,
                    node_opset,
                    f"not in ATC's operator table for {soc_version}",
                    _DEFAULT_FIX,
                    "unsupported",
                )
            )
            continue
        low, high = span
        if not low <= node_opset <= high:
            problems.append(
                OpProblem(
                    name,
                    node.op_type,
                    node_opset,
                    f"ATC parses {node.op_type} at opset {low}-{high} only",
                    f"export at opset {EXPORT_OPSET}",
                    "opset",
                )
            )
            continue
        reason = _restriction(node, _attrs(node), node_opset, constants, shapes, ranks)
        if reason:
            problems.append(
                OpProblem(
                    name,
                    node.op_type,
                    node_opset,
                    reason,
                    "change the layer or its export so ATC can convert it",
                    "restriction",
                )
            )
    ops = tuple(sorted({n.op_type for n in model.graph.node}))
    return OpCheck(soc_version, opset, ops, tuple(problems))


def require_atc_ops(
    model: onnx.ModelProto, soc_version: str = "Ascend310", what: str = "the model"
) -> OpCheck:
    """:func:`check_onnx_ops`, raising :class:`UnsupportedOpsError` when a node would fail conversion."""
    check = check_onnx_ops(model, soc_version)
    if not check.ok:
        raise UnsupportedOpsError(check, what)
    return check
