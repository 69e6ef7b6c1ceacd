"""Indexing: `x[...]` and `x[...] = v`, gather, index_select, scatter_add,
masked_fill. Basic indexing (ints, slices, None, ...) becomes SLICE and
RESHAPE; integer-tensor indexing becomes one GATHER over the flattened
indexed dims; an assignment becomes a functional update (WHERE over a
SCATTER_ADD) unless it can write straight into an eager array."""

from __future__ import annotations

import numpy as np

from graphc import _elementwise as ew
from graphc import _shape, autograd
from graphc import _tensor_core as _t
from graphc._trace import active as _active_trace
from graphc.errors import TraceError, at_user_line, user_frame
from graphc.ir import dtypes
from graphc.ir.ops import Op

Tensor = _t.Tensor


def _emit(op, *srcs, **attrs):
    return Tensor._emit(op, list(srcs), attrs)


def _mask_error(what: str) -> TraceError:
    return TraceError(
        f"{what} at {user_frame()}: the result's shape depends on the mask's values, which are not known while "
        "tracing. Use graphc.where(mask, x, other) or x.masked_fill(mask, value) to keep the shape static, or "
        "move this out of the compiled function."
    )


def _to_index_tensor(item) -> Tensor:
    if isinstance(item, Tensor):
        return item
    arr = np.asarray(item)
    if arr.dtype == object:
        raise IndexError(at_user_line(f"unsupported index {item!r}"))
    return Tensor._wrap(arr.astype(np.bool_) if arr.dtype == np.bool_ else arr.astype(np.int64))


def _expand_items(x: Tensor, index) -> list:
    items = list(index) if isinstance(index, tuple) else [index]
    items = [_to_index_tensor(i) if isinstance(i, (list, np.ndarray)) else i for i in items]
    used = 0
    for i in items:
        if isinstance(i, Tensor) and i.dtype.is_bool:
            used += max(i.ndim, 1) if i.ndim else 0
        elif i is not None and i is not Ellipsis:
            used += 1
    if sum(1 for i in items if i is Ellipsis) > 1:
        raise IndexError(at_user_line("an index can only have a single ellipsis ('...')"))
    if used > x.ndim:
        raise IndexError(at_user_line(f"too many indices for tensor of dimension {x.ndim} (shape {list(x.shape)})"))
    if Ellipsis in [i for i in items if not isinstance(i, Tensor)]:
        pos = next(k for k, i in enumerate(items) if i is Ellipsis)
        items[pos : pos + 1] = [slice(None)] * (x.ndim - used)
    return items


def _mask_to_indices(mask: Tensor) -> list:
    if mask.is_symbolic:
        raise _mask_error("boolean-mask indexing")
    return [Tensor._wrap(a.astype(np.int64)) for a in np.nonzero(mask.numpy(force=True))]


class _Basic:
    """State while walking an index: the sliced tensor `y`, the shape it
    takes before advanced indexing, the advanced indices found (position in
    that shape, int64 index), and the next dim of `x` to consume."""

    def __init__(self, x: Tensor):
        self.x, self.y, self.shape, self.adv, self.d = x, x, [], [], 0

    def slice(self, item: slice) -> None:
        start, stop, step = item.indices(self.x.shape[self.d])
        if step <= 0:
            raise ValueError(at_user_line("step must be greater than zero (use graphc.flip to reverse)"))
        self.y = _shape.slice_dim(self.y, self.d, start, max(stop, start), step)
        self.shape.append(self.y.shape[self.d])
        self.d += 1

    def integer(self, i: int) -> None:
        n = self.x.shape[self.d]
        if not -n <= i < n:
            raise IndexError(at_user_line(f"index {i} is out of bounds for dimension {self.d} with size {n}"))
        self.y = _shape.slice_dim(self.y, self.d, i % n, i % n + 1)
        self.d += 1

    def advanced(self, idx: Tensor) -> None:
        n = self.x.shape[self.d]
        self.adv.append((len(self.shape), _normalize(ew.cast(idx, dtypes.int64), n, self.d)))
        self.shape.append(n)
        self.d += 1

    def mask(self, mask: Tensor) -> None:
        if mask.ndim == 0:
            raise IndexError(at_user_line("graphc does not support indexing with a 0-d bool tensor"))
        _check_mask(self.x, mask, self.d)
        for idx in _mask_to_indices(mask):
            self.advanced(idx)


def getitem(x: Tensor, index):
    """`x[index]` with PyTorch's basic and advanced indexing rules."""
    state = _Basic(x)
    for item in _expand_items(x, index):
        if item is None:
            state.shape.append(1)
        elif isinstance(item, slice):
            state.slice(item)
        elif isinstance(item, (int, np.integer)):
            state.integer(int(item))
        elif isinstance(item, Tensor) and item.dtype.is_bool:
            state.mask(item)
        elif isinstance(item, Tensor) or hasattr(item, "__index__"):
            idx = _to_index_tensor(item)
            if not idx.dtype.is_int:
                raise IndexError(
                    at_user_line(f"tensors used as indices must be long, int, byte or bool tensors, got {idx.dtype!r}")
                )
            state.advanced(idx)
        else:
            raise IndexError(at_user_line(f"unsupported index type {type(item).__name__}"))
    shape = tuple(state.shape + list(x.shape[state.d :]))
    y = _shape.reshape(state.y, shape) if shape != tuple(state.y.shape) else state.y
    return _advanced(y, state.adv) if state.adv else y


def _check_mask(x: Tensor, mask: Tensor, d: int) -> None:
    want = tuple(x.shape[d : d + mask.ndim])
    if tuple(mask.shape) != want:
        raise IndexError(
            at_user_line(
                f"The shape of the mask {list(mask.shape)} does not match the shape of the indexed tensor "
                f"{list(x.shape)} at dim {d}"
            )
        )


def _normalize(idx: Tensor, n: int, dim: int) -> Tensor:
    """Wrap negative indices; bounds-check eager ones like torch."""
    if not idx.is_symbolic:
        arr = idx.numpy(force=True)
        if arr.size and (arr.min() < -n or arr.max() >= n):
            bad = arr[(arr < -n) | (arr >= n)].flat[0]
            raise IndexError(at_user_line(f"index {bad} is out of bounds for dimension {dim} with size {n}"))
    return ew.where(ew.lt(idx, 0), ew.add(idx, n), idx)


def _advanced(y: Tensor, adv: list) -> Tensor:
    """Apply integer-tensor indices `adv` [(dim, index)] to `y` (torch rules:
    index shapes broadcast; adjacent indexed dims are replaced in place by
    the index shape, otherwise it goes first)."""
    positions = [p for p, _ in adv]
    bshape = ew.broadcast_shapes(*[tuple(i.shape) for _, i in adv], opname="index")
    idxs = [ew.expand_to(i, bshape) for _, i in adv]
    adjacent = positions == list(range(positions[0], positions[0] + len(positions)))
    if not adjacent:
        rest = [i for i in range(y.ndim) if i not in positions]
        y = _shape.permute(y, positions + rest)
        positions = list(range(len(positions)))
    first = positions[0]
    sizes = [y.shape[p] for p in positions]
    pre, post = tuple(y.shape[:first]), tuple(y.shape[first + len(sizes) :])
    linear, stride = None, 1
    for idx, size in zip(reversed(idxs), reversed(sizes)):
        term = ew.mul(idx, stride) if stride != 1 else idx
        linear = term if linear is None else ew.add(linear, term)
        stride *= size
    flat = _shape.reshape(y, pre + (stride,) + post)
    picked = _select(flat, first, _shape.reshape(linear, (-1,)))
    return _shape.reshape(picked, pre + bshape + post)


def _select(x: Tensor, axis: int, idx: Tensor) -> Tensor:
    """x's slices at 1-d int64 `idx` along `axis` (a GATHER)."""
    view = tuple(idx.shape[0] if i == axis else 1 for i in range(x.ndim))
    full = tuple(idx.shape[0] if i == axis else d for i, d in enumerate(x.shape))
    index = ew.expand_to(_shape.reshape(idx, view), full)
    return _emit(Op.GATHER, x, index, axis=axis)


def index_select(x, dim: int, index):
    """Slices of `x` at the 1-d integer `index` along `dim`."""
    d = _t._norm_dim(dim, x.ndim, "index_select")
    idx = _to_index_tensor(index)
    if idx.ndim > 1:
        raise IndexError(at_user_line(f"index_select(): Index is supposed to be a vector, got shape {list(idx.shape)}"))
    idx = _normalize(ew.cast(_shape.reshape(idx, (-1,)), dtypes.int64), x.shape[d], d)
    return _select(x, d, idx)


def gather(x, dim: int, index, *, sparse_grad: bool = False):
    """torch.gather: out[i][j] = x[index[i][j]][j] for dim 0 (and so on)."""
    d = _t._norm_dim(dim, x.ndim, "gather")
    if index.ndim != x.ndim:
        raise IndexError(
            at_user_line(
                f"gather: Index tensor must have the same number of dimensions as input tensor "
                f"({list(index.shape)} vs {list(x.shape)})"
            )
        )
    return _emit(Op.GATHER, x, ew.cast(index, dtypes.int64), axis=d)


def take_along_dim(x, indices, dim: int):
    shape = ew.broadcast_shapes(
        tuple(1 if i == dim % x.ndim else s for i, s in enumerate(x.shape)),
        tuple(1 if i == dim % x.ndim else s for i, s in enumerate(indices.shape)),
    )
    d = dim % x.ndim
    xs = ew.expand_to(x, shape[:d] + (x.shape[d],) + shape[d + 1 :])
    ix = ew.expand_to(indices, shape[:d] + (indices.shape[d],) + shape[d + 1 :])
    return gather(xs, d, ix)


def _scattered(dim: int, index: Tensor, src, shape: tuple, dtype) -> Tensor:
    index = ew.cast(index, dtypes.int64)
    if isinstance(src, Tensor):
        src = ew.cast(src, dtype)
        if tuple(src.shape) != tuple(index.shape):
            src = _emit(
                Op.SLICE,
                src,
                starts=(0,) * src.ndim,
                stops=tuple(index.shape),
                steps=(1,) * src.ndim,
            )
    else:
        src = ew.expand_to(ew.scalar(src, dtype), tuple(index.shape))
    return _emit(Op.SCATTER_ADD, src, index, axis=dim, shape=shape)


def scatter_add(x, dim: int, index, src):
    """x plus `src` summed into the positions `index` gives along `dim`."""
    d = _t._norm_dim(dim, x.ndim, "scatter_add")
    return ew.add(x, _scattered(d, index, src, tuple(x.shape), x.dtype))


def scatter(x, dim: int, index, src=None, *, value=None, reduce=None):
    """x with `src` (or `value`) written at `index` along `dim`; with
    reduce="add" or "multiply", combined with x's values there."""
    if reduce == "add":
        return scatter_add(x, dim, index, src if src is not None else value)
    if reduce == "multiply":
        from graphc._scatter import scatter_reduce

        factor = value if src is None else src
        if not isinstance(factor, Tensor):
            factor = ew.expand_to(ew.scalar(factor, x.dtype), tuple(index.shape))
        return scatter_reduce(x, dim, index, factor, "prod")
    if reduce is not None:
        raise RuntimeError(at_user_line("reduce argument must be either add or multiply."))
    d = _t._norm_dim(dim, x.ndim, "scatter")
    src = value if src is None else src
    if not isinstance(src, Tensor) and not ew._is_scalar(src):
        src = Tensor._wrap(np.asarray(src))
    hit_dtype = dtypes.int64 if not x.dtype.is_float else x.dtype
    hit = ew.gt(_scattered(d, index, 1, tuple(x.shape), hit_dtype), 0)
    return ew.where(hit, _scattered(d, index, src, tuple(x.shape), x.dtype), x)


def masked_fill(x, mask, value):
    """x with `value` wherever `mask` is true (x's dtype is kept)."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(
                at_user_line(
                    f"masked_fill only supports a 0-dimensional value tensor, "
                    f"but got tensor with {value.ndim} dimension(s)."
                )
            )
        fill = ew.cast(value, x.dtype)
    else:
        fill = ew.scalar(value, x.dtype)
    if not isinstance(mask, Tensor) or not mask.dtype.is_bool:
        got = f"mask with dtype {mask.dtype.name}" if isinstance(mask, Tensor) else type(mask).__name__
        raise RuntimeError(at_user_line(f"masked_fill only supports boolean masks, but got {got}"))
    return ew.where(mask, fill, x)


def masked_select(x, mask):
    shape = ew.broadcast_shapes(tuple(x.shape), tuple(mask.shape), opname="masked_select")
    return getitem(ew.expand_to(x, shape), ew.expand_to(mask, shape))


def nonzero(x, *, as_tuple: bool = False):
    """Indices of the nonzero elements (eager only: the count is data-dependent)."""
    if x.is_symbolic:
        raise _mask_error("nonzero()")
    idx = np.nonzero(x.numpy(force=True))
    if as_tuple:
        return tuple(Tensor._wrap(i.astype(np.int64)) for i in idx)
    return Tensor._wrap(np.stack(idx, axis=1).astype(np.int64) if idx else np.zeros((0, 0), np.int64))


def argwhere(x):
    return nonzero(x)


# ---------------------------------------------------------------------------
# assignment


def setitem(x: Tensor, index, value) -> None:
    """`x[index] = value`, in place."""
    recording = autograd.is_grad_enabled() and (x.requires_grad or getattr(value, "requires_grad", False))
    if _active_trace() is None and not recording and _numpy_setitem(x, index, value):
        return
    if _is_full_mask(x, index):
        mask = ew.expand_to(index, tuple(x.shape))
        x._assign(
            masked_fill(x, mask, value)
            if not isinstance(value, Tensor) or value.ndim == 0
            else _masked_tensor(x, mask, value),
            "setitem",
        )
        return
    pos = _shape.reshape(_emit(Op.IOTA, shape=(x.numel(),), axis=0, dtype=dtypes.int64), tuple(x.shape))
    sel = _shape.reshape(getitem(pos, index), (-1,))
    flat = _shape.reshape(x, (-1,))
    val = value if isinstance(value, Tensor) else ew.scalar(value, x.dtype)
    val = ew.cast(val, x.dtype)
    val = _shape.reshape(ew.expand_to(val, tuple(getitem(pos, index).shape)), (-1,))
    n = (x.numel(),)
    hit = ew.gt(
        _emit(
            Op.SCATTER_ADD,
            ew.expand_to(ew.scalar(1, dtypes.int64), tuple(sel.shape)),
            sel,
            axis=0,
            shape=n,
        ),
        0,
    )
    put = _emit(Op.SCATTER_ADD, val, sel, axis=0, shape=n) if not x.dtype.is_bool else _scatter_bool(val, sel, n)
    x._assign(_shape.reshape(ew.where(hit, put, flat), tuple(x.shape)), "setitem")


def _scatter_bool(val: Tensor, sel: Tensor, n: tuple) -> Tensor:
    as_int = _emit(Op.SCATTER_ADD, ew.cast(val, dtypes.int64), sel, axis=0, shape=n)
    return ew.gt(as_int, 0)


def _masked_tensor(x: Tensor, mask: Tensor, value: Tensor) -> Tensor:
    return ew.where(mask, ew.cast(ew.expand_to(value, tuple(x.shape)), x.dtype), x)


def _is_full_mask(x: Tensor, index) -> bool:
    return (
        isinstance(index, Tensor)
        and index.dtype.is_bool
        and index.ndim <= x.ndim
        and tuple(index.shape) == tuple(x.shape[: index.ndim])
        and index.ndim == x.ndim
    )


def _numpy_setitem(x: Tensor, index, value) -> bool:
    """Write directly into an eager, writable array; False if not possible."""
    arr = x._value
    if not isinstance(arr, np.ndarray) or not arr.flags.writeable:
        return False
    items = index if isinstance(index, tuple) else (index,)
    np_items = []
    for i in items:
        if isinstance(i, Tensor):
            if i.is_symbolic:
                return False
            np_items.append(i.numpy(force=True))
        else:
            np_items.append(i)
    if isinstance(value, Tensor):
        if value.is_symbolic:
            return False
        value = value.numpy(force=True)
    try:
        arr[tuple(np_items)] = np.asarray(value).astype(arr.dtype, copy=False)
    except IndexError as e:
        raise IndexError(at_user_line(str(e))) from None
    except ValueError as e:
        raise RuntimeError(at_user_line(f"setitem: {e}")) from None
    x._bump_version("setitem")
    return True
