"""The DOT reference rule equals numpy's matmul on the strided operands
eager code gives it: a weight broadcast over the batch (folded into one 2-D
product), transposed activations, size-1 batch dims and integer dtypes."""

import numpy as np
import pytest

from graphc.ir.ops import Op
from graphc.ir.rules import RULES

RNG = np.random.default_rng(0)


def _mat(*shape, dtype=np.float32):
    if np.dtype(dtype).kind == "i":
        return RNG.integers(-5, 5, shape).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


CASES = {
    "broadcast weight": lambda: (_mat(4, 3, 5), np.broadcast_to(_mat(5, 6), (4, 5, 6))),
    "broadcast transposed weight": lambda: (_mat(2, 4, 3, 5), np.broadcast_to(_mat(6, 5).T, (2, 4, 5, 6))),
    "transposed activation": lambda: (_mat(4, 5, 3).transpose(0, 2, 1), _mat(4, 5, 6)),
    "batch-transposed activation": lambda: (_mat(3, 4, 5).transpose(1, 0, 2), np.broadcast_to(_mat(5, 2), (4, 5, 2))),
    "size-1 batch": lambda: (_mat(1, 3, 5), _mat(1, 5, 2)),
    "broadcast lhs": lambda: (np.broadcast_to(_mat(3, 5), (4, 3, 5)), _mat(4, 5, 2)),
    "int64": lambda: (_mat(4, 3, 5, dtype=np.int64), np.broadcast_to(_mat(5, 6, dtype=np.int64), (4, 5, 6))),
    "2-d": lambda: (_mat(3, 5).T, _mat(3, 4)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_dot_reference_equals_matmul(case):
    a, b = CASES[case]()
    got = RULES[Op.DOT].impl(a, b)
    expected = np.matmul(a, b)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
