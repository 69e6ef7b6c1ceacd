"""Every IR primitive an nn layer can produce converts to ONNX ops that
ONNX Runtime runs to graphc's result (one row per primitive and dtype)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_testutil import assert_matches, export_and_run

import graphc
import graphc.nn.functional as F
from graphc._trace import trace
from graphc.ir.ops import Op
from graphc.onnx.convert import _LAZY, CONVERTERS

rng = np.random.default_rng(0)


def f32(*shape):
    return graphc.tensor(rng.standard_normal(shape).astype(np.float32))


def pos(*shape):
    return graphc.tensor(rng.uniform(0.5, 2.0, shape).astype(np.float32))


def ints(*shape, dtype=np.int64, low=-5, high=6):
    return graphc.tensor(rng.integers(low, high, shape).astype(dtype))


# (name, function, inputs, IR op the function must produce)
CASES = [
    ("neg", lambda x: -x, (f32(2, 3),), Op.NEG),
    ("recip", lambda x: x.reciprocal(), (pos(2, 3),), Op.RECIP),
    ("exp", lambda x: x.exp(), (f32(2, 3),), Op.EXP),
    ("log", lambda x: x.log(), (pos(2, 3),), Op.LOG),
    ("sqrt", lambda x: x.sqrt(), (pos(2, 3),), Op.SQRT),
    ("sin_cos", lambda x: x.sin() + x.cos(), (f32(2, 3),), Op.SIN),
    ("tanh", lambda x: x.tanh(), (f32(2, 3),), Op.TANH),
    ("erf", lambda x: graphc.erf(x), (f32(2, 3),), Op.ERF),
    ("floor", lambda x: (x * 3).floor(), (f32(2, 3),), Op.FLOOR),
    ("not_and_or", lambda x, y: ~((x > 0) & (y > 0)) | (x > y), (f32(2, 3), f32(2, 3)), Op.NOT),
    ("cast", lambda x: (x * 4).to(graphc.int32), (f32(2, 3),), Op.CAST),
    ("add_sub_mul_div", lambda x, y: (x + y) * x - y / (y.abs() + 1), (f32(2, 3), f32(3)), Op.DIV),
    ("pow", lambda x, y: x**y, (pos(2, 3), f32(2, 3)), Op.POW),
    ("max_min", lambda x, y: graphc.maximum(x, y) - graphc.minimum(x, y), (f32(2, 3), f32(2, 3)), Op.MAX),
    ("where", lambda x, y: graphc.where(x < y, x, y * 2), (f32(2, 3), f32(2, 3)), Op.WHERE),
    ("relu_nan", lambda x: F.relu(x), (graphc.tensor(np.array([np.nan, -1.0, 0.0, 2.0], np.float32)),), Op.WHERE),
    ("cmpeq", lambda x, y: x == y, (ints(2, 3), ints(2, 3)), Op.CMPEQ),
    ("sum_keepdim", lambda x: x.sum(1, keepdim=True) + x.sum(), (f32(2, 3, 4),), Op.SUM),
    ("amax", lambda x: x.amax(dim=(0, 2)), (f32(2, 3, 4),), Op.REDUCE_MAX),
    ("prod", lambda x: x.prod(1), (pos(2, 3),), Op.PROD),
    ("argmax", lambda x: x.argmax(1), (f32(3, 5),), Op.ARGMAX),
    ("argsort", lambda x: x.argsort(1), (f32(3, 5),), Op.ARGSORT),
    ("atan2", lambda y, x: graphc.atan2(y, x), (f32(4, 5), f32(4, 5)), Op.ATAN2),
    (
        "atan2_axes",
        lambda y, x: graphc.atan2(y, x),
        (graphc.tensor([1.0, -1.0, 0.0, 2.0, -2.0]), graphc.tensor([0.0, 0.0, 3.0, -1.0, -1.0])),
        Op.ATAN2,
    ),
    ("argsort_descending", lambda x: x.argsort(0, descending=True), (f32(4, 3),), Op.ARGSORT),
    ("sort_values", lambda x: x.sort(1)[0], (f32(3, 6),), Op.ARGSORT),
    ("any_bool_reduce", lambda x: (x > 1).any(1), (f32(3, 5),), Op.REDUCE_MAX),
    ("reshape_permute", lambda x: x.reshape(4, 6).t().reshape(2, 2, 6), (f32(2, 3, 4),), Op.PERMUTE),
    ("expand", lambda x: x.expand(3, 2, 4) * 1.0, (f32(2, 1),), Op.EXPAND),
    ("slice_steps", lambda x: x[:, 1::2, :3], (f32(2, 5, 4),), Op.SLICE),
    ("pad", lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), (f32(2, 3, 4),), Op.PAD),
    ("concat", lambda x, y: graphc.cat([x, y, x], dim=1), (f32(2, 3), f32(2, 1)), Op.CONCAT),
    ("dot_batched", lambda x, y: x @ y, (f32(2, 3, 4), f32(2, 4, 5)), Op.DOT),
    ("dot_broadcast", lambda x, y: x @ y, (f32(2, 3, 4), f32(4, 5)), Op.DOT),
    ("unfold", lambda x: F.unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)), (f32(2, 2, 5, 6),), Op.UNFOLD),
    (
        "fold",
        lambda x: F.fold(x, (5, 6), (2, 3), padding=1, stride=(2, 1), dilation=(1, 2)),
        (f32(2, 12, 12),),
        Op.FOLD,
    ),
    (
        "conv_transpose",
        lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1),
        (f32(1, 3, 4, 4), f32(3, 2, 3, 3)),
        Op.FOLD,
    ),
    ("gather", lambda x, i: graphc.gather(x, 1, i), (f32(3, 5), ints(2, 4, low=0, high=5)), Op.GATHER),
    (
        "scatter_add",
        lambda x, i: graphc.zeros(3, 6).scatter_add(1, i, x),
        (f32(3, 4), ints(3, 4, low=0, high=6)),
        Op.SCATTER_ADD,
    ),
    (
        "iota_tril_flip",
        lambda x: graphc.tril(x, -1) + x.flip(1) + graphc.tensor([1.0, 2.0, 3.0, 4.0]),
        (f32(3, 4),),
        Op.IOTA,
    ),
    (
        "int64_trunc_div",
        lambda x, y: graphc.div(x, y, rounding_mode="trunc"),
        (ints(3, 4), ints(3, 4, low=1, high=4)),
        Op.DIV,
    ),
    (
        "int8_arith",
        lambda x, y: graphc.maximum(x * y, y) - x,
        (ints(3, 4, dtype=np.int8), ints(3, 4, dtype=np.int8)),
        Op.MAX,
    ),
    (
        "int32_cmplt_sum",
        lambda x, y: (x < y).sum(1) + x.sum(1),
        (ints(3, 4, dtype=np.int32), ints(3, 4, dtype=np.int32)),
        Op.CMPLT,
    ),
    ("float64", lambda x: (x * x).sum(0).sqrt(), (graphc.tensor(rng.standard_normal((3, 4))),), Op.SQRT),
]


# Windows: the conv and max-pool patterns become Conv and MaxPool (the ONNX
# op listed); anything else stays unfold + reductions.
WINDOWS = [
    ("conv_stride_pad_dilation", lambda x, w: F.conv2d(x, w, stride=2, padding=(1, 2), dilation=(2, 1)), "Conv"),
    ("conv_groups", lambda x, w: F.conv2d(x.repeat(1, 2, 1, 1), w.repeat(2, 1, 1, 1), groups=2), "Conv"),
    ("conv_same", lambda x, w: F.conv2d(x, w[:, :, :2, :2], padding="same"), "Conv"),
    ("conv1d", lambda x, w: F.conv1d(x[:, :, 0], w[:, :, 0], stride=2, padding=1), "Conv"),
    ("max_pool_pad_stride", lambda x, w: F.max_pool2d(x, 3, stride=2, padding=1), "MaxPool"),
    ("max_pool_ceil", lambda x, w: F.max_pool2d(x, 2, ceil_mode=True), "MaxPool"),
    ("max_pool_dilation", lambda x, w: F.max_pool2d(x, 2, stride=1, dilation=2), "MaxPool"),
    ("max_pool_indices", lambda x, w: F.max_pool2d(x, 2, return_indices=True), "MaxPool"),
    ("max_pool1d", lambda x, w: F.max_pool1d(x[:, :, 0], 2), "MaxPool"),
    ("avg_pool", lambda x, w: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False), "ReduceSum"),
    ("adaptive_avg_pool", lambda x, w: F.adaptive_avg_pool2d(x, (2, 3)), "MatMul"),
]


@pytest.mark.parametrize("name,fn,onnx_op", WINDOWS, ids=[c[0] for c in WINDOWS])
def test_windows(name, fn, onnx_op):
    args = (f32(2, 3, 7, 9), f32(4, 3, 3, 3))
    proto, got, expected = export_and_run(fn, args)
    assert_matches(got, expected)
    ops = {n.op_type for n in proto.graph.node}
    assert onnx_op in ops, f"{name}: expected {onnx_op} among {sorted(ops)}"
    if onnx_op in ("Conv", "MaxPool") and name != "max_pool_indices":
        assert not ops & {"Concat", "GatherElements", "ArgMax"}, f"{name}: the pattern left {sorted(ops)}"


@pytest.mark.parametrize("name,fn,inputs,op", CASES, ids=[c[0] for c in CASES])
def test_op_matches_graphc(name, fn, inputs, op):
    assert op in {n.op for n in trace(fn, *inputs).nodes}, f"{name} no longer produces {op.value}"
    _, got, expected = export_and_run(fn, inputs, do_constant_folding=False)
    assert_matches(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,fn,inputs,op", CASES[:8] + CASES[-6:], ids=[c[0] for c in CASES[:8] + CASES[-6:]])
def test_op_matches_with_constant_folding(name, fn, inputs, op):
    _, got, expected = export_and_run(fn, inputs)
    assert_matches(got, expected, rtol=1e-5, atol=1e-6)


def test_every_primitive_has_a_conversion():
    # INPUT becomes a graph input or an initializer; the lazy ops convert on
    # use; ATTENTION is expanded to its formula (passes/lower.py) first.
    converted_elsewhere = (Op.INPUT, Op.ATTENTION)
    missing = [op for op in Op if op not in CONVERTERS and op not in _LAZY and op not in converted_elsewhere]
    assert not missing, f"no ONNX conversion for {[op.value for op in missing]}"


def test_constant_subgraph_is_folded():
    def fn(x):
        mask = graphc.tril(graphc.ones(4, 4)) > 0
        return graphc.where(mask, x, graphc.zeros(4, 4))

    x = f32(4, 4)
    proto, got, expected = export_and_run(fn, (x,))
    assert_matches(got, expected)
    assert {n.op_type for n in proto.graph.node} == {"Where"}  # the mask is one initializer
    unfolded, got, expected = export_and_run(fn, (x,), do_constant_folding=False)
    assert_matches(got, expected)
    assert len(unfolded.graph.node) > 1
