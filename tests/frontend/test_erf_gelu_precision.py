"""erf and gelu at the precision of their dtype: erf is a primitive that
calls libm's erf (eager reference and LLVM code) and erf()/erff() in CUDA C,
so float64 matches PyTorch to 1e-12 relative, eagerly and compiled, values
and gradients. The absolute floor covers the negative tail of gelu, where
`1 + erf` / `1 + tanh` cancels (in PyTorch too) and the result is only good
to a few ulps of its terms (|x| <= 7 here): 1e-14 in float64 (about 10 ulps
of 7), 5e-6 in float32 (as many)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc
import graphc.nn.functional as F

FUNCS = {
    "erf": (graphc.erf, torch.erf),
    "gelu": (F.gelu, torch.nn.functional.gelu),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: torch.nn.functional.gelu(x, approximate="tanh")),
}
X = np.concatenate([np.linspace(-7.0, 7.0, 561), [0.0, 1e-300, -3e-9, 30.0, -30.0]])
TOL = {np.float64: dict(rtol=1e-12, atol=1e-14), np.float32: dict(rtol=2e-6, atol=5e-6)}


def _torch(name, x):
    t = torch.tensor(x, requires_grad=True)
    out = FUNCS[name][1](t)
    out.sum().backward()
    return out.detach().numpy(), t.grad.numpy()


def _eager(name, x):
    g = graphc.tensor(x, requires_grad=True)
    out = FUNCS[name][0](g)
    out.sum().backward()
    return out.detach().numpy(), g.grad.numpy()


def _compiled(name, x):
    g = graphc.tensor(x, requires_grad=True)

    @graphc.compile
    def step(g):
        g.grad = None
        out = FUNCS[name][0](g)
        out.sum().backward()
        return out.detach()

    for _ in range(3):  # eager, then traced and compiled, then cached
        out = step(g)
    return out.numpy(), g.grad.numpy()


@pytest.mark.parametrize("run", [_eager, _compiled], ids=["eager", "compiled"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_matches_torch_to_dtype_precision(name, dtype, run):
    x = X.astype(dtype)
    want_out, want_grad = _torch(name, x)
    got_out, got_grad = run(name, x)
    assert got_out.dtype == dtype and got_grad.dtype == dtype
    np.testing.assert_allclose(got_out, want_out, err_msg=f"{name} value", **TOL[dtype])
    np.testing.assert_allclose(got_grad, want_grad, err_msg=f"{name} gradient", **TOL[dtype])


def test_erf_is_one_primitive():
    graph = graphc.trace(graphc.erf, graphc.randn(3, dtype=graphc.float64))
    assert [n.op.value for n in graph.nodes if n.op.value != "input"] == ["erf"]
