"""Resampling: interpolate (nearest, nearest-exact, linear, bilinear,
bicubic, trilinear) and its deprecated aliases upsample*.

Every mode is separable: each spatial dim is resampled on its own. Nearest
modes pick source rows with index_select (exact, even for inf); the
interpolating modes are linear maps along a dim, applied as a matmul with a
constant [out, in] weight matrix built from the sizes alone, so they
differentiate and compile like any matmul.
"""

from __future__ import annotations

import math

import numpy as np

import graphc
from graphc._checks import tensor_params
from graphc.errors import InputShapeError

_SPATIAL_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")


def _output_sizes(name, spatial, size, scale_factor, recompute_scale_factor):
    """(output sizes, per-dim scale used to map output to input coordinates
    or None where it is in / out)."""
    dims = len(spatial)
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    if size is not None:
        sizes = list(size) if isinstance(size, (tuple, list)) else [size] * dims
        if len(sizes) != dims:
            raise ValueError(
                f"Input and output must have the same number of spatial dimensions, but got input with spatial "
                f"dimensions of {list(spatial)} and output size of {sizes}. Please provide input tensor in "
                "(N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) format."
            )
        return [int(s) for s in sizes], [None] * dims
    factors = list(scale_factor) if isinstance(scale_factor, (tuple, list)) else [scale_factor] * dims
    if len(factors) != dims:
        raise ValueError(
            f"Input and scale_factor must have the same number of spatial dimensions, but got input with "
            f"spatial dimensions of {list(spatial)} and scale_factor of shape {factors}."
        )
    sizes = [int(math.floor(n * float(f))) for n, f in zip(spatial, factors)]
    if recompute_scale_factor:
        return sizes, [None] * dims
    # PyTorch maps coordinates with the user's factor, not in / out.
    return sizes, [1.0 / float(f) for f in factors]


def _scale(n_in: int, n_out: int, scale, align_corners: bool) -> float:
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return scale if scale is not None else n_in / n_out


def _nearest_index(n_in: int, n_out: int, scale, exact: bool) -> np.ndarray:
    step = scale if scale is not None else n_in / n_out
    offset = 0.5 if exact else 0.0
    # float32 arithmetic, as PyTorch computes these source indices.
    src = np.floor((np.arange(n_out, dtype=np.float32) + np.float32(offset)) * np.float32(step))
    return np.minimum(src.astype(np.int64), n_in - 1)


def _linear_matrix(n_in: int, n_out: int, scale, align_corners: bool) -> np.ndarray:
    step = np.float32(_scale(n_in, n_out, scale, align_corners))
    dst = np.arange(n_out, dtype=np.float32)
    src = dst * step if align_corners else np.maximum((dst + np.float32(0.5)) * step - np.float32(0.5), 0)
    low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = (src - low).astype(np.float64)
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.arange(n_out), low), 1.0 - frac)
    np.add.at(matrix, (np.arange(n_out), high), frac)
    return matrix


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """Keys' cubic convolution weights (a = -0.75, PyTorch's) for the four
    taps at offsets -1, 0, 1, 2 from floor(src)."""
    a = -0.75

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _cubic_matrix(n_in: int, n_out: int, scale, align_corners: bool) -> np.ndarray:
    step = _scale(n_in, n_out, scale, align_corners)
    dst = np.arange(n_out, dtype=np.float64)
    src = dst * step if align_corners else (dst + 0.5) * step - 0.5
    base = np.floor(src).astype(np.int64)
    weights = _cubic_weights(src - base)
    matrix = np.zeros((n_out, n_in))
    for tap, weight in zip(range(-1, 3), weights):
        np.add.at(matrix, (np.arange(n_out), np.clip(base + tap, 0, n_in - 1)), weight)
    return matrix


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """adaptive_avg_pool's windows: row i averages [floor(i*in/out), ceil((i+1)*in/out))."""
    matrix = np.zeros((n_out, n_in))
    for i in range(n_out):
        start, end = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def _along(x, dim: int, matrix: np.ndarray):
    """Apply the [out, in] matrix along `dim` of x."""
    weights = graphc.tensor(matrix.T.astype(x.dtype.np), device=x.device)
    return x.transpose(dim, -1).matmul(weights).transpose(dim, -1)


def _check_mode(input, mode: str, align_corners) -> None:
    if mode not in _MODES:
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.dim()}D) for the modes: "
            f"nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact (got {mode})"
        )
    if align_corners is not None and mode in ("nearest", "nearest-exact", "area"):
        raise ValueError(
            "align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | trilinear"
        )
    if input.dim() not in (3, 4, 5):
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.dim()}D) for the modes: "
            f"nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact (got {mode})"
        )
    wanted = _SPATIAL_DIMS.get(mode)
    if wanted is not None and input.dim() != wanted + 2:
        raise NotImplementedError(f"Got {input.dim()}D input, but {mode} mode needs {wanted + 2}D input")


@tensor_params("input")
def interpolate(
    input,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners=None,
    recompute_scale_factor=None,
    antialias: bool = False,
):
    """Resample [N, C, *spatial] to `size` or spatial * scale_factor, as
    torch.nn.functional.interpolate."""
    _check_mode(input, mode, align_corners)
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    spatial = tuple(input.shape[2:])
    sizes, scales = _output_sizes("interpolate", spatial, size, scale_factor, recompute_scale_factor)
    if any(n <= 0 for n in sizes):
        raise InputShapeError(f"interpolate: output size {sizes} must be positive (input spatial size {spatial})")
    corners = bool(align_corners)
    out = input
    for i, (n_in, n_out, scale) in enumerate(zip(spatial, sizes, scales)):
        dim = 2 + i
        if mode in ("nearest", "nearest-exact"):
            index = _nearest_index(n_in, n_out, scale, mode == "nearest-exact")
            out = out.index_select(dim, graphc.tensor(index, device=input.device))
        elif mode == "bicubic":
            out = _along(out, dim, _cubic_matrix(n_in, n_out, scale, corners))
        elif mode == "area":
            out = _along(out, dim, _area_matrix(n_in, n_out))
        else:
            out = _along(out, dim, _linear_matrix(n_in, n_out, scale, corners))
    return out


def upsample(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None):
    """Deprecated alias of interpolate, kept for code that still calls it."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """interpolate(mode='nearest')."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """interpolate(mode='bilinear', align_corners=True), as PyTorch's alias."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
