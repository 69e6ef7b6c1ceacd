"""cumprod, cummax, cummin and logcumsumexp (log-step scans) against
PyTorch: values, indices, gradients (cumprod's with zeros), finite
differences, and compiled code."""

from __future__ import annotations

import numpy as np
import pytest
from sorting_helpers import compiled, same, torch_of

import graphc

torch = pytest.importorskip("torch")


def _grad_pair(fn_g, fn_t, a):
    g = graphc.tensor(a, requires_grad=True)
    t = torch_of(a, requires_grad=True)
    fn_g(g).sum().backward()
    fn_t(t).sum().backward()
    return g.grad, t.grad


@pytest.mark.parametrize("n", [1, 2, 5, 8, 13])
def test_cumprod_values_and_gradient_with_zeros(n):
    rng = np.random.default_rng(n)
    a = rng.uniform(-2, 2, size=(3, n))
    if n > 2:
        a[0, 1] = 0.0  # one zero
        a[1, 0] = a[1, n - 1] = 0.0  # two zeros
    w = rng.standard_normal((3, n))
    for dim in (0, 1):
        same(graphc.cumprod(graphc.tensor(a), dim), torch.cumprod(torch_of(a), dim), rtol=1e-12)
        got, want = _grad_pair(
            lambda x, dim=dim: graphc.cumprod(x, dim) * graphc.tensor(w),
            lambda x, dim=dim: torch.cumprod(x, dim) * torch_of(w),
            a,
        )
        same(got, want, rtol=1e-10, atol=1e-12, what=f"dim {dim}")


def test_cumprod_gradient_matches_finite_differences():
    a = np.array([[0.5, 0.0, -1.5, 2.0, 0.0, 1.25]])
    w = np.array([[1.0, -2.0, 0.5, 3.0, 1.0, -1.0]])
    g = graphc.tensor(a, requires_grad=True)
    (graphc.cumprod(g, 1) * graphc.tensor(w)).sum().backward()
    eps, fd = 1e-6, np.zeros_like(a)
    for i in range(a.shape[1]):
        hi, lo = a.copy(), a.copy()
        hi[0, i] += eps
        lo[0, i] -= eps
        fd[0, i] = ((np.cumprod(hi, 1) - np.cumprod(lo, 1)) * w).sum() / (2 * eps)
    np.testing.assert_allclose(g.grad.numpy(), fd, rtol=1e-6, atol=1e-8)


def test_cumprod_integer_and_dtype():
    a = np.array([[1, 2, 3], [4, 0, 2]], np.int32)
    same(graphc.cumprod(graphc.tensor(a), 1), torch.cumprod(torch_of(a), 1))
    same(graphc.tensor(a).cumprod(0, dtype=graphc.float64), torch_of(a).cumprod(0, dtype=torch.float64))


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_ties_and_nan_like_torch(name):
    a = np.array([[1.0, 3.0, 3.0, 2.0, np.nan, 5.0, np.nan, 0.0], [2.0, 2.0, -1.0, -1.0, 4.0, 4.0, 0.0, 9.0]])
    got = getattr(graphc, name)(graphc.tensor(a), 1)
    same(got, getattr(torch, name)(torch_of(a), 1))
    assert type(got).__name__ == name
    ints = np.array([[5, 1, 5, 7, 1, 0, 7]], np.int64)
    same(getattr(graphc, name)(graphc.tensor(ints), 1), getattr(torch, name)(torch_of(ints), 1))
    same(getattr(graphc.tensor(ints.T.copy()), name)(0), getattr(torch_of(ints.T.copy()), name)(0))


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_gradient_goes_to_the_reported_index(name):
    rng = np.random.default_rng(3)
    a = rng.integers(-2, 3, size=(3, 9)).astype(np.float64)  # ties
    w = rng.standard_normal((3, 9))
    got, want = _grad_pair(
        lambda x: getattr(graphc, name)(x, 1).values * graphc.tensor(w),
        lambda x: getattr(torch, name)(x, 1).values * torch_of(w),
        a,
    )
    same(got, want)


def test_logcumsumexp_is_stable_and_its_gradient_matches_torch():
    a = np.array([[1000.0, 1000.0, -5.0, 3.0, -np.inf, 2.0], [-np.inf, -np.inf, 0.0, -1e4, 7.0, 7.0]])
    same(graphc.logcumsumexp(graphc.tensor(a), 1), torch.logcumsumexp(torch_of(a), 1), rtol=1e-12)
    rng = np.random.default_rng(4)
    b = rng.standard_normal((4, 7))
    for dim in (0, 1):
        same(graphc.logcumsumexp(graphc.tensor(b), dim), torch.logcumsumexp(torch_of(b), dim), rtol=1e-12)
        got, want = _grad_pair(
            lambda x, dim=dim: graphc.logcumsumexp(x, dim) * graphc.tensor(b),
            lambda x, dim=dim: torch.logcumsumexp(x, dim) * torch_of(b),
            b,
        )
        same(got, want, rtol=1e-10)
    with pytest.raises(TypeError, match="not implemented for 'Long'"):
        graphc.logcumsumexp(graphc.tensor([1, 2]), 0)


def test_scans_of_scalars_and_bad_dims():
    same(graphc.cumprod(graphc.tensor(3.0), 0), torch.cumprod(torch.tensor(3.0), 0))
    same(graphc.cummax(graphc.tensor(3.0), 0), torch.cummax(torch.tensor(3.0), 0))
    with pytest.raises(IndexError, match="Dimension out of range"):
        graphc.cumprod(graphc.ones(2, 3), 2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        graphc.cummin(graphc.ones(2, 3), -3)


def test_compiled_scans_equal_eager_with_gradients():
    rng = np.random.default_rng(5)
    a = rng.integers(-2, 3, size=(4, 10)).astype(np.float32)
    a[1, 3] = 0.0
    a[2, 5] = np.nan

    def fn(x):
        x = x.detach().requires_grad_()
        outs = (graphc.cumprod(x, 1), graphc.cummax(x, 1), graphc.cummin(x, 0), graphc.logcumsumexp(x, 1))
        (outs[0].sum() + outs[1].values.sum() + outs[2].values.sum() + outs[3].sum()).backward()
        flat = (outs[0], *outs[1], *outs[2], outs[3], x.grad)
        return tuple(o.detach() for o in flat)

    eager = fn(graphc.tensor(a))
    got = compiled(fn, graphc.tensor(a))
    assert len(got) == 7
    for i, (g, e) in enumerate(zip(got, eager)):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, err_msg=f"result {i}")
