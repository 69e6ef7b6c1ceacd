"""dynamic_axes: the exported model runs at other sizes of the marked dims."""

from __future__ import annotations

import io

import numpy as np
import pytest
from onnx_testutil import assert_matches, export_and_run, session
from test_export_models import CNN, EncoderLayer

import graphc
import graphc.nn as nn
from graphc.onnx import ExportError
from graphc.onnx.symbolic import Poly, _fit


def dim_params(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_cnn_dynamic_batch_runs_at_other_batch_sizes():
    graphc.manual_seed(0)
    model = CNN()
    axes = {"x": {0: "batch"}, "y": {0: "batch"}}
    kw = dict(input_names=["x"], output_names=["y"], dynamic_axes=axes)
    for batch in (1, 7):
        proto, got, expected = export_and_run(model, (graphc.randn(2, 3, 8, 8),), (graphc.randn(batch, 3, 8, 8),), **kw)
        assert_matches(got, expected)
    assert dim_params(proto.graph.input[0]) == ["batch", 3, 8, 8]
    assert dim_params(proto.graph.output[0]) == ["batch", 5]


def test_transformer_dynamic_batch_and_sequence():
    graphc.manual_seed(1)
    model = EncoderLayer()
    axes = {"x": {0: "batch", 1: "seq"}}
    x = graphc.randn(2, 5, 16)
    for feed in (graphc.randn(3, 7, 16), graphc.randn(1, 2, 16)):
        proto, got, expected = export_and_run(model, (x,), (feed,), input_names=["x"], dynamic_axes=axes)
        assert_matches(got, expected)
    assert dim_params(proto.graph.input[0]) == ["batch", "seq", 16]


def test_causal_mask_built_inside_has_dynamic_size():
    # tril over the sequence: an IOTA whose shape depends on the dynamic size.
    def fn(x):
        scores = x @ x.transpose(1, 2)
        return graphc.tril(scores).softmax(-1)

    x = graphc.randn(2, 4, 3)
    for feed in (graphc.randn(2, 6, 3), graphc.randn(5, 1, 3)):
        proto, got, expected = export_and_run(fn, (x,), (feed,), input_names=["x"], dynamic_axes={"x": [0, 1]})
        assert_matches(got, expected)
    assert "Range" in {n.op_type for n in proto.graph.node}
    assert dim_params(proto.graph.input[0]) == ["x_dynamic_axes_1", "x_dynamic_axes_2", 3]


class PositionalEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(20, 8), nn.Embedding(32, 8)

    def forward(self, idx):
        t = idx.shape[1]
        angles = graphc.arange(t, dtype=graphc.float32).reshape(t, 1) / 10.0
        return self.tok(idx) + self.pos(graphc.arange(t)) + angles.sin()


def test_arange_of_a_dynamic_size_becomes_range():
    graphc.manual_seed(5)
    model = PositionalEmbedding()
    idx = graphc.randint(0, 20, (2, 5))
    for feed in (graphc.randint(0, 20, (3, 9)), graphc.randint(0, 20, (1, 1))):
        proto, got, expected = export_and_run(
            model, (idx,), (feed,), input_names=["idx"], dynamic_axes={"idx": {0: "batch", 1: "seq"}}
        )
        assert_matches(got, expected)
    assert "Range" in {n.op_type for n in proto.graph.node}


def test_lstm_dynamic_batch_with_token_input():
    graphc.manual_seed(2)
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 2))
    tokens = graphc.tensor(np.array([[1, 2, 3], [4, 5, 9]], dtype=np.int64))
    feed = graphc.tensor(np.arange(15, dtype=np.int64).reshape(5, 3) % 10)
    _, got, expected = export_and_run(model, (tokens,), (feed,), input_names=["t"], dynamic_axes={"t": [0]})
    assert_matches(got, expected)


def test_static_export_rejects_another_batch_size():
    model = nn.Sequential(nn.Linear(4, 3), nn.Flatten(0))
    buf = io.BytesIO()
    graphc.onnx.export(model, (graphc.randn(2, 4),), buf)
    sess = session(buf.getvalue())
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        sess.run(None, {sess.get_inputs()[0].name: np.zeros((3, 4), np.float32)})


def test_dynamic_spatial_dim_through_strided_conv_is_a_clear_error():
    model = nn.Conv2d(1, 1, 3, stride=2)
    with pytest.raises(ExportError, match="dynamic"):
        graphc.onnx.export(model, (graphc.randn(1, 1, 9, 9),), io.BytesIO(), input_names=["x"], dynamic_axes={"x": [2]})


def test_value_that_depends_on_the_dynamic_size_is_a_clear_error():
    def fn(x):
        return x.mean(0)  # divides by the batch size: a constant that changes with it

    with pytest.raises(ExportError, match="changes with the dynamic size"):
        graphc.onnx.export(fn, (graphc.randn(3, 2),), io.BytesIO(), input_names=["x"], dynamic_axes={"x": [0]})


def test_fit_recovers_products_of_sizes():
    # 4*b*t + 3*b - 2 from the four corners b in {5, 6}, t in {11, 12}.
    def f(b, t):
        return 4 * b * t + 3 * b - 2

    values = {(i, j): f(5 + i, 11 + j) for i in (0, 1) for j in (0, 1)}
    poly = _fit(values, ["b", "t"], {"b": 5, "t": 11})
    assert poly == Poly({("b", "t"): 4, ("b",): 3, (): -2})
    assert poly.evaluate({"b": 9, "t": 2}) == f(9, 2)
    assert _fit({(0,): 7, (1,): 7}, ["b"], {"b": 5}) == 7


def test_unrolled_loop_over_a_dynamic_axis_is_a_clear_error():
    model = nn.LSTM(4, 3, batch_first=True)
    with pytest.raises(ExportError, match="built a different graph"):
        graphc.onnx.export(model, (graphc.randn(2, 5, 4),), io.BytesIO(), input_names=["x"], dynamic_axes={"x": [1]})
