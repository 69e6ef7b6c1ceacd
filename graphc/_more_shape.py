"""More shape and indexing functions: tensor_split and hsplit/vsplit/dsplit,
ravel, take, diag_embed, diagflat, the *_scatter functions (select, slice,
diagonal), meshgrid, cartesian_prod, combinations, tril/triu_indices,
unravel_index, Tensor.unfold, index_put, put, masked_scatter,
fill_diagonal_, and the `*_copy` forms of the view functions."""

from __future__ import annotations

import itertools
import numbers

import numpy as np

from graphc import _creation, _indexing, _shape
from graphc import _elementwise as ew
from graphc import _reductions as red
from graphc._checks import tensor_params
from graphc._tensor_core import Tensor
from graphc._tensor_core import _norm_dim as norm_dim
from graphc.errors import ShapeError, at_user_line
from graphc.ir import dtypes
from graphc.ir.ops import Op


def _iota(shape: tuple, axis: int) -> Tensor:
    return Tensor._emit(Op.IOTA, [], {"shape": tuple(shape), "axis": axis, "dtype": dtypes.int64})


def _norm_dim(dim: int, ndim: int, opname: str) -> int:
    return norm_dim(dim, ndim, opname)


# ---------------------------------------------------------------------------
# splitting and flattening


@tensor_params("input")
def adjoint(x):
    """The conjugate transpose of the last two dims (the transpose, for real tensors)."""
    if x.ndim < 2:
        raise RuntimeError(
            at_user_line(
                f"tensor.adjoint() is only supported on matrices or batches of matrices. Got {x.ndim}-D tensor."
            )
        )
    return _shape.transpose(x, -2, -1)


@tensor_params("input")
def ravel(x):
    """The elements of `x` as a 1-D tensor."""
    return _shape.reshape(x, (-1,))


@tensor_params("input")
def tensor_split(x, indices_or_sections, dim: int = 0):
    """`x` cut along `dim` into `n` nearly equal pieces (the first n % size
    one longer), or at the given indices."""
    if x.ndim == 0:
        raise RuntimeError(
            at_user_line("tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims")
        )
    d = _norm_dim(dim, x.ndim, "tensor_split")
    n = x.shape[d]
    spec = indices_or_sections
    if isinstance(spec, Tensor):
        if spec.dtype.is_float or spec.ndim > 1:
            raise RuntimeError(
                at_user_line(
                    "tensor_split expected tensor_indices_or_sections to have a 0 or 1 dimension integer tensor"
                )
            )
        spec = int(spec.item()) if spec.ndim == 0 else [int(v) for v in spec.tolist()]
    if isinstance(spec, numbers.Integral):
        if spec <= 0:
            raise RuntimeError(at_user_line(f"number of sections must be larger than 0, got {spec}"))
        size, extra = divmod(n, spec)
        bounds, start = [], 0
        for i in range(spec):
            stop = start + size + (1 if i < extra else 0)
            bounds.append((start, stop))
            start = stop
    else:
        cuts = [0, *[int(i) for i in spec], n]
        bounds = list(zip(cuts[:-1], cuts[1:]))
    out = []
    for start, stop in bounds:
        start = min(max(start + n if start < 0 else start, 0), n)
        stop = min(max(stop + n if stop < 0 else stop, 0), n)
        out.append(_shape.slice_dim(x, d, start, max(start, stop)))
    return tuple(out)


def _direction_split(opname: str, x, spec, d: int, min_dims: int):
    if x.ndim < min_dims:
        raise RuntimeError(
            at_user_line(
                f"torch.{opname} requires a tensor with at least {min_dims} dimension, but got a tensor with "
                f"{x.ndim} dimensions!"
            )
        )
    if isinstance(spec, numbers.Integral) and x.shape[d] % spec:
        raise RuntimeError(
            at_user_line(
                f"torch.{opname} attempted to split along dimension {d}, but the size of the dimension "
                f"{x.shape[d]} is not divisible by the split_size {spec}!"
            )
        )
    return tensor_split(x, spec, d)


@tensor_params("input")
def hsplit(x, indices_or_sections):
    """tensor_split along dim 1 (dim 0 for a 1-D tensor); a number of
    sections must divide the size."""
    return _direction_split("hsplit", x, indices_or_sections, 1 if x.ndim > 1 else 0, 1)


@tensor_params("input")
def vsplit(x, indices_or_sections):
    """tensor_split along dim 0 of a tensor of 2 or more dims."""
    return _direction_split("vsplit", x, indices_or_sections, 0, 2)


@tensor_params("input")
def dsplit(x, indices_or_sections):
    """tensor_split along dim 2 of a tensor of 3 or more dims."""
    return _direction_split("dsplit", x, indices_or_sections, 2, 3)


def split_with_sizes(x, split_sizes, dim: int = 0):
    """`x` cut along `dim` into pieces of the given sizes (which must sum to its size)."""
    d = _norm_dim(dim, x.ndim, "split_with_sizes")
    if sum(split_sizes) != x.shape[d]:
        raise RuntimeError(
            at_user_line(
                f"split_with_sizes expects split_sizes to sum exactly to {x.shape[d]} (input tensor's size at "
                f"dimension {dim}), but got split_sizes={list(split_sizes)}"
            )
        )
    return _shape.split(x, list(split_sizes), dim)


@tensor_params("input", "index")
def take(x, index):
    """The elements of `x`, read as 1-D, at `index` (negative counts from the end)."""
    if index.dtype.is_float or index.dtype.is_bool:
        raise RuntimeError(at_user_line(f"take(): Expected a long tensor for index, but got {index.dtype.name}"))
    flat = _shape.reshape(x, (-1,))
    picked = _indexing.index_select(flat, 0, _shape.reshape(index, (-1,)))
    return _shape.reshape(picked, tuple(index.shape))


@tensor_params("input")
def unfold(x, dimension: int, size: int, step: int):
    """Every window of `size` elements, `step` apart, along `dimension`: that
    dim becomes the window count and a new last dim of `size` holds each."""
    d = _norm_dim(dimension, max(x.ndim, 1), "unfold")
    n = x.shape[d] if x.ndim else 1
    if size > n:
        raise RuntimeError(at_user_line(f"maximum size for tensor at dimension {d} is {n} but size is {size}"))
    if step <= 0:
        raise RuntimeError(at_user_line(f"step is {step} but must be > 0"))
    if x.ndim == 0:
        return _shape.reshape(x, (1,))
    windows = (n - size) // step + 1
    idx = (np.arange(windows)[:, None] * step + np.arange(size)[None, :]).reshape(-1)
    picked = _indexing.index_select(x, d, _creation.tensor(idx))
    shape = list(x.shape)
    shape[d : d + 1] = [windows, size]
    return _shape.movedim(_shape.reshape(picked, tuple(shape)), d + 1, -1)


# ---------------------------------------------------------------------------
# diagonals


@tensor_params("input")
def diag_embed(x, offset: int = 0, dim1: int = -2, dim2: int = -1):
    """A tensor whose diagonal `offset` over (dim1, dim2) holds the last dim
    of `x`, and zeros elsewhere."""
    nd = x.ndim + 1
    d1, d2 = _norm_dim(dim1, nd, "diag_embed"), _norm_dim(dim2, nd, "diag_embed")
    if d1 == d2:
        raise RuntimeError(at_user_line(f"diagonal dimensions cannot be identical {dim1}, {dim2}"))
    n = x.shape[-1] if x.ndim else 1
    x = x if x.ndim else _shape.reshape(x, (1,))
    m = n + abs(offset)
    batch = tuple(x.shape[:-1])
    pad = _creation.zeros(*batch, abs(offset), dtype=x.dtype)
    padded = _shape.cat([x, pad], -1) if offset else x
    rows, cols = _iota((m, m), 0), _iota((m, m), 1)
    on = ew.eq(ew.sub(cols, rows), offset)
    # Element (r, c) of the diagonal is x[min(r, c)]: x[r] above the main
    # diagonal, x[c] below it.
    along = _shape.unsqueeze(padded, -1) if offset >= 0 else _shape.unsqueeze(padded, -2)
    values = _shape.expand(along, (*batch, m, m))
    out = ew.where(on, values, False if x.dtype.is_bool else 0)
    # The new dims are last: move them to dim1 and dim2.
    rest = iter(range(nd - 2))
    perm = [nd - 2 if i == min(d1, d2) else nd - 1 if i == max(d1, d2) else next(rest) for i in range(nd)]
    if d1 > d2:
        perm = [nd - 1 if p == nd - 2 else nd - 2 if p == nd - 1 else p for p in perm]
    return _shape.permute(out, perm)


@tensor_params("input")
def diagflat(x, offset: int = 0):
    """The flattened `x` as diagonal `offset` of a square matrix."""
    return _shape.diag(_shape.reshape(x, (-1,)), offset)


# ---------------------------------------------------------------------------
# scatters into views


def _check_src(opname: str, src: Tensor, expected: tuple) -> None:
    if tuple(src.shape) != tuple(expected):
        raise RuntimeError(
            at_user_line(
                f"{opname}: expected src to have a size equal to the slice of self. src size = {list(src.shape)}, "
                f"slice size = {list(expected)}"
            )
        )


def _mask_along(x: Tensor, d: int, keep) -> Tensor:
    """A bool tensor of x's shape, true at the positions along `d` for which
    `keep(iota)` holds."""
    return keep(_iota(tuple(x.shape), d))


@tensor_params("input", "src")
def select_scatter(x, src, dim: int, index: int):
    """A copy of `x` with the slice `x.select(dim, index)` replaced by `src`."""
    d = _norm_dim(dim, x.ndim, "select_scatter")
    n = x.shape[d]
    if not -n <= index < n:
        raise IndexError(
            at_user_line(f"select(): index {index} out of range for tensor of size {list(x.shape)} at dimension {dim}")
        )
    _check_src("select_scatter", src, tuple(x.shape[:d] + x.shape[d + 1 :]))
    on = _mask_along(x, d, lambda i: ew.eq(i, index % n))
    values = _shape.expand(_shape.unsqueeze(ew.cast(src, x.dtype), d), tuple(x.shape))
    return ew.where(on, values, x)


@tensor_params("input", "src")
def slice_scatter(x, src, dim: int = 0, start=None, end=None, step: int = 1):
    """A copy of `x` with the slice `start:end:step` along `dim` replaced by `src`."""
    d = _norm_dim(dim, x.ndim, "slice_scatter")
    n = x.shape[d]
    if step <= 0:
        raise RuntimeError(at_user_line("slice step must be positive"))
    lo, hi, _ = slice(start, end, step).indices(n)
    count = max(0, (hi - lo + step - 1) // step)
    _check_src("slice_scatter", src, tuple(x.shape[:d]) + (count,) + tuple(x.shape[d + 1 :]))
    if count == 0:
        return x.clone()

    def keep(i):
        inside = ew.logical_and(ew.ge(i, lo), ew.lt(i, hi))
        return ew.logical_and(inside, ew.eq(ew.remainder(ew.sub(i, lo), step), 0))

    on = _mask_along(x, d, keep)
    # Position i along d reads src's element (i - lo) // step (clamped: the
    # positions outside the slice read something and are not selected).
    pos = np.clip((np.arange(n) - lo) // step, 0, count - 1)
    values = _indexing.index_select(ew.cast(src, x.dtype), d, _creation.tensor(pos))
    return ew.where(on, values, x)


@tensor_params("input", "src")
def diagonal_scatter(x, src, offset: int = 0, dim1: int = 0, dim2: int = 1):
    """A copy of `x` with its diagonal `offset` over (dim1, dim2) replaced by `src`."""
    expected = tuple(_shape.diagonal(x, offset, dim1, dim2).shape)
    _check_src("diagonal_scatter", src, expected)
    d1, d2 = _norm_dim(dim1, x.ndim, "diagonal_scatter"), _norm_dim(dim2, x.ndim, "diagonal_scatter")
    rest = [i for i in range(x.ndim) if i not in (d1, d2)]
    perm = [*rest, d1, d2]
    m = _shape.permute(x, perm)
    rows, cols = m.shape[-2], m.shape[-1]
    k = expected[-1]
    if k == 0:
        return x.clone()
    r, c = _iota((rows, cols), 0), _iota((rows, cols), 1)
    on = ew.eq(ew.sub(c, r), offset)
    along = np.clip(np.arange(rows) if offset >= 0 else np.arange(cols), 0, k - 1)
    src = ew.cast(src, x.dtype)
    if offset >= 0:
        values = _shape.expand(
            _shape.unsqueeze(_indexing.index_select(src, -1, _creation.tensor(along)), -1), tuple(m.shape)
        )
    else:
        values = _shape.expand(
            _shape.unsqueeze(_indexing.index_select(src, -1, _creation.tensor(along)), -2), tuple(m.shape)
        )
    out = ew.where(on, values, m)
    inverse = [perm.index(i) for i in range(x.ndim)]
    return _shape.permute(out, inverse)


# ---------------------------------------------------------------------------
# grids and index sets


def meshgrid(*tensors, indexing: str | None = None):
    """Coordinate grids from 1-D tensors: output i varies along dim i
    ('ij', the default) or with the first two dims swapped ('xy')."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    indexing = indexing or "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(
            at_user_line(f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}')
        )
    for t in tensors:
        if not isinstance(t, Tensor) or t.ndim > 1:
            raise RuntimeError(at_user_line("torch.meshgrid: Expected 0D or 1D tensor in the tensor list"))
    flat = [_shape.reshape(t, (-1,)) for t in tensors]
    shape = tuple(t.shape[0] for t in flat)
    grids = []
    for i, t in enumerate(flat):
        view = tuple(-1 if j == i else 1 for j in range(len(flat)))
        grids.append(_shape.expand(_shape.reshape(t, view), shape))
    if indexing == "xy" and len(flat) >= 2:
        # Cartesian indexing: the first two dims swap places.
        grids = [_shape.transpose(g, 0, 1) for g in grids]
    return tuple(grids)


def cartesian_prod(*tensors):
    """Every combination of one element from each 1-D tensor, as rows."""
    for t in tensors:
        if not isinstance(t, Tensor) or t.ndim != 1:
            raise RuntimeError(at_user_line("Expect a 1D vector, but got shape " + str(list(getattr(t, "shape", [])))))
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return _shape.stack([_shape.reshape(g, (-1,)) for g in grids], 1)


@tensor_params("input")
def combinations(x, r: int = 2, with_replacement: bool = False):
    """The r-element combinations of the 1-D `x`, as rows (itertools order)."""
    if x.ndim != 1:
        raise RuntimeError(at_user_line(f"Expect a 1D vector, but got shape {list(x.shape)}"))
    if r < 0:
        raise RuntimeError(at_user_line(f"Expect a non-negative number, but got {r}"))
    if r == 0:
        return _creation.zeros(0, dtype=x.dtype)
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    rows = list(pick(range(x.shape[0]), r))
    if not rows:
        return _creation.zeros(0, r, dtype=x.dtype)
    idx = np.array(rows, dtype=np.int64)
    cols = [_indexing.index_select(x, 0, _creation.tensor(idx[:, j].copy())) for j in range(r)]
    return _shape.stack(cols, 1)


def _index_pairs(opname: str, rows: np.ndarray, cols: np.ndarray, dtype) -> Tensor:
    dtype = dtypes.int64 if dtype is None else dtype
    if dtype.is_float or dtype.is_bool:
        raise RuntimeError(at_user_line(f"\"{opname}\" not implemented for '{ew.torch_type_name(dtype)}'"))
    return _creation.tensor(np.stack([rows, cols]).astype(dtype.np).reshape(2, -1), dtype=dtype)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None):
    """The (row, col) coordinates of the lower triangle of a row x col
    matrix (diagonal `offset` included), as a 2 x N tensor."""
    _check_sizes("tril_indices", row, col)
    r, c = np.tril_indices(row, offset, col)
    return _index_pairs("tril_indices", r, c, dtype)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None):
    """The (row, col) coordinates of the upper triangle, as a 2 x N tensor."""
    _check_sizes("triu_indices", row, col)
    r, c = np.triu_indices(row, offset, col)
    return _index_pairs("triu_indices", r, c, dtype)


def _check_sizes(opname: str, row, col) -> None:
    if row < 0:
        raise RuntimeError(at_user_line(f"row must be non-negative, got{row}"))
    if col < 0:
        raise RuntimeError(at_user_line(f"col must be non-negative, got{col}"))


def unravel_index(indices, shape):
    """The coordinates in a tensor of `shape` of the flat `indices`, one
    tensor per dim."""
    if not isinstance(indices, Tensor):
        indices = _creation.tensor(indices)
    if indices.dtype.is_float or indices.dtype.is_bool:
        raise TypeError(at_user_line(f"expected 'indices' to be integer dtype, but got {indices.dtype.name}"))
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(at_user_line("'shape' cannot have negative values, but got " + str(shape)))
    total = int(np.prod(shape))
    if not indices.is_symbolic and indices.numel():
        lo, hi = int(red.amin(indices, ()).item()), int(red.amax(indices, ()).item())
        if lo < -total or hi >= total:
            raise RuntimeError(at_user_line(f"'indices' must be in range [-{total}, {total})"))
    flat = ew.cast(indices, dtypes.int64)
    flat = ew.where(ew.lt(flat, 0), ew.add(flat, total), flat)
    out = []
    for size in reversed(shape):
        out.append(ew.remainder(flat, size))
        flat = ew.floor_divide(flat, size)
    return tuple(reversed(out))


# ---------------------------------------------------------------------------
# in-place writes through indices


def index_put(x, indices, values, accumulate: bool = False):
    """A copy of `x` with `x[indices] = values` (or `+= values`, summing at
    repeated indices, when `accumulate`)."""
    if not isinstance(indices, (tuple, list)):
        raise TypeError(at_user_line("index_put(): argument 'indices' must be tuple of Tensors"))
    if not isinstance(values, Tensor):
        values = _creation.tensor(values, dtype=x.dtype)
    idx = _index_tensors(x, indices)
    if not accumulate:
        out = x.clone()
        _indexing.setitem(out, tuple(idx), values)
        return out
    k = len(idx)
    shape = ew.broadcast_shapes(*[tuple(i.shape) for i in idx], opname="index_put")
    linear = None
    for d, i in enumerate(idx):
        i = _indexing._normalize(_shape.broadcast_to(ew.cast(i, dtypes.int64), shape), x.shape[d], d)
        linear = i if linear is None else ew.add(ew.mul(linear, x.shape[d]), i)
    lead = int(np.prod(x.shape[:k]))
    rest = tuple(x.shape[k:])
    base = _shape.reshape(x, (lead, *rest))
    target_shape = (int(np.prod(shape)), *rest)
    src = _shape.reshape(_shape.broadcast_to(ew.cast(values, x.dtype), (*shape, *rest)), target_shape)
    where = _shape.reshape(linear, (-1,) + (1,) * len(rest))
    where = _shape.expand(where, target_shape)
    return _shape.reshape(_indexing.scatter_add(base, 0, where, src), tuple(x.shape))


def _index_tensors(x: Tensor, indices) -> list:
    out = []
    for i in indices:
        if not isinstance(i, Tensor):
            i = _creation.tensor(i)
        if i.dtype.is_bool:
            out.extend(_indexing.nonzero(i, as_tuple=True))
        elif i.dtype.is_float:
            raise IndexError(at_user_line("tensors used as indices must be long, int, byte or bool tensors"))
        else:
            out.append(i)
    if len(out) > x.ndim:
        raise IndexError(at_user_line(f"too many indices for tensor of dimension {x.ndim} (got {len(out)})"))
    return out


def put(x, index, source, accumulate: bool = False):
    """A copy of `x`, read as 1-D, with `source` written (or added) at `index`."""
    if tuple(index.shape) != tuple(source.shape) and index.numel() != source.numel():
        raise RuntimeError(
            at_user_line(
                f"put_(): Expected source and index to have the same number of elements, but got "
                f"source.numel() = {source.numel()}, index.numel() = {index.numel()}"
            )
        )
    flat = _shape.reshape(x, (-1,))
    idx = _shape.reshape(index, (-1,))
    if idx.dtype.is_float or idx.dtype.is_bool:
        raise RuntimeError(at_user_line(f"put_(): Expected a long tensor for index, but got {idx.dtype.name}"))
    idx = _indexing._normalize(ew.cast(idx, dtypes.int64), flat.shape[0], 0)
    src = _shape.reshape(ew.cast(source, x.dtype), (-1,))
    if accumulate:
        out = _indexing.scatter_add(flat, 0, idx, src)
    else:
        out = _indexing.scatter(flat, 0, idx, src)
    return _shape.reshape(out, tuple(x.shape))


def masked_scatter(x, mask, source):
    """A copy of `x` whose elements where `mask` holds are, in order, the
    first elements of `source`."""
    if not isinstance(mask, Tensor) or not mask.dtype.is_bool:
        raise RuntimeError(at_user_line("masked_scatter_ only supports boolean masks"))
    if source.dtype is not x.dtype:
        raise RuntimeError(
            at_user_line(
                f"masked_scatter: expected self and source to have same dtypes but got {x.dtype.name} and "
                f"{source.dtype.name}"
            )
        )
    shape = tuple(x.shape)
    try:
        full = _shape.broadcast_to(mask, shape)
    except ShapeError:
        raise RuntimeError(
            at_user_line(f"masked_scatter: the mask of shape {list(mask.shape)} cannot broadcast to {list(shape)}")
        ) from None
    flat_mask = _shape.reshape(full, (-1,))
    if not flat_mask.is_symbolic:
        need = int(red.sum(ew.cast(flat_mask, dtypes.int64)).item())
        if need > source.numel():
            raise RuntimeError(
                at_user_line(f"masked_scatter: expected source to have at least {need} elements, got {source.numel()}")
            )
    # The k-th selected position reads source's k-th element.
    order = ew.sub(red.cumsum(ew.cast(flat_mask, dtypes.int64), 0), 1)
    order = ew.clamp(order, 0, max(source.numel() - 1, 0))
    flat_src = _shape.reshape(source, (-1,))
    if flat_src.numel() == 0:
        return x.clone()
    values = _indexing.index_select(flat_src, 0, order)
    return _shape.reshape(ew.where(flat_mask, values, _shape.reshape(x, (-1,))), shape)


def fill_diagonal(x, fill_value, wrap: bool = False):
    """A copy of `x` with its main diagonal set to `fill_value` (all dims of
    equal size, or a tall 2-D matrix whose diagonal may `wrap`)."""
    if x.ndim < 2:
        raise RuntimeError(at_user_line("dimensions must larger than 1"))
    if x.ndim > 2 and len(set(x.shape)) != 1:
        raise RuntimeError(at_user_line("all dimensions of input must be of equal length"))
    if x.ndim > 2:
        same = None
        for d in range(1, x.ndim):
            e = ew.eq(_iota(tuple(x.shape), 0), _iota(tuple(x.shape), d))
            same = e if same is None else ew.logical_and(same, e)
        return ew.where(same, ew.scalar(fill_value, x.dtype), x)
    rows, cols = x.shape
    flat = ew.add(ew.mul(_iota((rows, cols), 0), cols), _iota((rows, cols), 1))
    on = ew.eq(ew.remainder(flat, cols + 1), 0)
    if not wrap:
        on = ew.logical_and(on, ew.lt(_iota((rows, cols), 0), cols))
    return ew.where(on, ew.scalar(fill_value, x.dtype), x)


# ---------------------------------------------------------------------------
# the `*_copy` functions: a view function's result as a new tensor


def _copied(fn, name: str):
    def copy_fn(*args, **kwargs):
        out = fn(*args, **kwargs)
        if isinstance(out, (tuple, list)):
            return type(out)(o.clone() for o in out)
        return out.clone()

    copy_fn.__name__ = name
    copy_fn.__doc__ = f"`{fn.__name__}` as a new tensor that shares no data with the input."
    return copy_fn


def _slice(x, dim: int = 0, start=None, end=None, step: int = 1):
    d = _norm_dim(dim, x.ndim, "slice")
    lo, hi, _ = slice(start, end, step).indices(x.shape[d])
    return _shape.slice_dim(x, d, lo, max(lo, hi), step)


def _detach(x):
    return x.detach()


def _alias(x):
    return x


def _view(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], dtypes.DType):
        raise NotImplementedError(at_user_line("view_copy(dtype): graphc has no reinterpreting casts"))
    return _shape.view(x, *shape)


alias_copy = _copied(_alias, "alias_copy")
detach_copy = _copied(_detach, "detach_copy")
diagonal_copy = _copied(_shape.diagonal, "diagonal_copy")
expand_copy = _copied(_shape.expand, "expand_copy")
narrow_copy = _copied(_shape.narrow, "narrow_copy")
permute_copy = _copied(_shape.permute, "permute_copy")
select_copy = _copied(_shape.select, "select_copy")
slice_copy = _copied(_slice, "slice_copy")
split_copy = _copied(_shape.split, "split_copy")
split_with_sizes_copy = _copied(split_with_sizes, "split_with_sizes_copy")
squeeze_copy = _copied(_shape.squeeze, "squeeze_copy")
t_copy = _copied(_shape.t, "t_copy")
transpose_copy = _copied(_shape.transpose, "transpose_copy")
unbind_copy = _copied(_shape.unbind, "unbind_copy")
unfold_copy = _copied(unfold, "unfold_copy")
unsqueeze_copy = _copied(_shape.unsqueeze, "unsqueeze_copy")
view_copy = _copied(_view, "view_copy")

# The unsafe_ forms skip a check graphc does not make (the pieces are
# ordinary tensors either way).
unsafe_chunk = _shape.chunk
unsafe_split = _shape.split
