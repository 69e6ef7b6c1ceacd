"""The numerics cases of tests/frontend/numerics_cases.py on the CUDA
backend (GPU, and the host emulator without one): NaN propagation in values
and gradients, integer division by zero reported after the launch (never
executed), float32 sums accumulated in double."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import graphc
import graphc.passes.autodiff as autodiff
from graphc.errors import DivisionByZeroError, IndexOutOfRangeError
from graphc.runtime import backends

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "frontend"))
from numerics_cases import (  # noqa: E402
    INT_DIVIDENDS,
    INT_DIVISIONS,
    INT_DIVISORS,
    NAN_GRAD_OPS,
    NAN_OPS,
    NAN_ROWS,
    with_zero_divisor,
)

pytestmark = pytest.mark.usefixtures("cuda_device")


def on_cuda(fn, *arrays, grad=False):
    """Trace `fn` on `arrays`, compile it for CUDA and run it; with
    grad=True also d sum(fn) / d arrays[0]."""
    tensors = [graphc.tensor(a) for a in arrays]
    graph = graphc.trace(fn, *tensors)
    if grad:
        graph = autodiff.grad(graphc.trace(lambda *xs: fn(*xs).sum(), *tensors))
    return backends.compile_graph(graph, "cuda")([np.array(a) for a in arrays])


@pytest.mark.parametrize("name, fn", NAN_OPS, ids=[c[0] for c in NAN_OPS])
def test_cuda_nan_propagation_matches_torch(name, fn):
    want = fn(torch, torch.tensor(NAN_ROWS)).numpy()
    (got,) = on_cuda(lambda x: fn(graphc, x), NAN_ROWS)
    np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("name, fn", NAN_GRAD_OPS, ids=[c[0] for c in NAN_GRAD_OPS])
def test_cuda_gradients_with_nan_inputs_match_torch(name, fn):
    t = torch.tensor(NAN_ROWS, requires_grad=True)
    fn(torch, t).sum().backward()
    _, got = on_cuda(lambda x: fn(graphc, x), NAN_ROWS, grad=True)
    np.testing.assert_array_equal(got, t.grad.numpy(), err_msg=name)


@pytest.mark.parametrize("name, fn", INT_DIVISIONS, ids=[c[0] for c in INT_DIVISIONS])
def test_cuda_integer_division_matches_torch_and_reports_zero_divisors(name, fn):
    a, b = graphc.tensor(INT_DIVIDENDS), graphc.tensor(INT_DIVISORS)
    exe = backends.compile_graph(graphc.trace(lambda x, y: fn(graphc, x, y), a, b), "cuda")
    want = fn(torch, torch.tensor(INT_DIVIDENDS), torch.tensor(INT_DIVISORS)).numpy()
    np.testing.assert_array_equal(exe([INT_DIVIDENDS, INT_DIVISORS])[0], want, err_msg=name)
    with pytest.raises(DivisionByZeroError, match="ZeroDivisionError") as info:
        exe([INT_DIVIDENDS, with_zero_divisor(INT_DIVISORS)])
    assert "kernel k" in str(info.value)  # names the kernel
    np.testing.assert_array_equal(exe([INT_DIVIDENDS, INT_DIVISORS])[0], want, err_msg=name)


def test_cuda_division_by_zero_inside_a_reduction():
    a = np.arange(1, 201, dtype=np.int32).reshape(2, 100)
    b = np.full((2, 100), 3, np.int32)
    exe = backends.compile_graph(graphc.trace(lambda x, y: (x // y).sum(1), graphc.tensor(a), graphc.tensor(b)), "cuda")
    np.testing.assert_array_equal(exe([a, b])[0], (a // b).sum(1))
    b[1, 50] = 0
    with pytest.raises(DivisionByZeroError):
        exe([a, b])


@pytest.mark.parametrize(
    "shape, fn",
    [
        ((3,), lambda x: x.expand(2**20, 3).sum(0)),  # one block per row, 4096 values per thread
        ((2**20,), lambda x: x.sum()),
        ((64,), lambda x: x.expand(2**16, 64).mean(0)),
        ((2**16,), lambda x: x.expand(64, 2**16).mean(1)),
        ((2**10, 40), lambda x: x.sum(1)),  # one thread per row (short rows)
    ],
)
def test_cuda_float32_sums_are_float32_accurate(shape, fn):
    x = np.full(shape, 0.1, np.float32)
    (got,) = on_cuda(fn, x)
    want = fn(torch.tensor(x, dtype=torch.float64)).numpy().astype(np.float32)
    np.testing.assert_allclose(got, want, rtol=np.finfo(np.float32).eps, atol=0)


def test_eager_cuda_tensors_raise_on_integer_division_by_zero_and_propagate_nan():
    a = graphc.tensor(INT_DIVIDENDS, device="cuda")
    good, zero = (
        graphc.tensor(INT_DIVISORS, device="cuda"),
        graphc.tensor(with_zero_divisor(INT_DIVISORS), device="cuda"),
    )
    np.testing.assert_array_equal((a // good).cpu().numpy(), torch.tensor(INT_DIVIDENDS) // torch.tensor(INT_DIVISORS))
    with pytest.raises(DivisionByZeroError):
        a % zero
    x = graphc.tensor(NAN_ROWS, device="cuda")
    np.testing.assert_array_equal(graphc.relu(x).cpu().numpy(), torch.relu(torch.tensor(NAN_ROWS)).numpy())
    np.testing.assert_array_equal(x.amax(1).cpu().numpy(), torch.tensor(NAN_ROWS).amax(1).numpy())


def test_cuda_float_division_by_zero_is_inf_or_nan():
    x = np.array([1.0, -1.0, 0.0], np.float32)
    for fn in (
        lambda lib, a: a / 0.0,
        lambda lib, a: a // 0.0,
        lambda lib, a: a % 0.0,
        lambda lib, a: lib.fmod(a, 0.0),
    ):
        (got,) = on_cuda(lambda a, fn=fn: fn(graphc, a), x)
        np.testing.assert_array_equal(got, fn(torch, torch.tensor(x)).numpy())


def test_cuda_one_hot_matches_torch_and_rejects_bad_classes():
    import graphc.nn.functional as F

    labels = np.array([[0, 3], [1, 1]], dtype=np.int64)
    exe = backends.compile_graph(graphc.trace(lambda t: F.one_hot(t, 4), graphc.tensor(labels)), "cuda")
    want = torch.nn.functional.one_hot(torch.tensor(labels), 4).numpy()
    np.testing.assert_array_equal(exe([labels])[0], want)
    for bad in (4, -1):
        with pytest.raises(IndexOutOfRangeError) as info:
            exe([np.array([[0, bad], [1, 1]], dtype=np.int64)])
        assert isinstance(info.value, RuntimeError)  # what torch raises for one_hot
    np.testing.assert_array_equal(exe([labels])[0], want)  # the error state was cleared
