"""Vector and matrix norms (graphc.norm, graphc.dist and graphc.linalg's
vector_norm / matrix_norm), composed from elementwise ops and reductions."""

from __future__ import annotations

import math
import numbers

from graphc import _elementwise as ew
from graphc import _reductions as red
from graphc import _tensor_core as _t
from graphc._checks import tensor_params
from graphc.errors import DTypeError, at_user_line

Tensor = _t.Tensor


def _float_input(opname: str, x: Tensor, dtype) -> Tensor:
    if dtype is not None:
        x = ew.cast(x, dtype)
    if not x.dtype.is_float:
        raise DTypeError(
            at_user_line(
                f"{opname}: Expected a floating point or complex tensor as input. Got {ew.torch_type_name(x.dtype)}"
            )
        )
    return x


@tensor_params("x")
def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None):
    """The `ord`-norm of `x` flattened over `dim` (all dims when None):
    max|x| for inf, min|x| for -inf, the count of nonzeros for 0, and
    sum(|x|**ord)**(1/ord) otherwise."""
    if not isinstance(ord, numbers.Real) or isinstance(ord, bool):
        raise TypeError(at_user_line(f"linalg.vector_norm: ord must be a number, got {type(ord).__name__}"))
    x = _float_input("linalg.vector_norm", x, dtype)
    if isinstance(dim, (tuple, list)) and not dim:
        dim = None  # an empty dim list means every dim, as in PyTorch
    if ord == math.inf:
        return red.amax(ew.abs(x), () if dim is None else dim, keepdim)
    if ord == -math.inf:
        return red.amin(ew.abs(x), () if dim is None else dim, keepdim)
    if ord == 0:
        return ew.cast(red.sum(ew.ne(x, 0), dim, keepdim), x.dtype)
    if ord == 1:
        return red.sum(ew.abs(x), dim, keepdim)
    if ord == 2:
        return _root(red.sum(ew.mul(x, x), dim, keepdim), 2)
    return _root(red.sum(ew.pow(ew.abs(x), ord), dim, keepdim), ord)


def _root(total: Tensor, ord) -> Tensor:
    """total ** (1 / ord). For ord > 1 a zero total gives the value 0 with
    gradient 0, as PyTorch's norm backward does (the plain root's gradient
    at 0 is inf * 0 = NaN): the root is taken of a nonzero stand-in and
    then replaced, so no gradient flows through the zero."""
    if ord <= 1:
        return ew.pow(total, 1.0 / ord)
    zero = ew.eq(total, 0)
    safe = ew.where(zero, 1.0, total)
    root = ew.sqrt(safe) if ord == 2 else ew.pow(safe, 1.0 / ord)
    return ew.where(zero, 0.0, root)


@tensor_params("A")
def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None):
    """The `ord`-norm of the matrices over the two dims `dim`: 'fro', or the
    largest (1, inf) or smallest (-1, -inf) absolute column/row sum."""
    A = _float_input("linalg.matrix_norm", A, dtype)
    if A.ndim < 2:
        raise RuntimeError(at_user_line("linalg.matrix_norm: The input tensor A must have at least 2 dimensions."))
    dim = tuple(dim)
    if len(dim) != 2:
        raise RuntimeError(at_user_line(f"linalg.matrix_norm: dim must be a 2-tuple. Got {dim}"))
    d0, d1 = (_t._norm_dim(d, A.ndim, "linalg.matrix_norm") for d in dim)
    if d0 == d1:
        raise RuntimeError(at_user_line(f"linalg.matrix_norm: dims must be different. Got ({d0}, {d1})"))
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        raise NotImplementedError(
            at_user_line(
                f"linalg.matrix_norm: ord={ord!r} needs singular values (SVD), which graphc does not support; "
                "use 'fro', 1, -1, inf or -inf"
            )
        )
    if ord not in (1, -1, math.inf, -math.inf):
        raise RuntimeError(at_user_line(f"linalg.matrix_norm: Order {ord} not supported."))
    # 1/-1: column sums (over d0), then the max/min over d1; inf/-inf: row sums.
    summed, picked = (d0, d1) if abs(ord) == 1 else (d1, d0)
    sums = red.sum(ew.abs(A), summed, keepdim=True)
    out = red.amax(sums, picked, keepdim=True) if ord > 0 else red.amin(sums, picked, keepdim=True)
    return out if keepdim else out.squeeze((d0, d1))


@tensor_params("input")
def norm(x, p="fro", dim=None, keepdim: bool = False, dtype=None):
    """torch.norm: the vector p-norm over `dim` (all elements when None);
    'fro' is the 2-norm; 'nuc' needs SVD and is not supported."""
    if p is None:
        p = 2
    if isinstance(p, str):
        if p == "nuc":
            raise NotImplementedError(
                at_user_line("norm: p='nuc' needs singular values (SVD), which graphc does not support")
            )
        if p != "fro":
            raise RuntimeError(at_user_line(f"norm: unsupported p={p!r}; expected a number, 'fro' or 'nuc'"))
        p = 2
    return vector_norm(x, p, dim, keepdim, dtype=dtype)


@tensor_params("input", "other")
def dist(x, other, p=2):
    """The p-norm of x - other."""
    return vector_norm(ew.sub(x, other), p)
