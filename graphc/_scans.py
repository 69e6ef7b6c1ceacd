"""Running (prefix) operations along a dimension: cumprod, cummax, cummin,
logcumsumexp.

No scan primitive: each is a log-step (Hillis-Steele) scan built from SLICE,
PAD and elementwise ops. Step s = 1, 2, 4, ... combines every element with
the partial result s places before it, so after ceil(log2 n) steps element i
holds the combination of elements 0..i. The combine must be associative;
autodiff then differentiates through the steps like any other graph (the
cumprod gradient is exact with zeros: it never divides).
cummax/cummin scan (value, index) pairs and gather the values at the
indices, so their gradient goes to the index PyTorch reports.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from graphc import _elementwise as ew
from graphc import _tensor_core as _t
from graphc._checks import tensor_params
from graphc.errors import DTypeError, at_user_line
from graphc.ir import dtypes
from graphc.ir.ops import Op

Tensor = _t.Tensor

cummax_result = namedtuple("cummax", ["values", "indices"])
cummin_result = namedtuple("cummin", ["values", "indices"])


def _emit(op, *srcs, **attrs):
    return Tensor._emit(op, list(srcs), attrs)


def _shift(x: Tensor, axis: int, s: int, fill) -> Tensor:
    """x moved `s` places up along `axis`; the first `s` places hold `fill`."""
    n = x.shape[axis]
    stops = tuple(n - s if i == axis else d for i, d in enumerate(x.shape))
    head = _emit(Op.SLICE, x, starts=(0,) * x.ndim, stops=stops, steps=(1,) * x.ndim)
    pads = tuple((s, 0) if i == axis else (0, 0) for i in range(x.ndim))
    return _emit(Op.PAD, head, pads=pads, value=fill)


def _scan(values: tuple, axis: int, combine, fills: tuple) -> tuple:
    """Inclusive scan of the tuple `values` with `combine(earlier, later)`;
    `fills` are an identity of `combine` (what precedes the first element)."""
    n = values[0].shape[axis]
    s = 1
    while s < n:
        earlier = tuple(_shift(v, axis, s, f) for v, f in zip(values, fills))
        values = combine(earlier, values)
        s *= 2
    return values


def _prepare(x: Tensor, dim, opname: str):
    axis = _t._norm_dim(dim, x.ndim, opname)
    flat = _emit(Op.RESHAPE, x, shape=(1,)) if x.ndim == 0 else x
    return axis, flat


def _restore(x: Tensor, out: Tensor) -> Tensor:
    return _emit(Op.RESHAPE, out, shape=()) if x.ndim == 0 else out


@tensor_params("input")
def cumprod(x, dim: int, *, dtype=None):
    """Running product along `dim` (integers and bools give int64, as in torch)."""
    axis, flat = _prepare(x, dim, "cumprod")
    if dtype is None:
        dtype = flat.dtype if flat.dtype.is_float else dtypes.int64
    flat = ew.cast(flat, dtype)
    (out,) = _scan((flat,), axis, lambda e, v: (ew.mul(e[0], v[0]),), (1,))
    return _restore(x, out)


def _lowest(dtype):
    return float("-inf") if dtype.is_float else int(np.iinfo(dtype.np).min)


def _cumextreme(x: Tensor, dim, opname: str, make, larger: bool):
    axis, flat = _prepare(x, dim, opname)
    # Integers and bools compare as int64, where negation cannot wrap:
    # cummin is cummax of the negated values.
    key = flat.detach() if flat.dtype.is_float else ew.cast(flat.detach(), dtypes.int64)
    if not larger:
        key = ew.neg(key)
    positions = _emit(Op.IOTA, shape=tuple(flat.shape), axis=axis, dtype=dtypes.int64)

    def combine(earlier, later):
        # The later element wins when it is >= the earlier one (false when
        # the earlier one is NaN: a NaN stays the result once seen) or is
        # NaN itself: torch reports the last index of a tie and of a NaN.
        (ev, ei), (lv, li) = earlier, later
        later_wins = ew.logical_or(ew.ge(lv, ev), ew.isnan(lv))
        return ew.where(later_wins, lv, ev), ew.where(later_wins, li, ei)

    _, idx = _scan((key, positions), axis, combine, (_lowest(key.dtype), 0))
    vals = _emit(Op.GATHER, flat, idx, axis=axis)
    return make(_restore(x, vals), _restore(x, idx))


@tensor_params("input")
def cummax(x, dim: int):
    """(values, indices): the running maximum along `dim` and where it was
    reached (the last index of a tie; NaN propagates)."""
    return _cumextreme(x, dim, "cummax", cummax_result, larger=True)


@tensor_params("input")
def cummin(x, dim: int):
    """(values, indices): the running minimum along `dim` (see cummax)."""
    return _cumextreme(x, dim, "cummin", cummin_result, larger=False)


@tensor_params("input")
def logcumsumexp(x, dim: int):
    """log(cumsum(exp(x), dim)), computed without overflow."""
    if not x.dtype.is_float:
        raise DTypeError(at_user_line(f"\"logcumsumexp_out_cpu\" not implemented for '{ew.torch_type_name(x.dtype)}'"))
    axis, flat = _prepare(x, dim, "logcumsumexp")
    (out,) = _scan((flat,), axis, lambda e, v: (ew.logaddexp(e[0], v[0]),), (float("-inf"),))
    return _restore(x, out)


__all__ = ["cummax", "cummin", "cumprod", "logcumsumexp"]
