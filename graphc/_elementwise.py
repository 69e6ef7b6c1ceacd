"""Elementwise ops: PyTorch's type promotion and broadcasting made explicit
(CAST and EXPAND primitives), and every arithmetic, comparison, logical and
unary-math function built from the IR's elementwise primitives."""

from __future__ import annotations

import math
import numbers

import numpy as np

from graphc import _tensor_core as _t
from graphc._checks import tensor_params
from graphc.errors import DTypeError, ShapeError, at_user_line
from graphc.ir import dtypes
from graphc.ir.dtypes import DType
from graphc.ir.ops import Op

Tensor = _t.Tensor


def _emit(op: Op, *srcs, **attrs):
    return Tensor._emit(op, list(srcs), attrs)


# ---------------------------------------------------------------------------
# promotion and broadcasting


def _is_scalar(x) -> bool:
    return isinstance(x, (numbers.Number, np.bool_)) and not isinstance(x, Tensor)


def _scalar_dtype(x) -> DType:
    if isinstance(x, (bool, np.bool_)):
        return dtypes.bool_
    if isinstance(x, numbers.Integral):
        return dtypes.int64
    if isinstance(x, numbers.Real):
        return _t.get_default_dtype()
    raise TypeError(at_user_line(f"unsupported operand type {type(x).__name__}: expected a Tensor or a Python number"))


def _promote(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return dtypes.promote(a, b)


def _combine(higher, lower):
    # torch's combine_categories: a lower-priority operand only matters when
    # it is of a higher category (bool < int < float).
    if higher is None:
        return lower
    if lower is None or higher.is_float:
        return higher
    if higher.is_bool or lower.is_float:
        return dtypes.promote(higher, lower)
    return higher


def result_type(*xs) -> DType:
    """PyTorch's result dtype: dimensioned tensors, then 0-d tensors, then
    Python numbers, each consulted only when of a higher category."""
    dim_t = zero_t = scalar = None
    for x in xs:
        if isinstance(x, Tensor):
            if x.ndim > 0:
                dim_t = _promote(dim_t, x.dtype)
            else:
                zero_t = _promote(zero_t, x.dtype)
        else:
            scalar = _promote(scalar, _scalar_dtype(x))
    return _combine(dim_t, _combine(zero_t, scalar))


def broadcast_shapes(*shapes, opname: str = "broadcast") -> tuple:
    """The common shape of `shapes` under numpy/torch broadcasting."""
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        for i, d in enumerate(s):
            j = ndim - len(s) + i
            if d != out[j] and out[j] != 1 and d != 1:
                raise ShapeError(
                    at_user_line(
                        f"{opname}: shapes {list(shapes[0])} and {list(s)} cannot be broadcast: the size of tensor a "
                        f"({out[j]}) must match the size of tensor b ({d}) at non-singleton dimension {j}"
                    )
                )
            if d != 1:
                out[j] = d
    return tuple(out)


def scalar(value, dtype: DType) -> Tensor:
    """A 0-d constant tensor."""
    if dtype.is_float:
        value = float(value)
    elif dtype.is_bool:
        value = bool(value)
    else:
        # Out-of-range Python ints wrap, as torch does (uint8 - 3).
        value = int(np.array(int(value), dtype=np.int64).astype(dtype.np))
    return _emit(Op.CONST, value=value, dtype=dtype, shape=())


def cast(x: Tensor, dtype: DType) -> Tensor:
    """`x` converted to `dtype` (no-op when it already is)."""
    return x if x.dtype is dtype else _emit(Op.CAST, x, dtype=dtype)


def expand_to(x: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    return x if tuple(x.shape) == shape else _emit(Op.EXPAND, x, shape=shape)


def operands(opname: str, *xs, dtype: DType | None = None) -> list:
    """Tensors of one shape and one dtype (`dtype`, default the promoted
    one) from tensors and Python numbers."""
    for x in xs:
        if not isinstance(x, Tensor) and not _is_scalar(x):
            raise TypeError(at_user_line(f"{opname}(): expected a Tensor or a number, got {type(x).__name__}"))
    dtype = dtype or result_type(*xs)
    shape = broadcast_shapes(*[tuple(x.shape) for x in xs if isinstance(x, Tensor)], opname=opname)
    out = []
    for x in xs:
        t = cast(x, dtype) if isinstance(x, Tensor) else scalar(x, dtype)
        out.append(expand_to(t, shape))
    return out


_TORCH_TYPE_NAMES = {
    "float32": "Float",
    "float64": "Double",
    "float16": "Half",
    "int64": "Long",
    "int32": "Int",
    "int16": "Short",
    "int8": "Char",
    "uint8": "Byte",
    "bool": "Bool",
}


def torch_type_name(dtype: DType) -> str:
    """PyTorch's ScalarType name of `dtype` ('Float', 'Long'), as its messages print it."""
    return _TORCH_TYPE_NAMES.get(dtype.name, dtype.name)


def _float_dtype(*xs) -> DType:
    d = result_type(*xs)
    return d if d.is_float else _t.get_default_dtype()


def _numeric(opname: str, *xs) -> DType:
    d = result_type(*xs)
    if d.is_bool:
        raise DTypeError(at_user_line(f"{opname}: not supported for bool tensors; cast with .int() or .float() first"))
    return d


# ---------------------------------------------------------------------------
# arithmetic


def add(a, b, *, alpha=1):
    """a + alpha * b, broadcasting and promoting like torch.add."""
    if alpha != 1:
        b = mul(b, alpha)
    if result_type(a, b).is_bool:
        return logical_or(a, b)
    x, y = operands("add", a, b, dtype=_numeric("add", a, b))
    return _emit(Op.ADD, x, y)


def sub(a, b, *, alpha=1):
    """a - alpha * b."""
    if alpha != 1:
        b = mul(b, alpha)
    if result_type(a, b).is_bool:
        raise DTypeError(at_user_line("sub: subtraction of bool tensors is not supported; use logical_xor or ~"))
    x, y = operands("sub", a, b)
    return _emit(Op.SUB, x, y)


subtract = sub


def rsub(a, b, *, alpha=1):
    return sub(b, a, alpha=alpha)


def mul(a, b):
    if result_type(a, b).is_bool:
        return logical_and(a, b)
    x, y = operands("mul", a, b)
    return _emit(Op.MUL, x, y)


multiply = mul


def div(a, b, *, rounding_mode=None):
    """True division (ints give floats); rounding_mode 'trunc' or 'floor'."""
    if rounding_mode == "floor":
        return floor_divide(a, b)
    if rounding_mode == "trunc":
        d = _numeric("div", a, b)
        if d.is_float:
            return trunc(div(a, b))
        x, y = operands("div", a, b, dtype=d)
        return _emit(Op.DIV, x, y)
    if rounding_mode is not None:
        raise ValueError(
            f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found {rounding_mode!r}"
        )
    x, y = operands("div", a, b, dtype=_float_dtype(a, b))
    return _emit(Op.DIV, x, y)


true_divide = divide = div


def floor_divide(a, b):
    """Python's `//`: the quotient rounded toward minus infinity."""
    d = _numeric("floor_divide", a, b)
    x, y = operands("floor_divide", a, b, dtype=d)
    if d.is_float:
        return floor(_emit(Op.DIV, x, y))
    # Integer DIV truncates: step down where the remainder is nonzero and
    # the signs differ.
    q = _emit(Op.DIV, x, y)
    r = _emit(Op.SUB, x, _emit(Op.MUL, q, y))
    zero = expand_to(scalar(0, d), q.shape)
    adjust = logical_and(ne(r, zero), ne(lt(r, zero), lt(y, zero)))
    return _emit(Op.SUB, q, _emit(Op.CAST, adjust, dtype=d))


def remainder(a, b):
    """Python's `%`: the result has the sign of the divisor."""
    d = _numeric("remainder", a, b)
    x, y = operands("remainder", a, b, dtype=d)
    if d.is_float:
        return sub(x, mul(floor(div(x, y)), y))
    return _emit(Op.SUB, x, _emit(Op.MUL, floor_divide(x, y), y))


def fmod(a, b):
    """C's fmod: the result has the sign of the dividend."""
    d = _numeric("fmod", a, b)
    x, y = operands("fmod", a, b, dtype=d)
    if d.is_float:
        return sub(x, mul(trunc(div(x, y)), y))
    return _emit(Op.SUB, x, _emit(Op.MUL, _emit(Op.DIV, x, y), y))


def pow(a, b):
    """a ** b. Integer powers of integer tensors stay integers."""
    d = _numeric("pow", a, b)
    if _is_scalar(b) and isinstance(a, Tensor):
        if b == 2:
            return mul(a, a)
        if b == 1:
            return a.clone() if a.dtype is d else cast(a, d)
        if b == 0.5 and d.is_float:
            return sqrt(a)
    if d.is_float:
        x, y = operands("pow", a, b, dtype=d)
        return _emit(Op.POW, x, y)
    x, y = operands("pow", a, b, dtype=dtypes.float64)
    return cast(round(_emit(Op.POW, x, y)), d)


def float_power(a, b):
    x, y = operands("float_power", a, b, dtype=dtypes.float64)
    return _emit(Op.POW, x, y)


def maximum(a, b):
    x, y = operands("maximum", a, b)
    if x.dtype.is_bool:
        return logical_or(x, y)
    return _emit(Op.MAX, x, y)


def minimum(a, b):
    x, y = operands("minimum", a, b)
    if x.dtype.is_bool:
        return logical_and(x, y)
    return _emit(Op.MIN, x, y)


def fmax(a, b):
    """Elementwise maximum that ignores NaN: NaN only where both are NaN."""
    x, y = operands("fmax", a, b)
    if not x.dtype.is_float:
        return maximum(x, y)
    return where(isnan(x), y, where(isnan(y), x, maximum(x, y)))


def fmin(a, b):
    """Elementwise minimum that ignores NaN: NaN only where both are NaN."""
    x, y = operands("fmin", a, b)
    if not x.dtype.is_float:
        return minimum(x, y)
    return where(isnan(x), y, where(isnan(y), x, minimum(x, y)))


def lerp(start, end, weight):
    return add(start, mul(weight, sub(end, start)))


def addcmul(x, t1, t2, *, value=1):
    """x + value * t1 * t2."""
    return add(x, mul(mul(t1, t2), value))


def addcdiv(x, t1, t2, *, value=1):
    """x + value * t1 / t2."""
    return add(x, mul(div(t1, t2), value))


# ---------------------------------------------------------------------------
# comparisons and logic (results are bool)


def lt(a, b):
    x, y = operands("lt", a, b)
    return _emit(Op.CMPLT, x, y)


def gt(a, b):
    x, y = operands("gt", a, b)
    return _emit(Op.CMPLT, y, x)


def eq(a, b):
    x, y = operands("eq", a, b)
    return _emit(Op.CMPEQ, x, y)


def ne(a, b):
    return logical_not(eq(a, b))


def le(a, b):
    # lt-or-eq rather than not(gt): NaN compares false either way.
    x, y = operands("le", a, b)
    return _emit(Op.OR, _emit(Op.CMPLT, x, y), _emit(Op.CMPEQ, x, y))


def ge(a, b):
    return le(b, a)


greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def equal(a, b) -> bool:
    """True when both tensors have the same shape and elements."""
    return tuple(a.shape) == tuple(b.shape) and bool(eq(a, b).all())


def _as_bool(x):
    if isinstance(x, Tensor):
        return x if x.dtype.is_bool else ne(x, 0)
    return bool(x)


def logical_and(a, b):
    x, y = operands("logical_and", _as_bool(a), _as_bool(b), dtype=dtypes.bool_)
    return _emit(Op.AND, x, y)


def logical_or(a, b):
    x, y = operands("logical_or", _as_bool(a), _as_bool(b), dtype=dtypes.bool_)
    return _emit(Op.OR, x, y)


def logical_not(a):
    return _emit(Op.NOT, _as_bool(a))


def logical_xor(a, b):
    return ne(_as_bool(a), _as_bool(b))


def _bitwise(opname: str, a, b, fn):
    if result_type(a, b).is_bool:
        return fn(a, b)
    raise DTypeError(
        at_user_line(f"{opname}: graphc supports bitwise ops on bool tensors only, got {result_type(a, b)!r}")
    )


def bitwise_and(a, b):
    return _bitwise("bitwise_and (&)", a, b, logical_and)


def bitwise_or(a, b):
    return _bitwise("bitwise_or (|)", a, b, logical_or)


def bitwise_xor(a, b):
    return _bitwise("bitwise_xor (^)", a, b, logical_xor)


def bitwise_not(a):
    if not a.dtype.is_bool:
        raise DTypeError(at_user_line(f"bitwise_not (~): graphc supports bool tensors only, got {a.dtype!r}"))
    return _emit(Op.NOT, a)


def _condition(condition) -> Tensor:
    """`where`'s condition: a bool tensor (uint8 is accepted, as torch still
    does); any other dtype is an error rather than a silent `!= 0`."""
    if not isinstance(condition, Tensor):
        raise TypeError(
            at_user_line(f"where(): argument 'condition' (position 1) must be Tensor, not {type(condition).__name__}")
        )
    if condition.dtype is dtypes.uint8:
        return ne(condition, 0)
    if not condition.dtype.is_bool:
        raise RuntimeError(
            at_user_line(
                f"where expected condition to be a boolean tensor, but got a tensor with dtype {condition.dtype.name}; "
                "compare it (cond != 0) or call .bool() first"
            )
        )
    return condition


def where(condition, input=None, other=None):
    """Elementwise choice: `input` where `condition` holds, else `other`."""
    if input is None and other is None:
        # The method: graphc/_indexing.py builds on this module.
        return condition.nonzero(as_tuple=True)
    cond = _condition(condition)
    x, y = operands("where", input, other)
    shape = broadcast_shapes(tuple(cond.shape), tuple(x.shape), opname="where")
    return _emit(Op.WHERE, expand_to(cond, shape), expand_to(x, shape), expand_to(y, shape))


def clamp(x, min=None, max=None):
    """Limit `x` to [min, max] (either may be None, a number or a tensor)."""
    if min is None and max is None:
        raise RuntimeError(at_user_line("clamp: At least one of 'min' or 'max' must not be None"))
    out = x
    if min is not None:
        out = _clamp_side(out, min, below=True)
    if max is not None:
        out = _clamp_side(out, max, below=False)
    return nan_without_gradient(x, out)


def nan_without_gradient(x, out):
    """`out`, except NaN (with no gradient) where `x` is NaN: torch's clamp
    and hardtanh pass NaN through but give it a zero gradient."""
    if not x.dtype.is_float or x.dtype is not out.dtype:
        return out
    # A NaN constant, not x.detach(): a traced graph has no stop-gradient.
    return where(isnan(x), math.nan, out)


def _clamp_side(x, bound, below: bool):
    """max(x, bound) if `below` else min(x, bound), as a select so that x
    keeps the whole gradient where it equals the bound (PyTorch's clamp
    passes it wherever min <= x <= max; maximum/minimum would split it).
    A Python bound keeps x's dtype unless it is a float bound on an int
    tensor. A NaN bound gives NaN, with no gradient, as in torch."""
    a, b = operands("clamp", x, bound)
    if not isinstance(bound, Tensor) and bound != bound:
        return _emit(Op.MAX if below else Op.MIN, a, b)  # MAX/MIN propagate the NaN
    outside = _emit(Op.CMPLT, a, b) if below else _emit(Op.CMPLT, b, a)
    out = where(outside, b, a)
    if isinstance(bound, Tensor) and b.dtype.is_float:
        out = where(isnan(b), math.nan, out)
    return out


clip = clamp


# ---------------------------------------------------------------------------
# unary math


def _float_input(x: Tensor) -> Tensor:
    return x if x.dtype.is_float else cast(x, _t.get_default_dtype())


def _unary(op: Op):
    def fn(x):
        return _emit(op, _float_input(x))

    fn.__name__ = op.value
    fn.__doc__ = f"Elementwise {op.value} (integer inputs are converted to the default float dtype)."
    return tensor_params("input")(fn)


exp = _unary(Op.EXP)
log = _unary(Op.LOG)
sqrt = _unary(Op.SQRT)
sin = _unary(Op.SIN)
cos = _unary(Op.COS)
tanh = _unary(Op.TANH)
erf = _unary(Op.ERF)
erf.__doc__ = "The error function, as accurate as libm's erf in the input's dtype."


@tensor_params("input")
def neg(x):
    if x.dtype.is_bool:
        raise DTypeError(
            at_user_line("neg: negation, the `-` operator, on a bool tensor is not supported; use ~ instead")
        )
    return _emit(Op.NEG, x)


negative = neg


@tensor_params("input")
def reciprocal(x):
    return _emit(Op.RECIP, _float_input(x))


@tensor_params("input")
def rsqrt(x):
    return reciprocal(sqrt(x))


@tensor_params("input")
def square(x):
    return mul(x, x)


@tensor_params("input")
def abs(x):
    """|x|; the gradient at 0 is 0 (sign(0)), as in PyTorch."""
    if x.dtype.is_bool:
        return x
    if not x.dtype.is_float:
        return where(lt(x, 0), neg(x), x)
    # The inner select gives +0.0 (for -0.0 too) and routes no gradient at
    # 0; NaN fails both comparisons and stays NaN.
    return where(lt(x, 0), neg(x), where(eq(x, 0), 0.0, x))


absolute = abs


@tensor_params("input")
def sign(x):
    if x.dtype.is_bool:
        return x
    return sub(cast(gt(x, 0), x.dtype), cast(lt(x, 0), x.dtype))


@tensor_params("input")
def sgn(x):
    return sign(x)


@tensor_params("input")
def floor(x):
    return x if not x.dtype.is_float else _emit(Op.FLOOR, x)


@tensor_params("input")
def ceil(x):
    return x if not x.dtype.is_float else neg(floor(neg(x)))


@tensor_params("input")
def trunc(x):
    return x if not x.dtype.is_float else where(lt(x, 0), ceil(x), floor(x))


fix = trunc


@tensor_params("input")
def frac(x):
    return sub(x, trunc(x))


@tensor_params("input")
def round(x, *, decimals: int = 0):
    """Round half to even, as torch.round."""
    if not x.dtype.is_float:
        return x
    if decimals:
        scale = 10.0**decimals
        return div(round(mul(x, scale)), scale)
    f = floor(x)
    diff = sub(x, f)
    half_even = eq(remainder(f, 2), 0)
    up = logical_or(gt(diff, 0.5), logical_and(eq(diff, 0.5), logical_not(half_even)))
    return where(up, add(f, 1), f)


@tensor_params("input")
def log2(x):
    return div(log(x), math.log(2.0))


@tensor_params("input")
def log10(x):
    return div(log(x), math.log(10.0))


@tensor_params("input")
def log1p(x):
    return log(add(_float_input(x), 1))


@tensor_params("input")
def expm1(x):
    return sub(exp(x), 1)


@tensor_params("input")
def exp2(x):
    return pow(2.0, _float_input(x))


@tensor_params("input")
def tan(x):
    return div(sin(x), cos(x))


@tensor_params("input")
def sigmoid(x):
    """1 / (1 + exp(-x))."""
    x = _float_input(x)
    return reciprocal(add(exp(neg(x)), 1))


@tensor_params("input")
def logsigmoid(x):
    # -softplus(-x), written to stay finite for large |x|.
    x = _float_input(x)
    return sub(minimum(x, 0), log1p(exp(neg(abs(x)))))


@tensor_params("input")
def relu(x):
    """max(x, 0); NaN stays NaN and the gradient at 0 is 0, as in torch."""
    if x.dtype.is_bool:
        return x
    # le(x, 0) is false for NaN, so NaN takes the `x` branch.
    return where(le(x, 0), 0, x)


@tensor_params("input")
def isnan(x):
    return ne(x, x)


@tensor_params("input")
def isinf(x):
    if not x.dtype.is_float:
        return ne(x, x)
    return eq(abs(x), math.inf)


@tensor_params("input")
def isfinite(x):
    return logical_not(logical_or(isnan(x), isinf(x)))


@tensor_params("input")
def nan_to_num(x, nan: float = 0.0, posinf=None, neginf=None):
    big = float(np.finfo(x.dtype.np).max) if x.dtype.is_float else 0
    out = where(isnan(x), nan, x)
    out = where(eq(out, math.inf), big if posinf is None else posinf, out)
    return where(eq(out, -math.inf), -big if neginf is None else neginf, out)


@tensor_params("input")
def sinh(x):
    """(exp(x) - exp(-x)) / 2; for |x| < 1, 2t / (1 - t**2) with t = tanh(x / 2),
    which keeps full relative precision near 0 where the difference cancels."""
    x = _float_input(x)
    t = tanh(mul(x, 0.5))
    small = div(mul(t, 2.0), sub(1.0, mul(t, t)))
    return where(lt(abs(x), 1.0), small, mul(sub(exp(x), exp(neg(x))), 0.5))


@tensor_params("input")
def cosh(x):
    """(exp(x) + exp(-x)) / 2."""
    x = _float_input(x)
    return mul(add(exp(x), exp(neg(x))), 0.5)


@tensor_params("input", "other")
def logaddexp(a, b):
    """log(exp(a) + exp(b)), computed without overflow."""
    x, y = operands("logaddexp", a, b, dtype=_float_dtype(a, b))
    m = maximum(x, y)
    out = add(m, log1p(exp(neg(abs(sub(x, y))))))
    # Equal infinities: inf - inf would be NaN; the answer is the infinity.
    return where(logical_and(isinf(x), eq(x, y)), x, out)


@tensor_params("input", "other")
def hypot(a, b):
    """sqrt(a**2 + b**2), elementwise, scaled by max(|a|, |b|) so that the
    squares neither overflow nor underflow; inf if either is infinite."""
    x, y = operands("hypot", a, b, dtype=_float_dtype(a, b))
    m = maximum(abs(x), abs(y))
    s = where(logical_or(eq(m, 0), isinf(m)), 1.0, m)
    u, v = div(x, s), div(y, s)
    out = mul(s, sqrt(add(mul(u, u), mul(v, v))))
    return where(logical_or(isinf(x), isinf(y)), math.inf, out)


@tensor_params("input", "values")
def heaviside(x, values):
    """0 where x < 0, 1 where x > 0, `values` where x == 0."""
    if not isinstance(values, Tensor):
        raise TypeError(
            at_user_line(f"heaviside(): argument 'values' (position 2) must be Tensor, not {type(values).__name__}")
        )
    if x.dtype is not values.dtype:
        raise RuntimeError(
            at_user_line(
                "heaviside is not yet implemented for tensors with different dtypes: "
                f"got {x.dtype!r} and {values.dtype!r}"
            )
        )
    return where(eq(x, 0), values, cast(gt(x, 0), x.dtype))


@tensor_params("input", "other")
def isclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """|a - b| <= atol + rtol * |b|, elementwise (equal infinities are close)."""
    if a.dtype is not b.dtype:
        raise RuntimeError(at_user_line(f"{torch_type_name(a.dtype)} did not match {torch_type_name(b.dtype)}"))
    if rtol < 0:
        raise RuntimeError(at_user_line(f"rtol must be greater than or equal to zero, but got {rtol}"))
    if atol < 0:
        raise RuntimeError(at_user_line(f"atol must be greater than or equal to zero, but got {atol}"))
    same = eq(a, b)
    if equal_nan and a.dtype.is_float:
        same = logical_or(same, logical_and(isnan(a), isnan(b)))
    if a.dtype.is_bool:
        return same
    x, y = operands("isclose", a, b, dtype=_float_dtype(a, b))
    near = le(abs(sub(x, y)), add(atol, mul(abs(y), rtol)))
    # inf - inf is NaN and compares false, so only equal infinities are close.
    return logical_or(same, logical_and(near, isfinite(sub(x, y))))


@tensor_params("input", "other")
def allclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """True when every element of `a` is close to `b` (see isclose)."""
    return bool(isclose(a, b, rtol, atol, equal_nan).all())
