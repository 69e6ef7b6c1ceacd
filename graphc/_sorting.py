"""Sorting and order statistics: sort, argsort, msort, topk, kthvalue,
median, nanmedian, mode, searchsorted, bucketize and unique.

All of them are the ARGSORT primitive (a stable sort, NaN largest) plus
GATHER: the values are gathered at the sorted indices, so gradients flow to
exactly the elements picked, as in PyTorch. `unique` has a data-dependent
size and runs eagerly only.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from graphc import _elementwise as ew
from graphc import _tensor_core as _t
from graphc._checks import tensor_params
from graphc.errors import TraceError, at_user_line
from graphc.ir import dtypes
from graphc.ir.ops import Op

Tensor = _t.Tensor

# torch.return_types.* equivalents: named (values, indices) pairs.
sort_result = namedtuple("sort", ["values", "indices"])
topk_result = namedtuple("topk", ["values", "indices"])
kthvalue_result = namedtuple("kthvalue", ["values", "indices"])
median_result = namedtuple("median", ["values", "indices"])
nanmedian_result = namedtuple("nanmedian", ["values", "indices"])
mode_result = namedtuple("mode", ["values", "indices"])


def _emit(op, *srcs, **attrs):
    return Tensor._emit(op, list(srcs), attrs)


def _argsort(x: Tensor, axis: int, descending: bool) -> Tensor:
    return _emit(Op.ARGSORT, x, axis=axis, descending=bool(descending))


def _take(x: Tensor, idx: Tensor, axis: int) -> Tensor:
    """x's elements at `idx` (same rank, any extent along `axis`)."""
    return _emit(Op.GATHER, x, idx, axis=axis)


def _head(x: Tensor, axis: int, k: int) -> Tensor:
    """The first `k` entries of x along `axis`."""
    stops = tuple(k if i == axis else d for i, d in enumerate(x.shape))
    return _emit(Op.SLICE, x, starts=(0,) * x.ndim, stops=stops, steps=(1,) * x.ndim)


def _squeeze(x: Tensor, axis: int) -> Tensor:
    return _emit(Op.RESHAPE, x, shape=tuple(d for i, d in enumerate(x.shape) if i != axis))


def _as_1d(x: Tensor) -> Tensor:
    return _emit(Op.RESHAPE, x, shape=(1,)) if x.ndim == 0 else x


def _like_input(x: Tensor, out: Tensor) -> Tensor:
    """`out` back to 0-d when `x` was a scalar (torch treats it as a row of one)."""
    return _emit(Op.RESHAPE, out, shape=()) if x.ndim == 0 and out.ndim == 1 and out.shape[0] == 1 else out


@tensor_params("input")
def argsort(x, dim: int = -1, descending: bool = False, stable: bool = False):
    """Indices that sort `x` along `dim`. The sort is always stable (equal
    elements keep their order, also when descending); NaN sorts as the
    largest value.

    >>> import graphc
    >>> graphc.argsort(graphc.tensor([3.0, 1.0, 2.0]))
    tensor([1, 2, 0])
    """
    axis = _t._norm_dim(dim, x.ndim, "argsort")
    return _like_input(x, _argsort(_as_1d(x), axis, descending))


@tensor_params("input")
def sort(x, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) of `x` sorted along `dim` (stable; NaN largest).

    >>> import graphc
    >>> graphc.sort(graphc.tensor([3.0, 1.0, 2.0]), descending=True).values
    tensor([3., 2., 1.])
    """
    axis = _t._norm_dim(dim, x.ndim, "sort")
    flat = _as_1d(x)
    idx = _argsort(flat, axis, descending)
    return sort_result(_like_input(x, _take(flat, idx, axis)), _like_input(x, idx))


@tensor_params("input")
def msort(x):
    """`x` sorted along its first dimension (values only)."""
    return sort(x, 0).values


@tensor_params("input")
def topk(x, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """The `k` largest (or smallest) elements along `dim` and their indices,
    in sorted order. Among equal elements the earlier index comes first."""
    axis = _t._norm_dim(dim, x.ndim, "topk")
    flat = _as_1d(x)
    if not 0 <= int(k) <= flat.shape[axis]:
        raise RuntimeError(at_user_line("selected index k out of range"))
    idx = _head(_argsort(flat, axis, largest), axis, int(k))
    return topk_result(_like_input(x, _take(flat, idx, axis)), _like_input(x, idx))


def _pick(x: Tensor, order: Tensor, pos: Tensor, axis: int, keepdim: bool, make):
    """(value, index) of the element at sorted position `pos` (a tensor of
    x's shape with extent 1 on `axis`) of `order` (x's sorting indices)."""
    idx = _take(order, pos, axis)
    vals = _take(x, idx, axis)
    if not keepdim:
        vals, idx = _squeeze(vals, axis), _squeeze(idx, axis)
    return make(vals, idx)


def _positions(x: Tensor, axis: int, value) -> Tensor:
    shape = tuple(1 if i == axis else d for i, d in enumerate(x.shape))
    return ew.expand_to(value if isinstance(value, Tensor) else ew.scalar(value, dtypes.int64), shape)


@tensor_params("input")
def kthvalue(x, k: int, dim: int = -1, keepdim: bool = False):
    """(values, indices) of the k-th smallest element (k counts from 1) along `dim`."""
    axis = _t._norm_dim(dim, x.ndim, "kthvalue")
    flat = _as_1d(x)
    if not 1 <= int(k) <= flat.shape[axis]:
        raise RuntimeError(at_user_line(f"kthvalue(): selected number k out of range for dimension {axis}"))
    order = _argsort(flat, axis, False)
    res = _pick(flat, order, _positions(flat, axis, int(k) - 1), axis, keepdim or x.ndim == 0, kthvalue_result)
    return kthvalue_result(*(_like_input(x, r) for r in res))


def _nan_count(x: Tensor, axis: int) -> Tensor:
    from graphc._reductions import sum as _sum

    return _sum(ew.isnan(x), axis, keepdim=True)


def _median(x: Tensor, dim, keepdim: bool, ignore_nan: bool, opname: str, make):
    if dim is None:
        flat = _emit(Op.RESHAPE, x, shape=(x.numel(),))
        if x.numel() == 0:
            return ew.scalar(float("nan"), x.dtype if x.dtype.is_float else dtypes.float32)
        return _median(flat, 0, False, ignore_nan, opname, make).values
    axis = _t._norm_dim(dim, x.ndim, opname)
    flat = _as_1d(x)
    n = flat.shape[axis]
    if n == 0:
        raise IndexError(at_user_line(f"{opname}(): Expected reduction dim {axis} to have non-zero size."))
    order = _argsort(flat, axis, False)
    if not flat.dtype.is_float:
        pos = _positions(flat, axis, (n - 1) // 2)
    elif ignore_nan:
        # The lower median of the values that are not NaN (the first NaN
        # when all are).
        kept = ew.sub(n, _nan_count(flat, axis))
        pos = ew.where(ew.gt(kept, 0), ew.floor_divide(ew.sub(kept, 1), 2), 0)
    else:
        # A row with NaN has median NaN: its first NaN, which the stable sort
        # puts right after the other values.
        nans = _nan_count(flat, axis)
        pos = ew.where(ew.gt(nans, 0), ew.sub(n, nans), (n - 1) // 2)
    res = _pick(flat, order, ew.cast(pos, dtypes.int64), axis, keepdim or x.ndim == 0, make)
    return make(*(_like_input(x, r) for r in res))


@tensor_params("input")
def median(x, dim=None, keepdim: bool = False):
    """The lower median (the smaller of the two middle values for an even
    count), NaN when there is a NaN; with `dim`, (values, indices)."""
    return _median(x, dim, keepdim, False, "median", median_result)


@tensor_params("input")
def nanmedian(x, dim=None, keepdim: bool = False):
    """Like `median`, ignoring NaN (NaN only where every value is NaN)."""
    return _median(x, dim, keepdim, True, "nanmedian", nanmedian_result)


@tensor_params("input")
def mode(x, dim: int = -1, keepdim: bool = False):
    """(values, indices): the most frequent value along `dim` (the smallest
    among equally frequent ones) and the last index where it occurs.
    Counting compares every pair: O(n^2) per row."""
    from graphc import _reductions as red

    axis = _t._norm_dim(dim, x.ndim, "mode")
    flat = _as_1d(x)
    a = axis
    mine = ew.expand_to(flat.unsqueeze(a + 1), _pair_shape(flat, a))
    other = ew.expand_to(flat.unsqueeze(a), _pair_shape(flat, a))
    counts = red.sum(ew.eq(mine, other), a + 1)
    best = red.amax(counts, a, keepdim=True)
    candidates = ew.eq(counts, best)
    value = red.amin(ew.where(candidates, flat, _largest(flat.dtype)), a, keepdim=True)
    hits = ew.eq(flat, value)
    # The last hit: the largest position among the hits.
    positions = _emit(Op.IOTA, shape=tuple(flat.shape), axis=a, dtype=dtypes.int64)
    idx = red.amax(ew.where(hits, positions, -1), a, keepdim=True)
    vals = _take(flat, idx, a)
    if not keepdim or x.ndim == 0:
        vals, idx = _squeeze(vals, a), _squeeze(idx, a)
    return mode_result(_like_input(x, vals), _like_input(x, idx))


def _pair_shape(x: Tensor, axis: int) -> tuple:
    n = x.shape[axis]
    return tuple(x.shape[: axis + 1]) + (n,) + tuple(x.shape[axis + 1 :])


def _largest(dtype):
    if dtype.is_float:
        return float("inf")
    if dtype.is_bool:
        return True
    return int(np.iinfo(dtype.np).max)


# ---------------------------------------------------------------------------
# searching a sorted sequence


@tensor_params("sorted_sequence")
def searchsorted(sorted_sequence, values, *, out_int32: bool = False, right: bool = False, side=None, sorter=None):
    """Indices at which `values` would be inserted into the last dimension
    of `sorted_sequence` to keep it sorted (the first such index, or the last
    with right=True or side="right"). Counts comparisons: O(n * m) per row."""
    from graphc import _reductions as red

    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(at_user_line(f"torch.searchsorted(): side can only be 'left' or 'right' but got {side}"))
        if right and side == "left":
            raise RuntimeError(
                at_user_line(
                    "torch.searchsorted(): side and right can't be set to opposites, got side of left "
                    "while right was True"
                )
            )
        right = side == "right"
    seq = sorted_sequence
    if sorter is not None:
        seq = _take(seq, ew.cast(sorter, dtypes.int64), seq.ndim - 1)
    if not isinstance(values, Tensor):
        # A Python number compares with its own type (1.5 against integer
        # boundaries is not truncated); the result is 0-d for 1-d boundaries.
        below = ew.le(seq, values) if right else ew.lt(seq, values)
        return ew.cast(red.sum(below, -1), dtypes.int32 if out_int32 else dtypes.int64)
    if seq.ndim > 1 and tuple(seq.shape[:-1]) != tuple(values.shape[:-1]):
        raise RuntimeError(
            at_user_line(
                "torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 dimensions of "
                "boundaries tensor and input value tensor must match, but we got boundaries tensor "
                f"{list(seq.shape)} and input value tensor {list(values.shape)}"
            )
        )
    # count[..., i] = #{j : seq[..., j] < v[..., i]} (<= for right)
    v = values.unsqueeze(-1)
    s = seq.unsqueeze(-2) if seq.ndim > 1 else seq
    below = ew.le(s, v) if right else ew.lt(s, v)
    out = red.sum(below, -1)
    return ew.cast(out, dtypes.int32 if out_int32 else dtypes.int64)


@tensor_params("input")
def bucketize(x, boundaries, *, out_int32: bool = False, right: bool = False):
    """The bucket of each element of `x` among the sorted 1-d `boundaries`
    (torch.bucketize: `right` picks which side an equal boundary falls on)."""
    if boundaries.ndim != 1:
        raise RuntimeError(at_user_line(f"boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})"))
    v = x.unsqueeze(-1)
    below = ew.le(boundaries, v) if right else ew.lt(boundaries, v)
    from graphc import _reductions as red

    out = red.sum(below, -1)
    return ew.cast(out, dtypes.int32 if out_int32 else dtypes.int64)


# ---------------------------------------------------------------------------
# unique (eager only)


@tensor_params("input")
def unique(x, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """The distinct elements of `x`, sorted (with dim, the distinct slices).
    Eager only: how many there are depends on the data, so a traced or
    compiled program cannot hold the result."""
    if x.is_symbolic:
        raise TraceError(
            at_user_line(
                "unique() cannot be traced or compiled: the size of its result depends on the data. "
                "Call it outside graphc.compile, or use sort() and compare neighbours for a fixed-size result"
            )
        )
    arr = x.numpy(force=True)
    if dim is not None:
        axis = _t._norm_dim(dim, x.ndim, "unique")
        vals, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True, axis=axis)
    else:
        vals, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(arr.shape)
    out = [Tensor._wrap(np.ascontiguousarray(vals))]
    if return_inverse:
        out.append(Tensor._wrap(inverse.astype(np.int64).reshape(-1 if dim is not None else arr.shape)))
    if return_counts:
        out.append(Tensor._wrap(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


__all__ = [
    "argsort",
    "bucketize",
    "kthvalue",
    "median",
    "mode",
    "msort",
    "nanmedian",
    "searchsorted",
    "sort",
    "topk",
    "unique",
]
