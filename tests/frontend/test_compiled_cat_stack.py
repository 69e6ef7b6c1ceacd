"""Compiled `cat`/`stack` followed by another op, with gradients, against
PyTorch. The backward of a concat slices the joined gradient back into its
parts; fusion reads each slice through the concat, where the index bounds
already prove which part is meant."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from frontend_helpers import assert_same

import graphc

JOINS = {
    "cat_last": lambda m, x, y: m.cat([x, y], -1),
    "cat_first": lambda m, x, y: m.cat([x, y, x], 0),
    "stack_first": lambda m, x, y: m.stack([x, y], 0),
    "stack_last": lambda m, x, y: m.stack([y, x], -1),
}
TAILS = {
    "square": lambda m, c: c * c,
    "sin_add": lambda m, c: m.sin(c) + c,
    "sum_dim": lambda m, c: (c * c).sum(dim=0),
    "amax": lambda m, c: c.amax(dim=-1),
    "matmul": lambda m, c: c.reshape(-1, c.shape[-1]) @ m.ones(c.shape[-1], 3, dtype=c.dtype),
}


def _run(m, join, tail, arrays):
    """(output, grads) of tail(join(x, y)) with backward of its sum."""
    x, y = (m.tensor(a, requires_grad=True) for a in arrays)
    out = tail(m, join(m, x, y))
    out.sum().backward()
    return out.detach(), x.grad, y.grad


def _compiled(join, tail, arrays):
    x, y = (graphc.tensor(a, requires_grad=True) for a in arrays)

    @graphc.compile
    def step(x, y):
        x.grad = None
        y.grad = None
        out = tail(graphc, join(graphc, x, y))
        out.sum().backward()
        return out.detach()

    for _ in range(3):  # eager, then traced and compiled, then cached
        out = step(x, y)
    return out, x.grad, y.grad


@pytest.mark.parametrize("tail", sorted(TAILS))
@pytest.mark.parametrize("join", sorted(JOINS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_join_then_op_matches_torch(join, tail, dtype):
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal((2, 3)).astype(dtype) for _ in range(2)]
    want = _run(torch, JOINS[join], TAILS[tail], arrays)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for got in (_run(graphc, JOINS[join], TAILS[tail], arrays), _compiled(JOINS[join], TAILS[tail], arrays)):
        for name, g, t in zip(("out", "x.grad", "y.grad"), got, want):
            assert_same(g, t, what=f"{join} then {tail}: {name}", **tol)


def test_compiled_cat_of_vectors_then_square():
    # The reported case: two float64[2] vectors, no gradient asked for.
    x = graphc.tensor([1.0, 2.0], dtype=graphc.float64)
    y = graphc.tensor([3.0, -4.0], dtype=graphc.float64)
    step = graphc.compile(lambda x, y: graphc.cat([x, y], -1) ** 2 * graphc.cat([y, x], -1))
    for _ in range(3):
        out = step(x, y)
    np.testing.assert_array_equal(out.numpy(), [3.0, -16.0, 9.0, 32.0])
