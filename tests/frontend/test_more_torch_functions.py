"""isclose/allclose, dist, nanmean, logaddexp, hypot, sinh/cosh, heaviside,
norm and graphc.linalg's norms, diag/diagonal/trace, kron, tensordot, vdot,
block_diag, column/dstack, atleast_nd, diff and rot90 against PyTorch:
values in float32 and float64, float64 gradients, and the compiled path.

Each case is written once against a module `m` (graphc or torch, which
share the API) and run on both."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from frontend_helpers import check_compiled_matches_eager, run_case

import graphc

RNG = np.random.default_rng(0)


def _arr(*shape, lo=-2.0, hi=2.0):
    return RNG.uniform(lo, hi, size=shape)


A23 = _arr(2, 3)
B23 = _arr(2, 3)
A34 = _arr(3, 4)
A234 = _arr(2, 3, 4)
V4 = _arr(4)
W4 = _arr(4)
SQ4 = _arr(4, 4)

# (id, fn(m, *tensors), input arrays). Every input takes a gradient unless
# the output does not depend on it smoothly (the inputs are away from the
# functions' kinks: norm at 0, ties of max/min, x == 0 for heaviside).
CASES = [
    ("sinh", lambda m, x: m.sinh(x), [A23]),
    ("cosh", lambda m, x: m.cosh(x), [A23]),
    ("sinh_method", lambda m, x: x.sinh() + x.cosh(), [A23]),
    ("logaddexp", lambda m, x, y: m.logaddexp(x, y), [A23, B23]),
    ("logaddexp_broadcast", lambda m, x, y: m.logaddexp(x, y), [A23, _arr(3)]),
    ("hypot", lambda m, x, y: m.hypot(x, y), [A23, B23]),
    # torch's heaviside has no derivative: its inputs are detached here.
    ("heaviside", lambda m, x, v: m.heaviside(x.detach(), v.detach()) * x * v, [A23, B23]),
    (
        "heaviside_zero",
        lambda m, x, v: m.heaviside(x.detach(), v.detach()) * (v + x),
        [np.array([0.0, -1.0, 2.0]), V4[:3]],
    ),
    ("nanmean_all", lambda m, x: m.nanmean(x), [A23]),
    ("nanmean_dim", lambda m, x: m.nanmean(x, dim=1, keepdim=True), [A234]),
    ("dist_2", lambda m, x, y: m.dist(x, y), [A23, B23]),
    ("dist_1", lambda m, x, y: m.dist(x, y, p=1), [A23, B23]),
    ("dist_3", lambda m, x, y: m.dist(x, y, 3), [A23, B23]),
    ("dist_inf", lambda m, x, y: m.dist(x, y, math.inf), [A23, B23]),
    ("norm_default", lambda m, x: m.norm(x), [A234]),
    ("norm_fro_dim", lambda m, x: m.norm(x, "fro", dim=(0, 2)), [A234]),
    ("norm_p3_dim", lambda m, x: m.norm(x, p=3.0, dim=1, keepdim=True), [A234]),
    ("norm_p1_5", lambda m, x: m.norm(x, p=1.5, dim=-1), [A234]),
    ("norm_inf", lambda m, x: m.norm(x, p=math.inf, dim=2), [A234]),
    ("norm_neg_inf", lambda m, x: m.norm(x, p=-math.inf), [A234]),
    ("norm_p_none", lambda m, x: m.norm(x, p=None, dim=[0, 1]), [A234]),
    ("vector_norm_empty_dim", lambda m, x: m.linalg.vector_norm(x, 3, dim=()), [A234]),
    ("norm_method", lambda m, x: x.norm(1, 0), [A234]),
    ("norm_p0", lambda m, x: m.norm(x, 0, dim=1) * x.sum(), [A234]),
    ("vector_norm", lambda m, x: m.linalg.vector_norm(x), [A234]),
    ("vector_norm_ord", lambda m, x: m.linalg.vector_norm(x, ord=4, dim=(1, 2), keepdim=True), [A234]),
    ("vector_norm_neg", lambda m, x: m.linalg.vector_norm(x, ord=-2, dim=0), [A234]),
    ("matrix_norm_fro", lambda m, x: m.linalg.matrix_norm(x), [A234]),
    ("matrix_norm_1", lambda m, x: m.linalg.matrix_norm(x, 1), [A234]),
    ("matrix_norm_m1", lambda m, x: m.linalg.matrix_norm(x, -1, keepdim=True), [A234]),
    ("matrix_norm_inf", lambda m, x: m.linalg.matrix_norm(x, math.inf, dim=(0, 2)), [A234]),
    ("matrix_norm_minf", lambda m, x: m.linalg.matrix_norm(x, -math.inf, dim=(2, 0)), [A234]),
    ("diag_1d", lambda m, v: m.diag(v), [V4]),
    ("diag_1d_up", lambda m, v: m.diag(v, 2), [V4]),
    ("diag_1d_down", lambda m, v: m.diag(v, diagonal=-1), [V4]),
    ("diag_2d", lambda m, x: m.diag(x), [A34]),
    ("diag_2d_up", lambda m, x: m.diag(x, 1), [A34]),
    ("diag_2d_down", lambda m, x: m.diag(x, -2), [A34]),
    ("diag_2d_empty", lambda m, x: m.diag(x, 5), [A34]),
    ("diagonal", lambda m, x: m.diagonal(x), [A234]),
    ("diagonal_dims", lambda m, x: m.diagonal(x, offset=1, dim1=2, dim2=0), [A234]),
    ("diagonal_neg", lambda m, x: x.diagonal(-1, -1, -2), [A234]),
    ("trace", lambda m, x: x.trace(), [A34]),
    ("kron", lambda m, x, y: m.kron(x, y), [A23, A34]),
    ("kron_ranks", lambda m, x, y: m.kron(x, y), [V4, A23]),
    ("tensordot_int", lambda m, x, y: m.tensordot(x, y, dims=1), [A234, _arr(4, 2)]),
    ("tensordot_default", lambda m, x, y: m.tensordot(x, y), [A234, A34]),
    ("tensordot_lists", lambda m, x, y: m.tensordot(x, y, dims=([0, 2], [1, 0])), [A234, _arr(4, 2, 5)]),
    ("tensordot_zero", lambda m, x, y: m.tensordot(x, y, 0), [A23, V4]),
    ("vdot", lambda m, x, y: m.vdot(x, y), [V4, W4]),
    ("block_diag", lambda m, x, y, z: m.block_diag(x, y, z), [A23, V4, np.array(1.5)]),
    ("column_stack", lambda m, x, y, z: m.column_stack([x, y, z]), [_arr(3), A34, _arr(3, 1)]),
    ("dstack", lambda m, x, y: m.dstack((x, y)), [A23, B23]),
    ("dstack_1d", lambda m, x, y: m.dstack([x, y]), [V4, W4]),
    ("atleast_1d", lambda m, x: m.atleast_1d(x), [np.array(2.0)]),
    ("atleast_2d", lambda m, x, y: m.atleast_2d(x, y), [np.array(2.0), V4]),
    ("atleast_3d", lambda m, x, y, z: m.atleast_3d([x, y, z]), [np.array(2.0), V4, A23]),
    ("atleast_3d_keep", lambda m, x: m.atleast_3d(x), [A234]),
    ("diff", lambda m, x: m.diff(x), [A234]),
    ("diff_n_dim", lambda m, x: m.diff(x, n=2, dim=1), [A234]),
    ("diff_pre_app", lambda m, x, p, a: m.diff(x, dim=0, prepend=p, append=a), [A23, _arr(1, 3), _arr(2, 3)]),
    ("diff_method", lambda m, x: x.diff(n=3), [V4]),
    ("rot90", lambda m, x: m.rot90(x), [A234]),
    ("rot90_k2", lambda m, x: m.rot90(x, 2, [1, 2]), [A234]),
    ("rot90_k3", lambda m, x: m.rot90(x, k=-1, dims=(2, 0)), [A234]),
    ("rot90_k0", lambda m, x: x.rot90(4), [A234]),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_values_match_torch(case, dtype):
    name, fn, arrays = case
    got, _ = run_case(graphc, fn, arrays, dtype, grad=False)
    want, _ = run_case(torch, fn, arrays, dtype, grad=False)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-5, atol=1e-6)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape, name
        assert g.dtype == w.dtype, name
        np.testing.assert_allclose(g, w, err_msg=name, **tol)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_match_torch(case):
    name, fn, arrays = case
    got_v, got_g = run_case(graphc, fn, arrays, np.float64, grad=True)
    want_v, want_g = run_case(torch, fn, arrays, np.float64, grad=True)
    for g, w in zip(got_g, want_g):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compiled_matches_eager(case):
    # Three calls: eager, then traced and compiled, then cached.
    check_compiled_matches_eager(case, calls=3, value_tol=(1e-12, 1e-14), grad_tol=(1e-12, 1e-14))


# ---------------------------------------------------------------------------
# isclose / allclose (bool results: values only)

CLOSE_A = np.array([1.0, 1.0, 1.0, np.nan, np.inf, -np.inf, np.inf, 0.0, 1e-9])
CLOSE_B = np.array([1.0 + 1e-6, 1.1, 1.0 + 1e-4, np.nan, np.inf, np.inf, 1e30, 1e-9, 0.0])


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"equal_nan": True}, {"rtol": 0.2}, {"atol": 1e-3, "rtol": 0}, {"rtol": 0, "atol": 0}],
    ids=str,
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_isclose_allclose_match_torch(kwargs, dtype):
    ga, gb = graphc.tensor(CLOSE_A.astype(dtype)), graphc.tensor(CLOSE_B.astype(dtype))
    ta, tb = torch.tensor(CLOSE_A.astype(dtype)), torch.tensor(CLOSE_B.astype(dtype))
    np.testing.assert_array_equal(graphc.isclose(ga, gb, **kwargs).numpy(), torch.isclose(ta, tb, **kwargs).numpy())
    np.testing.assert_array_equal(ga.isclose(gb, **kwargs).numpy(), ta.isclose(tb, **kwargs).numpy())
    for sl in (slice(0, 3), slice(3, 6), slice(0, 1), slice(7, 9)):
        assert graphc.allclose(ga[sl], gb[sl], **kwargs) is torch.allclose(ta[sl], tb[sl], **kwargs)
        assert ga[sl].allclose(gb[sl], **kwargs) is ta[sl].allclose(tb[sl], **kwargs)


def test_isclose_integer_and_broadcast():
    a = np.array([[1, 2, 3], [4, 5, 6]])
    b = np.array([1, 3, 3])
    got = graphc.isclose(graphc.tensor(a), graphc.tensor(b), atol=1).numpy()
    np.testing.assert_array_equal(got, torch.isclose(torch.tensor(a), torch.tensor(b), atol=1).numpy())


def test_isclose_compiled():
    @graphc.compile
    def f(a, b):
        return graphc.isclose(a, b, rtol=1e-3, equal_nan=True)

    a, b = graphc.tensor(CLOSE_A), graphc.tensor(CLOSE_B)
    want = torch.isclose(torch.tensor(CLOSE_A), torch.tensor(CLOSE_B), rtol=1e-3, equal_nan=True).numpy()
    for _ in range(3):
        np.testing.assert_array_equal(f(a, b).numpy(), want)


def test_logaddexp_extremes_match_torch():
    a = np.array([1000.0, -1000.0, np.inf, -np.inf, -np.inf, np.inf, 0.0])
    b = np.array([1000.0, -1001.0, np.inf, -np.inf, 3.0, -np.inf, np.nan])
    got = graphc.logaddexp(graphc.tensor(a), graphc.tensor(b)).numpy()
    np.testing.assert_allclose(got, torch.logaddexp(torch.tensor(a), torch.tensor(b)).numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sinh_cosh_keep_relative_precision(dtype):
    x = np.array([1e-12, -3e-8, 1e-4, -0.01, 0.3, -0.999, 1.0, 5.0, -20.0, 80.0, 0.0]).astype(dtype)
    tol = 1e-14 if dtype == np.float64 else 1e-6
    for name in ("sinh", "cosh"):
        got = getattr(graphc, name)(graphc.tensor(x)).numpy()
        np.testing.assert_allclose(got, getattr(torch, name)(torch.tensor(x)).numpy(), rtol=tol, atol=0, err_msg=name)


def test_hypot_extremes_match_torch():
    a = np.array([1e200, 1e-200, np.inf, np.nan, 0.0, 3.0, -np.inf, 0.0])
    b = np.array([1e200, 3e-200, np.nan, 1.0, 0.0, -4.0, 2.0, -5.0])
    got = graphc.hypot(graphc.tensor(a), graphc.tensor(b)).numpy()
    np.testing.assert_allclose(got, torch.hypot(torch.tensor(a), torch.tensor(b)).numpy(), rtol=1e-15)


def test_nanmean_skips_nan_like_torch():
    x = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]])
    for kw in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}):
        got = graphc.nanmean(graphc.tensor(x), **kw).numpy()
        np.testing.assert_allclose(got, torch.nanmean(torch.tensor(x), **kw).numpy(), equal_nan=True)


# At a zero vector the p-norm (p > 1) is not differentiable; PyTorch's
# backward gives 0 there, and so does graphc. Orders p <= 1 are left out:
# their gradient at a zero element is infinite in both, but not comparable.
ZERO_ROWS = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]])


@pytest.mark.parametrize("p", [2, 3.0, 1.5, "fro"], ids=str)
def test_norm_gradient_at_zero_vector_matches_torch(p):
    def run(m):
        x = m.tensor(ZERO_ROWS, requires_grad=True)
        out = m.norm(x, p, dim=1)
        (out * m.tensor([1.0, 2.0], dtype=m.float64)).sum().backward()
        return out.detach().numpy(), x.grad.numpy()

    for g, w in zip(run(graphc), run(torch)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)

    @graphc.compile
    def step(x):
        x.grad = None
        graphc.linalg.vector_norm(x, 2 if p == "fro" else p, dim=1).sum().backward()
        return x.grad.detach()

    x = graphc.tensor(ZERO_ROWS, requires_grad=True)
    want = torch.tensor(ZERO_ROWS, requires_grad=True)
    torch.linalg.vector_norm(want, 2 if p == "fro" else p, dim=1).sum().backward()
    for _ in range(3):
        np.testing.assert_allclose(step(x).numpy(), want.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_dist_of_equal_tensors_has_zero_gradient_like_torch():
    a = graphc.tensor(ZERO_ROWS, requires_grad=True)
    graphc.dist(a, a.detach()).backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.zeros_like(ZERO_ROWS))


def test_integer_inputs_follow_torch_dtypes():
    i = np.array([[1, -2, 3], [0, 5, -6]])
    for name, fn in [
        ("sinh", lambda m, x: m.sinh(x)),
        ("hypot", lambda m, x: m.hypot(x.float(), x.float())),
        ("diag", lambda m, x: m.diag(x[0])),
        ("kron", lambda m, x: m.kron(x, x)),
        ("diff", lambda m, x: m.diff(x)),
        ("diff_bool", lambda m, x: m.diff(x > 0)),
        ("rot90", lambda m, x: m.rot90(x)),
        ("block_diag", lambda m, x: m.block_diag(x, x.float())),
        ("tensordot", lambda m, x: m.tensordot(x, x, ([0], [0]))),
    ]:
        g = fn(graphc, graphc.tensor(i))
        t = fn(torch, torch.tensor(i))
        assert str(g.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], name
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-6, err_msg=name)


# ---------------------------------------------------------------------------
# argument errors


def _both_raise(fn, exc=RuntimeError):
    with pytest.raises(exc):
        fn(torch)
    with pytest.raises(exc):
        fn(graphc)


def test_argument_errors_match_torch():
    def t(m, *shape):
        return m.ones(*shape, dtype=m.float64)

    _both_raise(lambda m: m.diag(t(m, 2, 2, 2)))
    _both_raise(lambda m: m.diagonal(t(m, 2, 2), 0, 1, 1))
    _both_raise(lambda m: t(m, 2, 2, 2).trace())
    _both_raise(lambda m: m.tensordot(t(m, 2, 3), t(m, 2, 3), dims=([1], [0])))
    _both_raise(lambda m: m.tensordot(t(m, 2, 3), t(m, 3, 3), dims=([1], [0, 1])))
    _both_raise(lambda m: m.vdot(t(m, 2, 2), t(m, 2, 2)))
    _both_raise(lambda m: m.vdot(t(m, 2), m.ones(2)))
    _both_raise(lambda m: m.block_diag(t(m, 1, 1, 1)))
    _both_raise(lambda m: m.rot90(t(m, 2, 2), 1, [0]))
    _both_raise(lambda m: m.rot90(t(m, 2, 2), 1, [1, 1]))
    _both_raise(lambda m: m.diff(t(m, 3), n=-1))
    _both_raise(lambda m: m.heaviside(t(m, 3), m.ones(3)))
    _both_raise(lambda m: m.isclose(t(m, 3), m.ones(3)))
    _both_raise(lambda m: m.isclose(t(m, 3), t(m, 3), rtol=-1))
    _both_raise(lambda m: m.linalg.matrix_norm(t(m, 3)))
    _both_raise(lambda m: m.linalg.matrix_norm(t(m, 3, 3), dim=(0, 0)))
    _both_raise(lambda m: m.linalg.matrix_norm(t(m, 3, 3), ord=3))
    _both_raise(lambda m: m.column_stack([]))
    with pytest.raises(TypeError):
        graphc.heaviside(graphc.ones(3), 0.5)
    with pytest.raises(TypeError):
        torch.heaviside(torch.ones(3), 0.5)


@pytest.mark.parametrize(
    "fn",
    [
        lambda m: m.nanmean(m.ones(2, dtype=m.int64)),
        lambda m: m.vdot(m.ones(2, dtype=m.float64), m.ones(2)),
        lambda m: m.linalg.vector_norm(m.ones(2, dtype=m.int64)),
        lambda m: m.isclose(m.ones(2, dtype=m.float64), m.ones(2)),
    ],
    ids=["nanmean", "vdot", "vector_norm", "isclose"],
)
def test_dtype_errors_name_torch_types(fn):
    with pytest.raises(RuntimeError) as want:
        fn(torch)
    with pytest.raises(RuntimeError) as got:
        fn(graphc)
    # PyTorch's type names (Long, Double, Float) appear in both messages.
    names = [w for w in ("Long", "Double", "Float") if w in str(want.value)]
    assert names and all(w in str(got.value) for w in names), (str(got.value), str(want.value))


def test_svd_norms_name_what_is_missing():
    x = graphc.ones(3, 3)
    for ord in ("nuc", 2, -2):
        with pytest.raises(NotImplementedError, match="SVD"):
            graphc.linalg.matrix_norm(x, ord)
    with pytest.raises(NotImplementedError, match="nuc"):
        graphc.norm(x, "nuc")


def test_names_are_exported():
    for name in [
        "allclose",
        "atleast_1d",
        "atleast_2d",
        "atleast_3d",
        "block_diag",
        "column_stack",
        "cosh",
        "diag",
        "diagonal",
        "diff",
        "dist",
        "dstack",
        "heaviside",
        "hypot",
        "isclose",
        "kron",
        "logaddexp",
        "nanmean",
        "norm",
        "rot90",
        "sinh",
        "tensordot",
        "vdot",
    ]:
        assert callable(getattr(graphc, name)), name
    assert graphc.linalg.vector_norm is not None and graphc.linalg.matrix_norm is not None
