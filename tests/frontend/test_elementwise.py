"""Elementwise ops against torch: values, dtypes, broadcasting, promotion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from frontend_helpers import GRAPHC_DTYPE, TORCH_DTYPE, assert_same, pair
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc

RNG = np.random.default_rng(0)


def _data(shape, dtype, positive=False):
    if dtype == np.bool_:
        return RNG.random(shape) > 0.5
    if np.issubdtype(dtype, np.integer):
        lo = 1 if positive else -9
        return RNG.integers(lo, 10, shape).astype(dtype)
    x = RNG.standard_normal(shape).astype(dtype)
    return np.abs(x) + 0.1 if positive else x


# (name, graphc fn, torch fn, needs positive input)
UNARY = [
    ("neg", graphc.neg, torch.neg, False),
    ("abs", graphc.abs, torch.abs, False),
    ("exp", graphc.exp, torch.exp, False),
    ("log", graphc.log, torch.log, True),
    ("log2", graphc.log2, torch.log2, True),
    ("log1p", graphc.log1p, torch.log1p, True),
    ("sqrt", graphc.sqrt, torch.sqrt, True),
    ("rsqrt", graphc.rsqrt, torch.rsqrt, True),
    ("sin", graphc.sin, torch.sin, False),
    ("cos", graphc.cos, torch.cos, False),
    ("tan", graphc.tan, torch.tan, False),
    ("tanh", graphc.tanh, torch.tanh, False),
    ("sigmoid", graphc.sigmoid, torch.sigmoid, False),
    ("relu", graphc.relu, torch.relu, False),
    ("sign", graphc.sign, torch.sign, False),
    ("floor", graphc.floor, torch.floor, False),
    ("ceil", graphc.ceil, torch.ceil, False),
    ("trunc", graphc.trunc, torch.trunc, False),
    ("round", graphc.round, torch.round, False),
    ("reciprocal", graphc.reciprocal, torch.reciprocal, True),
    ("square", graphc.square, torch.square, False),
    ("erf", graphc.erf, torch.erf, False),
    ("expm1", graphc.expm1, torch.expm1, False),
    ("frac", graphc.frac, torch.frac, False),
]


# Ops whose integer-input behaviour is compared too (int -> float promotion
# for the transcendental ones, integer results for the others).
INT_OK = {
    "neg",
    "abs",
    "exp",
    "log",
    "log2",
    "log1p",
    "sqrt",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "sign",
    "square",
}
UNARY_CASES = [(*u, d) for u in UNARY for d in (np.float32, np.float64, np.int64) if d != np.int64 or u[0] in INT_OK]


@pytest.mark.parametrize(
    "name,gfn,tfn,positive,dtype",
    UNARY_CASES,
    ids=[f"{c[0]}-{np.dtype(c[4]).name}" for c in UNARY_CASES],
)
def test_unary_matches_torch(name, gfn, tfn, positive, dtype):
    arr = _data((3, 4), dtype, positive)
    if name == "round":
        arr = np.array(
            [[0.5, 1.5, 2.5, -0.5], [-1.5, 2.4, 2.6, -2.6], [0.0, 3.5, -3.5, 7.2]],
            dtype=dtype,
        )
    g, t = pair(arr)
    tol = 2e-6 if name == "erf" else 1e-5
    assert_same(gfn(g), tfn(t), rtol=tol, atol=tol, what=name)


BINARY = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("truediv", lambda a, b: a / b),
    ("floordiv", lambda a, b: a // b),
    ("mod", lambda a, b: a % b),
    (
        "maximum",
        lambda a, b: (graphc if isinstance(a, graphc.Tensor) else torch).maximum(a, b),
    ),
    (
        "minimum",
        lambda a, b: (graphc if isinstance(a, graphc.Tensor) else torch).minimum(a, b),
    ),
    ("eq", lambda a, b: a == b),
    ("ne", lambda a, b: a != b),
    ("lt", lambda a, b: a < b),
    ("le", lambda a, b: a <= b),
    ("gt", lambda a, b: a > b),
    ("ge", lambda a, b: a >= b),
]


@pytest.mark.parametrize("name,fn", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize(
    "dtypes",
    [
        (np.float32, np.float32),
        (np.int64, np.int64),
        (np.int32, np.float64),
        (np.int64, np.int32),
    ],
)
def test_binary_matches_torch_with_broadcasting(name, fn, dtypes):
    a = _data((2, 3, 4), dtypes[0])
    b = _data((3, 1), dtypes[1], positive=name in ("floordiv", "mod", "truediv"))
    if name in ("floordiv", "mod", "truediv"):
        b = b * np.where(RNG.random(b.shape) > 0.5, 1, -1).astype(b.dtype)
        a = np.where(a == 0, 1, a).astype(a.dtype)
    ga, ta = pair(a)
    gb, tb = pair(b)
    assert_same(fn(ga, gb), fn(ta, tb), what=name)
    assert_same(fn(gb, ga), fn(tb, ta), what=name + " reversed")


@pytest.mark.parametrize("scalar", [2, 2.5, True, -3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_])
def test_python_scalar_promotion(scalar, dtype):
    arr = _data((4,), dtype, positive=True)
    g, t = pair(arr)
    for op in (
        lambda a, s: a + s,
        lambda a, s: s * a,
        lambda a, s: a / s,
        lambda a, s: a == s,
    ):
        if dtype == np.bool_ and isinstance(scalar, bool):
            continue
        assert_same(op(g, scalar), op(t, scalar), what=f"{dtype} with {scalar!r}")


def test_zero_dim_tensor_promotion():
    a = graphc.ones(3, dtype=graphc.int32)
    assert (a + graphc.tensor(1)).dtype is graphc.int32
    assert (a + graphc.tensor(1.0, dtype=graphc.float64)).dtype is graphc.float64
    assert (graphc.ones(3) + graphc.tensor(1.0, dtype=graphc.float64)).dtype is graphc.float32
    assert (graphc.ones(3, dtype=graphc.uint8) + graphc.ones(3, dtype=graphc.int8)).dtype is graphc.int16


DTYPES = [np.bool_, np.uint8, np.int32, np.int64, np.float32, np.float64]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 3), min_size=0, max_size=3),
    st.lists(st.integers(1, 3), min_size=0, max_size=3),
    st.sampled_from(DTYPES),
    st.sampled_from(DTYPES),
    st.data(),
)
def test_broadcast_and_promotion_property(shape_a, shape_b, da, db, data):
    # Make the shapes broadcastable by turning some sizes into 1.
    n = min(len(shape_a), len(shape_b))
    for i in range(1, n + 1):
        if shape_a[-i] != shape_b[-i] and data.draw(st.booleans()):
            shape_a[-i] = 1
        elif shape_a[-i] != shape_b[-i]:
            shape_b[-i] = 1
    a = _data(tuple(shape_a), da)
    b = _data(tuple(shape_b), db)
    ga, ta = pair(a)
    gb, tb = pair(b)
    out_t = torch.maximum(ta, tb) if ta.dtype != torch.bool or tb.dtype != torch.bool else ta | tb
    assert graphc.result_type(ga, gb) is GRAPHC_DTYPE[torch.result_type(ta, tb)]
    got = graphc.maximum(ga, gb)
    assert tuple(got.shape) == np.broadcast_shapes(a.shape, b.shape)
    assert TORCH_DTYPE[got.dtype] == out_t.dtype
    np.testing.assert_array_equal(got.numpy(), out_t.numpy())


def test_logical_and_bitwise_on_bool():
    a = graphc.tensor([True, False, True])
    b = graphc.tensor([True, True, False])
    assert (a & b).tolist() == [True, False, False]
    assert (a | b).tolist() == [True, True, True]
    assert (~a).tolist() == [False, True, False]
    assert (a ^ b).tolist() == [False, True, True]


def test_where_clamp_pow():
    x = np.linspace(-2, 2, 9).astype(np.float32)
    g, t = pair(x)
    assert_same(graphc.where(g > 0, g, 0.5), torch.where(t > 0, t, 0.5))
    assert_same(g.clamp(-1, 1), t.clamp(-1, 1))
    assert_same(g.clamp(min=0.5), t.clamp(min=0.5))
    assert_same(g.clamp(max=graphc.zeros(9)), t.clamp(max=torch.zeros(9)))
    assert_same(g**2, t**2)
    assert_same(2**g, 2**t)
    assert_same(g.abs() ** 0.5, t.abs() ** 0.5)
    gi, ti = pair(np.array([1, 2, 3]))
    assert_same(gi**2, ti**2)
    assert_same(gi**3, ti**3)


def test_inplace_ops_modify_the_tensor_and_shared_views():
    arr = np.zeros(3, dtype=np.float32)
    x = graphc.from_numpy(arr)
    x.add_(1)
    x *= 3
    x.clamp_(max=2)
    np.testing.assert_array_equal(arr, [2, 2, 2])
    v = x.view(3)
    v.fill_(5)
    assert x.tolist() == [5, 5, 5]
    x.zero_()
    assert arr.tolist() == [0, 0, 0]


def test_inplace_int_tensor_rejects_float_result():
    x = graphc.ones(3, dtype=graphc.int64)
    with pytest.raises(graphc.errors.DTypeError, match="can't be cast"):
        x.mul_(1.5)
