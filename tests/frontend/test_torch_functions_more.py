"""The differentiable functions of graphc/_more_math.py, _more_linalg.py and
_more_shape.py against PyTorch: values in float32 and float64, float64
gradients, and the compiled path (forward and backward in one program).

Each case is written once against a module `m` (graphc or torch, which
share the API) and run on both."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from frontend_helpers import check_compiled_matches_eager, check_grad, outputs, run_case, weighted_sum  # noqa: E402

import graphc  # noqa: E402

RNG = np.random.default_rng(1)


def _arr(*shape, lo=-2.0, hi=2.0):
    return RNG.uniform(lo, hi, size=shape)


A23 = _arr(2, 3)
B23 = _arr(2, 3)
A34 = _arr(3, 4)
A234 = _arr(2, 3, 4)
V3 = _arr(3)
V4 = _arr(4)
UNIT = _arr(2, 5, lo=-0.95, hi=0.95)
WIDE = np.array([[-1e3, -30.0, -2.5, -1e-3, 1e-4], [0.3, 1.5, 7.0, 40.0, 5e4]])
ABOVE1 = _arr(2, 5, lo=1.01, hi=30.0)
PROB = _arr(2, 5, lo=0.03, hi=0.97)
POS = _arr(2, 3, lo=0.2, hi=3.0)
GAMMA_ARGS = np.array([[-2.5, -0.7, -1e-3, 0.3, 1.0, 1.5], [2.0, 4.2, 7.9, 9.5, 30.0, 1e3]])
B3 = _arr(4, 2, 3)
C3 = _arr(4, 3, 5)

CASES = [
    ("atan", lambda m, x: m.atan(x), [WIDE]),
    ("arctan_method", lambda m, x: x.arctan() + x.atan(), [A23]),
    ("atan2", lambda m, y, x: m.atan2(y, x), [A23, B23]),
    ("atan2_broadcast", lambda m, y, x: m.arctan2(y, x), [A23, _arr(3)]),
    ("asin", lambda m, x: m.asin(x), [UNIT]),
    ("acos", lambda m, x: m.arccos(x), [UNIT]),
    ("asinh", lambda m, x: m.asinh(x), [WIDE]),
    ("acosh", lambda m, x: m.acosh(x), [ABOVE1]),
    ("atanh", lambda m, x: m.arctanh(x), [UNIT]),
    ("erfc", lambda m, x: m.erfc(x), [np.array([-3.0, -0.5, 0.0, 0.3, 1.9, 2.0, 2.5, 4.0, 9.0])]),
    ("lgamma", lambda m, x: m.lgamma(x), [GAMMA_ARGS]),
    ("digamma", lambda m, x: x.digamma(), [GAMMA_ARGS]),
    ("mvlgamma", lambda m, x: m.mvlgamma(x, 3), [ABOVE1]),
    ("logit", lambda m, x: m.logit(x), [PROB]),
    ("logit_eps", lambda m, x: m.logit(x, eps=0.1), [PROB]),
    ("sinc", lambda m, x: m.sinc(x), [np.array([-2.5, -0.3, 0.0, 0.7, 1.2, 3.3])]),
    ("xlogy", lambda m, x, y: m.xlogy(x, y), [np.array([0.0, 1.5, -2.0, 0.5]), np.array([2.0, 0.3, 1.7, 4.0])]),
    ("copysign", lambda m, x, y: m.copysign(x, y), [A23, B23]),
    ("ldexp", lambda m, x, e: m.ldexp(x, e.detach().round()), [A23, B23]),
    ("logaddexp2", lambda m, x, y: m.logaddexp2(x, y), [A23, B23]),
    ("deg2rad", lambda m, x: m.deg2rad(x) + x.rad2deg(), [A23]),
    ("positive", lambda m, x: m.positive(x) * 2, [A23]),
    ("addbmm", lambda m, i, a, b: m.addbmm(i, a, b, beta=0.5, alpha=2.0), [_arr(2, 5), B3, C3]),
    ("baddbmm", lambda m, i, a, b: m.baddbmm(i, a, b, alpha=-1.5), [_arr(4, 2, 5), B3, C3]),
    ("baddbmm_beta0", lambda m, i, a, b: i.baddbmm(a, b, beta=0), [_arr(4, 2, 5), B3, C3]),
    ("addmv", lambda m, i, a, v: m.addmv(i, a, v, beta=2), [V3, A34, V4]),
    ("addr", lambda m, i, a, b: m.addr(i, a, b, alpha=3), [A34, V3, V4]),
    ("addmm_method", lambda m, i, a, b: i.addmm(a, b, beta=0.5), [_arr(2, 4), A23, A34]),
    ("ger_inner", lambda m, a, b: m.ger(a, b).sum() + a.inner(b), [V4, _arr(4)]),
    ("chain_matmul", lambda m, a, b, c: m.chain_matmul(a, b, c), [A23, A34, _arr(4, 2)]),
    ("matrix_power", lambda m, x: m.matrix_power(x, 5) + x.matrix_power(0), [_arr(3, 3, lo=-0.7, hi=0.7)]),
    ("cross", lambda m, a, b: m.cross(a, b, dim=1), [_arr(2, 3, 2), _arr(2, 3, 2)]),
    ("cross_default", lambda m, a, b: a.cross(b), [_arr(4, 3), _arr(4, 3)]),
    ("cdist_2", lambda m, a, b: m.cdist(a, b), [_arr(2, 4, 3), _arr(2, 5, 3)]),
    ("cdist_1", lambda m, a, b: m.cdist(a, b, p=1), [_arr(4, 3), _arr(5, 3)]),
    ("cdist_3", lambda m, a, b: m.cdist(a, b, p=3.0), [_arr(4, 3), _arr(5, 3)]),
    ("cov", lambda m, x: m.cov(x), [A34]),
    ("cov_1d", lambda m, x: m.cov(x, correction=0), [V4]),
    ("cov_weights", lambda m, x, a: m.cov(x, fweights=m.tensor([1, 3, 2, 1]), aweights=a.abs()), [A34, V4]),
    ("corrcoef", lambda m, x: x.corrcoef(), [A34]),
    ("trapezoid", lambda m, y: m.trapezoid(y) + m.trapz(y, dx=0.5, dim=0).sum(), [A34]),
    ("trapezoid_x", lambda m, y, x: m.trapezoid(y, x), [A34, np.sort(_arr(4))]),
    ("cumulative_trapezoid", lambda m, y: m.cumulative_trapezoid(y, dim=0), [A34]),
    ("vander", lambda m, x: m.vander(x, 4) + m.vander(x, 4, increasing=True), [V3]),
    ("aminmax", lambda m, x: list(m.aminmax(x, dim=1)), [A34]),
    ("aminmax_all", lambda m, x: list(x.aminmax()), [A34]),
    ("renorm", lambda m, x: m.renorm(x, 2, 0, 2.0), [A34]),
    ("renorm_p1", lambda m, x: x.renorm(1, 1, 2.5), [A34]),
    ("gradient", lambda m, x: list(m.gradient(x, spacing=0.5)), [A34]),
    ("gradient_order2", lambda m, x: list(m.gradient(x, dim=1, edge_order=2)), [A34]),
    ("diag_embed", lambda m, x: m.diag_embed(x, 1), [A23]),
    ("diag_embed_dims", lambda m, x: m.diag_embed(x, -1, dim1=0, dim2=2), [A23]),
    ("diagflat", lambda m, x: m.diagflat(x, -1), [A23]),
    ("select_scatter", lambda m, x, s: m.select_scatter(x, s, 1, -1), [A34, V3]),
    ("slice_scatter", lambda m, x, s: m.slice_scatter(x, s, 1, 0, 4, 2), [A34, _arr(3, 2)]),
    ("diagonal_scatter", lambda m, x, s: m.diagonal_scatter(x, s, 1), [A34, V3]),
    ("diagonal_scatter_neg", lambda m, x, s: x.diagonal_scatter(s, -1, 1, 0), [_arr(4, 3), _arr(2)]),
    ("take", lambda m, x: m.take(x, m.tensor([[0, 5], [-1, 3]])), [A34]),
    ("tensor_split", lambda m, x: list(m.tensor_split(x, 3, dim=1)), [A34]),
    ("tensor_split_idx", lambda m, x: list(x.tensor_split([1, 3])), [_arr(5, 2)]),
    ("hsplit", lambda m, x: list(m.hsplit(x, 2)), [A34]),
    ("vsplit_dsplit", lambda m, x: list(m.vsplit(x, [1])) + list(m.dsplit(x, 2)), [A234]),
    ("ravel", lambda m, x: m.ravel(x.t()), [A34]),
    ("unfold", lambda m, x: x.unfold(1, 2, 1), [A34]),
    ("unfold_step", lambda m, x: x.unfold(0, 2, 2), [_arr(5, 2)]),
    ("meshgrid_ij", lambda m, a, b: list(m.meshgrid(a, b, indexing="ij")), [V3, V4]),
    ("meshgrid_xy", lambda m, a, b, c: list(m.meshgrid(a, b, c, indexing="xy")), [V3, V4, _arr(2)]),
    ("cartesian_prod", lambda m, a, b: m.cartesian_prod(a, b), [V3, _arr(2)]),
    ("combinations", lambda m, a: m.combinations(a, 2), [V4]),
    ("combinations_repl", lambda m, a: m.combinations(a, 3, with_replacement=True), [V3]),
    ("index_put_acc", lambda m, x, v: x.index_put((m.tensor([0, 2, 0]),), v, accumulate=True), [A34, _arr(3, 4)]),
    ("index_put", lambda m, x, v: m.index_put(x, (m.tensor([1, 2]), m.tensor([0, 3])), v), [A34, _arr(2)]),
    ("put", lambda m, x, v: x.put(m.tensor([1, -1, 4]), v), [A34, V3]),
    ("put_acc", lambda m, x, v: x.put(m.tensor([1, 1, 4]), v, accumulate=True), [A34, V3]),
    ("masked_scatter", lambda m, x, s: x.masked_scatter(x.detach() > 0, s), [A34, _arr(3, 4)]),
    ("copies", lambda m, x: m.permute_copy(x, (1, 0)) + m.t_copy(x) + m.expand_copy(x[:1], (3, 4)).t(), [_arr(3, 4)]),
    ("slice_copy", lambda m, x: m.slice_copy(x, 1, 1, None, 2) * 2 + m.narrow_copy(x, 1, 0, 2), [A34]),
    ("sum_to_size", lambda m, x: x.sum_to_size(3, 1), [A234]),
    ("adjoint", lambda m, x: m.adjoint(x) + x.mH, [_arr(3, 3)]),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_values_match_torch(case, dtype):
    name, fn, arrays = case
    got, _ = run_case(graphc, fn, arrays, dtype, grad=False)
    want, _ = run_case(torch, fn, arrays, dtype, grad=False)
    tol = dict(rtol=1e-12, atol=1e-13) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape, name
        assert g.dtype == w.dtype, name
        np.testing.assert_allclose(g, w, err_msg=name, **tol)


# torch cannot differentiate these (its vander backward trips over its own
# in-place update): their gradients are checked against finite differences.
FINITE_DIFFERENCE = {"vander"}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_match_torch(case):
    name, fn, arrays = case
    if name in FINITE_DIFFERENCE:
        check_grad(lambda *xs: weighted_sum(graphc, outputs(fn(graphc, *xs))), arrays, name=name)
        return
    _, got_g = run_case(graphc, fn, arrays, np.float64, grad=True)
    _, want_g = run_case(torch, fn, arrays, np.float64, grad=True)
    for g, w in zip(got_g, want_g):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compiled_matches_eager(case):
    # Two calls: eager, then traced and compiled.
    check_compiled_matches_eager(case, calls=2, value_tol=(1e-12, 1e-13), grad_tol=(1e-11, 1e-12))
