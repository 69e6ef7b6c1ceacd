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
from graphc._tensor_core import Tensor, get_default_dtype
from graphc.errors import DTypeError, at_user_line
from graphc.ir import dtypes
from graphc.ir.ops import Op


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


# ---------------------------------------------------------------------------
# the gamma function's logarithm and derivative

# Arguments below this are moved up by the recurrence before the asymptotic
# series, whose first omitted term is then under 1e-15 of the result.
_GAMMA_SHIFT = 8
# Stirling's series for lgamma: the coefficients of z^-1, z^-3, ... z^-13.
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156)
# The asymptotic series of digamma: the coefficients of z^-2, z^-4, ... z^-14.
_DIGAMMA = (-1 / 12, 1 / 120, -1 / 252, 1 / 240, -1 / 132, 691 / 32760, -1 / 12)


def _odd_series(z: Tensor, coefficients, first_power: int) -> Tensor:
    """sum(c_k z^-(first_power + 2k)), by Horner's rule in 1 / z^2."""
    w = ew.reciprocal(ew.mul(z, z))
    total = ew.mul(ew.reciprocal(z), 0.0) if first_power == 1 else ew.mul(w, 0.0)
    for c in reversed(coefficients):
        total = ew.mul(ew.add(total, c), w)
    # Horner leaves every term one power of w too high: undo it, then
    # scale to the first power.
    total = ew.div(total, w)
    return ew.mul(total, ew.reciprocal(z)) if first_power == 1 else ew.mul(total, w)


def _shifted(x: Tensor) -> tuple:
    """z = x + 8 where x < 8 (else x), for the recurrence."""
    small = ew.lt(x, float(_GAMMA_SHIFT))
    return small, ew.where(small, ew.add(x, float(_GAMMA_SHIFT)), x)


def _reflection_sin(x: Tensor) -> Tensor:
    """|sin(pi x)| computed from x - round(x), exact however large x is."""
    r = ew.sub(x, ew.round(x))
    return ew.abs(ew.sin(ew.mul(r, math.pi)))


def _lgamma_right(x: Tensor) -> Tensor:
    """lgamma for x >= 0.5: Stirling's series at z >= 8, with the
    recurrence lgamma(x) = lgamma(x + 8) - log(x (x + 1) ... (x + 7))."""
    small, z = _shifted(x)
    product = x
    for k in range(1, _GAMMA_SHIFT):
        product = ew.mul(product, ew.add(x, float(k)))
    stirling = ew.add(
        ew.sub(ew.mul(ew.sub(z, 0.5), ew.log(z)), z),
        ew.add(_odd_series(z, _STIRLING, 1), 0.5 * math.log(2 * math.pi)),
    )
    correction = ew.log(_guarded(ew.logical_not(small), product, 1.0))
    return ew.where(small, ew.sub(stirling, correction), stirling)


@tensor_params("input")
def lgamma(x):
    """log|Gamma(x)|: Stirling's series with the recurrence, and the
    reflection formula log(pi / |sin(pi x)|) - lgamma(1 - x) below 0.5;
    +inf at the poles 0, -1, -2, ... float32 and float16 are computed in
    float64."""
    x = _float(x)
    wide = ew.cast(x, dtypes.float64)
    left = ew.lt(wide, 0.5)
    finite = ew.logical_not(ew.isinf(wide))
    right_arg = _guarded(ew.logical_or(left, ew.logical_not(finite)), wide, 1.0)
    mirror_arg = _guarded(ew.logical_not(left), ew.sub(1.0, wide), 1.0)
    s = _reflection_sin(_guarded(ew.logical_not(left), wide, 0.5))
    pole = ew.eq(s, 0.0)
    reflected = ew.sub(ew.sub(math.log(math.pi), ew.log(_guarded(pole, s, 1.0))), _lgamma_right(mirror_arg))
    out = ew.where(left, ew.where(pole, math.inf, reflected), _lgamma_right(right_arg))
    out = ew.where(ew.isinf(wide), math.inf, out)
    return ew.cast(ew.where(ew.isnan(wide), wide, out), x.dtype)


def _digamma_right(x: Tensor) -> Tensor:
    """digamma for x >= 0.5: the asymptotic series at z >= 8, with the
    recurrence digamma(x) = digamma(x + 8) - sum(1 / (x + k), k < 8)."""
    small, z = _shifted(x)
    series = ew.add(ew.sub(ew.log(z), ew.div(0.5, z)), _odd_series(z, _DIGAMMA, 2))
    steps = ew.reciprocal(x)
    for k in range(1, _GAMMA_SHIFT):
        steps = ew.add(steps, ew.reciprocal(ew.add(x, float(k))))
    return ew.where(small, ew.sub(series, steps), series)


@tensor_params("input")
def digamma(x):
    """The derivative of lgamma: the asymptotic series with the recurrence,
    and digamma(1 - x) - pi / tan(pi x) below 0.5. -inf at +0 (+inf at
    -0) and NaN at the negative integers, as in torch. float32 and float16
    are computed in float64."""
    x = _float(x)
    wide = ew.cast(x, dtypes.float64)
    left = ew.lt(wide, 0.5)
    right_arg = _guarded(ew.logical_or(left, ew.isinf(wide)), wide, 1.0)
    xl = _guarded(ew.logical_not(left), wide, 0.25)
    r = ew.sub(xl, ew.round(xl))
    integer = ew.eq(r, 0.0)
    tangent = ew.div(ew.sin(ew.mul(r, math.pi)), ew.cos(ew.mul(r, math.pi)))
    reflected = ew.sub(_digamma_right(ew.sub(1.0, xl)), ew.div(math.pi, _guarded(integer, tangent, 1.0)))
    at_zero = ew.where(signbit(wide), math.inf, -math.inf)
    left_value = ew.where(integer, ew.where(ew.eq(wide, 0.0), at_zero, math.nan), reflected)
    out = ew.where(left, left_value, _digamma_right(right_arg))
    out = ew.where(ew.eq(wide, math.inf), math.inf, ew.where(ew.eq(wide, -math.inf), math.nan, out))
    return ew.cast(ew.where(ew.isnan(wide), wide, out), x.dtype)


psi = digamma


@tensor_params("input")
def mvlgamma(x, p: int):
    """The multivariate log-gamma function of dimension `p`:
    p (p - 1) / 4 log(pi) + sum(lgamma(x - j / 2), j < p)."""
    if p < 1:
        raise RuntimeError(at_user_line(f"p has to be greater than or equal to 1, got {p}"))
    if not x.dtype.is_float:
        raise RuntimeError(at_user_line("mvlgamma is not implemented for integer inputs; cast to a float dtype"))
    total = lgamma(x)
    for j in range(1, p):
        total = ew.add(total, lgamma(ew.sub(x, j / 2)))
    return ew.add(total, p * (p - 1) / 4 * math.log(math.pi))
