"""Shared cases of the numerics tests (tests/frontend/test_numerics.py,
tests/compiler/test_numerics_compiled.py, tests/cuda/test_cuda_numerics.py):
ops whose NaN behaviour, integer division and summation accuracy must be
PyTorch's. Each op is written once as `fn(lib, *tensors)`, where `lib` is
`graphc` or `torch`, so the same line runs on both."""

from __future__ import annotations

import numpy as np

NAN = float("nan")

# Rows with NaN first, last, twice, and none (argmax/argmin of NaN rows).
NAN_ROWS = np.array(
    [
        [1.0, NAN, 3.0, -2.0],
        [0.5, -1.0, 2.0, NAN],
        [-1.0, -2.0, 0.0, -4.0],
        [NAN, NAN, 0.0, 1.0],
    ],
    np.float32,
)


def _f(lib):
    return lib.nn.functional


# (name, fn(lib, x)); results are exact selections, compared bit for bit.
NAN_OPS = [
    ("relu", lambda lib, x: lib.relu(x)),
    ("F.relu", lambda lib, x: _f(lib).relu(x)),
    ("F.relu6", lambda lib, x: _f(lib).relu6(x)),
    ("F.hardtanh", lambda lib, x: _f(lib).hardtanh(x)),
    ("F.leaky_relu", lambda lib, x: _f(lib).leaky_relu(x, 0.5)),
    ("maximum", lambda lib, x: lib.maximum(x, lib.zeros_like(x))),
    ("maximum_nan_right", lambda lib, x: lib.maximum(lib.zeros_like(x), x)),
    ("minimum", lambda lib, x: lib.minimum(x, lib.zeros_like(x))),
    ("minimum_nan_right", lambda lib, x: lib.minimum(lib.zeros_like(x), x)),
    ("fmax", lambda lib, x: lib.fmax(x, lib.zeros_like(x))),
    ("fmin", lambda lib, x: lib.fmin(lib.zeros_like(x), x)),
    ("fmax_both_nan", lambda lib, x: lib.fmax(x, x.flip(1))),
    ("clamp", lambda lib, x: lib.clamp(x, -0.5, 0.5)),
    ("clamp_min", lambda lib, x: lib.clamp(x, min=0.0)),
    ("clamp_max", lambda lib, x: lib.clamp(x, max=0.0)),
    ("clamp_tensors", lambda lib, x: lib.clamp(x, lib.zeros_like(x) - 1, lib.ones_like(x))),
    ("clamp_nan_min", lambda lib, x: lib.clamp(x, min=NAN)),
    ("clamp_nan_max", lambda lib, x: lib.clamp(x, max=NAN)),
    ("clamp_min_above_max", lambda lib, x: lib.clamp(x, 1.0, -1.0)),
    ("amax_dim", lambda lib, x: lib.amax(x, 1)),
    ("amin_dim", lambda lib, x: lib.amin(x, 1)),
    ("amax_dim0", lambda lib, x: lib.amax(x, 0)),
    ("max_all", lambda lib, x: lib.max(x)),
    ("min_all", lambda lib, x: lib.min(x)),
    ("max_clean_rows", lambda lib, x: lib.max(x[2:3])),
    ("max_dim_values", lambda lib, x: lib.max(x, 1)[0]),
    ("max_dim_indices", lambda lib, x: lib.max(x, 1)[1]),
    ("min_dim_values", lambda lib, x: lib.min(x, 1)[0]),
    ("min_dim_indices", lambda lib, x: lib.min(x, 1)[1]),
    ("argmax_dim", lambda lib, x: lib.argmax(x, 1)),
    ("argmin_dim", lambda lib, x: lib.argmin(x, 1)),
    ("argmax_dim0", lambda lib, x: lib.argmax(x, 0)),
    ("argmin_dim0", lambda lib, x: lib.argmin(x, 0)),
    ("argmax_all", lambda lib, x: lib.argmax(x)),
    ("argmin_all", lambda lib, x: lib.argmin(x)),
    ("max_pool2d", lambda lib, x: _f(lib).max_pool2d(x.reshape(1, 1, 4, 4), 2)),
]

# (name, fn(lib, x)) whose gradient at NAN_ROWS is compared with torch's.
NAN_GRAD_OPS = [
    ("relu", lambda lib, x: lib.relu(x)),
    ("F.hardtanh", lambda lib, x: _f(lib).hardtanh(x)),
    ("F.leaky_relu", lambda lib, x: _f(lib).leaky_relu(x, 0.5)),
    ("maximum", lambda lib, x: lib.maximum(x, lib.zeros_like(x))),
    ("minimum", lambda lib, x: lib.minimum(lib.zeros_like(x), x)),
    ("maximum_self", lambda lib, x: lib.maximum(x, x.flip(1))),
    ("clamp", lambda lib, x: lib.clamp(x, -0.5, 0.5)),
    ("amax_dim", lambda lib, x: lib.amax(x, 1)),
    ("amin_dim", lambda lib, x: lib.amin(x, 1)),
    ("max_dim_values", lambda lib, x: lib.max(x, 1)[0]),
    ("min_dim_values", lambda lib, x: lib.min(x, 1)[0]),
    # Not max_pool2d: in a window with two NaNs torch's CPU kernel gives the
    # gradient to the last, graphc (like argmax) to the first.
]

# (name, fn(lib, a, b)) of integer division: every one raises on a zero
# divisor, in torch and in graphc (eager and compiled).
INT_DIVISIONS = [
    ("floordiv_operator", lambda lib, a, b: a // b),
    ("mod_operator", lambda lib, a, b: a % b),
    ("div_floor", lambda lib, a, b: lib.div(a, b, rounding_mode="floor")),
    ("div_trunc", lambda lib, a, b: lib.div(a, b, rounding_mode="trunc")),
    ("floor_divide", lambda lib, a, b: lib.floor_divide(a, b)),
    ("remainder", lambda lib, a, b: lib.remainder(a, b)),
    ("fmod", lambda lib, a, b: lib.fmod(a, b)),
]
INT_DIVIDENDS = np.array([7, -7, 7, -7, 0, 5, -(2**31)], np.int64)
INT_DIVISORS = np.array([2, 2, -2, -2, 3, 1, -1], np.int64)


def with_zero_divisor(divisors: np.ndarray) -> np.ndarray:
    """`divisors` with one zero in the middle."""
    out = divisors.copy()
    out[len(out) // 2] = 0
    return out
