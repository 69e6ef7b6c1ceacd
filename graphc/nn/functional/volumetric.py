"""3-D convolution and pooling over [N, C, D, H, W] (or unbatched
[C, D, H, W]), built from their 2-D forms.

A 3-D window is kd 2-D windows at successive depths. For each depth offset
k of the kernel, the input slices feeding every output depth (a strided
slice along D) are folded into the batch and run through the 2-D op; the kd
results are then combined: summed for convolution and average pooling,
reduced by a first-maximum for max pooling.
"""

from __future__ import annotations

import math

import numpy as np

import graphc
from graphc._checks import tensor_params
from graphc.errors import InputShapeError
from graphc.nn.functional import conv as conv2d_ops
from graphc.nn.functional.sampling import interpolate


def _triple(value, name: str) -> tuple[int, int, int]:
    if isinstance(value, int):
        return (value,) * 3
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * 3
    if len(value) != 3:
        raise ValueError(f"{name} must be an int or a triple of ints, got {value}")
    return value


def _batched(name: str, input):
    if input.dim() not in (4, 5):
        raise InputShapeError(f"{name}: expected 4-D or 5-D input, got shape {tuple(input.shape)}")
    unbatched = input.dim() == 4
    return (input.unsqueeze(0) if unbatched else input), unbatched


def _depth_slabs(x, kd: int, stride: int, dilation: int, out_depth: int):
    """For each kernel depth offset k, x[:, :, k*dilation + stride*j] for
    j < out_depth, folded to [N * out_depth, C, H, W]."""
    n, c, _, h, w = x.shape
    slabs = []
    for k in range(kd):
        start = k * dilation
        slab = x[:, :, start : start + (out_depth - 1) * stride + 1 : stride]
        slabs.append(slab.transpose(1, 2).reshape(n * out_depth, c, h, w))
    return slabs


def _unfold_depth(y, n: int, out_depth: int):
    """[N * D, C, H, W] -> [N, C, D, H, W]."""
    _, c, h, w = y.shape
    return y.reshape(n, out_depth, c, h, w).transpose(1, 2)


@tensor_params("input", "weight")
def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """3-D cross-correlation, as torch.nn.functional.conv3d; weight is
    [C_out, C_in / groups, kd, kh, kw]."""
    input, unbatched = _batched("conv3d", input)
    if weight.dim() != 5 or input.shape[1] != weight.shape[1] * groups:
        raise InputShapeError(
            f"conv3d: weight of shape {tuple(weight.shape)} with groups={groups} expects "
            f"{weight.shape[1] * groups if weight.dim() == 5 else '?'} input channels, got input of shape "
            f"{tuple(input.shape)}"
        )
    stride, dilation = _triple(stride, "stride"), _triple(dilation, "dilation")
    kernel = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid', 'same' or ints, got {padding!r}")
        if padding == "same" and stride != (1, 1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")
        if padding == "same":
            input = conv2d_ops.pad(input, conv2d_ops._same_padding(kernel, dilation))
        padding = 0
    pd, ph, pw = _triple(padding, "padding")
    if pd:
        input = conv2d_ops.pad(input, (0, 0, 0, 0, pd, pd))
    n, depth = input.shape[0], input.shape[2]
    out_depth = (depth - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    if out_depth <= 0:
        raise InputShapeError(f"conv3d: kernel of depth {kernel[0]} does not fit input of shape {tuple(input.shape)}")
    out = None
    for k, slab in enumerate(_depth_slabs(input, kernel[0], stride[0], dilation[0], out_depth)):
        part = conv2d_ops.conv2d(slab, weight[:, :, k], None, stride[1:], (ph, pw), dilation[1:], groups)
        out = part if out is None else out + part
    out = _unfold_depth(out, n, out_depth)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1, 1)
    return out.squeeze(0) if unbatched else out


def _pool_setup(name, input, kernel_size, stride, padding, dilation, ceil_mode, fill):
    """(depth-padded input, kernel, stride, padding, dilation, output depth)."""
    input, unbatched = _batched(name, input)
    kernel = _triple(kernel_size, "kernel_size")
    stride = _triple(stride if stride not in (None, ()) else kernel_size, "stride")
    padding, dilation = _triple(padding, "padding"), _triple(dilation, "dilation")
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"{name}: pad should be at most half of effective kernel size, got padding {padding}")
    out_depth, extra = conv2d_ops._pool_geometry(
        input.shape[2], kernel[0], stride[0], padding[0], dilation[0], ceil_mode
    )
    if padding[0] or extra:
        input = conv2d_ops.pad(input, (0, 0, 0, 0, padding[0], padding[0] + extra), value=fill)
    return input, unbatched, kernel, stride, padding, dilation, out_depth


@tensor_params("input")
def max_pool3d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """Max over each 3-D window (padding counts as -inf); the gradient goes
    to the first maximum in (depth, row, column) order, as PyTorch's."""
    if return_indices:
        raise NotImplementedError("max_pool3d: return_indices=True is not supported")
    x, unbatched, kernel, stride, padding, dilation, out_depth = _pool_setup(
        "max_pool3d", input, kernel_size, stride, padding, dilation, ceil_mode, -math.inf
    )
    n = x.shape[0]
    parts = [
        conv2d_ops.max_pool2d(slab, kernel[1:], stride[1:], padding[1:], dilation[1:], ceil_mode)
        for slab in _depth_slabs(x, kernel[0], stride[0], dilation[0], out_depth)
    ]
    stacked = graphc.stack(parts, 0)
    out = stacked.gather(0, stacked.argmax(0, keepdim=True)).squeeze(0)
    out = _unfold_depth(out, n, out_depth)
    return out.squeeze(0) if unbatched else out


def _window_divisors(size, out_size, kernel, stride, padding, count_include_pad) -> np.ndarray:
    """avg_pool3d's divisor at each output position (PyTorch's rule, one
    factor per dim)."""
    factors = []
    for length, out, k, s, p in zip(size, out_size, kernel, stride, padding):
        start = np.arange(out) * s - p
        end = np.minimum(start + k, length + p)
        factors.append(end - start if count_include_pad else np.minimum(end, length) - np.maximum(start, 0))
    return np.einsum("i,j,k->ijk", *factors).astype(np.float32)


@tensor_params("input")
def avg_pool3d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override=None,
):
    """Mean over each 3-D window (zero padding), PyTorch's divisor rules."""
    size = tuple(input.shape[-3:])
    x, unbatched, kernel, stride, padding, _, out_depth = _pool_setup(
        "avg_pool3d", input, kernel_size, stride, padding, 1, ceil_mode, 0.0
    )
    n = x.shape[0]
    sums = None
    for slab in _depth_slabs(x, kernel[0], stride[0], 1, out_depth):
        part = conv2d_ops.avg_pool2d(slab, kernel[1:], stride[1:], padding[1:], ceil_mode, True, 1)
        sums = part if sums is None else sums + part
    sums = _unfold_depth(sums, n, out_depth)
    if divisor_override:
        out = sums / float(divisor_override)
    else:
        divisors = _window_divisors(size, tuple(sums.shape[2:]), kernel, stride, padding, count_include_pad)
        out = sums / graphc.tensor(divisors, dtype=sums.dtype, device=sums.device)
    return out.squeeze(0) if unbatched else out


@tensor_params("input")
def adaptive_avg_pool3d(input, output_size):
    """Average pooling of [N, C, D, H, W] to a fixed output size (None
    entries keep that size)."""
    x, unbatched = _batched("adaptive_avg_pool3d", input)
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 3
    if len(sizes) != 3:
        raise ValueError(f"adaptive_avg_pool3d: output_size must have 3 entries, got {output_size}")
    sizes = tuple(x.shape[2 + i] if s is None else int(s) for i, s in enumerate(sizes))
    out = interpolate(x, size=sizes, mode="area")
    return out.squeeze(0) if unbatched else out
