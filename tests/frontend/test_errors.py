"""Bad input raises clear exceptions naming the op, both sides of a
mismatch, and the user's source line."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.errors import DTypeError, ShapeError


def test_broadcast_mismatch_names_shapes_and_line():
    with pytest.raises(ShapeError) as err:
        graphc.ones(2, 3) * graphc.ones(4)
    msg = str(err.value)
    assert "mul" in msg and "[2, 3]" in msg and "[4]" in msg and "test_errors.py:" in msg
    assert isinstance(err.value, RuntimeError)


def test_matmul_mismatch_names_both_shapes():
    with pytest.raises(ShapeError) as err:
        graphc.ones(32, 784) @ graphc.ones(128, 10)
    msg = str(err.value)
    assert "matmul" in msg and "f32[32,784]" in msg and "f32[128,10]" in msg and "test_errors.py:" in msg


def test_matmul_dtype_mismatch():
    with pytest.raises(DTypeError, match="same dtype"):
        graphc.ones(2, 2) @ graphc.ones(2, 2, dtype=graphc.float64)


def test_wrong_dtype_combinations():
    with pytest.raises(DTypeError, match="bitwise"):
        graphc.ones(2) & graphc.ones(2)
    with pytest.raises(DTypeError, match="~"):
        ~graphc.ones(2)
    with pytest.raises(DTypeError, match="bool"):
        -graphc.tensor([True])
    with pytest.raises(DTypeError, match="sub"):
        graphc.tensor([True]) - graphc.tensor([False])
    with pytest.raises(TypeError):
        graphc.ones(2) + "a"


def test_reshape_and_view_errors():
    with pytest.raises(ShapeError, match=r"shape \[4, 4\] is invalid for input of size 6"):
        graphc.ones(2, 3).view(4, 4)
    with pytest.raises(ShapeError, match="only one dimension can be inferred"):
        graphc.ones(6).reshape(-1, -1)
    with pytest.raises(IndexError, match="Dimension out of range"):
        graphc.ones(2, 3).sum(2)
    with pytest.raises(ShapeError, match="must match except in dimension"):
        graphc.cat([graphc.ones(2, 3), graphc.ones(3, 2)])


def test_item_and_bool_of_multi_element_tensors():
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        graphc.ones(2).item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(graphc.ones(2))


def test_backward_errors():
    with pytest.raises(RuntimeError, match="does not require grad"):
        graphc.ones(2).sum().backward()
    x = graphc.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(graphc.ones(3))


def test_numpy_scalars_defer_to_tensor_operators():
    out = np.float32(2.0) * graphc.ones(2)
    assert isinstance(out, graphc.Tensor) and out.dtype is graphc.float32 and out.tolist() == [2.0, 2.0]


def test_no_grad_decorator_without_parentheses():
    @graphc.no_grad
    def f(x):
        return x * 2

    assert not f(graphc.ones(1, requires_grad=True)).requires_grad
