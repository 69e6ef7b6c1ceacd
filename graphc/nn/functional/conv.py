"""Padding, im2col windows, convolutions and pooling.

Convolution is `unfold` (the UNFOLD primitive, im2col in
torch.nn.functional.unfold's layout) followed by one matmul; transposed
convolution is a matmul followed by `fold` (col2im, which sums overlaps).
Pooling unfolds the windows and reduces over them. All of it is built from
Tensor ops, so it differentiates and traces like any other op.
"""

from __future__ import annotations

import math

import numpy as np

import graphc
from graphc._checks import tensor_params
from graphc.errors import InputShapeError
from graphc.ir.ops import Op


def _pair(value, name: str = "argument") -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    if len(value) == 1:
        return (value[0], value[0])
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value}")
    return (int(value[0]), int(value[1]))


def _first(value):
    """The single value of a 1-D layer's int-or-1-tuple argument."""
    return value[0] if isinstance(value, (tuple, list)) else value


def _window_attrs(kernel, stride, padding, dilation) -> dict:
    return {
        "kernel": _pair(kernel, "kernel_size"),
        "stride": _pair(stride, "stride"),
        "padding": _pair(padding, "padding"),
        "dilation": _pair(dilation, "dilation"),
    }


def _check_dims(name: str, input, dims: int) -> None:
    """An unbatched input has `dims` dims, a batched one `dims` + 1."""
    if input.dim() not in (dims, dims + 1):
        raise InputShapeError(f"{name}: expected {dims}-D or {dims + 1}-D input, got shape {tuple(input.shape)}")


def _batched(name: str, input, dims: int):
    """(input with a leading batch dim, whether it lacked one), after
    _check_dims."""
    _check_dims(name, input, dims)
    unbatched = input.dim() == dims
    return (input.unsqueeze(0) if unbatched else input), unbatched


def _out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


# -- padding ------------------------------------------------------------------


@tensor_params("input")
def pad(input, pad, mode: str = "constant", value=None):
    """Pad the last len(pad)//2 dims: pad = (left, right, top, bottom, ...)
    starting from the last dim. Negative amounts crop, as in PyTorch."""
    if len(pad) % 2 or len(pad) // 2 > input.dim():
        raise ValueError(f"pad: padding length {len(pad)} must be even and at most 2 * {input.dim()}")
    if mode != "constant":
        return _pad_edges(input, pad, mode)
    pads = [[0, 0] for _ in range(input.dim())]
    for i in range(len(pad) // 2):
        pads[input.dim() - 1 - i] = [int(pad[2 * i]), int(pad[2 * i + 1])]
    grow = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads)
    out = input
    if any(lo or hi for lo, hi in grow):
        fill = 0.0 if value is None else value
        out = graphc.Tensor._emit(Op.PAD, [input], {"pads": grow, "value": fill})
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        index = tuple(slice(-min(lo, 0), size + min(hi, 0)) for (lo, hi), size in zip(pads, out.shape))
        out = out[index]
    return out


def _pad_edges(input, pad, mode: str):
    """'reflect', 'replicate' and 'circular' padding: one index_select per
    padded dim, reading each output position from its source position
    (negative amounts crop, as in PyTorch)."""
    if mode not in ("replicate", "reflect", "circular"):
        raise NotImplementedError(f"pad: mode {mode!r} is not supported")
    dims = len(pad) // 2
    if dims not in (1, 2, 3) or input.dim() not in (dims + 1, dims + 2):
        raise NotImplementedError(
            f"pad: {mode} padding of {dims} dims needs a {dims + 1}-D or {dims + 2}-D input, "
            f"got shape {tuple(input.shape)} (only 2D, 3D, 4D, 5D padding with non-constant padding are supported)"
        )
    out = input
    for i in range(dims):
        dim = input.dim() - 1 - i
        lo, hi = int(pad[2 * i]), int(pad[2 * i + 1])
        if lo == 0 and hi == 0:
            continue
        index = _edge_index(input.shape[dim], lo, hi, mode, dim)
        out = out.index_select(dim, graphc.tensor(index, device=input.device))
    return out


def _edge_index(size: int, lo: int, hi: int, mode: str, dim: int) -> np.ndarray:
    """Source position of each output position -lo .. size + hi - 1."""
    if mode == "reflect" and (lo >= size or hi >= size):
        raise ValueError(
            f"pad: padding size should be less than the corresponding input dimension, but got padding "
            f"({lo}, {hi}) at dimension {dim} of size {size}"
        )
    if mode == "circular" and (lo > size or hi > size):
        raise ValueError(
            f"pad: padding value causes wrapping around more than once (padding ({lo}, {hi}), size {size})"
        )
    positions = np.arange(-lo, size + hi)
    if mode == "replicate":
        return np.clip(positions, 0, size - 1)
    if mode == "circular":
        # PyTorch wraps around what is left after cropping negative amounts.
        start, stop = max(0, -lo), size - max(0, -hi)
        return start + (positions - start) % (stop - start)
    # reflect about the first and last element (which are not repeated)
    period = 2 * (size - 1) if size > 1 else 1
    folded = np.abs(positions) % period
    return np.where(folded >= size, period - folded, folded)


# -- windows --------------------------------------------------------------------


@tensor_params("input")
def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: [N, C, H, W] -> [N, C*kh*kw, L] (torch.nn.functional.unfold);
    an unbatched [C, H, W] gives [C*kh*kw, L]."""
    if input.dim() == 3:
        return unfold(input.unsqueeze(0), kernel_size, dilation, padding, stride).squeeze(0)
    if input.dim() != 4:
        raise InputShapeError(f"unfold: expected a 3-D or 4-D input [N, C, H, W], got shape {tuple(input.shape)}")
    return graphc.Tensor._emit(Op.UNFOLD, [input], _window_attrs(kernel_size, stride, padding, dilation))


@tensor_params("input")
def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im: [N, C*kh*kw, L] -> [N, C, H, W], summing overlapping values;
    an unbatched [C*kh*kw, L] gives [C, H, W]."""
    if input.dim() == 2:
        return fold(input.unsqueeze(0), output_size, kernel_size, dilation, padding, stride).squeeze(0)
    if input.dim() != 3:
        raise InputShapeError(f"fold: expected a 2-D or 3-D input [N, C*kh*kw, L], got shape {tuple(input.shape)}")
    attrs = _window_attrs(kernel_size, stride, padding, dilation)
    attrs["output_size"] = _pair(output_size, "output_size")
    return graphc.Tensor._emit(Op.FOLD, [input], attrs)


# -- convolution ------------------------------------------------------------------


def _same_padding(kernel, dilation) -> list[int]:
    """F.pad amounts (left, right, top, bottom) for padding='same', with the
    odd pixel on the right/bottom as PyTorch does."""
    amounts = []
    for k, d in zip(reversed(kernel), reversed(dilation)):
        total = d * (k - 1)
        amounts += [total // 2, total - total // 2]
    return amounts


@tensor_params("input", "weight")
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """2-D cross-correlation, as torch.nn.functional.conv2d."""
    input, unbatched = _batched("conv2d", input, 3)
    out_channels, in_per_group, kh, kw = weight.shape
    n, c = input.shape[:2]
    if c != in_per_group * groups:
        raise InputShapeError(
            f"conv2d: weight of shape {tuple(weight.shape)} with groups={groups} expects "
            f"{in_per_group * groups} input channels, got input of shape {tuple(input.shape)}"
        )
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if isinstance(padding, str):
        input, padding = _string_padding(input, padding, (kh, kw), stride, dilation)
    cols = unfold(input, (kh, kw), dilation, padding, stride)
    length = cols.shape[2]
    oh = _out_size(input.shape[2], kh, stride[0], _pair(padding)[0], dilation[0])
    if groups == 1:
        out = weight.reshape(out_channels, -1).matmul(cols)
    else:
        cols = cols.reshape(n, groups, in_per_group * kh * kw, length)
        out = weight.reshape(groups, out_channels // groups, -1).matmul(cols)
    out = out.reshape(n, out_channels, oh, length // oh)
    if bias is not None:
        out = out + bias.reshape(1, out_channels, 1, 1)
    return out.squeeze(0) if unbatched else out


def _string_padding(input, padding: str, kernel, stride, dilation):
    if padding == "valid":
        return input, 0
    if padding != "same":
        raise ValueError(f"padding must be 'valid', 'same' or ints, got {padding!r}")
    if stride != (1, 1):
        raise ValueError("padding='same' is not supported for strided convolutions")
    amounts = _same_padding(kernel, dilation)
    left_w, right_w, top, bottom = amounts
    if left_w == right_w and top == bottom:
        return input, (top, left_w)
    return pad(input, amounts), 0


@tensor_params("input", "weight")
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """1-D convolution, as conv2d over a height-1 image."""
    input, unbatched = _batched("conv1d", input, 2)
    if not isinstance(padding, str):
        padding = (0, _first(padding))
    out = conv2d(
        input.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        (1, _first(stride)),
        padding,
        (1, _first(dilation)),
        groups,
    )
    out = out.squeeze(2)
    return out.squeeze(0) if unbatched else out


@tensor_params("input", "weight")
def conv_transpose2d(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
):
    """Transposed 2-D convolution (the gradient of conv2d w.r.t. its input).

    weight has shape [C_in, C_out / groups, kh, kw]."""
    unbatched = input.dim() == 3
    if unbatched:
        input = input.unsqueeze(0)
    n, c, h, w = input.shape
    in_channels, out_per_group, kh, kw = weight.shape
    if c != in_channels:
        raise InputShapeError(
            f"conv_transpose2d: weight of shape {tuple(weight.shape)} expects {in_channels} input "
            f"channels, got input of shape {tuple(input.shape)}"
        )
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    (oph, opw), (dh, dw) = _pair(output_padding), _pair(dilation)
    out_h = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    out_w = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    in_per_group = in_channels // groups
    # [G, C_in/G, C_out/G*kh*kw] -> transposed, times x grouped [N, G, C_in/G, H*W]
    w_t = weight.reshape(groups, in_per_group, out_per_group * kh * kw).transpose(1, 2)
    cols = w_t.matmul(input.reshape(n, groups, in_per_group, h * w))
    cols = cols.reshape(n, groups * out_per_group * kh * kw, h * w)
    out = fold(cols, (out_h, out_w), (kh, kw), (dh, dw), (ph, pw), (sh, sw))
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out.squeeze(0) if unbatched else out


@tensor_params("input", "weight")
def conv_transpose1d(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
):
    """Transposed 1-D convolution, as conv_transpose2d over a height-1 image.

    weight has shape [C_in, C_out / groups, k]."""
    input, unbatched = _batched("conv_transpose1d", input, 2)
    out = conv_transpose2d(
        input.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        (1, _first(stride)),
        (0, _first(padding)),
        (0, _first(output_padding)),
        groups,
        (1, _first(dilation)),
    ).squeeze(2)
    return out.squeeze(0) if unbatched else out


# -- pooling ------------------------------------------------------------------------


def _pool_geometry(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> tuple[int, int]:
    """(number of outputs, extra right padding) of a pooling window along one
    dim, with PyTorch's ceil_mode rule (the last window must start inside the
    input or the left padding)."""
    span = size + 2 * p - d * (k - 1) - 1
    if ceil_mode:
        out = -(-span // s) + 1
        if (out - 1) * s >= size + p:
            out -= 1
    else:
        out = span // s + 1
    extra = max(0, (out - 1) * s + d * (k - 1) + 1 - (size + 2 * p))
    return out, extra


@tensor_params("input")
def max_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """Max over each window; padding counts as -inf. With return_indices,
    also the flat (h * W + w) index of each maximum, as PyTorch."""
    input, unbatched = _batched("max_pool2d", input, 3)
    n, c, h, w = input.shape
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = _pair(stride if stride not in (None, ()) else kernel_size)
    (ph, pw), (dh, dw) = _pair(padding), _pair(dilation)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"max_pool2d: padding {(ph, pw)} must be at most half of kernel_size {(kh, kw)}")
    oh, extra_h = _pool_geometry(h, kh, sh, ph, dh, ceil_mode)
    ow, extra_w = _pool_geometry(w, kw, sw, pw, dw, ceil_mode)
    padded = pad(input, (pw, pw + extra_w, ph, ph + extra_h), value=-math.inf)
    cols = unfold(padded, (kh, kw), (dh, dw), 0, (sh, sw)).reshape(n, c, kh * kw, oh * ow)
    # Picking the first maximum with gather (rather than amax) sends the whole
    # gradient to that one element on ties, as PyTorch does.
    position = cols.argmax(2, keepdim=True)
    out = cols.gather(2, position).reshape(n, c, oh, ow)
    if return_indices:
        indices = _max_indices(
            position.squeeze(2),
            (h, w),
            (oh, ow),
            (kh, kw),
            (sh, sw),
            (ph, pw),
            (dh, dw),
        )
        indices = indices.reshape(n, c, oh, ow)
        return (out.squeeze(0), indices.squeeze(0)) if unbatched else (out, indices)
    return out.squeeze(0) if unbatched else out


def _max_indices(position, size, out_size, kernel, stride, padding, dilation):
    """Flat input index of each window's maximum, from `position` [N, C, L],
    the index of the maximum within the kh*kw window."""
    w, (oh, ow), (kh, kw) = size[1], out_size, kernel
    # Table: flat input index for (window position, output position), from shapes only.
    ki, kj = np.divmod(np.arange(kh * kw), kw)
    oi, oj = np.divmod(np.arange(oh * ow), ow)
    rows = oi[None, :] * stride[0] - padding[0] + ki[:, None] * dilation[0]
    columns = oj[None, :] * stride[1] - padding[1] + kj[:, None] * dilation[1]
    table = graphc.tensor((rows * w + columns).astype(np.int64), device=position.device)  # [kh*kw, L]
    n, c, length = position.shape
    table = table.reshape(1, 1, kh * kw, length).expand(n, c, kh * kw, length)
    return table.gather(2, position.unsqueeze(2)).squeeze(2)


@tensor_params("input")
def max_pool1d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode=False,
    return_indices=False,
):
    """max_pool2d over a height-1 image."""
    stride = None if stride in (None, ()) else (1, _first(stride))
    result = max_pool2d(
        input.unsqueeze(-2),
        (1, _first(kernel_size)),
        stride,
        (0, _first(padding)),
        (1, _first(dilation)),
        ceil_mode,
        return_indices,
    )
    if return_indices:
        return result[0].squeeze(-2), result[1].squeeze(-2)
    return result.squeeze(-2)


def _avg_divisors(size, out_size, kernel, stride, padding, count_include_pad) -> np.ndarray:
    """Per-output-position divisor of avg_pool2d, PyTorch's rule: windows are
    clipped to the padded input; padding counts only if count_include_pad."""

    def one_dim(length, out, k, s, p):
        start = np.arange(out) * s - p
        end = np.minimum(start + k, length + p)
        full = end - start
        clipped = np.minimum(end, length) - np.maximum(start, 0)
        return full if count_include_pad else clipped

    rows = one_dim(size[0], out_size[0], kernel[0], stride[0], padding[0])
    cols = one_dim(size[1], out_size[1], kernel[1], stride[1], padding[1])
    return np.outer(rows, cols).astype(np.float32)


@tensor_params("input")
def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override=None,
):
    """Mean over each window (zero padding), PyTorch's divisor rules."""
    input, unbatched = _batched("avg_pool2d", input, 3)
    n, c, h, w = input.shape
    kernel = _pair(kernel_size)
    stride = _pair(stride if stride not in (None, ()) else kernel_size)
    padding = _pair(padding)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"avg_pool2d: padding {padding} must be at most half of kernel_size {kernel}")
    oh, extra_h = _pool_geometry(h, kernel[0], stride[0], padding[0], 1, ceil_mode)
    ow, extra_w = _pool_geometry(w, kernel[1], stride[1], padding[1], 1, ceil_mode)
    padded = pad(input, (padding[1], padding[1] + extra_w, padding[0], padding[0] + extra_h))
    cols = unfold(padded, kernel, 1, 0, stride).reshape(n, c, kernel[0] * kernel[1], oh, ow)
    sums = cols.sum(2)
    if divisor_override:
        out = sums / float(divisor_override)
    else:
        divisors = _avg_divisors((h, w), (oh, ow), kernel, stride, padding, count_include_pad)
        out = sums / graphc.tensor(divisors, dtype=sums.dtype, device=sums.device)
    return out.squeeze(0) if unbatched else out


@tensor_params("input")
def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    stride = None if stride in (None, ()) else (1, _first(stride))
    out = avg_pool2d(
        input.unsqueeze(-2),
        (1, _first(kernel_size)),
        stride,
        (0, _first(padding)),
        ceil_mode,
        count_include_pad,
    )
    return out.squeeze(-2)


def _adaptive_matrix(size: int, out: int) -> np.ndarray:
    """[out, size] averaging matrix: row i averages input[floor(i*size/out)
    : ceil((i+1)*size/out)], PyTorch's adaptive windows."""
    matrix = np.zeros((out, size), dtype=np.float32)
    for i in range(out):
        start = (i * size) // out
        end = -(-((i + 1) * size) // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@tensor_params("input")
def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size. Adaptive averaging is linear
    and separable, so it is two small matmuls with constant matrices."""
    _check_dims("adaptive_avg_pool2d", input, 3)
    h, w = input.shape[-2:]
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    oh, ow = h if oh is None else int(oh), w if ow is None else int(ow)
    if oh == 1 and ow == 1:
        return input.mean((-2, -1), keepdim=True)
    rows = graphc.tensor(_adaptive_matrix(h, oh), dtype=input.dtype, device=input.device)
    cols = graphc.tensor(_adaptive_matrix(w, ow).T.copy(), dtype=input.dtype, device=input.device)
    return rows.matmul(input.matmul(cols))


@tensor_params("input")
def adaptive_avg_pool1d(input, output_size):
    size = output_size[0] if isinstance(output_size, (tuple, list)) else output_size
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, size)).squeeze(-2)
