"""Per-primitive rules: the shape/dtype rule and the numpy reference
implementation, one entry per `Op` in `RULES`.

The shape rule checks its operands and raises `IRTypeError` with the op and
both sides of a mismatch; the reference implementation is what the
interpreter (runtime/interpreter.py) and eager tensors execute, so it is the
oracle every backend is compared against.

Semantics worth knowing (backends must match them):
- integer DIV truncates toward zero; an integer divisor of 0 is an error
  (DivisionByZeroError here; compiled code raises the program's error flag
  and the runtime raises the same error after the call);
- ARGMAX returns the first index of the maximum; NaN counts as the maximum;
- SUM of float32/float16 accumulates in float64 (here and in both
  backends), never in a float32 running sum, which stops growing at 2**24;
- RANDOM is counter-based: element i of a RANDOM node with key k is
  `splitmix64(k * 0x9E3779B97F4A7C15 + i) >> 40` scaled by 2**-24, so every
  backend produces the same bits.
- ARGSORT is a stable sort: equal elements keep their order (also when
  descending); NaN sorts as the largest value, as in torch.sort;
- GATHER / SCATTER_ADD indices must lie in range; the reference raises
  IndexError, compiled code reports an error instead of reading out of bounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The user-facing exception classes live together in graphc/errors.py, a
# module with no imports of ours, so the IR may raise them.
from graphc.errors import DivisionByZeroError, IndexOutOfRangeError
from graphc.ir import dtypes
from graphc.ir.ops import Op
from graphc.ir.types import ConstArray, IRTypeError, TensorType

ShapeRule = Callable[[Sequence[TensorType], dict], TensorType]
Impl = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Rule:
    shape: ShapeRule
    impl: Impl | None  # None for INPUT: the caller supplies its value


# ---------------------------------------------------------------------------
# helpers


def _fail(op: Op, msg: str) -> IRTypeError:
    return IRTypeError(f"{op.value}: {msg}")


def _pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    return (int(v[0]), int(v[1]))


def _same(op: Op, types: Sequence[TensorType]) -> None:
    first = types[0]
    for t in types[1:]:
        if t.shape != first.shape:
            raise _fail(op, f"operand shapes differ: {first} and {t} (broadcast with expand first)")
        if t.dtype is not first.dtype:
            raise _fail(op, f"operand dtypes differ: {first} and {t} (cast first)")


def _check_axes(op: Op, t: TensorType, axes) -> tuple[int, ...]:
    axes = tuple(int(a) for a in axes)
    if len(set(axes)) != len(axes) or any(a < 0 or a >= t.ndim for a in axes):
        raise _fail(op, f"bad axes {axes} for {t}")
    return axes


def window_out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    """Output length of a sliding window (convolution arithmetic)."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


# ---------------------------------------------------------------------------
# shape rules


def _leaf_shape(types, attrs):
    return TensorType(tuple(attrs["shape"]), attrs["dtype"])


def _random_shape(types, attrs):
    (key,) = types
    if key.shape != () or key.dtype is not dtypes.int64:
        raise _fail(Op.RANDOM, f"key must be i64[], got {key}")
    return TensorType(tuple(attrs["shape"]), dtypes.float32)


def _iota_shape(types, attrs):
    shape = tuple(attrs["shape"])
    if not 0 <= attrs["axis"] < len(shape):
        raise _fail(Op.IOTA, f"axis {attrs['axis']} out of range for shape {shape}")
    return TensorType(shape, attrs["dtype"])


_FLOAT_ONLY = {Op.RECIP, Op.EXP, Op.LOG, Op.SQRT, Op.SIN, Op.COS, Op.TANH, Op.ERF, Op.FLOOR}


def _unary_shape(op: Op):
    def rule(types, attrs):
        (t,) = types
        if op in _FLOAT_ONLY and not t.dtype.is_float:
            raise _fail(op, f"needs a floating-point operand, got {t}")
        if op is Op.NOT and not t.dtype.is_bool:
            raise _fail(op, f"needs a bool operand, got {t}")
        if op is Op.NEG and t.dtype.is_bool:
            raise _fail(op, f"cannot negate a bool tensor {t}")
        return t

    return rule


def _cast_shape(types, attrs):
    (t,) = types
    return TensorType(t.shape, attrs["dtype"])


def _binary_shape(op: Op):
    def rule(types, attrs):
        _same(op, types)
        t = types[0]
        if op in (Op.AND, Op.OR):
            if not t.dtype.is_bool:
                raise _fail(op, f"needs bool operands, got {t}")
            return t
        if op in (Op.CMPLT, Op.CMPEQ):
            return TensorType(t.shape, dtypes.bool_)
        if t.dtype.is_bool:
            raise _fail(op, f"arithmetic on bool operands {t}: cast first")
        if op in (Op.POW, Op.ATAN2) and not t.dtype.is_float:
            raise _fail(op, f"needs floating-point operands, got {t}")
        return t

    return rule


def _where_shape(types, attrs):
    cond, a, b = types
    if not cond.dtype.is_bool:
        raise _fail(Op.WHERE, f"condition must be bool, got {cond}")
    if cond.shape != a.shape:
        raise _fail(Op.WHERE, f"condition {cond} and operand {a} differ in shape")
    _same(Op.WHERE, (a, b))
    return a


def _reduce_shape(op: Op):
    def rule(types, attrs):
        (t,) = types
        axes = _check_axes(op, t, attrs["axes"])
        if op is Op.REDUCE_MAX and any(t.shape[a] == 0 for a in axes):
            raise _fail(op, f"maximum over an empty axis of {t}")
        if t.dtype.is_bool and op is not Op.REDUCE_MAX:
            raise _fail(op, f"cannot {op.value} a bool tensor {t}: cast first")
        return TensorType(tuple(d for i, d in enumerate(t.shape) if i not in axes), t.dtype)

    return rule


def _argmax_shape(types, attrs):
    (t,) = types
    (axis,) = _check_axes(Op.ARGMAX, t, (attrs["axis"],))
    if t.shape[axis] == 0:
        raise _fail(Op.ARGMAX, f"argmax over an empty axis of {t}")
    return TensorType(tuple(d for i, d in enumerate(t.shape) if i != axis), dtypes.int64)


def _argsort_shape(types, attrs):
    (t,) = types
    _check_axes(Op.ARGSORT, t, (attrs["axis"],))
    if not isinstance(attrs["descending"], bool):
        raise _fail(Op.ARGSORT, f"descending must be a bool, got {attrs['descending']!r}")
    return TensorType(t.shape, dtypes.int64)


def _argsort_impl(x, *, axis, descending):
    if not descending:
        return np.argsort(x, axis=axis, kind="stable")
    # Stable descending order: sort the reversed row ascending, then read
    # the result backwards (equal elements keep their original order and
    # NaN, numpy's largest, comes first).
    n = x.shape[axis]
    rev = np.flip(x, axis=axis)
    return n - 1 - np.flip(np.argsort(rev, axis=axis, kind="stable"), axis=axis)


def _reshape_shape(types, attrs):
    (t,) = types
    out = TensorType(tuple(attrs["shape"]), t.dtype)
    if out.numel != t.numel or any(d < 0 for d in out.shape):
        raise _fail(Op.RESHAPE, f"cannot reshape {t} to {list(out.shape)}")
    return out


def _permute_shape(types, attrs):
    (t,) = types
    perm = tuple(attrs["perm"])
    if sorted(perm) != list(range(t.ndim)):
        raise _fail(Op.PERMUTE, f"{perm} is not a permutation of the {t.ndim} dims of {t}")
    return TensorType(tuple(t.shape[p] for p in perm), t.dtype)


def _expand_shape(types, attrs):
    (t,) = types
    shape = tuple(attrs["shape"])
    lead = len(shape) - t.ndim
    if lead < 0 or any(d != s and d != 1 for d, s in zip(t.shape, shape[lead:])):
        raise _fail(Op.EXPAND, f"cannot expand {t} to {list(shape)} (sizes must match or be 1)")
    return TensorType(shape, t.dtype)


def _slice_shape(types, attrs):
    (t,) = types
    starts, stops, steps = attrs["starts"], attrs["stops"], attrs["steps"]
    if not len(starts) == len(stops) == len(steps) == t.ndim:
        raise _fail(Op.SLICE, f"needs one start/stop/step per dim of {t}")
    out = []
    for d, b, e, s in zip(t.shape, starts, stops, steps):
        if s <= 0 or not 0 <= b <= e <= d:
            raise _fail(Op.SLICE, f"bad range {b}:{e}:{s} for a dim of size {d} in {t}")
        out.append(-(-(e - b) // s))
    return TensorType(tuple(out), t.dtype)


def _pad_shape(types, attrs):
    (t,) = types
    pads = attrs["pads"]
    if len(pads) != t.ndim or any(lo < 0 or hi < 0 for lo, hi in pads):
        raise _fail(Op.PAD, f"needs non-negative (lo, hi) per dim of {t}, got {pads}")
    return TensorType(tuple(d + lo + hi for d, (lo, hi) in zip(t.shape, pads)), t.dtype)


def _concat_shape(types, attrs):
    axis = attrs["axis"]
    first = types[0]
    if not 0 <= axis < first.ndim:
        raise _fail(Op.CONCAT, f"axis {axis} out of range for {first}")
    total = 0
    for t in types:
        if t.dtype is not first.dtype or t.ndim != first.ndim:
            raise _fail(Op.CONCAT, f"operands {first} and {t} differ in dtype or rank")
        if any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis):
            raise _fail(Op.CONCAT, f"operands {first} and {t} differ outside axis {axis}")
        total += t.shape[axis]
    shape = list(first.shape)
    shape[axis] = total
    return TensorType(tuple(shape), first.dtype)


def _dot_shape(types, attrs):
    a, b = types
    if a.ndim < 2 or a.ndim != b.ndim:
        raise _fail(Op.DOT, f"needs operands of equal rank >= 2, got {a} and {b}")
    if a.shape[:-2] != b.shape[:-2]:
        raise _fail(Op.DOT, f"batch dimensions differ: a is {a}, b is {b}")
    if a.shape[-1] != b.shape[-2]:
        raise _fail(Op.DOT, f"inner dimensions differ: a is {a}, b is {b}")
    if a.dtype is not b.dtype or a.dtype.is_bool:
        raise _fail(Op.DOT, f"needs operands of one numeric dtype, got {a} and {b}")
    return TensorType(a.shape[:-1] + (b.shape[-1],), a.dtype)


def _attention_shape(types, attrs):
    if len(types) not in (3, 4):
        raise _fail(Op.ATTENTION, f"takes q, k, v and an optional mask, got {len(types)} operands")
    q, k, v = types[:3]
    if q.ndim < 2 or not (q.ndim == k.ndim == v.ndim):
        raise _fail(Op.ATTENTION, f"needs q, k, v of equal rank >= 2, got {q}, {k} and {v}")
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise _fail(Op.ATTENTION, f"batch dimensions differ: q is {q}, k is {k}, v is {v}")
    if q.shape[-1] != k.shape[-1]:
        raise _fail(Op.ATTENTION, f"q and k head dimensions differ: q is {q}, k is {k}")
    if k.shape[-2] != v.shape[-2]:
        raise _fail(Op.ATTENTION, f"k and v sequence lengths differ: k is {k}, v is {v}")
    if not q.dtype.is_float or not (q.dtype is k.dtype is v.dtype):
        raise _fail(Op.ATTENTION, f"needs q, k, v of one float dtype, got {q}, {k} and {v}")
    if len(types) == 4:
        m = types[3]
        want = q.shape[:-1] + (k.shape[-2],)
        if m.shape != want:
            raise _fail(Op.ATTENTION, f"mask must have shape {list(want)}, got {m}")
        if not (m.dtype.is_bool or m.dtype is q.dtype):
            raise _fail(Op.ATTENTION, f"mask must be bool or {q.dtype.name}, got {m}")
    if not isinstance(attrs["causal"], bool):
        raise _fail(Op.ATTENTION, f"causal must be a bool, got {attrs['causal']!r}")
    if not isinstance(attrs["scale"], float):
        raise _fail(Op.ATTENTION, f"scale must be a float, got {attrs['scale']!r}")
    return TensorType(q.shape[:-1] + (v.shape[-1],), q.dtype)


def _attention_impl(q, k, v, mask=None, *, scale, causal):
    """In float64: safe softmax (a row with every key masked gets zero
    weights, as PyTorch's scaled_dot_product_attention)."""
    f = np.float64
    s = np.matmul(q.astype(f), np.swapaxes(k.astype(f), -1, -2)) * scale
    n_l, n_s = s.shape[-2:]
    if causal:
        s = np.where(np.tril(np.ones((n_l, n_s), dtype=bool)), s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask.astype(f)
    m = np.max(s, axis=-1, keepdims=True) if n_s else np.full(s.shape[:-1] + (1,), -np.inf)
    empty = m == -np.inf
    e = np.exp(s - np.where(empty, 0.0, m))
    z = np.sum(e, axis=-1, keepdims=True)
    p = np.where(empty, 0.0, e / np.where(empty, 1.0, z))
    return np.matmul(p, v.astype(f)).astype(q.dtype)


def _window(attrs):
    return (_pair(attrs["kernel"]), _pair(attrs["stride"]), _pair(attrs["padding"]), _pair(attrs["dilation"]))


def _unfold_shape(types, attrs):
    (t,) = types
    if t.ndim != 4:
        raise _fail(Op.UNFOLD, f"needs an [N, C, H, W] operand, got {t}")
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(attrs)
    n, c, h, w = t.shape
    oh, ow = window_out_size(h, kh, sh, ph, dh), window_out_size(w, kw, sw, pw, dw)
    if oh <= 0 or ow <= 0:
        raise _fail(Op.UNFOLD, f"kernel {kh}x{kw} (dilation {dh},{dw}) larger than padded input {t}")
    return TensorType((n, c * kh * kw, oh * ow), t.dtype)


def _fold_shape(types, attrs):
    (t,) = types
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(attrs)
    h, w = _pair(attrs["output_size"])
    if t.ndim != 3 or t.shape[1] % (kh * kw) != 0:
        raise _fail(Op.FOLD, f"needs [N, C*{kh}*{kw}, L], got {t}")
    oh, ow = window_out_size(h, kh, sh, ph, dh), window_out_size(w, kw, sw, pw, dw)
    if t.shape[2] != oh * ow:
        raise _fail(Op.FOLD, f"{t} has {t.shape[2]} blocks, output {h}x{w} needs {oh * ow}")
    return TensorType((t.shape[0], t.shape[1] // (kh * kw), h, w), t.dtype)


def _gather_shape(types, attrs):
    x, idx = types
    axis = attrs["axis"]
    if idx.dtype is not dtypes.int64:
        raise _fail(Op.GATHER, f"index must be i64, got {idx}")
    if x.ndim != idx.ndim or not 0 <= axis < x.ndim:
        raise _fail(Op.GATHER, f"index {idx} must have the rank of {x}; axis {axis}")
    if any(i > d for a, (i, d) in enumerate(zip(idx.shape, x.shape)) if a != axis):
        raise _fail(Op.GATHER, f"index {idx} larger than {x} outside axis {axis}")
    return TensorType(idx.shape, x.dtype)


def _scatter_add_shape(types, attrs):
    src, idx = types
    shape, axis = tuple(attrs["shape"]), attrs["axis"]
    if idx.dtype is not dtypes.int64 or idx.shape != src.shape:
        raise _fail(Op.SCATTER_ADD, f"index must be i64 of the shape of src {src}, got {idx}")
    if len(shape) != src.ndim or not 0 <= axis < src.ndim:
        raise _fail(Op.SCATTER_ADD, f"output shape {list(shape)} must have the rank of {src}")
    if any(i > d for a, (i, d) in enumerate(zip(src.shape, shape)) if a != axis):
        raise _fail(Op.SCATTER_ADD, f"src {src} larger than output {list(shape)} outside axis {axis}")
    return TensorType(shape, src.dtype)


# ---------------------------------------------------------------------------
# reference implementations


def _const_impl(*, value, dtype, shape):
    if isinstance(value, ConstArray):
        return value.array
    return np.array(value, dtype=dtype.np)


def _iota_impl(*, shape, axis, dtype):
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.broadcast_to(np.arange(shape[axis], dtype=dtype.np).reshape(view), shape).copy()


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def random_bits(key: int, count: int) -> np.ndarray:
    """The RANDOM primitive's 24-bit counters-to-bits function (see module doc)."""
    with np.errstate(over="ignore"):
        z = np.uint64(np.int64(key).view(np.uint64)) * _GOLDEN + np.arange(count, dtype=np.uint64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.uint32)


def _random_impl(key, *, shape):
    n = int(np.prod(shape, dtype=np.int64))
    bits = random_bits(int(key), n)
    return (bits.astype(np.float32) * np.float32(2.0**-24)).reshape(shape)


ZERO_DIVISION_MESSAGE = "ZeroDivisionError: integer division by zero (//, %, fmod, remainder or div with rounding_mode)"


def _int_div(a, b):
    if a.dtype.kind not in "iu":
        return a / b
    if not np.all(b):
        raise DivisionByZeroError(ZERO_DIVISION_MESSAGE)
    # Floor division, then step toward zero where the signs differ and the
    # division is inexact (no abs(): it overflows for the most negative int).
    q = a // b
    q = q + ((a % b != 0) & ((a < 0) != (b < 0)))
    return q.astype(a.dtype)


def _sum_impl(x, *, axes):
    # Narrow floats accumulate in float64: numpy's own float32 sum is
    # pairwise only along a contiguous axis, and 2**25 ones summed one by
    # one in float32 stop growing at 2**24.
    if x.dtype.kind == "f" and x.dtype.itemsize < 8:
        return np.sum(x, axis=tuple(axes), dtype=np.float64).astype(x.dtype)
    return np.sum(x, axis=tuple(axes), dtype=x.dtype)


def _argmax_impl(x, *, axis):
    if x.dtype.kind == "f":
        # NaN is the maximum (as in PyTorch): the first NaN wins.
        nan = np.isnan(x)
        has_nan = nan.any(axis=axis)
        return np.where(has_nan, np.argmax(nan, axis=axis), np.argmax(x, axis=axis)).astype(np.int64)
    return np.argmax(x, axis=axis).astype(np.int64)


def _slice_impl(x, *, starts, stops, steps):
    return x[tuple(slice(b, e, s) for b, e, s in zip(starts, stops, steps))]


def _pad_impl(x, *, pads, value):
    if x.ndim == 0:  # np.pad rejects an empty pad list
        return x.copy()
    return np.pad(x, [tuple(p) for p in pads], mode="constant", constant_values=value)


def _unfold_impl(x, *, kernel, stride, padding, dilation):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(
        dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    )
    n, c, h, w = x.shape
    oh, ow = window_out_size(h, kh, sh, ph, dh), window_out_size(w, kw, sw, pw, dw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[
                :, :, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw
            ]
    return cols.reshape(n, c * kh * kw, oh * ow)


def _fold_impl(cols, *, output_size, kernel, stride, padding, dilation):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(
        dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    )
    h, w = _pair(output_size)
    n, ckk, _ = cols.shape
    c = ckk // (kh * kw)
    oh, ow = window_out_size(h, kh, sh, ph, dh), window_out_size(w, kw, sw, pw, dw)
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw] += cols[
                :, :, i, j
            ]
    return out[:, :, ph : ph + h, pw : pw + w]


def _full_index(index: np.ndarray, axis: int) -> tuple:
    grids: list[np.ndarray] = list(np.indices(index.shape, sparse=True))
    grids[axis] = index
    return tuple(grids)


def _check_index(op: Op, index: np.ndarray, size: int) -> None:
    if index.size and (index.min() < 0 or index.max() >= size):
        bad = index[(index < 0) | (index >= size)].flat[0]
        raise IndexOutOfRangeError(f"{op.value}: index {bad} is out of bounds for a dimension of size {size}")


def _gather_impl(x, index, *, axis):
    _check_index(Op.GATHER, index, x.shape[axis])
    return x[_full_index(index, axis)]


def _scatter_add_impl(src, index, *, axis, shape):
    _check_index(Op.SCATTER_ADD, index, shape[axis])
    out = np.zeros(shape, dtype=src.dtype)
    np.add.at(out, _full_index(index, axis), src)
    return out


def _dot_impl(a, b):
    # numpy's batched matmul makes one small BLAS call (or runs a plain
    # loop) per matrix, which is slow for a weight broadcast over the batch
    # or a transposed activation, most of all when BLAS threads compete for
    # the cores. A weight broadcast over every batch dim becomes one 2-D
    # product; other batched operands are made contiguous.
    if a.ndim > 2 and all(st == 0 or n == 1 for st, n in zip(b.strides[:-2], b.shape[:-2])):
        out = np.matmul(a.reshape(-1, a.shape[-1]), b[(0,) * (b.ndim - 2)])
        return out.reshape(a.shape[:-1] + (b.shape[-1],))
    if a.ndim > 2:
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return np.matmul(a, b)


def _errstate(fn):
    def wrapped(*args, **kw):
        with np.errstate(all="ignore"):
            return fn(*args, **kw)

    return wrapped


_ERF_DOUBLE = np.frompyfunc(math.erf, 1, 1)


def _erf(x: np.ndarray) -> np.ndarray:
    """libm's erf (through math.erf), in float64, rounded to x's dtype:
    numpy has no erf."""
    return np.asarray(_ERF_DOUBLE(x.astype(np.float64)), dtype=np.float64).astype(x.dtype)


def _elementwise(fn):
    return _errstate(fn)


# ---------------------------------------------------------------------------
# the table


def _u(op, fn):
    return Rule(_unary_shape(op), _elementwise(fn))


def _b(op, fn):
    return Rule(_binary_shape(op), _elementwise(fn))


def _r(op, fn):
    return Rule(_reduce_shape(op), fn)


RULES: dict[Op, Rule] = {
    Op.INPUT: Rule(_leaf_shape, None),
    Op.CONST: Rule(_leaf_shape, _const_impl),
    Op.IOTA: Rule(_iota_shape, _iota_impl),
    Op.RANDOM: Rule(_random_shape, _random_impl),
    Op.NEG: _u(Op.NEG, np.negative),
    Op.RECIP: _u(Op.RECIP, np.reciprocal),
    Op.EXP: _u(Op.EXP, np.exp),
    Op.LOG: _u(Op.LOG, np.log),
    Op.SQRT: _u(Op.SQRT, np.sqrt),
    Op.SIN: _u(Op.SIN, np.sin),
    Op.COS: _u(Op.COS, np.cos),
    Op.TANH: _u(Op.TANH, np.tanh),
    Op.ERF: _u(Op.ERF, _erf),
    Op.FLOOR: _u(Op.FLOOR, np.floor),
    Op.NOT: _u(Op.NOT, np.logical_not),
    Op.CAST: Rule(_cast_shape, _errstate(lambda x, *, dtype: x.astype(dtype.np))),
    Op.ADD: _b(Op.ADD, np.add),
    Op.SUB: _b(Op.SUB, np.subtract),
    Op.MUL: _b(Op.MUL, np.multiply),
    Op.DIV: _b(Op.DIV, _int_div),
    Op.POW: _b(Op.POW, np.power),
    Op.ATAN2: _b(Op.ATAN2, np.arctan2),
    Op.MAX: _b(Op.MAX, np.maximum),
    Op.MIN: _b(Op.MIN, np.minimum),
    Op.CMPLT: _b(Op.CMPLT, np.less),
    Op.CMPEQ: _b(Op.CMPEQ, np.equal),
    Op.AND: _b(Op.AND, np.logical_and),
    Op.OR: _b(Op.OR, np.logical_or),
    Op.WHERE: Rule(_where_shape, np.where),
    Op.SUM: _r(Op.SUM, _sum_impl),
    Op.REDUCE_MAX: _r(Op.REDUCE_MAX, lambda x, *, axes: np.max(x, axis=tuple(axes))),
    Op.PROD: _r(Op.PROD, lambda x, *, axes: np.prod(x, axis=tuple(axes), dtype=x.dtype)),
    Op.ARGMAX: Rule(_argmax_shape, _argmax_impl),
    Op.RESHAPE: Rule(_reshape_shape, lambda x, *, shape: x.reshape(shape)),
    Op.PERMUTE: Rule(_permute_shape, lambda x, *, perm: np.transpose(x, perm)),
    Op.EXPAND: Rule(_expand_shape, lambda x, *, shape: np.broadcast_to(x, shape)),
    Op.SLICE: Rule(_slice_shape, _slice_impl),
    Op.PAD: Rule(_pad_shape, _pad_impl),
    Op.CONCAT: Rule(_concat_shape, lambda *xs, axis: np.concatenate(xs, axis=axis)),
    Op.DOT: Rule(_dot_shape, _dot_impl),
    Op.UNFOLD: Rule(_unfold_shape, _unfold_impl),
    Op.FOLD: Rule(_fold_shape, _fold_impl),
    Op.ATTENTION: Rule(_attention_shape, _errstate(_attention_impl)),
    Op.GATHER: Rule(_gather_shape, _gather_impl),
    Op.SCATTER_ADD: Rule(_scatter_add_shape, _scatter_add_impl),
    Op.ARGSORT: Rule(_argsort_shape, _argsort_impl),
}


def infer_type(op: Op, in_types: Sequence[TensorType], attrs: dict[str, Any]) -> TensorType:
    """The output type of `op` on operands of `in_types`; raises IRTypeError."""
    rule = RULES[op]
    arity = _ARITY.get(op)
    if arity is not None and len(in_types) != arity:
        raise _fail(op, f"takes {arity} operands, got {len(in_types)}")
    if op is Op.CONCAT and not in_types:
        raise _fail(op, "needs at least one operand")
    try:
        return rule.shape(in_types, attrs)
    except KeyError as e:
        raise _fail(op, f"missing attribute {e.args[0]!r}") from None


def evaluate(op: Op, args: Sequence[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
    """Run the reference implementation of `op` (not INPUT)."""
    impl = RULES[op].impl
    if impl is None:
        raise ValueError(f"{op.value} has no reference implementation")
    if op in (Op.CONST, Op.IOTA):
        return impl(**attrs)
    if op is Op.RANDOM:
        return impl(*args, shape=attrs["shape"])
    return impl(*args, **attrs)


def _arity() -> dict[Op, int]:
    from graphc.ir.ops import BINARY, LEAF, UNARY

    table = {op: 0 for op in LEAF}
    table[Op.RANDOM] = 1
    table.update({op: 1 for op in UNARY})
    table.update({op: 2 for op in BINARY})
    table[Op.WHERE] = 3
    for op in (
        Op.SUM,
        Op.REDUCE_MAX,
        Op.PROD,
        Op.ARGMAX,
        Op.ARGSORT,
        Op.RESHAPE,
        Op.PERMUTE,
        Op.EXPAND,
        Op.SLICE,
        Op.PAD,
        Op.UNFOLD,
        Op.FOLD,
    ):
        table[op] = 1
    for op in (Op.DOT, Op.GATHER, Op.SCATTER_ADD):
        table[op] = 2
    return table


_ARITY = _arity()
