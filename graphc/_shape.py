"""Shape and movement ops: view/reshape, permute, squeeze, expand, repeat,
cat/stack/split, flip, built from the RESHAPE / PERMUTE / EXPAND / SLICE /
CONCAT primitives."""

from __future__ import annotations

from graphc import _elementwise as ew
from graphc import _layout as layout
from graphc import _tensor_core as _t
from graphc._checks import int_sizes, tensor_sequence
from graphc.errors import ShapeError, at_user_line
from graphc.ir import dtypes
from graphc.ir.ops import Op

Tensor = _t.Tensor
_norm = _t._norm_dim


def _emit(op, *srcs, **attrs):
    return Tensor._emit(op, list(srcs), attrs)


def _infer(x: Tensor, shape: tuple, opname: str) -> tuple:
    """Resolve one -1 in `shape`; check the element count."""
    n = x.numel()
    if shape.count(-1) > 1:
        raise ShapeError(at_user_line(f"{opname}: only one dimension can be inferred, got {list(shape)}"))
    if -1 in shape:
        known = 1
        for d in shape:
            if d != -1:
                known *= d
        if known == 0 or n % known:
            raise ShapeError(
                at_user_line(f"{opname}: shape {list(shape)} is invalid for input of size {n} (shape {list(x.shape)})")
            )
        shape = tuple(n // known if d == -1 else d for d in shape)
    total = 1
    for d in shape:
        total *= d
    if total != n or any(d < 0 for d in shape):
        raise ShapeError(
            at_user_line(f"{opname}: shape {list(shape)} is invalid for input of size {n} (shape {list(x.shape)})")
        )
    return shape


def reshape(x, *shape):
    """The same elements in a new shape (one dim may be -1)."""
    shape = _infer(x, int_sizes("reshape", "shape", shape), "reshape")
    return x if shape == tuple(x.shape) else _emit(Op.RESHAPE, x, shape=shape)


def view(x, *shape):
    """The same data read in a new shape, which the layout must allow
    without a copy, as in torch (`x.t().view(-1)` raises; use reshape).
    `view(dtype)` is not supported."""
    if len(shape) == 1 and isinstance(shape[0], dtypes.DType):
        raise NotImplementedError(at_user_line("view(dtype) reinterprets bits and is not supported; use .to(dtype)"))
    shape = _infer(x, int_sizes("view", "size", shape), "view")
    if layout.view_strides(tuple(x.shape), layout.strides(x._value), shape) is None:
        raise RuntimeError(
            at_user_line(
                f"view size is not compatible with input tensor's size and stride (at least one dimension spans "
                f"across two contiguous subspaces): cannot view {list(x.shape)} with strides "
                f"{list(layout.strides(x._value))} as {list(shape)}. Use .reshape(...) instead."
            )
        )
    return _emit(Op.RESHAPE, x, shape=shape)


def view_as(x, other):
    return view(x, tuple(other.shape))


def reshape_as(x, other):
    return reshape(x, tuple(other.shape))


def flatten(x, start_dim: int = 0, end_dim: int = -1):
    """Merge dims start_dim..end_dim into one."""
    if x.ndim == 0:
        return reshape(x, 1)
    s, e = _norm(start_dim, x.ndim, "flatten"), _norm(end_dim, x.ndim, "flatten")
    if s > e:
        raise ShapeError(
            at_user_line(f"flatten() has invalid args: start_dim {start_dim} cannot come after end_dim {end_dim}")
        )
    merged = 1
    for d in x.shape[s : e + 1]:
        merged *= d
    return reshape(x, tuple(x.shape[:s]) + (merged,) + tuple(x.shape[e + 1 :]))


def unflatten(x, dim: int, sizes):
    d = _norm(dim, x.ndim, "unflatten")
    return reshape(x, tuple(x.shape[:d]) + tuple(sizes) + tuple(x.shape[d + 1 :]))


def squeeze(x, dim=None):
    """Drop size-1 dims (only `dim`, an int or tuple, when given)."""
    if dim is None:
        dims = {i for i, d in enumerate(x.shape) if d == 1}
    else:
        dims = {_norm(d, x.ndim, "squeeze") for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
        dims = {d for d in dims if x.ndim and x.shape[d] == 1}
    return reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in dims))


def unsqueeze(x, dim: int):
    """Insert a size-1 dim at `dim`."""
    d = _norm(dim, x.ndim + 1, "unsqueeze")
    shape = list(x.shape)
    shape.insert(d, 1)
    return _emit(Op.RESHAPE, x, shape=tuple(shape))


def permute(x, *dims):
    dims = int_sizes("permute", "dims", dims)
    if len(dims) != x.ndim:
        raise ShapeError(
            at_user_line(
                f"permute: number of dims don't match: tensor has {x.ndim} dims {list(x.shape)}, got {list(dims)}"
            )
        )
    perm = tuple(_norm(d, x.ndim, "permute") for d in dims)
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(at_user_line(f"permute: repeated dim in {list(dims)}"))
    return x if perm == tuple(range(x.ndim)) else _emit(Op.PERMUTE, x, perm=perm)


def transpose(x, dim0: int, dim1: int):
    if x.ndim == 0:
        return x
    a, b = _norm(dim0, x.ndim, "transpose"), _norm(dim1, x.ndim, "transpose")
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return permute(x, perm)


swapaxes = swapdims = transpose


def t(x):
    if x.ndim > 2:
        raise ShapeError(at_user_line(f"t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D"))
    return transpose(x, 0, 1) if x.ndim == 2 else x


def movedim(x, source: int, destination: int):
    s, d = _norm(source, x.ndim, "movedim"), _norm(destination, x.ndim, "movedim")
    perm = [i for i in range(x.ndim) if i != s]
    perm.insert(d, s)
    return permute(x, perm)


moveaxis = movedim


def expand(x, *sizes):
    """Broadcast size-1 dims to `sizes` (-1 keeps a dim); no data is copied."""
    sizes = int_sizes("expand", "size", sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ShapeError(
            at_user_line(
                f"expand: the number of sizes provided ({len(sizes)}) must be >= the number of dims ({x.ndim})"
            )
        )
    shape = tuple(x.shape[i - lead] if d == -1 and i >= lead else d for i, d in enumerate(sizes))
    for i, d in enumerate(x.shape):
        if d != 1 and d != shape[lead + i]:
            raise ShapeError(
                at_user_line(
                    f"expand: the expanded size of the tensor ({shape[lead + i]}) must match the existing size ({d}) "
                    f"at non-singleton dimension {lead + i}. Target sizes: {list(sizes)}. Tensor sizes: {list(x.shape)}"
                )
            )
    return ew.expand_to(x, shape)


def expand_as(x, other):
    return expand(x, tuple(other.shape))


def broadcast_to(x, shape):
    return expand(x, tuple(shape))


def broadcast_tensors(*xs):
    shape = ew.broadcast_shapes(*[tuple(x.shape) for x in xs], opname="broadcast_tensors")
    return tuple(ew.expand_to(x, shape) for x in xs)


def repeat(x, *sizes):
    """Tile `x`: `sizes[i]` copies along dim i (extra sizes add leading dims)."""
    sizes = int_sizes("repeat", "repeats", sizes)
    if len(sizes) < x.ndim:
        raise ShapeError(
            at_user_line(
                f"repeat: number of repeat dims ({len(sizes)}) can not be smaller than number of tensor dims ({x.ndim})"
            )
        )
    src = reshape(x, (1,) * (len(sizes) - x.ndim) + tuple(x.shape))
    # [a, b] -> [r0, a, r1, b] by EXPAND of [1, a, 1, b], then merge pairs.
    inter = []
    for _r, d in zip(sizes, src.shape):
        inter += [1, d]
    grown = ew.expand_to(
        reshape(src, tuple(inter)),
        tuple(v for r, d in zip(sizes, src.shape) for v in (r, d)),
    )
    return reshape(grown, tuple(r * d for r, d in zip(sizes, src.shape)))


def tile(x, dims):
    dims = tuple(dims)
    return repeat(x, (1,) * (x.ndim - len(dims)) + dims)


def repeat_interleave(x, repeats: int, dim=None):
    if dim is None:
        x, dim = flatten(x), 0
    d = _norm(dim, x.ndim, "repeat_interleave")
    shape = tuple(x.shape)
    grown = ew.expand_to(unsqueeze(x, d + 1), shape[: d + 1] + (repeats,) + shape[d + 1 :])
    return reshape(grown, shape[:d] + (shape[d] * repeats,) + shape[d + 1 :])


def contiguous(x, memory_format=None):
    """`x` itself when its layout is row-major, else a row-major copy."""
    return x if layout.is_contiguous(x._value) else clone(x)


def clone(x, *, memory_format=None):
    """A copy that does not share data (gradients flow through it)."""
    if isinstance(x._value, (_t.np.ndarray, _t.DeviceArray)) and not x._requires_grad:
        from graphc._trace import active

        if active() is None:
            out = Tensor._wrap(x._value.copy())
            out._device = x._device
            return out
    # A zero-add is a copy every layer understands, and differentiable.
    return ew.add(x, 0) if not x.dtype.is_bool else ew.logical_or(x, False)


def cat(tensors, dim: int = 0):
    """Concatenate along `dim` (dtypes promote; 1-d empty tensors are skipped, as in torch)."""
    tensors = tensor_sequence("cat", tensors)
    tensors = [x for x in tensors if not (x.ndim == 1 and x.shape[0] == 0)] or list(tensors)[:1]
    if not tensors:
        raise ValueError(at_user_line("cat(): expected a non-empty list of Tensors"))
    d = _norm(dim, tensors[0].ndim, "cat")
    dtype = ew.result_type(*tensors)
    first = tensors[0]
    for x in tensors:
        if x.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != d):
            raise ShapeError(
                at_user_line(
                    f"cat: sizes of tensors must match except in dimension {d}: "
                    f"got {list(first.shape)} and {list(x.shape)}"
                )
            )
    parts = [ew.cast(x, dtype) for x in tensors]
    return parts[0].clone() if len(parts) == 1 else Tensor._emit(Op.CONCAT, parts, {"axis": d})


concat = concatenate = cat


def stack(tensors, dim: int = 0):
    """Join tensors of equal shape along a new dim."""
    tensors = _nonempty_sequence("stack", tensors)
    for x in tensors:
        if tuple(x.shape) != tuple(tensors[0].shape):
            raise ShapeError(
                at_user_line(
                    f"stack expects each tensor to be equal size, but got {list(tensors[0].shape)} and {list(x.shape)}"
                )
            )
    d = _norm(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(x, d) for x in tensors], d)


def _nonempty_sequence(opname: str, tensors) -> list:
    tensors = tensor_sequence(opname, tensors)
    if not tensors:
        raise RuntimeError(at_user_line(f"{opname} expects a non-empty TensorList"))
    return tensors


def hstack(tensors):
    tensors = _nonempty_sequence("hstack", tensors)
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    tensors = _nonempty_sequence("vstack", tensors)
    return cat([x if x.ndim > 1 else unsqueeze(x, 0) for x in tensors], 0)


def narrow(x, dim: int, start: int, length: int):
    d = _norm(dim, x.ndim, "narrow")
    start = start + x.shape[d] if start < 0 else start
    if start < 0 or start + length > x.shape[d]:
        raise IndexError(
            at_user_line(f"narrow: start ({start}) + length ({length}) exceeds dimension size ({x.shape[d]})")
        )
    return slice_dim(x, d, start, start + length, 1)


def select(x, dim: int, index: int):
    """The slice at `index` along `dim`, with that dim removed (`x[..., index, ...]`)."""
    if x.ndim == 0:
        raise IndexError(at_user_line("select() cannot be applied to a 0-dim tensor."))
    d = _norm(dim, x.ndim, "select")
    n = x.shape[d]
    if not -n <= index < n:
        raise IndexError(
            at_user_line(f"select(): index {index} out of range for tensor of size {list(x.shape)} at dimension {dim}")
        )
    return squeeze(slice_dim(x, d, index % n, index % n + 1, 1), d)


def slice_dim(x, d: int, start: int, stop: int, step: int = 1):
    """x[..., start:stop:step, ...] along dim `d` (bounds already normalized)."""
    starts = tuple(start if i == d else 0 for i in range(x.ndim))
    stops = tuple(stop if i == d else n for i, n in enumerate(x.shape))
    steps = tuple(step if i == d else 1 for i in range(x.ndim))
    if starts == (0,) * x.ndim and stops == tuple(x.shape) and step == 1:
        return x
    return _emit(Op.SLICE, x, starts=starts, stops=stops, steps=steps)


def split(x, split_size_or_sections, dim: int = 0):
    """Pieces of `split_size` along `dim` (the last may be smaller), or of the given sizes."""
    d = _norm(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        sizes = [min(size, n - s) for s in range(0, n, size)] if size > 0 else [n]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ShapeError(
                at_user_line(
                    f"split_with_sizes expects split_sizes to sum exactly to {n} (input shape {list(x.shape)}), "
                    f"but got split_sizes={sizes}"
                )
            )
    out, start = [], 0
    for s in sizes:
        out.append(slice_dim(x, d, start, start + s))
        start += s
    return tuple(out)


def chunk(x, chunks: int, dim: int = 0):
    """At most `chunks` pieces of equal size along `dim` (the last may be smaller)."""
    if chunks <= 0:
        raise RuntimeError(at_user_line(f"chunk expects `chunks` to be greater than 0, got: {chunks}"))
    d = _norm(dim, x.ndim, "chunk")
    size = -(-x.shape[d] // chunks)
    return split(x, max(size, 1), d)


def unbind(x, dim: int = 0):
    d = _norm(dim, x.ndim, "unbind")
    return tuple(squeeze(slice_dim(x, d, i, i + 1), d) for i in range(x.shape[d]))


def flip(x, dims):
    """Reverse the order of elements along `dims`."""
    out = x
    for dim in dims if isinstance(dims, (tuple, list)) else (dims,):
        d = _norm(dim, x.ndim, "flip")
        n = x.shape[d]
        idx = _emit(Op.IOTA, shape=(n,), axis=0, dtype=dtypes.int64)
        out = out.index_select(d, ew.sub(n - 1, idx))  # the method: _indexing builds on this module
    return out


def fliplr(x):
    return flip(x, 1)


def flipud(x):
    return flip(x, 0)


def roll(x, shifts, dims=None):
    if dims is None:
        return reshape(roll(flatten(x), shifts, 0), tuple(x.shape))
    shifts = shifts if isinstance(shifts, (tuple, list)) else (shifts,)
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    out = x
    for s, dim in zip(shifts, dims):
        d = _norm(dim, x.ndim, "roll")
        n = x.shape[d]
        s %= n
        if s:
            out = cat([slice_dim(out, d, n - s, n), slice_dim(out, d, 0, n - s)], d)
    return out


def tril(x, diagonal: int = 0):
    return _tri(x, diagonal, lower=True)


def triu(x, diagonal: int = 0):
    return _tri(x, diagonal, lower=False)


def _tri(x, k: int, lower: bool):
    rows, cols = x.shape[-2], x.shape[-1]
    r = _emit(Op.IOTA, shape=(rows, cols), axis=0, dtype=dtypes.int64)
    c = _emit(Op.IOTA, shape=(rows, cols), axis=1, dtype=dtypes.int64)
    keep = ew.le(ew.sub(c, r), k) if lower else ew.ge(ew.sub(c, r), k)
    return ew.where(keep, x, False if x.dtype.is_bool else 0)  # 0 would promote bool to int64


def diagonal(x, offset: int = 0, dim1: int = 0, dim2: int = 1):
    """The diagonal `offset` of the matrices over dims (dim1, dim2), as a new last dim."""
    d1, d2 = _norm(dim1, x.ndim, "diagonal"), _norm(dim2, x.ndim, "diagonal")
    if d1 == d2:
        raise RuntimeError(at_user_line(f"diagonal dimensions cannot be identical {dim1}, {dim2}"))
    rest = [i for i in range(x.ndim) if i not in (d1, d2)]
    m = permute(x, (*rest, d1, d2))
    rows, cols = m.shape[-2], m.shape[-1]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    n = max(0, min(rows - r0, cols - c0))
    batch = tuple(m.shape[:-2])
    if n == 0:
        return reshape(slice_dim(slice_dim(m, m.ndim - 1, 0, 0), m.ndim - 2, 0, 0), (*batch, 0)).clone()
    square = slice_dim(slice_dim(m, m.ndim - 2, r0, r0 + n), m.ndim - 1, c0, c0 + n)
    flat = reshape(square, (*batch, n * n))
    # Every (n + 1)-th element of the flattened square is on its diagonal.
    return slice_dim(flat, flat.ndim - 1, 0, n * n, n + 1)


_diagonal = diagonal  # diag's parameter of the same name shadows it


def diag(x, diagonal: int = 0):
    """A 1-D tensor as the diagonal `diagonal` of a square matrix, or a 2-D
    tensor's diagonal `diagonal` as a 1-D tensor."""
    if x.ndim == 2:
        return _diagonal(x, diagonal).clone()
    if x.ndim != 1:
        raise RuntimeError(at_user_line(f"diag(): Supports 1D or 2D tensors. Got {x.ndim}D"))
    n, k = x.shape[0], abs(diagonal)
    r = _emit(Op.IOTA, shape=(n, n), axis=0, dtype=dtypes.int64)
    c = _emit(Op.IOTA, shape=(n, n), axis=1, dtype=dtypes.int64)
    zero = False if x.dtype.is_bool else 0
    square = ew.where(ew.eq(r, c), expand(reshape(x, (1, n)), n, n), zero)
    if k == 0:
        return square
    pads = ((0, k), (k, 0)) if diagonal > 0 else ((k, 0), (0, k))
    return _emit(Op.PAD, square, pads=pads, value=zero)


def atleast_1d(*tensors):
    """Each tensor with at least 1 dim (0-d ones become shape (1,))."""
    return _atleast(tensors, lambda x: reshape(x, (1,)) if x.ndim == 0 else x)


def atleast_2d(*tensors):
    """Each tensor with at least 2 dims (new dims in front)."""
    return _atleast(tensors, lambda x: reshape(x, (1,) * (2 - x.ndim) + tuple(x.shape)) if x.ndim < 2 else x)


def atleast_3d(*tensors):
    """Each tensor with at least 3 dims: () -> (1, 1, 1), (n,) -> (1, n, 1), (m, n) -> (m, n, 1)."""

    def lift(x):
        if x.ndim == 0:
            return reshape(x, (1, 1, 1))
        if x.ndim == 1:
            return reshape(x, (1, x.shape[0], 1))
        if x.ndim == 2:
            return reshape(x, (*x.shape, 1))
        return x

    return _atleast(tensors, lift)


def _atleast(tensors, fn):
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        return tuple(fn(x) for x in tensor_sequence("atleast", tensors[0]))
    if len(tensors) == 1:
        return fn(tensors[0])
    return tuple(fn(x) for x in tensor_sequence("atleast", list(tensors)))


def column_stack(tensors):
    """Tensors side by side as columns: 0-d and 1-d ones become (n, 1) columns."""
    tensors = _nonempty_sequence("column_stack", tensors)
    return cat([reshape(x, (x.numel(), 1)) if x.ndim < 2 else x for x in tensors], 1)


def dstack(tensors):
    """Tensors joined along a third dim (each made at least 3-d first)."""
    tensors = _nonempty_sequence("dstack", tensors)
    return cat([atleast_3d(x) for x in tensors], 2)


def block_diag(*tensors):
    """A block-diagonal matrix of the given 0-, 1- or 2-d tensors."""
    blocks = []
    for i, x in enumerate(tensor_sequence("block_diag", list(tensors))):
        if x.ndim > 2:
            raise RuntimeError(
                at_user_line(
                    "torch.block_diag: Input tensors must have 2 or fewer dimensions. "
                    f"Input {i} has {x.ndim} dimensions"
                )
            )
        blocks.append(reshape(x, (1, 1)) if x.ndim == 0 else reshape(x, (1, x.shape[0])) if x.ndim == 1 else x)
    if not blocks:
        from graphc._creation import zeros

        return zeros(0, 0)
    dtype = ew.result_type(*blocks)
    width = sum(b.shape[1] for b in blocks)
    rows, start = [], 0
    for b in blocks:
        zero = False if dtype.is_bool else 0
        w = b.shape[1]
        rows.append(_emit(Op.PAD, ew.cast(b, dtype), pads=((0, 0), (start, width - start - w)), value=zero))
        start += w
    return cat(rows, 0)


def kron(x, other):
    """The Kronecker product: block (i, j, ...) is x[i, j, ...] * other."""
    nd = max(x.ndim, other.ndim)
    a_shape = (1,) * (nd - x.ndim) + tuple(x.shape)
    b_shape = (1,) * (nd - other.ndim) + tuple(other.shape)
    a = reshape(x, tuple(s for d in a_shape for s in (d, 1)))
    b = reshape(other, tuple(s for d in b_shape for s in (1, d)))
    return reshape(ew.mul(a, b), tuple(p * q for p, q in zip(a_shape, b_shape)))


def tensordot(a, b, dims=2):
    """Sum of products over dims of `a` and `b`: the last `dims` of a with
    the first `dims` of b, or the listed dims ([dims_a], [dims_b])."""
    from graphc._reductions import matmul

    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(at_user_line(f"tensordot expects dims >= 0, but got dims={dims}"))
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
    if len(da) != len(db):
        raise RuntimeError(at_user_line("both dimension lists should have same length"))
    da = [_norm(d, a.ndim, "tensordot") for d in da]
    db = [_norm(d, b.ndim, "tensordot") for d in db]
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise RuntimeError(
                at_user_line(
                    f"contracted dimensions need to match, but first has size {a.shape[i]} in dim {i} "
                    f"and second has size {b.shape[j]} in dim {j}"
                )
            )
    fa = [i for i in range(a.ndim) if i not in da]
    fb = [j for j in range(b.ndim) if j not in db]
    k = 1
    for i in da:
        k *= a.shape[i]
    lhs = reshape(permute(a, (*fa, *da)), (-1, k))
    rhs = reshape(permute(b, (*db, *fb)), (k, -1))
    out_shape = tuple(a.shape[i] for i in fa) + tuple(b.shape[j] for j in fb)
    return reshape(matmul(lhs, rhs), out_shape)


def diff(x, n: int = 1, dim: int = -1, prepend=None, append=None):
    """The n-th forward difference along `dim` (after joining prepend/append)."""
    d = _norm(dim, x.ndim, "diff")
    if n < 0:
        raise RuntimeError(at_user_line(f"order must be non-negative but got {n}"))
    parts = [t for t in (prepend, x, append) if t is not None]
    out = cat(parts, d) if len(parts) > 1 else x
    for _ in range(n):
        m = out.shape[d]
        if m == 0:
            break
        hi, lo = slice_dim(out, d, 1, m), slice_dim(out, d, 0, m - 1)
        out = ew.logical_xor(hi, lo) if out.dtype.is_bool else ew.sub(hi, lo)
    return out


def rot90(x, k: int = 1, dims=(0, 1)):
    """Rotate by 90 degrees k times in the plane of `dims` (from the first toward the second)."""
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(at_user_line(f"expected total rotation dims == 2, but got dims = {len(dims)}"))
    if x.ndim < 2:
        raise RuntimeError(at_user_line(f"expected total dims >= 2, but got total dims = {x.ndim}"))
    d0, d1 = _norm(dims[0], x.ndim, "rot90"), _norm(dims[1], x.ndim, "rot90")
    if d0 == d1:
        raise RuntimeError(at_user_line(f"expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}"))
    k %= 4
    if k == 1:
        return transpose(flip(x, d1), d0, d1)
    if k == 2:
        return flip(x, (d0, d1))
    if k == 3:
        return transpose(flip(x, d0), d0, d1)
    return x.clone()
