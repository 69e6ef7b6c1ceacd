"""Numerics of compiled programs (LLVM backend) against PyTorch: NaN
propagation in values and gradients, integer division by zero reported
after the call (never executed), accurate float32 sums. The eager
counterparts are in tests/frontend/test_numerics.py; the same cases run on
the CUDA emulator in tests/cuda/test_cuda_numerics.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import graphc
import graphc.passes.autodiff as autodiff
from graphc.errors import DivisionByZeroError, IndexOutOfRangeError, OutOfMemoryError
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


def compiled(fn, *arrays, backend="llvm", grad=False):
    """Trace `fn` on tensors of `arrays`, compile it with `backend` and run
    it; with grad=True the program also returns d sum(fn) / d arrays[0]."""
    graph = graphc.trace(fn, *[graphc.tensor(a) for a in arrays])
    if grad:
        graph = autodiff.grad(graphc.trace(lambda *xs: fn(*xs).sum(), *[graphc.tensor(a) for a in arrays]))
    exe = backends.compile_graph(graph, backend)
    return exe([np.array(a) for a in arrays])


@pytest.mark.parametrize("name, fn", NAN_OPS, ids=[c[0] for c in NAN_OPS])
def test_compiled_nan_propagation_matches_torch(name, fn):
    want = fn(torch, torch.tensor(NAN_ROWS)).numpy()
    (got,) = compiled(lambda x: fn(graphc, x), NAN_ROWS)
    np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("name, fn", NAN_GRAD_OPS, ids=[c[0] for c in NAN_GRAD_OPS])
def test_compiled_gradients_with_nan_inputs_match_torch(name, fn):
    t = torch.tensor(NAN_ROWS, requires_grad=True)
    fn(torch, t).sum().backward()
    _, got = compiled(lambda x: fn(graphc, x), NAN_ROWS, grad=True)
    np.testing.assert_array_equal(got, t.grad.numpy(), err_msg=name)


@pytest.mark.parametrize("name, fn", INT_DIVISIONS, ids=[c[0] for c in INT_DIVISIONS])
def test_compiled_integer_division_matches_torch_and_reports_zero_divisors(name, fn):
    a, b = graphc.tensor(INT_DIVIDENDS), graphc.tensor(INT_DIVISORS)
    exe = backends.compile_graph(graphc.trace(lambda x, y: fn(graphc, x, y), a, b), "llvm")
    want = fn(torch, torch.tensor(INT_DIVIDENDS), torch.tensor(INT_DIVISORS)).numpy()
    np.testing.assert_array_equal(exe([INT_DIVIDENDS, INT_DIVISORS])[0], want, err_msg=name)
    with pytest.raises(DivisionByZeroError, match="ZeroDivisionError"):
        exe([INT_DIVIDENDS, with_zero_divisor(INT_DIVISORS)])
    # The flag is reset: the next good call runs normally.
    np.testing.assert_array_equal(exe([INT_DIVIDENDS, INT_DIVISORS])[0], want, err_msg=name)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint8, np.int64])
def test_compiled_division_by_zero_in_a_large_threaded_kernel(dtype):
    # Big enough to run on several threads; the zero is in the last chunk.
    a = np.full(1 << 20, 7, dtype)
    b = np.full(1 << 20, 3, dtype)
    exe = backends.compile_graph(graphc.trace(lambda x, y: x // y, graphc.tensor(a), graphc.tensor(b)), "llvm")
    assert (exe([a, b])[0] == 2).all()
    b[-1] = 0
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        exe([a, b])


def test_graphc_compile_raises_on_a_zero_divisor_after_compiling():
    f = graphc.compile(lambda x, y: x % y)
    a, b = graphc.tensor(INT_DIVIDENDS), graphc.tensor(INT_DIVISORS)
    f(a, b)  # eager
    f(a, b)  # compiled
    assert f._ready, "the second call should have compiled the function"
    with pytest.raises(DivisionByZeroError):
        f(a, graphc.tensor(with_zero_divisor(INT_DIVISORS)))


def test_compiled_float_division_by_zero_is_inf_or_nan():
    x = np.array([1.0, -1.0, 0.0], np.float32)
    for fn in (
        lambda lib, a: a / 0.0,
        lambda lib, a: a // 0.0,
        lambda lib, a: a % 0.0,
        lambda lib, a: lib.fmod(a, 0.0),
    ):
        (got,) = compiled(lambda a, fn=fn: fn(graphc, a), x)
        np.testing.assert_array_equal(got, fn(torch, torch.tensor(x)).numpy())


def test_a_program_larger_than_memory_fails_when_compiled():
    x = graphc.ones(10**6)
    graph = graphc.trace(lambda v: v[:, None] * v[None, :], x)  # a 4 TB output
    with pytest.raises(OutOfMemoryError, match=r"compiled program @\w+ .* needs 3\.6 TiB") as info:
        backends.compile_graph(graph, "llvm")
    assert isinstance(info.value, RuntimeError)


# ---------------------------------------------------------------------------
# accurate float32 sums: float32 values accumulate in float64


@pytest.mark.parametrize(
    "shape, fn",
    [
        ((2**25,), lambda x: x.sum()),  # one long dim, cut into blocks
        ((3,), lambda x: x.expand(2**25, 3).sum(0)),  # a long strided dim
        ((2,), lambda x: x.expand(2**13, 2**12, 2).sum((0, 1))),  # the inner dim is a block
        ((1, 4), lambda x: x.expand(2**23, 2, 4).sum((0, 2))),  # blocks of 4 under a long dim
        ((2**12,), lambda x: x.expand(2**13, 2**12).sum()),
    ],
)
def test_compiled_sums_of_ones_are_exact(shape, fn):
    x = np.ones(shape, np.float32)
    (got,) = compiled(fn, x)
    want = fn(torch.ones(shape)).double().numpy()  # torch's cascade sum is exact here too
    assert (got == want).all() and got.dtype == np.float32, (got, want)


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_compiled_mean_of_many_tenths_is_float32_accurate(dim):
    x = np.full((2**12, 2**12), 0.1, np.float32)
    (got,) = compiled(lambda t: t.mean() if dim is None else t.mean(dim), x)
    np.testing.assert_allclose(got, np.float32(0.1), rtol=np.finfo(np.float32).eps, atol=0)


def test_compiled_blocked_sum_of_random_data_matches_float64():
    x = np.random.default_rng(0).standard_normal((3, 50_001)).astype(np.float32)
    (got,) = compiled(lambda t: t.sum(1), x)
    want = x.astype(np.float64).sum(1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-3)


# ---------------------------------------------------------------------------
# one_hot: a class out of range raises after the call (never a zero row)


@pytest.mark.parametrize("backend", ["llvm", "interp"])
def test_compiled_one_hot_matches_torch_and_rejects_bad_classes(backend):
    import graphc.nn.functional as F

    labels = np.array([[0, 3], [1, 1]], dtype=np.int64)
    (got,) = compiled(lambda t: F.one_hot(t, 4), labels, backend=backend)
    np.testing.assert_array_equal(got, torch.nn.functional.one_hot(torch.tensor(labels), 4).numpy())
    graph = graphc.trace(lambda t: F.one_hot(t, 4), graphc.tensor(labels))
    exe = backends.compile_graph(graph, backend)
    for bad in (4, -1):
        with pytest.raises(RuntimeError, match="smaller than num_classes|non-negative"):
            torch.nn.functional.one_hot(torch.tensor([[0, bad], [1, 1]]), 4)
        with pytest.raises(IndexOutOfRangeError) as info:
            exe([np.array([[0, bad], [1, 1]], dtype=np.int64)])
        assert isinstance(info.value, RuntimeError)  # what torch raises
