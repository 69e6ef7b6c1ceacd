"""Shared helpers for the frontend tests: conversion to torch, and central
finite differences in float64."""

from __future__ import annotations

import numpy as np
import torch

import graphc

TORCH_DTYPE = {
    graphc.float32: torch.float32,
    graphc.float64: torch.float64,
    graphc.int64: torch.int64,
    graphc.int32: torch.int32,
    graphc.int16: torch.int16,
    graphc.uint8: torch.uint8,
    graphc.bool: torch.bool,
}
GRAPHC_DTYPE = {v: k for k, v in TORCH_DTYPE.items()}


def pair(arr: np.ndarray, requires_grad: bool = False):
    """The same data as a graphc tensor and a torch tensor."""
    g = graphc.tensor(arr, requires_grad=requires_grad)
    t = torch.tensor(arr, requires_grad=requires_grad)
    return g, t


def assert_same(g, t, rtol=1e-5, atol=1e-6, what=""):
    """graphc result `g` equals torch result `t` in shape, dtype and values."""
    if isinstance(t, (tuple, list)):
        assert len(g) == len(t), what
        for a, b in zip(g, t):
            assert_same(a, b, rtol, atol, what)
        return
    assert isinstance(g, graphc.Tensor), f"{what}: expected a Tensor, got {type(g).__name__}"
    assert tuple(g.shape) == tuple(t.shape), f"{what}: shape {tuple(g.shape)} vs torch {tuple(t.shape)}"
    assert TORCH_DTYPE[g.dtype] == t.dtype, f"{what}: dtype {g.dtype} vs torch {t.dtype}"
    np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol, err_msg=what)


def finite_difference(fn, arrays, index: int, eps: float = 1e-6) -> np.ndarray:
    """d sum(fn(*arrays)) / d arrays[index] by central differences (float64)."""
    base = [np.array(a, dtype=np.float64) for a in arrays]
    grad = np.zeros_like(base[index])
    for pos in np.ndindex(base[index].shape):
        hi = [a.copy() for a in base]
        lo = [a.copy() for a in base]
        hi[index][pos] += eps
        lo[index][pos] -= eps
        f_hi = fn(*[graphc.tensor(a) for a in hi]).sum().item()
        f_lo = fn(*[graphc.tensor(a) for a in lo]).sum().item()
        grad[pos] = (f_hi - f_lo) / (2 * eps)
    return grad


def check_grad(fn, arrays, rtol=1e-5, atol=1e-7, name="fn"):
    """Compare graphc's gradients of sum(fn(...)) with finite differences,
    naming the function, argument and index that disagree."""
    tensors = [graphc.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    fn(*tensors).sum().backward()
    for i, t in enumerate(tensors):
        expected = finite_difference(fn, arrays, i)
        got = t.grad.numpy()
        bad = ~np.isclose(got, expected, rtol=rtol, atol=atol)
        if bad.any():
            pos = tuple(int(k) for k in np.argwhere(bad)[0])
            raise AssertionError(
                f"{name}: gradient of argument {i} at index {pos}: "
                f"autograd {got[pos]!r}, finite difference {expected[pos]!r}"
            )


def outputs(out) -> list:
    """A function's result as a list of tensors."""
    return list(out) if isinstance(out, (tuple, list)) else [out]


def weighted_sum(m, outs):
    """A scalar from `outs` whose weights distinguish every output element,
    so each gradient path counts (`m` is graphc or torch)."""
    total = 0
    for out in outs:
        n = out.numel()
        total = total + (out * m.arange(1.0, n + 1, dtype=out.dtype).reshape(tuple(out.shape))).sum()
    return total


def run_case(m, fn, arrays, dtype, grad):
    """(output arrays, input gradient arrays) of `fn(m, *tensors)` on the
    `arrays` cast to `dtype`, with module `m` (graphc or torch); an input
    that gets no gradient counts as zeros."""
    xs = [m.tensor(a.astype(dtype), requires_grad=grad) for a in arrays]
    outs = outputs(fn(m, *xs))
    if grad:
        weighted_sum(m, outs).backward()
    grads = [np.zeros(x.shape) if x.grad is None else x.grad.numpy() for x in xs] if grad else []
    return [o.detach().numpy() for o in outs], grads


def check_compiled_matches_eager(case, calls: int, value_tol: tuple, grad_tol: tuple) -> None:
    """graphc.compile of `fn` plus the weighted-sum backward gives the eager
    values and input gradients on each of `calls` calls (the eager first
    call, the traced one, then cached ones); tolerances are (rtol, atol)."""
    name, fn, arrays = case
    xs = [graphc.tensor(a, requires_grad=True) for a in arrays]

    @graphc.compile
    def step(*xs):
        for x in xs:
            x.grad = None
        outs = outputs(fn(graphc, *xs))
        weighted_sum(graphc, outs).backward()
        return [o.detach() for o in outs]

    want_v, want_g = run_case(graphc, fn, arrays, np.float64, grad=True)
    for _ in range(calls):
        outs = step(*xs)
        for g, w in zip(outs, want_v):
            np.testing.assert_allclose(g.numpy(), w, rtol=value_tol[0], atol=value_tol[1], err_msg=name)
        for x, w in zip(xs, want_g):
            got = np.zeros(x.shape) if x.grad is None else x.grad.numpy()
            np.testing.assert_allclose(got, w, rtol=grad_tol[0], atol=grad_tol[1], err_msg=name)
