"""More products and statistics composed from matmul, elementwise ops and
reductions: the `add*` fused forms (addbmm, baddbmm, addmv, addr),
chain_matmul, matrix_power, cross, cdist, cov/corrcoef, trapezoid and
cumulative_trapezoid, vander, aminmax, renorm, bincount, histc, isin and
gradient."""

from __future__ import annotations

import collections
import numbers

from graphc import _creation, _linalg, _shape
from graphc import _elementwise as ew
from graphc import _reductions as red
from graphc._checks import tensor_params
from graphc._tensor_core import Tensor, get_default_dtype
from graphc._tensor_core import _norm_dim as norm_dim
from graphc.errors import ShapeError, at_user_line
from graphc.ir import dtypes


def _scaled_sum(opname: str, input, product, beta, alpha):
    """beta * input + alpha * product, broadcasting input to the product's
    shape; beta == 0 ignores input (NaN in it included), as in torch."""
    if tuple(input.shape) != tuple(product.shape):
        try:
            input = _shape.broadcast_to(input, tuple(product.shape))
        except ShapeError:
            raise RuntimeError(
                at_user_line(
                    f"{opname}: the size of input {list(input.shape)} cannot be broadcast to the result's "
                    f"{list(product.shape)}"
                )
            ) from None
    product = product if alpha == 1 else ew.mul(product, alpha)
    if beta == 0:
        return product
    return ew.add(input if beta == 1 else ew.mul(input, beta), product)


def _require_dims(opname: str, argname: str, x: Tensor, ndim: int) -> None:
    if x.ndim != ndim:
        raise RuntimeError(at_user_line(f"{opname}: {argname} must be a {ndim}D tensor, got {x.ndim}D"))


@tensor_params("input", "batch1", "batch2")
def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * sum over b of batch1[b] @ batch2[b]."""
    _require_dims("addbmm", "batch1", batch1, 3)
    _require_dims("addbmm", "batch2", batch2, 3)
    return _scaled_sum("addbmm", input, red.sum(red.bmm(batch1, batch2), 0), beta, alpha)


@tensor_params("input", "batch1", "batch2")
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * (batch1 @ batch2), batch by batch."""
    _require_dims("baddbmm", "batch1", batch1, 3)
    _require_dims("baddbmm", "batch2", batch2, 3)
    return _scaled_sum("baddbmm", input, red.bmm(batch1, batch2), beta, alpha)


@tensor_params("input", "mat", "vec")
def addmv(input, mat, vec, *, beta=1, alpha=1):
    """beta * input + alpha * (mat @ vec)."""
    return _scaled_sum("addmv", input, red.mv(mat, vec), beta, alpha)


@tensor_params("input", "vec1", "vec2")
def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """beta * input + alpha * outer(vec1, vec2)."""
    _require_dims("addr", "vec1", vec1, 1)
    _require_dims("addr", "vec2", vec2, 1)
    return _scaled_sum("addr", input, red.outer(vec1, vec2), beta, alpha)


@tensor_params("input", "vec2")
def ger(input, vec2):
    """The outer product of two vectors (the old name of `outer`)."""
    return red.outer(input, vec2)


def chain_matmul(*matrices):
    """The product of the 2-D `matrices`, left to right."""
    if len(matrices) == 1 and isinstance(matrices[0], (list, tuple)):
        matrices = tuple(matrices[0])
    if not matrices:
        raise RuntimeError(at_user_line("chain_matmul(): Expected one or more matrices"))
    for i, m in enumerate(matrices):
        if not isinstance(m, Tensor) or m.ndim != 2:
            got = f"{m.ndim}D" if isinstance(m, Tensor) else type(m).__name__
            raise RuntimeError(at_user_line(f"chain_matmul(): Tensor {i} must be 2D, got {got}"))
    out = matrices[0]
    for m in matrices[1:]:
        out = red.mm(out, m)
    return out.clone() if len(matrices) == 1 else out


@tensor_params("input")
def matrix_power(x, n: int):
    """x @ x @ ... (n times) for square matrices, by repeated squaring; the
    identity for n == 0. Negative powers need an inverse, which graphc lacks."""
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise RuntimeError(
            at_user_line(
                f"linalg.matrix_power: A must be batches of square matrices, but they are "
                f"{x.shape[-2] if x.ndim >= 2 else x.shape} by {x.shape[-1] if x.ndim else ''} matrices"
            )
        )
    if n < 0:
        raise NotImplementedError(
            at_user_line("matrix_power: negative powers need a matrix inverse, which graphc does not provide")
        )
    if n == 0:
        eye = _creation.eye(x.shape[-1], dtype=x.dtype)
        return ew.add(ew.mul(x, 0), eye) if x.dtype.is_float else _shape.broadcast_to(eye, tuple(x.shape)).clone()
    result, square = None, x
    while n:
        if n & 1:
            result = square if result is None else red.matmul(result, square)
        n >>= 1
        if n:
            square = red.matmul(square, square)
    return result.clone() if result is x else result


def _component(x: Tensor, d: int, i: int) -> Tensor:
    return _shape.narrow(x, d, i, 1)


@tensor_params("input", "other")
def cross(input, other, dim=None):
    """The cross product of 3-vectors along `dim` (default: the first dim of
    size 3, as torch.cross)."""
    shape = ew.broadcast_shapes(tuple(input.shape), tuple(other.shape), opname="cross")
    a, b = ew.operands("cross", input, other)
    if dim is None:
        dim = next((i for i, n in enumerate(shape) if n == 3), None)
        if dim is None:
            raise RuntimeError(at_user_line(f"no dimension of size 3 in input: shapes {list(shape)}"))
    d = norm_dim(dim, len(shape), "cross")
    if shape[d] != 3:
        raise RuntimeError(
            at_user_line(f"linalg.cross: inputs dimension {dim} must have length 3. Got {shape[d]} and {shape[d]}")
        )
    a0, a1, a2 = (_component(a, d, i) for i in range(3))
    b0, b1, b2 = (_component(b, d, i) for i in range(3))
    parts = [
        ew.sub(ew.mul(a1, b2), ew.mul(a2, b1)),
        ew.sub(ew.mul(a2, b0), ew.mul(a0, b2)),
        ew.sub(ew.mul(a0, b1), ew.mul(a1, b0)),
    ]
    return _shape.cat(parts, d)


@tensor_params("x1", "x2")
def cdist(x1, x2, p: float = 2.0, compute_mode=None):
    """The p-norm distance between each row of x1 (..., P, M) and each row
    of x2 (..., R, M): a (..., P, R) tensor."""
    if x1.ndim < 2 or x2.ndim < 2:
        raise RuntimeError(
            at_user_line(f"cdist only supports at least 2D tensors, X1 got: {x1.ndim}D, X2 got: {x2.ndim}D")
        )
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(
            at_user_line(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: {x2.shape[-1]}")
        )
    if not x1.dtype.is_float or not x2.dtype.is_float:
        raise RuntimeError(
            at_user_line(f"cdist only supports floating-point dtypes, X1 got: {ew.torch_type_name(x1.dtype)}")
        )
    if p < 0:
        raise RuntimeError(at_user_line(f"cdist only supports non-negative p values, got {p}"))
    diff = ew.sub(_shape.unsqueeze(x1, -2), _shape.unsqueeze(x2, -3))
    if p == 2:
        # The gradient of sqrt at a zero distance is 0 here, as in torch.
        sq = red.sum(ew.mul(diff, diff), -1)
        zero = ew.eq(sq, 0.0)
        return ew.where(zero, 0.0, ew.sqrt(ew.where(zero, 1.0, sq)))
    return _linalg.vector_norm(diff, p, dim=-1)


@tensor_params("input")
def cov(input, *, correction: int = 1, fweights=None, aweights=None):
    """The covariance matrix of the variables in the rows of `input`
    (observations in its columns), with optional integer frequency weights
    and float observation weights; a 0-d tensor for a 1-D input."""
    if input.ndim > 2:
        raise RuntimeError(
            at_user_line(
                f"cov(): expected input to have two or fewer dimensions but got an input with {input.ndim} dimensions"
            )
        )
    x = input if input.ndim == 2 else _shape.reshape(input, (1, -1))
    x = x if x.dtype.is_float else ew.cast(x, get_default_dtype())
    n_obs = x.shape[1]
    w = None
    if fweights is not None:
        if fweights.dtype.is_float:
            raise RuntimeError(
                at_user_line(
                    "cov(): expected fweights to have integral dtype but got fweights with "
                    f"{ew.torch_type_name(fweights.dtype)} dtype"
                )
            )
        _check_weights("fweights", fweights, n_obs)
        w = fweights
    if aweights is not None:
        if not aweights.dtype.is_float:
            raise RuntimeError(
                at_user_line(
                    "cov(): expected aweights to have floating point dtype but got aweights with "
                    f"{ew.torch_type_name(aweights.dtype)} dtype"
                )
            )
        _check_weights("aweights", aweights, n_obs)
        w = aweights if w is None else ew.mul(w, aweights)
    if w is None:
        w_sum = float(n_obs)
        avg = red.mean(x, 1, keepdim=True)
    else:
        w = ew.cast(w, x.dtype)
        w_sum = red.sum(w)
        avg = ew.div(red.sum(ew.mul(x, w), 1, keepdim=True), w_sum)
    if w is None or correction == 0:
        norm = ew.sub(w_sum, correction) if correction else w_sum
    elif aweights is None:
        norm = ew.sub(w_sum, correction)
    else:
        norm = ew.sub(w_sum, ew.div(ew.mul(red.sum(ew.mul(w, ew.cast(aweights, x.dtype))), correction), w_sum))
    norm = ew.maximum(norm if isinstance(norm, Tensor) else ew.scalar(norm, x.dtype), ew.scalar(0.0, x.dtype))
    centered = ew.sub(x, avg)
    weighted = centered if w is None else ew.mul(centered, w)
    c = ew.div(red.matmul(weighted, _shape.transpose(centered, 0, 1)), norm)
    return _shape.reshape(c, ()) if input.ndim < 2 else c


def _check_weights(name: str, w: Tensor, n_obs: int) -> None:
    if w.ndim > 1:
        raise RuntimeError(
            at_user_line(
                f"cov(): expected {name} to have one or fewer dimensions but got {name} with {w.ndim} dimensions"
            )
        )
    if w.numel() != n_obs:
        raise RuntimeError(
            at_user_line(
                f"cov(): expected {name} to have the same numel as there are observations in the input "
                f"but got {w.numel()} != {n_obs}"
            )
        )


@tensor_params("input")
def corrcoef(input):
    """Pearson's correlation coefficients of the variables in the rows of
    `input`, clipped to [-1, 1]."""
    c = cov(input)
    if c.ndim == 0:
        return ew.div(c, c)
    d = _shape.diagonal(c)
    s = ew.sqrt(d)
    r = ew.div(ew.div(c, _shape.unsqueeze(s, 1)), _shape.unsqueeze(s, 0))
    return ew.clamp(r, -1.0, 1.0)


def _trapezoid_terms(y: Tensor, x, dx, dim: int) -> Tensor:
    d = norm_dim(dim, y.ndim, "trapezoid")
    n = y.shape[d]
    y = y if y.dtype.is_float else ew.cast(y, get_default_dtype())
    avg = ew.mul(ew.add(_shape.narrow(y, d, 1, n - 1), _shape.narrow(y, d, 0, n - 1)), 0.5)
    if x is None:
        return ew.mul(avg, 1.0 if dx is None else dx)
    if isinstance(x, Tensor):
        if x.ndim == 1:
            if x.shape[0] != n:
                raise RuntimeError(
                    at_user_line(
                        f"trapezoid: There must be one `x` value for each sample point, got {x.shape[0]} "
                        f"for {n} samples"
                    )
                )
            spacing = _shape.reshape(ew.sub(x[1:], x[:-1]), tuple(n - 1 if i == d else 1 for i in range(y.ndim)))
        else:
            spacing = _shape.diff(x, dim=dim)
        return ew.mul(avg, spacing)
    return ew.mul(avg, x)


def trapezoid(y, x=None, *, dx=None, dim: int = -1):
    """The integral of `y` along `dim` by the trapezoidal rule, with sample
    points `x` (a tensor) or spacing `dx` (default 1)."""
    if not isinstance(y, Tensor):
        raise TypeError(at_user_line(f"trapezoid(): argument 'y' (position 1) must be Tensor, not {type(y).__name__}"))
    if x is not None and dx is not None:
        raise TypeError(at_user_line("trapezoid(): pass either x or dx, not both"))
    d = norm_dim(dim, y.ndim, "trapezoid")
    if y.shape[d] == 0:
        return red.sum(ew.mul(y, 0.0), d)
    return red.sum(_trapezoid_terms(y, x, dx, d), d)


def trapz(y, x=None, *, dx=None, dim: int = -1):
    """The old name of `trapezoid`."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim: int = -1):
    """The running trapezoidal integral of `y` along `dim` (one element
    fewer than `y` there)."""
    if not isinstance(y, Tensor):
        raise TypeError(
            at_user_line(f"cumulative_trapezoid(): argument 'y' (position 1) must be Tensor, not {type(y).__name__}")
        )
    d = norm_dim(dim, y.ndim, "cumulative_trapezoid")
    if y.shape[d] == 0:
        return ew.mul(y, 0.0)
    return red.cumsum(_trapezoid_terms(y, x, dx, d), d)


@tensor_params("x")
def vander(x, N=None, increasing: bool = False):
    """The Vandermonde matrix of a 1-D `x`: columns x^(N-1), ..., x^0 (or
    increasing powers)."""
    if x.ndim != 1:
        raise RuntimeError(at_user_line("x must be a one-dimensional tensor."))
    n = x.shape[0] if N is None else N
    if n < 0:
        raise RuntimeError(at_user_line("N must be non-negative."))
    if x.dtype.is_bool:
        x = ew.cast(x, dtypes.int64)
    cols = []
    power = _creation.ones_like(x)
    for i in range(n):
        cols.append(power)
        if i + 1 < n:
            power = ew.mul(power, x)
    if not cols:
        return _creation.zeros(x.shape[0], 0, dtype=x.dtype)
    out = _shape.stack(cols if increasing else cols[::-1], 1)
    return out


_MinMax = collections.namedtuple("aminmax", ["min", "max"])


@tensor_params("input")
def aminmax(input, *, dim=None, keepdim: bool = False):
    """(amin, amax) of `input`, over `dim` or all elements, as a named tuple."""
    if input.numel() == 0 and dim is None:
        raise RuntimeError(
            at_user_line("aminmax(): cannot compute aminmax over an empty dimension as the operation has no identity.")
        )
    if dim is None:
        lo, hi = red.amin(input, ()), red.amax(input, ())
        if keepdim:
            shape = (1,) * input.ndim
            lo, hi = _shape.reshape(lo, shape), _shape.reshape(hi, shape)
        return _MinMax(lo, hi)
    return _MinMax(red.amin(input, dim, keepdim), red.amax(input, dim, keepdim))


@tensor_params("input")
def renorm(input, p, dim: int, maxnorm):
    """Each slice of `input` along `dim` whose p-norm exceeds `maxnorm`,
    scaled down to norm `maxnorm`."""
    if not input.dtype.is_float:
        raise RuntimeError(at_user_line(f"renorm: input needs a floating point dtype, got {input.dtype!r}"))
    if p <= 0:
        raise RuntimeError(at_user_line(f"renorm: non-positive-norm not supported, got p={p}"))
    if maxnorm < 0:
        raise RuntimeError(at_user_line(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}"))
    d = norm_dim(dim, input.ndim, "renorm")
    others = tuple(i for i in range(input.ndim) if i != d)
    norm = _linalg.vector_norm(input, p, dim=others, keepdim=True)
    # torch's epsilon, which keeps a slice at exactly maxnorm a hair below it.
    factor = ew.where(ew.gt(norm, maxnorm), ew.div(maxnorm, ew.add(norm, 1e-7)), 1.0)
    return ew.mul(input, factor)


@tensor_params("input")
def bincount(input, weights=None, minlength: int = 0):
    """How often each value 0..max(input) occurs in the 1-D non-negative
    integer `input` (summing `weights` instead of ones when given)."""
    if input.dtype.is_float or input.dtype.is_bool:
        raise NotImplementedError(
            at_user_line(f"\"bincount_cpu\" not implemented for '{ew.torch_type_name(input.dtype)}'")
        )
    if input.ndim != 1:
        raise RuntimeError(at_user_line("bincount only supports 1-d non-negative integral inputs."))
    if minlength < 0:
        raise RuntimeError(at_user_line("minlength should be >= 0"))
    if weights is not None and tuple(weights.shape) != tuple(input.shape):
        raise RuntimeError(at_user_line("weights should be 1-d and have the same length as input"))
    # The result's length depends on the data: only known eagerly.
    size = minlength
    if input.numel():
        if int(red.amin(input, ()).item()) < 0:
            raise RuntimeError(at_user_line("bincount only supports 1-d non-negative integral inputs."))
        size = max(size, int(red.amax(input, ()).item()) + 1)
    hits = ew.eq(_shape.unsqueeze(input, 1), _shape.unsqueeze(_creation.arange(size), 0))
    if weights is None:
        return red.sum(ew.cast(hits, dtypes.int64), 0)
    w = weights if weights.dtype.is_float else ew.cast(weights, dtypes.float64)
    out_dtype = dtypes.float32 if w.dtype is dtypes.float32 else dtypes.float64
    return red.sum(ew.mul(ew.cast(hits, out_dtype), _shape.unsqueeze(ew.cast(w, out_dtype), 1)), 0)


@tensor_params("input")
def histc(input, bins: int = 100, min=0, max=0):
    """A histogram of `input` in `bins` equal bins over [min, max] (the data's
    range when both are 0); elements outside are ignored."""
    if not input.dtype.is_float:
        raise RuntimeError(at_user_line(f"\"histogram_cpu\" not implemented for '{ew.torch_type_name(input.dtype)}'"))
    if bins <= 0:
        raise RuntimeError(at_user_line(f"torch.histc: bins must be > 0, but got {bins} for bins"))
    lo, hi = float(min), float(max)
    if lo == hi and input.numel():
        lo, hi = float(red.amin(input, ()).item()), float(red.amax(input, ()).item())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError(at_user_line(f"torch.histc: max must be larger than min, but got min {min} max {max}"))
    flat = _shape.reshape(input, (-1,))
    wide = ew.cast(flat, dtypes.float64)
    idx = ew.floor(ew.mul(ew.sub(wide, lo), bins / (hi - lo)))
    idx = ew.where(ew.eq(wide, hi), bins - 1, idx)
    inside = ew.logical_and(ew.ge(wide, lo), ew.le(wide, hi))
    hits = ew.logical_and(
        _shape.unsqueeze(inside, 1), ew.eq(_shape.unsqueeze(idx, 1), _creation.arange(bins, dtype=dtypes.float64))
    )
    return red.sum(ew.cast(hits, input.dtype), 0)


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False):
    """True where an element of `elements` occurs in `test_elements` (either
    may be a number)."""
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError(at_user_line("isin(): expected at least one of elements and test_elements to be a Tensor"))
    if not isinstance(elements, Tensor):
        elements = _creation.tensor(elements, dtype=ew.result_type(elements, test_elements))
    test = test_elements if isinstance(test_elements, Tensor) else _creation.tensor([test_elements])
    flat = _shape.reshape(test, (-1,))
    if flat.numel() == 0:
        found = ew.ne(elements, elements) if not elements.dtype.is_float else ew.logical_and(ew.isnan(elements), False)
    else:
        found = red.any(ew.eq(_shape.unsqueeze(elements, -1), flat), -1)
    return ew.logical_not(found) if invert else found


def gradient(input, *, spacing=1, dim=None, edge_order: int = 1):
    """The derivative of `input` estimated by central differences inside
    and one-sided differences at the edges, along each of `dim` (all dims
    by default), with a uniform `spacing` per dim; one tensor per dim."""
    if not isinstance(input, Tensor):
        raise TypeError(at_user_line(f"gradient(): argument 'input' must be Tensor, not {type(input).__name__}"))
    if edge_order not in (1, 2):
        raise RuntimeError(
            at_user_line(f"torch.gradient only supports edge_order=1 and edge_order=2, got {edge_order}")
        )
    dims = list(range(input.ndim)) if dim is None else [dim] if isinstance(dim, int) else list(dim)
    dims = [norm_dim(d, input.ndim, "gradient") for d in dims]
    if isinstance(spacing, numbers.Number):
        steps = [float(spacing)] * len(dims)
    elif isinstance(spacing, (list, tuple)) and all(isinstance(s, numbers.Number) for s in spacing):
        if len(spacing) != len(dims):
            raise RuntimeError(
                at_user_line(
                    f"torch.gradient expected spacing to be unspecified, a scalar or a list of length {len(dims)}, "
                    f"but got a list of length {len(spacing)}"
                )
            )
        steps = [float(s) for s in spacing]
    else:
        raise NotImplementedError(
            at_user_line("gradient: graphc supports scalar spacings only, not coordinate tensors")
        )
    x = input if input.dtype.is_float else ew.cast(input, get_default_dtype())
    return tuple(_gradient_1d(x, d, h, edge_order) for d, h in zip(dims, steps))


def _gradient_1d(x: Tensor, d: int, h: float, edge_order: int) -> Tensor:
    n = x.shape[d]
    if n < edge_order + 1:
        raise RuntimeError(
            at_user_line(
                f"torch.gradient expected each dimension size to be at least edge_order+1, got a dimension of size {n}"
            )
        )

    def part(start, length):
        return _shape.narrow(x, d, start, length)

    inner = ew.div(ew.sub(part(2, n - 2), part(0, n - 2)), 2 * h)
    if edge_order == 1:
        first = ew.div(ew.sub(part(1, 1), part(0, 1)), h)
        last = ew.div(ew.sub(part(n - 1, 1), part(n - 2, 1)), h)
    else:
        first = ew.div(ew.add(ew.sub(ew.mul(part(1, 1), 4.0), ew.mul(part(0, 1), 3.0)), ew.neg(part(2, 1))), 2 * h)
        last = ew.div(ew.add(ew.sub(ew.mul(part(n - 1, 1), 3.0), ew.mul(part(n - 2, 1), 4.0)), part(n - 3, 1)), 2 * h)
    return _shape.cat([first, inner, last], d)
