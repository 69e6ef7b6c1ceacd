"""The non-differentiable additions of graphc/_more_*.py against PyTorch:
in-place `op_` forms and their dtype rule, integer and bool functions,
special values of the inverse trigonometric functions, window functions,
index sets, Tensor attributes, print options, and torch's errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from frontend_helpers import GRAPHC_DTYPE, assert_same, pair  # noqa: E402

import graphc  # noqa: E402

RNG = np.random.default_rng(2)
A34 = RNG.uniform(-2, 2, size=(3, 4))
B34 = RNG.uniform(-2, 2, size=(3, 4))


def _both(fn, *arrays, **kwargs):
    g = fn(graphc, *[graphc.tensor(a) for a in arrays], **kwargs)
    t = fn(torch, *[torch.tensor(a) for a in arrays], **kwargs)
    return g, t


# ---------------------------------------------------------------------------
# in-place forms

INPLACE_UNARY = [
    "atan",
    "asinh",
    "erfc",
    "lgamma",
    "digamma",
    "sinc",
    "deg2rad",
    "rad2deg",
    "cosh",
    "sinh",
    "exp2",
    "log2",
    "log10",
]
INPLACE_UNARY += ["sgn", "fix", "absolute", "negative", "tril", "triu", "arctan", "conj_physical"]
INPLACE_BINARY = ["atan2", "copysign", "hypot", "logical_xor", "eq", "ne", "lt", "le", "gt", "ge", "greater"]
INPLACE_BINARY += ["less_equal", "not_equal", "multiply", "divide", "true_divide", "subtract", "xlogy"]


@pytest.mark.parametrize("name", INPLACE_UNARY)
def test_inplace_unary_matches_torch(name):
    arr = np.abs(A34) if name in ("log2", "log10") else A34 / 3
    g, t = pair(arr.copy())
    assert getattr(g, name + "_")() is g
    getattr(t, name + "_")()
    assert_same(g, t, rtol=1e-12, atol=1e-13, what=name)


@pytest.mark.parametrize("name", INPLACE_BINARY)
def test_inplace_binary_matches_torch(name):
    g, t = pair(A34.copy())
    go, to = pair(np.abs(B34) if name == "xlogy" else B34)
    assert getattr(g, name + "_")(go) is g
    getattr(t, name + "_")(to)
    assert_same(g, t, rtol=1e-12, atol=1e-13, what=name)


def test_inplace_more_ops_match_torch():
    g, t = pair(A34.copy())
    g.cumsum_(1)
    t.cumsum_(1)
    assert_same(g, t, rtol=1e-12)
    g.renorm_(2, 0, 1.0)
    t.renorm_(2, 0, 1.0)
    assert_same(g, t, rtol=1e-12)
    gr, tr = pair(B34[0].copy())
    gm, tm = pair(np.eye(4) * 0.5)
    gr.addmv_(gm, graphc.tensor(A34[0]), alpha=2)
    tr.addmv_(tm, torch.tensor(A34[0]), alpha=2)
    assert_same(gr, tr, rtol=1e-12)
    gi, ti = graphc.tensor([[1, 2], [3, 4]]), torch.tensor([[1, 2], [3, 4]])
    gi.eq_(graphc.tensor([1, 4]))
    ti.eq_(torch.tensor([1, 4]))
    assert_same(gi, ti)


def test_inplace_dtype_rule_matches_torch():
    # A float result cannot be written into an integer tensor.
    gi, ti = graphc.tensor([1, 2, 3]), torch.tensor([1, 2, 3])
    for name in ("atan_", "log2_", "deg2rad_"):
        with pytest.raises(RuntimeError, match="can't be cast"):
            getattr(ti, name)()
        with pytest.raises(RuntimeError, match="can't be cast"):
            getattr(gi, name)()
    # A comparison's bool result can.
    gi.lt_(2)
    ti.lt_(2)
    assert gi.tolist() == ti.tolist()
    # float_power_ needs a float64 base.
    with pytest.raises(RuntimeError, match="float_power_ has dtype Float"):
        torch.ones(2).float_power_(2)
    with pytest.raises(RuntimeError, match="float_power_ has dtype Float"):
        graphc.ones(2).float_power_(2)
    g, t = pair(np.array([1.5, 2.0]))
    g.float_power_(3)
    t.float_power_(3)
    assert_same(g, t)


def test_inplace_records_gradient():
    g, t = pair(A34 / 3, requires_grad=True)
    ga, ta = g * 1.0, t * 1.0
    ga.atan_()
    ta.atan_()
    ga.sum().backward()
    ta.sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_inplace_on_leaf_requiring_grad_raises():
    g = graphc.tensor([0.5], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        g.asin_()


# ---------------------------------------------------------------------------
# special values


SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 1e30, 0.5, -2.0])


SPECIAL_NAMES = ["atan", "asin", "acos", "asinh", "acosh", "atanh", "erfc", "sinc", "signbit", "lgamma", "digamma"]


@pytest.mark.parametrize("name", SPECIAL_NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_match_torch(name, dtype):
    g, t = _both(lambda m, x: getattr(m, name)(x), SPECIAL.astype(dtype))
    # torch's own float32 digamma is good to ~4e-7 only.
    # (lgamma is ~1e-15 rather than 0 at 1 and 2.)
    tol = dict(rtol=1e-6, atol=1e-14) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(g.numpy(), t.numpy(), err_msg=name, **tol)
    # The sign of zero and infinite results (a NaN's sign means nothing).
    if g.dtype.is_float:
        real = ~np.isnan(t.numpy())
        np.testing.assert_array_equal(np.signbit(g.numpy()[real]), np.signbit(t.numpy()[real]), err_msg=name)


def test_atan2_quadrants_and_signed_zeros_match_torch():
    vals = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 3.0])
    y, x = np.meshgrid(vals, vals)
    g, t = _both(lambda m, a, b: m.atan2(a, b), y, x)
    np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-15, atol=0)
    real = ~np.isnan(t.numpy())
    np.testing.assert_array_equal(np.signbit(g.numpy()[real]), np.signbit(t.numpy()[real]))


@pytest.mark.parametrize("name", ["atan", "asin", "acos", "asinh", "acosh", "atanh", "erfc", "lgamma", "digamma"])
def test_float32_accuracy_within_few_ulp(name):
    lo, hi = {"acosh": (1.0, 1e4), "asin": (-1, 1), "acos": (-1, 1), "atanh": (-1, 1)}.get(name, (-50, 50))
    x = RNG.uniform(lo, hi, size=2000).astype(np.float32)
    got = getattr(graphc, name)(graphc.tensor(x)).numpy()
    want = getattr(torch, name)(torch.tensor(x, dtype=torch.float64)).numpy()
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    ok = np.isfinite(want)
    err = np.abs(got[ok] - want[ok]) / ulp[ok]
    assert err.max() <= 4, f"{name}: {err.max()} ulp"


def test_compiled_special_functions_match_eager():
    x = graphc.tensor(SPECIAL)
    y = graphc.tensor(SPECIAL[::-1].copy())

    @graphc.compile
    def f(x, y):
        return graphc.atan2(x, y), graphc.asinh(x), graphc.erfc(x), graphc.signbit(x), graphc.copysign(y, x)

    for _ in range(2):
        for g, e in zip(f(x, y), [graphc.atan2(x, y), x.asinh(), x.erfc(), x.signbit(), y.copysign(x)]):
            np.testing.assert_array_equal(g.numpy(), e.numpy())


# ---------------------------------------------------------------------------
# integer and bool functions


def test_integer_functions_match_torch():
    ai = np.array([[3, -7, 0, 12], [5, 1, -2, 9]])
    for fn in (
        lambda m, x: m.bitwise_left_shift(x, m.tensor([[0, 1, 5, 3], [62, 63, 2, 64]])),
        lambda m, x: x >> m.tensor([[0, 1, 5, 3], [62, 63, 2, 64]]),
        lambda m, x: m.signbit(x),
        lambda m, x: m.deg2rad(x),
        lambda m, x: m.xlogy(x, 2),
        lambda m, x: m.copysign(x, -1),
        lambda m, x: m.vander(x[0], 3),
        lambda m, x: m.matrix_power(x[:, :2], 3),
        lambda m, x: m.cross(x[:, :3], x[:, 1:], dim=1),
        lambda m, x: m.take(x, m.tensor([7, -1])),
        lambda m, x: m.isin(x, m.tensor([0, 5, 9])),
        lambda m, x: m.isin(x, 3, invert=True),
        lambda m, x: m.angle(x),
        lambda m, x: m.isposinf(x) | m.isneginf(x) | ~m.isreal(x),
        lambda m, x: m.bincount(x.flatten().abs()),
        lambda m, x: m.bincount(x[0].abs(), minlength=20),
        lambda m, x: m.unravel_index(x[0].abs(), (3, 5)),
        lambda m, x: m.cov(x),
    ):
        g, t = _both(fn, ai)
        assert_same(g, t, rtol=1e-6)


def test_uint8_shift_wraps_like_torch():
    g, t = _both(lambda m, x: (x << 7, x >> 1), np.array([1, 2, 255], dtype=np.uint8))
    assert_same(g, t)


def test_histc_and_weighted_bincount_match_torch():
    x = RNG.normal(size=200).astype(np.float32)
    assert_same(graphc.histc(graphc.tensor(x), bins=7), torch.histc(torch.tensor(x), bins=7))
    assert_same(graphc.tensor(x).histc(5, -1, 1), torch.tensor(x).histc(5, -1, 1))
    idx, w = np.array([0, 2, 2, 5]), np.array([0.5, 1.0, 2.0, 0.25])
    for wd in (np.float32, np.float64):
        g = graphc.bincount(graphc.tensor(idx), graphc.tensor(w.astype(wd)))
        t = torch.bincount(torch.tensor(idx), torch.tensor(w.astype(wd)))
        assert_same(g, t)


def test_index_sets_match_torch():
    for args in [(3, 3), (4, 5, 1), (5, 3, -2), (0, 3), (3, 4, 10)]:
        assert_same(graphc.tril_indices(*args), torch.tril_indices(*args))
        assert_same(graphc.triu_indices(*args), torch.triu_indices(*args))
    assert_same(graphc.combinations(graphc.tensor([1, 2, 3]), 0), torch.combinations(torch.tensor([1, 2, 3]), 0))
    assert_same(graphc.combinations(graphc.tensor([1, 2]), 3), torch.combinations(torch.tensor([1, 2]), 3))


def test_fill_diagonal_matches_torch():
    for shape, wrap in [((3, 3), False), ((7, 3), False), ((7, 3), True), ((3, 5), False), ((3, 3, 3), False)]:
        g, t = pair(np.zeros(shape))
        g.fill_diagonal_(2.5, wrap=wrap)
        t.fill_diagonal_(2.5, wrap=wrap)
        assert_same(g, t)


def test_put_and_index_put_inplace_match_torch():
    g, t = pair(A34.copy())
    g.index_put_((graphc.tensor([0, 0, 2]), graphc.tensor([1, 1, 3])), graphc.tensor(5.0).double(), accumulate=True)
    t.index_put_((torch.tensor([0, 0, 2]), torch.tensor([1, 1, 3])), torch.tensor(5.0).double(), accumulate=True)
    assert_same(g, t)
    g.put_(graphc.tensor([0, 11]), graphc.tensor([7.0, 8.0]))
    t.put_(torch.tensor([0, 11]), torch.tensor([7.0, 8.0], dtype=torch.float64))
    assert_same(g, t)
    mask = A34 > 0
    src = np.arange(12.0)
    g.masked_scatter_(graphc.tensor(mask), graphc.tensor(src))
    t.masked_scatter_(torch.tensor(mask), torch.tensor(src))
    assert_same(g, t)


# ---------------------------------------------------------------------------
# creation and module-level utilities


@pytest.mark.parametrize(
    "name", ["hann_window", "hamming_window", "bartlett_window", "blackman_window", "kaiser_window"]
)
@pytest.mark.parametrize("length", [0, 1, 2, 7, 16])
@pytest.mark.parametrize("periodic", [True, False])
def test_windows_match_torch(name, length, periodic):
    for dtype in (None, graphc.float64):
        g = getattr(graphc, name)(length, periodic, dtype=dtype)
        t = getattr(torch, name)(length, periodic, dtype=None if dtype is None else torch.float64)
        assert_same(g, t, rtol=1e-6, atol=1e-6, what=name)


def test_window_rejects_integer_dtype():
    with pytest.raises(RuntimeError, match="floating point"):
        graphc.hann_window(4, dtype=graphc.int64)


def test_range_and_asarray_and_frombuffer_match_torch():
    with pytest.warns(UserWarning):
        t = torch.range(1, 4, 0.5)
    assert_same(graphc.range(1, 4, 0.5), t)
    arr = np.arange(6.0)
    g = graphc.asarray(arr)
    arr[0] = 42.0
    assert g[0].item() == 42.0  # shares memory, as torch.asarray does
    assert_same(graphc.asarray([1, 2]), torch.asarray([1, 2]))
    x = graphc.ones(3)
    assert graphc.asarray(x) is x
    assert graphc.asarray(x, copy=True) is not x
    buf = bytearray(np.arange(4, dtype=np.int32).tobytes())
    assert_same(
        graphc.frombuffer(buf, dtype=graphc.int32, offset=4, count=2),
        torch.frombuffer(bytearray(buf), dtype=torch.int32, offset=4, count=2),
    )


def test_dtype_rules_match_torch():
    names = ["float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"]
    for a in names:
        for b in names:
            ga, gb = getattr(graphc, a), getattr(graphc, b)
            ta, tb = getattr(torch, a), getattr(torch, b)
            assert getattr(torch, graphc.promote_types(ga, gb).name) == torch.promote_types(ta, tb)
            assert graphc.can_cast(ga, gb) == torch.can_cast(ta, tb), (a, b)
    assert GRAPHC_DTYPE[torch.float32] is graphc.float32


def test_settings_round_trip():
    assert not graphc.are_deterministic_algorithms_enabled()
    graphc.use_deterministic_algorithms(True, warn_only=True)
    assert graphc.are_deterministic_algorithms_enabled()
    assert graphc.is_deterministic_algorithms_warn_only_enabled()
    graphc.use_deterministic_algorithms(False)
    assert not graphc.are_deterministic_algorithms_enabled()
    n = graphc.get_num_interop_threads()
    graphc.set_num_interop_threads(3)
    assert graphc.get_num_interop_threads() == 3
    graphc.set_num_interop_threads(n)
    with pytest.raises(RuntimeError, match="positive"):
        graphc.set_num_interop_threads(0)


def test_set_printoptions_matches_torch():
    data = [[1.123456789, 200.5, 3.0], [4.25, 5e-3, 6.0]]
    big = np.arange(40.0, dtype=np.float32)
    settings = [
        dict(precision=2),
        dict(precision=6, sci_mode=True),
        dict(sci_mode=False),
        dict(threshold=10, edgeitems=2),
        dict(linewidth=30),
        dict(profile="short"),
    ]
    try:
        for kw in settings:
            torch.set_printoptions(**kw)
            graphc.set_printoptions(**kw)
            for arr in (data, big):
                want = repr(torch.tensor(arr)).replace("torch.", "graphc.")
                assert repr(graphc.tensor(arr)) == want, kw
            torch.set_printoptions(profile="default", sci_mode=None)
            graphc.set_printoptions(profile="default", sci_mode=None)
    finally:
        torch.set_printoptions(profile="default", sci_mode=None)
        graphc.set_printoptions(profile="default", sci_mode=None)


# ---------------------------------------------------------------------------
# Tensor attributes


def test_tensor_attributes_match_torch():
    arr = np.arange(12, dtype=np.int16).reshape(3, 4)
    g, t = graphc.tensor(arr), torch.tensor(arr)
    for name in ("itemsize", "nbytes", "is_nested", "is_sparse_csr", "is_mkldnn"):
        assert getattr(g, name) == getattr(t, name), name
    assert repr(g.layout) == "graphc.strided" and graphc.strided is g.layout
    for name in ("is_signed", "get_device", "is_pinned", "is_complex", "is_conj", "is_neg", "is_inference"):
        assert getattr(g, name)() == getattr(t, name)(), name
    assert graphc.tensor([1], dtype=graphc.uint8).is_signed() is False
    assert g.stride() == t.stride() and g.t().stride() == t.t().stride() and g.stride(-1) == t.stride(-1)
    assert g[:, ::2].stride() == t[:, ::2].stride()
    assert g.t().dim_order() == t.t().dim_order()
    assert g.is_same_size(graphc.zeros(3, 4)) and not g.is_same_size(graphc.zeros(4, 3))
    assert g.char().dtype is graphc.int8
    assert g.data_ptr() == g.numpy().ctypes.data == g.const_data_ptr()
    assert g.new_empty(2, 5).shape == (2, 5) and g.new_empty((2,)).dtype is graphc.int16
    assert g.real is g and g.conj() is g
    with pytest.raises(RuntimeError, match="imag is not implemented"):
        _ = g.imag
    assert graphc.tensor([2.0]).is_nonzero() and not graphc.tensor([[0]]).is_nonzero()
    with pytest.raises(RuntimeError, match="more than one value"):
        g.is_nonzero()
    assert g.pin_memory().tolist() == arr.tolist()
    assert g.unsafe_split_with_sizes([1, 2])[1].shape == (2, 4)


def test_map_and_apply_match_torch():
    g, t = pair(A34.copy())
    g.apply_(lambda v: v * 2 + 1)
    t.apply_(lambda v: v * 2 + 1)
    assert_same(g, t)
    go, to = pair(B34[0].copy())
    g.map_(go, lambda a, b: max(a, b))
    t.map_(to, lambda a, b: max(a, b))
    assert_same(g, t)


# ---------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "fn",
    [
        lambda m: m.atan2(m.ones(2), 1.0),
        lambda m: m.cross(m.ones(2, 4), m.ones(2, 4)),
        lambda m: m.cdist(m.ones(3), m.ones(3)),
        lambda m: m.cdist(m.ones(2, 3), m.ones(2, 4)),
        lambda m: m.addr(m.ones(2, 2), m.ones(2, 1), m.ones(2)),
        lambda m: m.chain_matmul(m.ones(2)),
        lambda m: m.vander(m.ones(2, 2)),
        lambda m: m.hsplit(m.ones(2, 5), 2),
        lambda m: m.vsplit(m.ones(4), 2),
        lambda m: m.tensor_split(m.ones(()), 2),
        lambda m: m.select_scatter(m.ones(2, 3), m.ones(3), 1, 0),
        lambda m: m.slice_scatter(m.ones(4), m.ones(3), 0, 0, 4, 2),
        lambda m: m.diagonal_scatter(m.ones(3, 3), m.ones(2)),
        lambda m: m.diag_embed(m.ones(2), 0, 0, 0),
        lambda m: m.meshgrid(m.ones(2), m.ones(2, 2), indexing="ij"),
        lambda m: m.meshgrid(m.ones(2), indexing="yx"),
        lambda m: m.bincount(m.tensor([1, -1])),
        lambda m: m.bincount(m.ones(2)),
        lambda m: m.bitwise_left_shift(m.ones(2), 1),
        lambda m: m.cov(m.ones(2, 2, 2)),
        lambda m: m.take(m.ones(3), m.tensor([5])),
        lambda m: m.tensor([True]).positive(),
        lambda m: m.ones(3).unfold(0, 4, 1),
        lambda m: m.ones(3).adjoint(),
        lambda m: m.ones(3, 4).sum_to_size(2, 4),
        lambda m: m.ones(2, 2).float_power_(2),
        lambda m: m.tensor([1, 2]).atan_(),
        lambda m: m.mvlgamma(m.ones(2) * 5, 0),
    ],
)
def test_errors_match_torch(fn):
    with pytest.raises((RuntimeError, TypeError, IndexError, ValueError)) as want:
        fn(torch)
    with pytest.raises(want.type):
        fn(graphc)


def test_gradient_refuses_coordinate_tensors():
    with pytest.raises(NotImplementedError, match="scalar spacings"):
        graphc.gradient(graphc.ones(3), spacing=(graphc.tensor([0.0, 1.0, 3.0]),))


def test_matrix_power_negative_says_why():
    with pytest.raises(NotImplementedError, match="inverse"):
        graphc.matrix_power(graphc.eye(2), -1)


def test_atan_close_to_pi_quarter():
    assert graphc.atan(graphc.tensor([1.0], dtype=graphc.float64)).item() == pytest.approx(math.pi / 4, rel=1e-15)
