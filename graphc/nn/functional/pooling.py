"""Pooling whose windows are not one fixed shape: adaptive max pooling and
power-average (LP) pooling; the `*_with_indices` names of max pooling.

Adaptive windows differ in size, so the windows are gathered through an
index table (built from shapes only) into a padded [N, C, L, K] block whose
unused slots read -inf; a max over K then works as for fixed windows.
"""

from __future__ import annotations

import math

import numpy as np

import graphc
from graphc._checks import tensor_params
from graphc.nn.functional.conv import _check_dims, _first, _pair, avg_pool1d, avg_pool2d, max_pool1d, max_pool2d


def _adaptive_windows(size: int, out: int) -> np.ndarray:
    """[out, k] input positions of each adaptive window (PyTorch's
    floor/ceil bounds); slots past a window's end hold `size`, the index of
    the -inf padding."""
    starts = [(i * size) // out for i in range(out)]
    ends = [-(-((i + 1) * size) // out) for i in range(out)]
    k = max(e - s for s, e in zip(starts, ends))
    table = np.full((out, k), size, dtype=np.int64)
    for i, (s, e) in enumerate(zip(starts, ends)):
        table[i, : e - s] = np.arange(s, e)
    return table


def _output_pair(output_size, h: int, w: int) -> tuple[int, int]:
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    return (h if oh is None else int(oh)), (w if ow is None else int(ow))


@tensor_params("input")
def adaptive_max_pool2d(input, output_size, return_indices: bool = False):
    """Max over PyTorch's adaptive windows; with return_indices, also the
    flat (h * W + w) index of each maximum (the first one on ties)."""
    _check_dims("adaptive_max_pool2d", input, 3)
    unbatched = input.dim() == 3
    if unbatched:
        input = input.unsqueeze(0)
    n, c, h, w = input.shape
    oh, ow = _output_pair(output_size, h, w)
    if oh <= 0 or ow <= 0:
        raise RuntimeError(f"adaptive_max_pool2d: output_size must be positive, got {(oh, ow)}")
    rows, cols = _adaptive_windows(h, oh), _adaptive_windows(w, ow)
    kh, kw = rows.shape[1], cols.shape[1]
    # Padded flat index of every (output position, window slot) pair.
    padded = rows[:, None, :, None] * (w + 1) + cols[None, :, None, :]  # [oh, ow, kh, kw]
    padded = padded.reshape(oh * ow, kh * kw)
    flat = graphc.nn.functional.pad(input, (0, 1, 0, 1), value=-math.inf).reshape(n, c, (h + 1) * (w + 1))
    index = graphc.tensor(padded.reshape(1, 1, -1), device=input.device).expand(n, c, padded.size)
    windows = flat.gather(2, index).reshape(n, c, oh * ow, kh * kw)
    position = windows.argmax(3, keepdim=True)
    out = windows.gather(3, position).reshape(n, c, oh, ow)
    if not return_indices:
        return out.squeeze(0) if unbatched else out
    # The same slots in unpadded coordinates (padding slots are never a max).
    true_index = np.minimum(rows, h - 1)[:, None, :, None] * w + np.minimum(cols, w - 1)[None, :, None, :]
    table = graphc.tensor(true_index.reshape(1, 1, oh * ow, kh * kw), device=input.device)
    indices = table.expand(n, c, oh * ow, kh * kw).gather(3, position).reshape(n, c, oh, ow)
    return (out.squeeze(0), indices.squeeze(0)) if unbatched else (out, indices)


@tensor_params("input")
def adaptive_max_pool1d(input, output_size, return_indices: bool = False):
    """adaptive_max_pool2d over a height-1 image."""
    _check_dims("adaptive_max_pool1d", input, 2)
    size = _first(output_size)
    result = adaptive_max_pool2d(input.unsqueeze(-2), (1, size), return_indices)
    if return_indices:
        return result[0].squeeze(-2), result[1].squeeze(-2)
    return result.squeeze(-2)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices: bool = False):
    return adaptive_max_pool2d(input, output_size, return_indices=True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices: bool = False):
    return adaptive_max_pool1d(input, output_size, return_indices=True)


def max_pool2d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices: bool = False
):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def max_pool1d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices: bool = False
):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def _lp_root(sums, window: int, norm_type: float):
    # PyTorch's formula: sign(s) * relu(|s|) keeps negative window sums
    # (odd p) at zero before the root.
    sums = graphc.sign(sums) * graphc.nn.functional.relu(sums.abs())
    return (sums * window) ** (1.0 / norm_type)


@tensor_params("input")
def lp_pool2d(input, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
    """(sum over each window of x^p)^(1/p): PyTorch's power-average pooling."""
    kh, kw = _pair(kernel_size)
    means = avg_pool2d(input ** float(norm_type), (kh, kw), stride, 0, ceil_mode)
    return _lp_root(means, kh * kw, float(norm_type))


@tensor_params("input")
def lp_pool1d(input, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
    """(sum over each window of x^p)^(1/p) along the last dim."""
    k = _first(kernel_size)
    means = avg_pool1d(input ** float(norm_type), k, stride, 0, ceil_mode)
    return _lp_root(means, k, float(norm_type))
