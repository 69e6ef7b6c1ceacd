"""var/std values and gradients against PyTorch, where the variance is 0
(constant rows, whose rounded mean may be an ulp off their value), with
unbiased/correction, dims and keepdim, eagerly and compiled. PyTorch's std
gradient is 0 where std is 0 (it masks the 0 * inf of d sqrt(0)); with
correction >= n the variance divides by 0 and gradients are inf/nan, which
must agree too."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc

ROWS = np.array(
    [
        [0.1, 0.1, 0.1, 0.1],
        [1.0, 2.0, 3.0, 4.0],
        [-7.3, -7.3, -7.3, -7.3],
        [1e-3, 1e-3, 1e-3, 2e-3],
    ]
)
KWARGS = [
    {},
    {"dim": 1},
    {"dim": 0},
    {"dim": (0, 1), "keepdim": True},
    {"dim": 1, "unbiased": False},
    {"dim": 1, "correction": 0, "keepdim": True},
    {"dim": 1, "correction": 2},
    {"dim": -1, "correction": 4},
    {"dim": 1, "correction": 5},
]


def _run(m, fn, x, kwargs):
    t = m.tensor(x, requires_grad=True)
    out = getattr(t, fn)(**kwargs)
    # Weighted so each output's gradient path is checked separately.
    weights = m.tensor(np.arange(1.0, out.numel() + 1).reshape(tuple(out.shape)), dtype=t.dtype)
    (out * weights).sum().backward()
    return out.detach().numpy(), t.grad.numpy()


def _compiled(fn, x, kwargs):
    t = graphc.tensor(x, requires_grad=True)

    @graphc.compile
    def step(t):
        t.grad = None
        out = getattr(t, fn)(**kwargs)
        weights = graphc.arange(1.0, out.numel() + 1, dtype=t.dtype).reshape(tuple(out.shape))
        (out * weights).sum().backward()
        return out.detach()

    for _ in range(3):  # eager, then traced and compiled, then cached
        out = step(t)
    return out.numpy(), t.grad.numpy()


# Cases with no degrees of freedom left are meant: PyTorch warns about them.
@pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning")
@pytest.mark.parametrize("kwargs", KWARGS, ids=[str(k) for k in KWARGS])
@pytest.mark.parametrize("fn", ["std", "var"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_var_std_value_and_grad_match_torch(fn, kwargs, dtype):
    x = ROWS.astype(dtype)
    want = _run(torch, fn, x, kwargs)
    tol = dict(rtol=1e-12, atol=0) if dtype == np.float64 else dict(rtol=2e-5, atol=1e-6)
    for how, got in (("eager", _run(graphc, fn, x, kwargs)), ("compiled", _compiled(fn, x, kwargs))):
        for name, g, w in zip(("value", "grad"), got, want):
            np.testing.assert_allclose(g, w, equal_nan=True, err_msg=f"{how} {fn}{kwargs} {name}", **tol)


def test_std_grad_of_constant_row_is_zero():
    x = graphc.full((5,), 0.1, dtype=graphc.float64, requires_grad=True)
    s = x.std()
    s.backward()
    assert s.item() == 0.0
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(5))
