"""Numerics in eager mode against PyTorch: NaN propagation (values and
gradients), integer division by zero, one_hot's class check, accurate large
sums, and impossible allocations. The compiled counterparts are in
tests/compiler/test_numerics_compiled.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numerics_cases import (
    INT_DIVIDENDS,
    INT_DIVISIONS,
    INT_DIVISORS,
    NAN_GRAD_OPS,
    NAN_OPS,
    NAN_ROWS,
    with_zero_divisor,
)

import graphc
import graphc.nn.functional as F
from graphc.errors import DivisionByZeroError, OutOfMemoryError, ValueRangeError

# ---------------------------------------------------------------------------
# NaN propagation


@pytest.mark.parametrize("name, fn", NAN_OPS, ids=[c[0] for c in NAN_OPS])
def test_nan_propagates_like_torch(name, fn):
    want = fn(torch, torch.tensor(NAN_ROWS)).numpy()
    got = fn(graphc, graphc.tensor(NAN_ROWS)).numpy()
    assert got.dtype == want.dtype, name
    np.testing.assert_array_equal(got, want, err_msg=name)  # NaN == NaN here


@pytest.mark.parametrize("name, fn", NAN_GRAD_OPS, ids=[c[0] for c in NAN_GRAD_OPS])
def test_gradients_with_nan_inputs_match_torch(name, fn):
    t = torch.tensor(NAN_ROWS, requires_grad=True)
    fn(torch, t).sum().backward()
    g = graphc.tensor(NAN_ROWS, requires_grad=True)
    fn(graphc, g).sum().backward()
    np.testing.assert_array_equal(g.grad.numpy(), t.grad.numpy(), err_msg=name)


def test_relu_gradient_at_zero_is_zero_and_nan_passes():
    x = graphc.tensor([0.0, -0.0, float("nan"), 2.0, -2.0], requires_grad=True)
    graphc.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]


# ---------------------------------------------------------------------------
# integer division by zero


@pytest.mark.parametrize("name, fn", INT_DIVISIONS, ids=[c[0] for c in INT_DIVISIONS])
def test_integer_division_matches_torch(name, fn):
    want = fn(torch, torch.tensor(INT_DIVIDENDS), torch.tensor(INT_DIVISORS))
    got = fn(graphc, graphc.tensor(INT_DIVIDENDS), graphc.tensor(INT_DIVISORS))
    np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=name)


@pytest.mark.parametrize("name, fn", INT_DIVISIONS, ids=[c[0] for c in INT_DIVISIONS])
def test_integer_division_by_zero_raises_like_torch(name, fn):
    zero = with_zero_divisor(INT_DIVISORS)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        fn(torch, torch.tensor(INT_DIVIDENDS), torch.tensor(zero))
    with pytest.raises(DivisionByZeroError, match="ZeroDivisionError") as info:
        fn(graphc, graphc.tensor(INT_DIVIDENDS), graphc.tensor(zero))
    assert isinstance(info.value, RuntimeError)
    assert "(at numerics_cases.py:" in str(info.value)  # the user's line: the lambda


@pytest.mark.parametrize("dtype", [graphc.int32, graphc.int16, graphc.uint8])
def test_integer_division_by_a_zero_scalar_raises_for_every_int_dtype(dtype):
    with pytest.raises(DivisionByZeroError):
        graphc.tensor([4, 5], dtype=dtype) // 0


@pytest.mark.parametrize("divisor", [0.0, -0.0])
def test_float_division_by_zero_is_inf_or_nan_like_torch(divisor):
    x = [1.0, -1.0, 0.0]
    for fn in (
        lambda lib, a: a / divisor,
        lambda lib, a: a // divisor,
        lambda lib, a: a % divisor,
        lambda lib, a: lib.fmod(a, divisor),
    ):
        want = fn(torch, torch.tensor(x)).numpy()
        got = fn(graphc, graphc.tensor(x)).numpy()
        np.testing.assert_array_equal(got, want)


def test_int_tensor_true_division_by_zero_is_a_float_result():
    got = graphc.tensor([1, 0, -1]) / graphc.tensor([0, 0, 0])
    want = torch.tensor([1, 0, -1]) / torch.tensor([0, 0, 0])
    np.testing.assert_array_equal(got.numpy(), want.numpy())


# ---------------------------------------------------------------------------
# one_hot


@pytest.mark.parametrize("labels, torch_message", [([0, 3, 1], "smaller than num_classes"), ([0, -1], "non-negative")])
def test_one_hot_rejects_classes_out_of_range_like_torch(labels, torch_message):
    with pytest.raises(RuntimeError, match=torch_message):
        torch.nn.functional.one_hot(torch.tensor(labels), 3)
    with pytest.raises(ValueRangeError, match=torch_message) as info:
        F.one_hot(graphc.tensor(labels), 3)
    bad = [v for v in labels if not 0 <= v < 3][0]
    assert f"class value {bad}" in str(info.value)
    assert isinstance(info.value, RuntimeError)


def test_one_hot_in_range_matches_torch():
    labels = [[0, 2], [1, 1]]
    for n in (3, -1):
        want = torch.nn.functional.one_hot(torch.tensor(labels), n)
        got = F.one_hot(graphc.tensor(labels), n)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
        assert got.dtype == graphc.int64


def test_one_hot_of_an_empty_tensor_needs_num_classes():
    assert tuple(F.one_hot(graphc.tensor([], dtype=graphc.int64), 4).shape) == (0, 4)
    with pytest.raises(RuntimeError, match="empty"):
        F.one_hot(graphc.tensor([], dtype=graphc.int64))


# ---------------------------------------------------------------------------
# accurate float32 sums (a float32 running sum stops growing at 2**24)


def test_sum_of_2_pow_25_ones_is_exact():
    assert graphc.ones(2**25).sum().item() == 2**25
    assert torch.ones(2**25).sum().item() == 2**25


def test_sum_along_a_strided_axis_is_exact():
    got = graphc.ones(1, 3).expand(2**25, 3).sum(0)
    assert got.tolist() == [2**25] * 3


@pytest.mark.parametrize("shape, dim", [((2**24,), None), ((2**22, 4), 0), ((4, 2**22), 1)])
def test_mean_of_many_tenths_is_float32_accurate(shape, dim):
    x = graphc.full(shape, 0.1)
    got = (x.mean() if dim is None else x.mean(dim)).numpy()
    want = np.float32(0.1)
    # Within one float32 rounding of the exact mean of float32(0.1)s.
    np.testing.assert_allclose(got, want, rtol=np.finfo(np.float32).eps, atol=0)


# ---------------------------------------------------------------------------
# impossible allocations


@pytest.mark.parametrize(
    "make",
    [
        lambda: graphc.empty(10**13),
        lambda: graphc.zeros(10**7, 10**7),
        lambda: graphc.full((10**6, 10**6), 2.0),
        lambda: graphc.randn(10**6, 10**6),
        lambda: graphc.ones(10**7).expand(10**7, 10**7) + 1,  # the view is free, the sum is not
    ],
)
def test_impossible_allocations_raise_at_once(make):
    with pytest.raises(OutOfMemoryError, match="TiB but only") as info:
        make()
    assert isinstance(info.value, RuntimeError)
    assert "(at test_numerics.py:" in str(info.value)
