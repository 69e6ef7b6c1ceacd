"""More elementwise math: atan2 (the ATAN2 primitive) and, composed from
the IR's elementwise primitives, the other inverse trigonometric and
hyperbolic functions (atan, asin, acos,
asinh, acosh, atanh and their `arc*` aliases), erfc, logit, sinc, xlogy,
copysign, signbit, ldexp, logaddexp2, deg2rad/rad2deg, angle and the
predicates of real tensors (isneginf, isposinf, isreal, ...).

Every function works eagerly, under tracing and under autodiff, because it
is built only from ops that already do. The accuracy notes on each say how
the composition keeps float32 and float64 results within a few ulp of libm.
"""

from __future__ import annotations

import math

from graphc import _elementwise as ew
from graphc._checks import tensor_params
from graphc.errors import DTypeError, at_user_line
from graphc.ir import dtypes
from graphc.ir.ops import Op
from graphc.tensor import Tensor, get_default_dtype


def _float(x: Tensor) -> Tensor:
    """`x` in a float dtype (integers and bool go to the default one)."""
    return x if x.dtype.is_float else ew.cast(x, get_default_dtype())


def _float_pair(opname: str, a, b) -> tuple:
    d = ew.result_type(a, b)
    d = d if d.is_float else get_default_dtype()
    return tuple(ew.operands(opname, a, b, dtype=d))


def _guarded(cond: Tensor, x: Tensor, fill) -> Tensor:
    """`x`, with `fill` where `cond` holds: feeds a function only inputs it is
    defined at, so the branch a later `where` discards cannot put inf or NaN
    into the gradient (0 * inf)."""
    return ew.where(cond, fill, x)


def log1p_precise(u: Tensor) -> Tensor:
    """log(1 + u) to full relative precision for small u: log(w) * u / (w - 1)
    with w = 1 + u cancels the rounding of w (Goldberg's method)."""
    w = ew.add(u, 1.0)
    exact = ew.logical_or(ew.eq(w, 1.0), ew.isinf(w))
    d = _guarded(exact, ew.sub(w, 1.0), 1.0)
    corrected = ew.div(ew.mul(ew.log(w), u), d)
    return ew.where(ew.eq(w, 1.0), u, ew.where(ew.isinf(w), ew.log(w), corrected))


# ---------------------------------------------------------------------------
# inverse trigonometric functions


@tensor_params("input", "other")
def atan2(input, other):
    """The angle of the point (other, input) in [-pi, pi], with C's rules
    for signed zeros and infinities (the ATAN2 primitive: libm's atan2)."""
    y, x = _float_pair("atan2", input, other)
    return ew._emit(Op.ATAN2, y, x)


@tensor_params("input")
def atan(x):
    """The arctangent, in (-pi/2, pi/2): atan2(x, 1)."""
    x = _float(x)
    return ew._emit(Op.ATAN2, x, ew.expand_to(ew.scalar(1.0, x.dtype), tuple(x.shape)))


@tensor_params("input")
def asin(x):
    """The arcsine: atan2(x, sqrt((1 - x)(1 + x))); NaN outside [-1, 1]."""
    x = _float(x)
    return atan2(x, ew.sqrt(ew.mul(ew.sub(1.0, x), ew.add(x, 1.0))))


@tensor_params("input")
def acos(x):
    """The arccosine: atan2(sqrt((1 - x)(1 + x)), x); NaN outside [-1, 1]."""
    x = _float(x)
    return atan2(ew.sqrt(ew.mul(ew.sub(1.0, x), ew.add(x, 1.0))), x)


# ---------------------------------------------------------------------------
# inverse hyperbolic functions

# Past this magnitude x^2 + 1 == x^2 in float64 and asinh(x) = log(2|x|).
_HUGE = 2.0**28


@tensor_params("input")
def asinh(x):
    """asinh(x) = sign(x) log1p(|x| + x^2 / (1 + sqrt(1 + x^2))), which keeps
    full precision near 0; log(2|x|) for huge |x|, where x^2 would overflow."""
    x = _float(x)
    a = ew.abs(x)
    huge = ew.gt(a, _HUGE)
    m = _guarded(huge, a, 1.0)
    s = ew.mul(m, m)
    small = log1p_precise(ew.add(m, ew.div(s, ew.add(ew.sqrt(ew.add(s, 1.0)), 1.0))))
    large = ew.add(ew.log(_guarded(ew.logical_not(huge), a, 1.0)), math.log(2.0))
    # sign(x) * f(|x|) would lose the gradient at 0 (abs' is 0 there): scale
    # by x / |x| through a select instead.
    mag = ew.where(huge, large, small)
    return ew.where(ew.lt(x, 0.0), ew.neg(mag), ew.where(ew.eq(x, 0.0), x, mag))


@tensor_params("input")
def acosh(x):
    """acosh(x) = log1p(t + sqrt(t (t + 2))) with t = x - 1, exact near 1;
    log(2x) for huge x. NaN below 1."""
    x = _float(x)
    huge = ew.gt(x, _HUGE)
    t = ew.sub(_guarded(huge, x, 2.0), 1.0)
    small = log1p_precise(ew.add(t, ew.sqrt(ew.mul(t, ew.add(t, 2.0)))))
    large = ew.add(ew.log(_guarded(ew.logical_not(huge), x, 1.0)), math.log(2.0))
    return ew.where(huge, large, small)


@tensor_params("input")
def atanh(x):
    """atanh(x) = log1p(2x / (1 - x)) / 2: +-inf at +-1, NaN beyond.
    float32 and float16 are computed in float64 (the quotient's rounding
    would cost them tens of ulp)."""
    x = _float(x)
    wide = ew.cast(x, dtypes.float64)
    out = ew.mul(log1p_precise(ew.div(ew.mul(wide, 2.0), ew.sub(1.0, wide))), 0.5)
    return ew.cast(out, x.dtype)


arctan, arctan2, arcsin, arccos = atan, atan2, asin, acos
arcsinh, arccosh, arctanh = asinh, acosh, atanh


# ---------------------------------------------------------------------------
# error function and friends

# Terms of the continued fraction for erfc at x >= 2: 50 give float64 accuracy.
_ERFC_TERMS = 50


@tensor_params("input")
def erfc(x):
    """1 - erf(x) without the cancellation: 1 - erf(x) below 2 (erfc(2) is
    ~0.005, so at most ~8 bits are lost of float64's 53), Laplace's
    continued fraction exp(-x^2) / sqrt(pi) / (x + 1/2 / (x + 1 / (x + ...)))
    from 2 on. float32 and float16 are computed in float64."""
    x = _float(x)
    wide = ew.cast(x, dtypes.float64)
    tail = ew.ge(wide, 2.0)
    z = _guarded(ew.logical_not(tail), wide, 2.0)
    frac = ew.expand_to(ew.scalar(0.0, z.dtype), tuple(z.shape))
    for k in range(_ERFC_TERMS, 0, -1):
        frac = ew.div(k / 2.0, ew.add(z, frac))
    cf = ew.div(ew.exp(ew.neg(ew.mul(z, z))), ew.mul(ew.add(z, frac), math.sqrt(math.pi)))
    out = ew.where(tail, cf, ew.sub(1.0, ew.erf(wide)))
    return ew.cast(out, x.dtype)


@tensor_params("input")
def logit(x, eps=None):
    """log(x / (1 - x)); with `eps`, x is first clamped to [eps, 1 - eps]."""
    x = _float(x)
    if eps is not None:
        x = ew.clamp(x, eps, 1.0 - eps)
    return ew.log(ew.div(x, ew.sub(1.0, x)))


@tensor_params("input")
def sinc(x):
    """sin(pi x) / (pi x), and 1 at 0 (with gradient 0 there)."""
    x = _float(x)
    zero = ew.eq(x, 0.0)
    px = ew.mul(_guarded(zero, x, 1.0), math.pi)
    return ew.where(zero, 1.0, ew.div(ew.sin(px), px))


def xlogy(input, other):
    """input * log(other), and 0 where input is 0 (unless other is NaN).
    The gradient for input is log(other), as in torch, except where input
    is 0 and log(other) is not finite."""
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError(at_user_line("xlogy(): expected at least one Tensor argument"))
    x, y = _float_pair("xlogy", input, other)
    # 0 * log(0) and 0 * log(inf) would be NaN: use 0 for the log there.
    undefined = ew.logical_and(ew.eq(x, 0.0), ew.logical_or(ew.le(y, 0.0), ew.isinf(y)))
    log_y = ew.log(_guarded(undefined, y, 1.0))
    return ew.mul(x, ew.where(undefined, 0.0, log_y))


@tensor_params("input")
def positive(x):
    """`x` itself (unary `+`); an error for bool tensors, as in torch."""
    if x.dtype.is_bool:
        raise DTypeError(
            at_user_line(
                "The `+` operator, on a bool tensor is not supported. If you are trying to invert a mask, "
                "use the `~` or `logical_not()` operator instead."
            )
        )
    return x


# ---------------------------------------------------------------------------
# signs, exponents, angles


@tensor_params("input")
def signbit(x):
    """True where the sign bit is set: negative numbers and -0.0."""
    if x.dtype.is_bool:
        return ew.ne(x, x)
    if not x.dtype.is_float:
        return ew.lt(x, 0)
    # -0.0 is the zero whose reciprocal is -inf.
    negative_zero = ew.logical_and(ew.eq(x, 0.0), ew.lt(ew.reciprocal(x), 0.0))
    return ew.logical_or(ew.lt(x, 0.0), negative_zero)


@tensor_params("input")
def copysign(input, other):
    """|input| with the sign of `other` (the sign bit: -0.0 counts as negative)."""
    x, y = _float_pair("copysign", input, other)
    magnitude = ew.abs(x)
    return ew.where(signbit(y), ew.neg(magnitude), magnitude)


@tensor_params("input", "other")
def ldexp(input, other):
    """input * 2 ** other."""
    x, e = _float_pair("ldexp", input, other)
    return ew.mul(x, ew.pow(2.0, e))


@tensor_params("input", "other")
def logaddexp2(input, other):
    """log2(2 ** input + 2 ** other), computed without overflow."""
    x, y = _float_pair("logaddexp2", input, other)
    m = ew.maximum(x, y)
    out = ew.add(m, ew.div(log1p_precise(ew.pow(2.0, ew.neg(ew.abs(ew.sub(x, y))))), math.log(2.0)))
    return ew.where(ew.logical_and(ew.isinf(x), ew.eq(x, y)), x, out)


@tensor_params("input")
def deg2rad(x):
    """Degrees to radians."""
    _no_bool("deg2rad", x)
    return ew.mul(_float(x), math.pi / 180.0)


@tensor_params("input")
def rad2deg(x):
    """Radians to degrees."""
    _no_bool("rad2deg", x)
    return ew.mul(_float(x), 180.0 / math.pi)


def _no_bool(opname: str, x: Tensor) -> None:
    if x.dtype.is_bool:
        raise RuntimeError(at_user_line(f"{opname} is not supported for bool tensors."))


@tensor_params("input")
def angle(x):
    """The argument of a real number: 0 for x >= 0, pi for x < 0, NaN for NaN."""
    x = _float(x)
    return ew.where(ew.isnan(x), x, ew.where(ew.lt(x, 0.0), ew.scalar(math.pi, x.dtype), 0.0))


# ---------------------------------------------------------------------------
# predicates and identities of real tensors


@tensor_params("input")
def isposinf(x):
    """True where x is +inf."""
    return ew.eq(x, math.inf) if x.dtype.is_float else ew.ne(x, x)


@tensor_params("input")
def isneginf(x):
    """True where x is -inf."""
    return ew.eq(x, -math.inf) if x.dtype.is_float else ew.ne(x, x)


@tensor_params("input")
def isreal(x):
    """True everywhere: graphc's tensors are real."""
    return ew.eq(x, x) if not x.dtype.is_float else ew.logical_or(ew.eq(x, x), ew.isnan(x))


@tensor_params("input")
def real(x):
    """The real part of a real tensor: the tensor itself."""
    return x


@tensor_params("input")
def imag(x):
    """Real tensors have no imaginary part: torch's error."""
    raise RuntimeError(at_user_line("imag is not implemented for tensors with non-complex dtypes."))


@tensor_params("input")
def conj(x):
    """The complex conjugate of a real tensor: the tensor itself."""
    return x


@tensor_params("input")
def conj_physical(x):
    """The complex conjugate, materialized: a copy of a real tensor."""
    return x.clone()


resolve_conj = resolve_neg = conj


@tensor_params("input")
def is_complex(x) -> bool:
    """False: graphc has no complex dtypes."""
    return False


@tensor_params("input")
def is_conj(x) -> bool:
    """False: a real tensor is never a lazily conjugated view."""
    return False


is_neg = is_conj


@tensor_params("input")
def is_nonzero(x) -> bool:
    """The truth of a one-element tensor (torch's errors otherwise)."""
    n = x.numel()
    if n == 0:
        raise RuntimeError(at_user_line("Boolean value of Tensor with no values is ambiguous"))
    if n > 1:
        raise RuntimeError(at_user_line("Boolean value of Tensor with more than one value is ambiguous"))
    return bool(x.item())


# ---------------------------------------------------------------------------
# bit shifts of integer tensors


def _shift_operands(opname: str, input, other) -> tuple:
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError(at_user_line(f"{opname}(): expected at least one Tensor argument"))
    d = ew.result_type(input, other)
    if d.is_float or d.is_bool:
        raise NotImplementedError(at_user_line(f"\"{opname}_cpu\" not implemented for '{ew.torch_type_name(d)}'"))
    return d, *ew.operands(opname, input, other, dtype=d)


def _power_of_two(e: Tensor, d) -> Tensor:
    # 2 ** e for 0 <= e < 32, exact in float64, then as the integer dtype.
    return ew.cast(ew.round(ew.pow(2.0, ew.cast(e, dtypes.float64))), d)


def bitwise_left_shift(input, other):
    """input << other for integer tensors: multiplication by 2 ** other,
    wrapping like the hardware; 0 once the shift reaches the bit width."""
    d, x, s = _shift_operands("lshift", input, other)
    bits = d.itemsize * 8
    inside = ew.logical_and(ew.ge(s, 0), ew.lt(s, bits))
    s = ew.where(inside, s, 0)
    half = ew.floor_divide(s, 2)
    # Two factors of at most 2**32 each: 2**63 itself does not fit an int64.
    out = ew.mul(ew.mul(x, _power_of_two(half, d)), _power_of_two(ew.sub(s, half), d))
    return ew.cast(ew.where(inside, out, 0), d)


def bitwise_right_shift(input, other):
    """input >> other for integer tensors: arithmetic (floor) division by
    2 ** other; 0, or -1 for negative input, once the shift reaches the
    bit width."""
    d, x, s = _shift_operands("rshift", input, other)
    bits = d.itemsize * 8
    inside = ew.logical_and(ew.ge(s, 0), ew.lt(s, bits))
    s = ew.where(inside, s, 0)
    half = ew.floor_divide(s, 2)
    out = ew.floor_divide(ew.floor_divide(x, _power_of_two(half, d)), _power_of_two(ew.sub(s, half), d))
    return ew.cast(ew.where(inside, out, ew.where(ew.lt(x, 0), -1, 0)), d)
