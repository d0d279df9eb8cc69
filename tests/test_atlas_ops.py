"""ATC's operator table (core.atc_ops): what is refused, with the node, op and opset named; export refuses too."""

from __future__ import annotations

import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from core.atc_ops import (
    OPSET_RANGES,
    SOC_VERSIONS,
    UnsupportedOpsError,
    check_onnx_ops,
    op_table,
    require_atc_ops,
)


def graph(nodes, opset=11, initializers=(), inputs=None, domain_imports=()):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])]
    g = helper.make_graph(
        nodes,
        "g",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=list(initializers),
    )
    imports = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, 1) for d in domain_imports)]
    return helper.make_model(g, opset_imports=imports)


def weight(name, shape):
    import numpy as np

    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def test_the_project_models_pass_for_every_chip(student_onnx):
    model = onnx.load(str(student_onnx))
    for soc in SOC_VERSIONS:
        check = require_atc_ops(model, soc)
        assert check.ok and set(check.ops) <= set(op_table(soc)) and check.opset == 11


def test_an_op_outside_the_table_is_refused_with_node_op_opset_and_fix():
    model = graph(
        [
            helper.make_node("Identity", ["x"], ["t"], name="copy"),
            helper.make_node("Relu", ["t"], ["y"], name="act"),
        ]
    )
    check = check_onnx_ops(model)
    assert not check.ok and len(check.problems) == 1
    problem = check.problems[0]
    assert (problem.node, problem.op, problem.opset, problem.kind) == ("copy", "Identity", 11, "unsupported")
    with pytest.raises(UnsupportedOpsError) as err:
        require_atc_ops(model, what="net.onnx")
    text = str(err.value)
    assert "node 'copy' (Identity, opset 11)" in text and "net.onnx" in text and "export" in text
    assert err.value.check is not None


def test_opset_ranges_per_op_and_per_chip():
    flatten = graph([helper.make_node("Flatten", ["x"], ["y"], name="flat")], opset=13)
    assert check_onnx_ops(flatten, "Ascend310B4").ok  # Flatten 8-15 on newer chips
    (problem,) = check_onnx_ops(flatten, "Ascend310").problems  # 8-11 for the Atlas 200 DK
    assert (problem.kind, problem.opset) == ("opset", 13) and "11" in problem.reason
    relu17 = graph([helper.make_node("Relu", ["x"], ["y"], name="r")], opset=17)
    (problem,) = check_onnx_ops(relu17).problems
    assert problem.kind == "opset" and "8-13" in problem.reason and "opset 11" in problem.fix
    assert OPSET_RANGES["Gemm"] == (9, 13)
    with pytest.raises(ValueError, match="soc_version"):
        op_table("Ascend910")


def test_restrictions_gemm_reshape_softmax_conv_and_dropout():
    w = weight("w", (4, 4))
    bad_gemm = graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", alpha=2.0, transB=1)], initializers=[w]
    )
    assert "alpha = 2" in check_onnx_ops(bad_gemm).problems[0].reason
    trans_a = graph([helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transA=1)], initializers=[w])
    assert "transA" in check_onnx_ops(trans_a).problems[0].reason
    good_gemm = graph([helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)], initializers=[w])
    assert check_onnx_ops(good_gemm).ok

    dynamic = graph(
        [
            helper.make_node("Shape", ["x"], ["s"], name="shape"),
            helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape"),
        ]
    )
    kinds = {(p.op, p.kind) for p in check_onnx_ops(dynamic).problems}
    assert kinds == {("Shape", "unsupported"), ("Reshape", "restriction")}
    shape = numpy_helper.from_array(__import__("numpy").array([1, 4], "int64"), "shape")
    assert check_onnx_ops(
        graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], initializers=[shape])
    ).ok

    first_axis = graph([helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=0)])
    assert "axis = 0" in check_onnx_ops(first_axis).problems[0].reason
    assert check_onnx_ops(graph([helper.make_node("Softmax", ["x"], ["y"], axis=1)])).ok  # last of rank 2

    image = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4, 4])]
    conv3d = graph(
        [helper.make_node("Conv", ["x", "k"], ["y"], name="c3")],
        initializers=[weight("k", (2, 1, 3, 3, 3))],
        inputs=image,
    )
    assert "3-D" in check_onnx_ops(conv3d).problems[0].reason
    dropout = graph([helper.make_node("Dropout", ["x"], ["y"], name="drop")])
    (problem,) = check_onnx_ops(dropout).problems
    assert problem.kind == "forbidden" and "eval" in problem.fix
    custom = graph(
        [helper.make_node("Foo", ["x"], ["y"], name="foo", domain="com.example")],
        domain_imports=["com.example"],
    )
    assert check_onnx_ops(custom).problems[0].kind == "domain"


def test_problems_round_trip_as_plain_data():
    from core.atc_ops import OpProblem

    problem = check_onnx_ops(graph([helper.make_node("Identity", ["x"], ["y"], name="i")])).problems[0]
    assert OpProblem.from_dict(problem.to_dict()) == problem


class _WithIdentityChain(nn.Module):
    def forward(self, x):
        return torch.flatten(x, 1)[:, :10].cumsum(dim=1)  # Slice and CumSum: not in ATC's table


def test_export_refuses_a_model_atc_cannot_take(tmp_path):
    from core.export import ExportError, export_onnx

    path = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match=r"node .*\((Slice|CumSum), opset 11\).*was not written"):
        export_onnx(_WithIdentityChain(), path, metadata={})
    assert not path.exists()
    report = export_onnx(_WithIdentityChain(), path, metadata={}, check_ops=False)
    assert report.path.exists()
