"""graphc.onnx.export's arguments, as torch.onnx.export takes them, and its errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from onnx_testutil import assert_matches, export_and_run, session

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.onnx import ExportError

onnx = pytest.importorskip("onnx")


def small():
    graphc.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def test_writes_a_path_and_the_file_loads_and_checks(tmp_path):
    path = tmp_path / "m.onnx"
    x = graphc.randn(2, 3)
    returned = graphc.onnx.export(small(), x, str(path))  # a bare tensor as args, like torch
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded == returned
    assert loaded.opset_import[0].version == 17
    sess = session(path.read_bytes())
    np.testing.assert_allclose(sess.run(None, {"input": x.numpy()})[0], small()(x).detach().numpy(), rtol=1e-5)


def test_export_params_false_makes_parameters_inputs():
    buf = io.BytesIO()
    proto = graphc.onnx.export(small(), (graphc.randn(2, 3),), buf, export_params=False, input_names=["x"])
    assert [i.name for i in proto.graph.input] == ["x", "0.weight", "0.bias", "2.weight", "2.bias"]
    assert not any(i.name.endswith(("weight", "bias")) for i in proto.graph.initializer)
    model = small()
    x = graphc.randn(2, 3)
    feeds = {"x": x.numpy(), **{k: v.detach().numpy() for k, v in model.state_dict().items()}}
    got = session(buf.getvalue()).run(None, feeds)[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-5)


def test_keyword_arguments_and_non_tensor_arguments():
    def fn(x, y, scale=1.0, bias=None):
        return x * scale + bias + y

    x, y, b = graphc.randn(2, 3), graphc.randn(2, 3), graphc.randn(3)
    buf = io.BytesIO()
    proto = graphc.onnx.export(fn, (x, y, 2.5, {"bias": b}), buf)
    assert [i.name for i in proto.graph.input] == ["x", "y", "bias"]
    got = session(buf.getvalue()).run(None, {"x": x.numpy(), "y": y.numpy(), "bias": b.numpy()})[0]
    np.testing.assert_allclose(got, fn(x, y, 2.5, bias=b).numpy(), rtol=1e-6)


def test_output_that_is_an_input_and_repeated_outputs():
    def fn(x):
        y = x * 2
        return x, y, y

    _, got, expected = export_and_run(fn, (graphc.randn(2, 2),), output_names=["a", "b", "c"])
    assert_matches(got, expected)


def test_dropout_is_off_in_export():
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    model.train()
    proto, got, expected = export_and_run(model, (graphc.randn(4, 3),))
    assert_matches(got, expected)
    assert "RandomUniform" not in {n.op_type for n in proto.graph.node}


def test_random_op_in_forward_is_a_clear_error():
    def fn(x):
        return F.dropout(x, 0.5, training=True)

    with pytest.raises(ExportError, match="random"):
        graphc.onnx.export(fn, (graphc.randn(2, 3),), io.BytesIO())


def test_unconvertible_op_names_the_op(monkeypatch):
    from graphc.ir.ops import Op
    from graphc.onnx import convert

    monkeypatch.delitem(convert.CONVERTERS, Op.TANH)
    with pytest.raises(ExportError, match="'tanh' has no ONNX conversion"):
        graphc.onnx.export(small(), (graphc.randn(2, 3),), io.BytesIO())


def test_scatter_add_needs_opset_16():
    def fn(x, i):
        return graphc.zeros(2, 4).scatter_add(1, i, x)

    args = (graphc.randn(2, 2), graphc.tensor(np.array([[0, 3], [1, 1]])))
    with pytest.raises(ExportError, match="opset_version >= 16"):
        graphc.onnx.export(fn, args, io.BytesIO(), opset_version=15)
    _, got, expected = export_and_run(fn, args, opset_version=16)
    assert_matches(got, expected)


@pytest.mark.parametrize("opset", [13, 18, 20])
def test_other_opsets(opset):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Softmax(1))
    proto, got, expected = export_and_run(model, (graphc.randn(1, 1, 6, 6),), opset_version=opset)
    assert_matches(got, expected)
    assert proto.opset_import[0].version == opset


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(opset_version=9), "opset_version must be"),
        (dict(input_names=["a", "b"]), "2 input_names for 1"),
        (dict(output_names=["y", "z"]), "2 output_names for 1 graph outputs"),
        (dict(input_names=["x", "x"]), "duplicate"),
        (dict(input_names=["y"], output_names=["y"]), "both an input and an output"),
        (dict(dynamic_axes={"nope": [0]}), "'nope', which is no input"),
        (dict(input_names=["x"], dynamic_axes={"x": [5]}), "out of range"),
        (dict(input_names=["0.weight"]), "both a parameter and an input"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        graphc.onnx.export(small(), (graphc.randn(2, 3),), io.BytesIO(), **kwargs)


def test_model_returning_no_traced_tensor():
    with pytest.raises(ExportError, match="returned no tensor"):
        graphc.onnx.export(lambda x: 3, (graphc.randn(2),), io.BytesIO())


def test_missing_onnx_package_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail
    with pytest.raises(ImportError, match=r"pip install 'onnx>=1.15' \(or graphc\[onnx\]\)"):
        graphc.onnx.export(small(), (graphc.randn(2, 3),), io.BytesIO())
