"""Reductions (sum, mean, max, argmax, var, logsumexp, ...), softmax, and
matrix products, built from the SUM / REDUCE_MAX / PROD / ARGMAX / DOT
primitives. Reduction primitives drop their axes; keepdim is a RESHAPE."""

from __future__ import annotations

from collections import namedtuple

from graphc import _elementwise as ew
from graphc import _tensor_core as _t
from graphc import autograd
from graphc._checks import tensor_params
from graphc.errors import DTypeError, ShapeError, at_user_line
from graphc.ir import dtypes
from graphc.ir.ops import Op

Tensor = _t.Tensor

values_indices = namedtuple("values_indices", ["values", "indices"])


def _emit(op, *srcs, **attrs):
    return Tensor._emit(op, list(srcs), attrs)


def _axes(x: Tensor, dim, opname: str) -> tuple:
    """Normalized, sorted reduction axes (all axes when dim is None)."""
    if dim is None:
        return tuple(range(x.ndim))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    if x.ndim == 0:
        for d in dims:
            _t._norm_dim(d, 0, opname)
        return ()
    axes = sorted({_t._norm_dim(int(d), x.ndim, opname) for d in dims})
    return tuple(axes)


def _keep(x: Tensor, out: Tensor, axes, keepdim: bool) -> Tensor:
    if not keepdim or not axes:
        return out
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return _emit(Op.RESHAPE, out, shape=shape)


def _reduce(op: Op, x: Tensor, axes, keepdim: bool) -> Tensor:
    if not axes:
        return x
    return _keep(x, _emit(op, x, axes=axes), axes, keepdim)


@tensor_params("input")
def sum(x, dim=None, keepdim: bool = False, *, dtype=None):
    """Sum over `dim` (int, tuple, or None for all). Integer and bool
    tensors sum to int64, as in torch."""
    axes = _axes(x, dim, "sum")
    if dtype is None:
        dtype = x.dtype if x.dtype.is_float else dtypes.int64
    out = _reduce(Op.SUM, ew.cast(x, dtype), axes, keepdim)
    return out if axes else out.clone()


@tensor_params("input")
def nansum(x, dim=None, keepdim: bool = False, *, dtype=None):
    return sum(ew.where(ew.isnan(x), 0, x), dim, keepdim, dtype=dtype)


def _count(x: Tensor, axes) -> int:
    n = 1
    for a in axes:
        n *= x.shape[a]
    return n


@tensor_params("input")
def mean(x, dim=None, keepdim: bool = False, *, dtype=None):
    """Arithmetic mean over `dim`; needs a floating-point tensor (or dtype=)."""
    if dtype is not None:
        x = ew.cast(x, dtype)
    if not x.dtype.is_float:
        raise DTypeError(
            at_user_line(
                "mean(): could not infer output dtype. "
                f"Input dtype must be either a floating point or complex dtype. Got: {x.dtype!r}"
            )
        )
    axes = _axes(x, dim, "mean")
    return ew.div(sum(x, dim, keepdim), _count(x, axes))


@tensor_params("input")
def prod(x, dim=None, keepdim: bool = False, *, dtype=None):
    if dtype is None:
        dtype = x.dtype if x.dtype.is_float else dtypes.int64
    axes = _axes(x, dim, "prod")
    return _reduce(Op.PROD, ew.cast(x, dtype), axes, keepdim)


@tensor_params("input")
def amax(x, dim=(), keepdim: bool = False):
    """Maximum over `dim` (all dims when empty); gradient shared among ties."""
    axes = _axes(x, dim if dim != () else None, "amax")
    return _reduce(Op.REDUCE_MAX, x, axes, keepdim)


@tensor_params("input")
def amin(x, dim=(), keepdim: bool = False):
    if x.dtype.is_bool:
        return ew.logical_not(amax(ew.logical_not(x), dim, keepdim))
    return ew.neg(amax(ew.neg(x), dim, keepdim))


@tensor_params("input")
def argmax(x, dim=None, keepdim: bool = False):
    """Index of the first maximum along `dim` (of the flattened tensor when None)."""
    if dim is None:
        flat = _emit(Op.RESHAPE, x, shape=(x.numel(),))
        out = _emit(Op.ARGMAX, flat, axis=0)
        if keepdim:
            out = _emit(Op.RESHAPE, out, shape=(1,) * x.ndim)
        return out
    if x.ndim == 0:
        _t._norm_dim(dim, 0, "argmax")
        return ew.scalar(0, dtypes.int64)
    axis = _t._norm_dim(dim, x.ndim, "argmax")
    return _keep(x, _emit(Op.ARGMAX, x, axis=axis), (axis,), keepdim)


@tensor_params("input")
def argmin(x, dim=None, keepdim: bool = False):
    flipped = ew.logical_not(x) if x.dtype.is_bool else ew.neg(x if x.dtype.is_float else ew.cast(x, dtypes.float64))
    return argmax(flipped, dim, keepdim)


def _index_pick(x: Tensor, idx: Tensor, axis: int, keepdim: bool) -> Tensor:
    """The values at `idx` along `axis` (gradient to that one index, as torch.max(dim))."""
    shape = tuple(1 if i == axis else d for i, d in enumerate(x.shape))
    picked = _emit(Op.GATHER, x, _emit(Op.RESHAPE, idx, shape=shape), axis=axis)
    return picked if keepdim else _emit(Op.RESHAPE, picked, shape=tuple(idx.shape))


@tensor_params("input")
def max(x, dim=None, keepdim: bool = False, *, out=None):
    """`max(x)`: the largest element; `max(x, dim)`: (values, indices);
    `max(x, other_tensor)`: elementwise maximum."""
    if isinstance(dim, Tensor):
        return ew.maximum(x, dim)
    if dim is None:
        if x.numel() == 0:
            raise RuntimeError(at_user_line("max(): Expected reduction dim to be specified for input.numel() == 0."))
        return amax(x)
    idx = argmax(x, dim, keepdim=False)
    axis = _t._norm_dim(dim, x.ndim, "max") if x.ndim else None
    if axis is None:
        return values_indices(x.clone(), idx)
    vals = _index_pick(x, idx, axis, keepdim)
    return values_indices(vals, _keep(x, idx, (axis,), keepdim))


@tensor_params("input")
def min(x, dim=None, keepdim: bool = False, *, out=None):
    """Like `max`, for the smallest element."""
    if isinstance(dim, Tensor):
        return ew.minimum(x, dim)
    if dim is None:
        return amin(x)
    idx = argmin(x, dim, keepdim=False)
    axis = _t._norm_dim(dim, x.ndim, "min") if x.ndim else None
    if axis is None:
        return values_indices(x.clone(), idx)
    vals = _index_pick(x, idx, axis, keepdim)
    return values_indices(vals, _keep(x, idx, (axis,), keepdim))


@tensor_params("input")
def all(x, dim=None, keepdim: bool = False):
    b = ew._as_bool(x)
    axes = _axes(b, dim, "all")
    return ew.logical_not(_reduce(Op.REDUCE_MAX, ew.logical_not(b), axes, keepdim)) if axes else b


@tensor_params("input")
def any(x, dim=None, keepdim: bool = False):
    b = ew._as_bool(x)
    axes = _axes(b, dim, "any")
    return _reduce(Op.REDUCE_MAX, b, axes, keepdim) if axes else b


@tensor_params("input")
def count_nonzero(x, dim=None):
    return sum(ew._as_bool(x), dim)


def _first(x: Tensor, axes) -> Tensor:
    """x's first element along `axes` (kept as size-1 dims), detached."""
    stops = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    with autograd.no_grad():
        return _emit(Op.SLICE, x, starts=(0,) * x.ndim, stops=stops, steps=(1,) * x.ndim).detach()


@tensor_params("input")
def var(x, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """Variance with Bessel's correction by default (correction=1)."""
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    axes = _axes(x, dim, "var")
    n = _count(x, axes)
    if axes and n > 0:
        # Shifting by a sample cancels in the result but makes the deviations
        # of a constant row exactly 0 (x - mean(x) need not be: the rounded
        # mean of equal values may be off by an ulp), so its variance is 0,
        # as PyTorch's, and std's gradient there is 0, not huge.
        x = ew.sub(x, _first(x, axes))
    dof = n - correction
    center = mean(x, dim, keepdim=True)
    if dof > 0:
        centered = ew.sub(x, center)
        return ew.div(sum(ew.mul(centered, centered), dim, keepdim), dof)
    # No degrees of freedom left: the value is inf or nan (total / 0), and
    # PyTorch's gradient is 2 (x - mean) / dof, with no term through the
    # mean (which would turn +-inf into nan), and dof itself, not 0, when
    # negative.
    centered = ew.sub(x, center.detach())
    total = sum(ew.mul(centered, centered), dim, keepdim)
    if dof == 0:
        return ew.div(total, 0.0)
    linear = ew.div(total, dof)
    return ew.add(ew.div(total.detach(), 0.0), ew.sub(linear, linear.detach()))


@tensor_params("input")
def std(x, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """sqrt(var); its gradient is 0 where the variance is 0 (PyTorch masks the
    0 * inf of d sqrt(0) the same way)."""
    v = var(x, dim, unbiased, keepdim, correction=correction)
    zero = ew.eq(v, 0.0)
    # sqrt of 1, not of 0, on the masked branch keeps its cotangent finite.
    return ew.where(zero, 0.0, ew.sqrt(ew.where(zero, 1.0, v)))


@tensor_params("input")
def var_mean(x, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return var(x, dim, unbiased, keepdim, correction=correction), mean(x, dim, keepdim)


@tensor_params("input")
def std_mean(x, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return std(x, dim, unbiased, keepdim, correction=correction), mean(x, dim, keepdim)


def _shift(x: Tensor, dim) -> Tensor:
    # The max is only a numerical shift; it cancels in the result, so no
    # gradient needs to flow through it.
    with autograd.no_grad():
        return amax(x, dim, keepdim=True).detach()


@tensor_params("input")
def logsumexp(x, dim, keepdim: bool = False):
    """log(sum(exp(x), dim)), computed stably."""
    x = ew._float_input(x)
    m = _shift(x, dim)
    out = ew.add(ew.log(sum(ew.exp(ew.sub(x, m)), dim, keepdim=True)), m)
    return out if keepdim else _squeeze_axes(out, _axes(x, dim, "logsumexp"))


def _squeeze_axes(x: Tensor, axes) -> Tensor:
    shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return _emit(Op.RESHAPE, x, shape=shape)


@tensor_params("input")
def softmax(x, dim=None, dtype=None, *, _stacklevel=None):
    """exp(x) / sum(exp(x), dim), shifted by the max for stability."""
    x = ew._float_input(x if dtype is None else ew.cast(x, dtype))
    dim = _legacy_dim(x, dim)
    e = ew.exp(ew.sub(x, _shift(x, dim)))
    return ew.div(e, sum(e, dim, keepdim=True))


@tensor_params("input")
def log_softmax(x, dim=None, dtype=None, *, _stacklevel=None):
    """x - logsumexp(x, dim), computed stably."""
    x = ew._float_input(x if dtype is None else ew.cast(x, dtype))
    dim = _legacy_dim(x, dim)
    shifted = ew.sub(x, _shift(x, dim))
    return ew.sub(shifted, ew.log(sum(ew.exp(shifted), dim, keepdim=True)))


def _legacy_dim(x: Tensor, dim):
    if dim is None:
        # torch's implicit choice, kept for old code.
        return 0 if x.ndim in (0, 1, 3) else 1
    return dim


@tensor_params("input")
def cumsum(x, dim: int, *, dtype=None):
    """Running sum along `dim` (a DOT with a triangular matrix of ones)."""
    axis = _t._norm_dim(dim, x.ndim, "cumsum")
    if dtype is None:
        dtype = x.dtype if x.dtype.is_float else dtypes.int64
    x = ew.cast(x, dtype)
    n = x.shape[axis]
    from graphc import _creation, _shape

    row = _creation.arange(n).reshape(n, 1)
    tri = ew.cast(ew.le(row, _creation.arange(n).reshape(1, n)), dtype)
    moved = _shape.movedim(x, axis, -1)
    return _shape.movedim(matmul(moved, tri), -1, axis)


# ---------------------------------------------------------------------------
# matrix products


def _matmul_error(a: Tensor, b: Tensor, what: str) -> ShapeError:
    return ShapeError(at_user_line(f"matmul: {what}: a is {_typestr(a)}, b is {_typestr(b)}"))


def _typestr(x: Tensor) -> str:
    return f"{x.dtype.short}[{','.join(str(d) for d in x.shape)}]"


@tensor_params("input", "other")
def matmul(a, b):
    """Matrix product with torch.matmul's rules: 1-d operands are vectors,
    batch dimensions broadcast."""
    if a.ndim == 0 or b.ndim == 0:
        raise _matmul_error(a, b, "both arguments need at least 1 dimension")
    if a.dtype is not b.dtype:
        raise DTypeError(
            at_user_line(f"matmul: expected both operands to have the same dtype, but got {a.dtype!r} and {b.dtype!r}")
        )
    if a.dtype.is_bool:
        raise DTypeError(at_user_line("matmul: not implemented for bool tensors"))
    x = a if a.ndim > 1 else _emit(Op.RESHAPE, a, shape=(1, a.shape[0]))
    y = b if b.ndim > 1 else _emit(Op.RESHAPE, b, shape=(b.shape[0], 1))
    if x.shape[-1] != y.shape[-2]:
        raise _matmul_error(a, b, f"inner dimensions differ ({x.shape[-1]} vs {y.shape[-2]})")
    try:
        batch = ew.broadcast_shapes(tuple(x.shape[:-2]), tuple(y.shape[:-2]), opname="matmul")
    except ShapeError:
        raise _matmul_error(a, b, "batch dimensions cannot be broadcast") from None
    x = ew.expand_to(x, batch + tuple(x.shape[-2:]))
    y = ew.expand_to(y, batch + tuple(y.shape[-2:]))
    out = _emit(Op.DOT, x, y)
    shape = tuple(out.shape)
    if a.ndim == 1:
        shape = shape[:-2] + shape[-1:]
    if b.ndim == 1:
        shape = shape[:-1]
    return out if shape == tuple(out.shape) else _emit(Op.RESHAPE, out, shape=shape)


@tensor_params("input", "mat2")
def mm(a, b):
    if a.ndim != 2 or b.ndim != 2:
        raise _matmul_error(a, b, "mm needs 2-d operands")
    return matmul(a, b)


@tensor_params("input", "mat2")
def bmm(a, b):
    if a.ndim != 3 or b.ndim != 3:
        raise _matmul_error(a, b, "bmm needs 3-d operands")
    if a.shape[0] != b.shape[0]:
        raise _matmul_error(a, b, "batch sizes differ")
    return matmul(a, b)


@tensor_params("input", "vec")
def mv(a, v):
    return matmul(a, v)


@tensor_params("input", "tensor")
def dot(a, b):
    if a.ndim != 1 or b.ndim != 1:
        raise _matmul_error(a, b, "dot needs 1-d operands")
    return matmul(a, b)


inner = dot


@tensor_params("input", "other")
def vdot(a, b):
    """The dot product of two 1-D tensors of the same dtype (no conjugation needed for real tensors)."""
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(at_user_line(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors"))
    if a.dtype is not b.dtype:
        raise RuntimeError(
            at_user_line(
                "vdot : expected both vectors to have same dtype, but found "
                f"{ew.torch_type_name(a.dtype)} and {ew.torch_type_name(b.dtype)}"
            )
        )
    return dot(a, b)


@tensor_params("input", "vec2")
def outer(a, b):
    return ew.mul(a.reshape(-1, 1), b.reshape(1, -1))


def addmm(bias, a, b, *, beta=1, alpha=1):
    return ew.add(
        ew.mul(bias, beta) if beta != 1 else bias,
        ew.mul(matmul(a, b), alpha) if alpha != 1 else matmul(a, b),
    )


@tensor_params("input")
def nanmean(x, dim=None, keepdim: bool = False, *, dtype=None):
    """Mean over `dim` of the elements that are not NaN (NaN where all are)."""
    if dtype is not None:
        x = ew.cast(x, dtype)
    if not x.dtype.is_float:
        raise DTypeError(
            at_user_line(
                "nanmean(): expected input to have floating point or complex dtype but got "
                f"{ew.torch_type_name(x.dtype)}"
            )
        )
    kept = ew.logical_not(ew.isnan(x))
    return ew.div(nansum(x, dim, keepdim), sum(kept, dim, keepdim))


@tensor_params("input")
def trace(x):
    """The sum of the main diagonal of a 2-D tensor (Tensor.trace; graphc.trace is the tracing module)."""
    if x.ndim != 2:
        raise RuntimeError(at_user_line(f"trace: expected a matrix, but got tensor with dim {x.ndim}"))
    from graphc._shape import diagonal

    return sum(diagonal(x))
