"""Helpers shared by the sorting tests: torch twins of numpy data, result
comparison, and running a function compiled."""

from __future__ import annotations

import numpy as np

import graphc


def torch_of(arr, requires_grad=False):
    import torch

    return torch.tensor(arr, requires_grad=requires_grad)


def same(g, t, rtol=1e-6, atol=1e-6, what=""):
    """graphc result `g` equals torch result `t` (tensors or tuples of them)
    in shape, dtype and values; NaN equals NaN."""
    if isinstance(t, (tuple, list)):
        assert len(g) == len(t), what
        for a, b in zip(g, t):
            same(a, b, rtol, atol, what)
        return
    got, want = g.detach().numpy(), t.detach().numpy()
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs torch {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} vs torch {want.dtype}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


def compiled(fn, *args):
    """fn(*args) from a compiled program (the first call of a compiled
    function runs eagerly; the second runs the compiled code)."""
    c = graphc.compile(fn)
    c(*args)
    return c(*args)


def distinct(shape, seed=0, dtype=np.float32):
    """Values with no ties (tie order is not specified for topk & co)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return (rng.permutation(n).astype(dtype) - n / 2).reshape(shape) / 4
