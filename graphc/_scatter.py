"""Index updates along a dimension: index_add, index_copy, index_fill,
scatter with reduce="multiply", and scatter_reduce (sum, prod, mean, amax,
amin, with or without the tensor's own values).

Sums (index_add, scatter_reduce "sum"/"mean") are SCATTER_ADDs. The other
reductions have no primitive: they compare every index with every output
position along the dimension (a one-hot mask over [..., out, src]) and
reduce over the source axis, O(out * src) per row; autodiff then follows
PROD and REDUCE_MAX.
"""

from __future__ import annotations

import numpy as np

from graphc import _elementwise as ew
from graphc import _reductions as red
from graphc import _shape
from graphc._tensor_core import Tensor, _norm_dim
from graphc.errors import at_user_line
from graphc.ir import dtypes
from graphc.ir.ops import Op

_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def _emit(op, *srcs, **attrs):
    return Tensor._emit(op, list(srcs), attrs)


def _index_vector(opname: str, x: Tensor, dim: int, index) -> tuple[int, Tensor]:
    from graphc._indexing import _normalize, _to_index_tensor

    d = _norm_dim(dim, x.ndim, opname)
    idx = _to_index_tensor(index)
    if idx.ndim > 1:
        raise IndexError(
            at_user_line(
                f"{opname}(): Index is supposed to be a vector, but got dim: {idx.ndim} "
                f"with type: {ew.torch_type_name(idx.dtype)} and size: {list(idx.shape)}"
            )
        )
    if idx.dtype.is_float or idx.dtype.is_bool:
        raise IndexError(at_user_line(f"{opname}(): Expected dtype int64 for index"))
    idx = ew.cast(_shape.reshape(idx, (-1,)), dtypes.int64)
    return d, _normalize(idx, x.shape[d] if x.ndim else 1, d)


def _slices_shape(x: Tensor, d: int, n: int) -> tuple:
    return tuple(n if i == d else s for i, s in enumerate(x.shape))


def _spread(idx: Tensor, x: Tensor, d: int) -> Tensor:
    """The 1-d `idx` as a full index tensor for slices along `d`."""
    view = tuple(idx.shape[0] if i == d else 1 for i in range(x.ndim))
    return ew.expand_to(_shape.reshape(idx, view), _slices_shape(x, d, idx.shape[0]))


def _check_source(opname: str, x: Tensor, d: int, idx: Tensor, source: Tensor) -> None:
    if source.ndim != x.ndim and not (x.ndim <= 1 and source.ndim <= 1):
        raise IndexError(at_user_line(f"{opname}(): source has {source.ndim} dims but self has {x.ndim}"))
    n = source.shape[d] if source.ndim else 1
    if idx.shape[0] != n:
        raise RuntimeError(
            at_user_line(
                f"{opname}(): Number of indices ({idx.shape[0]}) should be equal to source.size(dim): "
                f"({n}), for dim: {d}"
            )
        )
    want = _slices_shape(x, d, idx.shape[0])
    if source.ndim and tuple(source.shape) != want:
        raise RuntimeError(
            at_user_line(
                f"{opname}(): source shape {list(source.shape)} must match self's {list(x.shape)} outside dim {d}"
            )
        )


def _hit(x: Tensor, d: int, full_idx: Tensor) -> Tensor:
    """Bool mask of the positions of x that `full_idx` points at along `d`."""
    ones = ew.expand_to(ew.scalar(1, dtypes.int64), tuple(full_idx.shape))
    return ew.gt(_emit(Op.SCATTER_ADD, ones, full_idx, axis=d, shape=tuple(x.shape)), 0)


def index_add(x, dim: int, index, source, *, alpha=1):
    """x plus `alpha * source` added into the slices `index` names along
    `dim` (repeated indices accumulate)."""
    d, idx = _index_vector("index_add_", x, dim, index)
    source = ew.cast(source, x.dtype)
    _check_source("index_add_", x, d, idx, source)
    if x.ndim == 0:
        return ew.add(x, ew.mul(red.sum(source), alpha) if alpha != 1 else red.sum(source))
    src = ew.mul(source, alpha) if alpha != 1 else source
    return ew.add(x, _emit(Op.SCATTER_ADD, src, _spread(idx, x, d), axis=d, shape=tuple(x.shape)))


def index_copy(x, dim: int, index, source):
    """x with the slices `index` names along `dim` replaced by `source`'s."""
    d, idx = _index_vector("index_copy_", x, dim, index)
    source = ew.cast(source, x.dtype)
    _check_source("index_copy_", x, d, idx, source)
    full = _spread(idx, x, d)
    put = _emit(
        Op.SCATTER_ADD,
        source if not x.dtype.is_bool else ew.cast(source, dtypes.int64),
        full,
        axis=d,
        shape=tuple(x.shape),
    )
    return ew.where(_hit(x, d, full), ew.cast(put, x.dtype), x)


def index_fill(x, dim: int, index, value):
    """x with `value` in the slices `index` names along `dim`."""
    d, idx = _index_vector("index_fill_", x, dim, index)
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError(
            at_user_line(
                "index_fill_ only supports a 0-dimensional value tensor, "
                f"but got tensor with {value.ndim} dimension(s)."
            )
        )
    fill = ew.cast(value, x.dtype) if isinstance(value, Tensor) else ew.scalar(value, x.dtype)
    return ew.where(_hit(x, d, _spread(idx, x, d)), fill, x)


# ---------------------------------------------------------------------------
# scatter_reduce


def _check_scatter(opname: str, x: Tensor, d: int, index: Tensor, src: Tensor) -> None:
    if index.ndim != x.ndim or src.ndim != x.ndim:
        raise RuntimeError(
            at_user_line(f"{opname}(): Index tensor must have the same number of dimensions as self tensor")
        )
    for i, n in enumerate(index.shape):
        if n > src.shape[i] or (i != d and n > x.shape[i]):
            raise RuntimeError(
                at_user_line(
                    f"{opname}(): Expected index {list(index.shape)} to be smaller than self {list(x.shape)} "
                    f"apart from dimension {d} and to be smaller size than src {list(src.shape)}"
                )
            )
    if index.dtype is not dtypes.int64:
        raise RuntimeError(at_user_line(f"{opname}(): Expected dtype int64 for index"))


def _fit_src(src: Tensor, index: Tensor) -> Tensor:
    if tuple(src.shape) == tuple(index.shape):
        return src
    return _emit(Op.SLICE, src, starts=(0,) * src.ndim, stops=tuple(index.shape), steps=(1,) * src.ndim)


def _identity(reduce: str, dtype):
    """The value that leaves `reduce` unchanged (what a position no index
    names contributes)."""
    if reduce == "prod":
        return 1
    if dtype.is_float:
        return float("-inf") if reduce == "amax" else float("inf")
    info = np.iinfo(dtype.np)
    return int(info.min) if reduce == "amax" else int(info.max)


def _pad_to(t: Tensor, shape: tuple, fill) -> Tensor:
    if tuple(t.shape) == tuple(shape):
        return t
    pads = tuple((0, s - n) for n, s in zip(t.shape, shape))
    return _emit(Op.PAD, t, pads=pads, value=fill)


def _one_hot_reduce(x: Tensor, d: int, index: Tensor, src: Tensor, reduce: str, include_self: bool) -> Tensor:
    """scatter_reduce for prod/amax/amin: reduce, for every output position
    o along d, the src elements whose index is o."""
    out_n = x.shape[d]
    # mask[..., o, p, ...] = index[..., p, ...] == o, with o inserted before d.
    grid = tuple(index.shape[:d]) + (out_n,) + tuple(index.shape[d:])
    idx = ew.expand_to(_shape.unsqueeze(index, d), grid)
    pos = _emit(Op.IOTA, shape=grid, axis=d, dtype=dtypes.int64)
    mask = ew.eq(idx, pos)
    vals = ew.where(mask, ew.expand_to(_shape.unsqueeze(src, d), grid), _identity(reduce, x.dtype))
    if reduce == "prod":
        reduced = red.prod(vals, d + 1)
    elif reduce == "amax":
        reduced = red.amax(vals, d + 1)
    else:
        reduced = red.amin(vals, d + 1)
    hit = red.any(mask, d + 1)
    # `reduced` and `hit` cover x's region the index spans (index may be
    # smaller than x outside d); the rest of x is left as it is.
    region = tuple(out_n if i == d else n for i, n in enumerate(index.shape))
    own = _emit(Op.SLICE, x, starts=(0,) * x.ndim, stops=region, steps=(1,) * x.ndim)
    if include_self:
        if reduce == "prod":
            reduced = ew.mul(reduced, own)
        elif reduce == "amax":
            reduced = ew.maximum(reduced, own)
        else:
            reduced = ew.minimum(reduced, own)
    reduced = _pad_to(ew.cast(reduced, x.dtype), tuple(x.shape), 0)
    hit = _pad_to(hit, tuple(x.shape), False)
    return ew.where(hit, reduced, x)


def scatter_reduce(x, dim: int, index, src, reduce: str, *, include_self: bool = True):
    """x with `src` reduced into the positions `index` gives along `dim`
    with "sum", "prod", "mean", "amax" or "amin"; with include_self=False
    x's own values at those positions do not take part."""
    if reduce not in _REDUCTIONS:
        raise RuntimeError(at_user_line(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}"))
    d = _norm_dim(dim, x.ndim, "scatter_reduce")
    src = ew.cast(src, x.dtype)
    _check_scatter("scatter_reduce", x, d, index, src)
    src = _fit_src(src, index)
    if reduce not in ("sum", "mean"):
        return _one_hot_reduce(x, d, index, src, reduce, include_self)
    shape = tuple(x.shape)
    total = _emit(Op.SCATTER_ADD, src, index, axis=d, shape=shape)
    ones = ew.expand_to(ew.scalar(1, dtypes.int64), tuple(index.shape))
    count = _emit(Op.SCATTER_ADD, ones, index, axis=d, shape=shape)
    hit = ew.gt(count, 0)
    if include_self:
        total = ew.add(total, x)
        count = ew.add(count, 1)
    if reduce == "mean":
        # Positions no index names keep x; dividing them by 1 avoids 0 / 0.
        count = ew.cast(ew.where(hit, count, 1), x.dtype)
        total = ew.div(total, count) if x.dtype.is_float else ew.floor_divide(total, count)
    return ew.where(hit, ew.cast(total, x.dtype), x)


__all__ = ["index_add", "index_copy", "index_fill", "scatter_reduce"]
