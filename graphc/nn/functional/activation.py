"""Activation functions and softmax, decomposed into primitive Tensor ops.

Each function is written so that both its value and its gradient are finite
wherever PyTorch's are: branches that could overflow are clamped *before* the
exponential, because `where` routes a zero cotangent into the unused branch
and 0 * inf would still give NaN.
"""

from __future__ import annotations

import math

import graphc
from graphc import _elementwise
from graphc._checks import tensor_params


def erf(x):
    """The error function (the ERF primitive: libm's erf)."""
    return graphc.erf(x)


def _zeros_like(x):
    return graphc.zeros_like(x)


@tensor_params("input")
def relu(input, inplace: bool = False):
    """max(x, 0); the gradient at 0 is 0 and NaN stays NaN, as in PyTorch."""
    return _maybe_inplace(input, graphc.relu(input), inplace)


def relu_(input):
    """In-place relu."""
    return relu(input, inplace=True)


def _maybe_inplace(input, out, inplace: bool):
    if not inplace:
        return out
    input.copy_(out)
    return input


def relu6(input, inplace: bool = False):
    return hardtanh(input, 0.0, 6.0, inplace)


@tensor_params("input")
def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
    """Clamp to [min_val, max_val]; gradient 1 strictly inside, 0 outside
    and at NaN (which stays NaN), as in torch."""
    low = graphc.full_like(input, min_val)
    high = graphc.full_like(input, max_val)
    out = graphc.where(input <= min_val, low, graphc.where(input >= max_val, high, input))
    out = _elementwise.nan_without_gradient(input, out)
    return _maybe_inplace(input, out, inplace)


@tensor_params("input")
def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    out = graphc.where(input > 0, input, input * negative_slope)
    return _maybe_inplace(input, out, inplace)


@tensor_params("input")
def elu(input, alpha: float = 1.0, inplace: bool = False):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    negative = graphc.where(input > 0, _zeros_like(input), input)
    out = graphc.where(input > 0, input, alpha * (graphc.exp(negative) - 1.0))
    return _maybe_inplace(input, out, inplace)


@tensor_params("input")
def gelu(input, approximate: str = "none"):
    """Gaussian error linear unit: exact (erf) or the 'tanh' approximation."""
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (input + 0.044715 * input * input * input)
        return 0.5 * input * (1.0 + graphc.tanh(inner))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * input * (1.0 + erf(input * (1.0 / math.sqrt(2.0))))


@tensor_params("input")
def sigmoid(input):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2 so that neither
    the value nor the gradient overflows."""
    return 0.5 + 0.5 * graphc.tanh(input * 0.5)


@tensor_params("input")
def tanh(input):
    return graphc.tanh(input)


@tensor_params("input")
def silu(input, inplace: bool = False):
    """x * sigmoid(x)."""
    return _maybe_inplace(input, input * sigmoid(input), inplace)


@tensor_params("input")
def softplus(input, beta: float = 1.0, threshold: float = 20.0):
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold."""
    scaled = input * beta
    linear = scaled > threshold
    safe = graphc.where(linear, _zeros_like(scaled), scaled)
    soft = graphc.log(1.0 + graphc.exp(safe)) / beta
    return graphc.where(linear, input, soft)


@tensor_params("input")
def logsigmoid(input):
    """log(sigmoid(x)) = min(x, 0) - log(1 + exp(-|x|)), stable for all x."""
    negative_abs = graphc.where(input < 0, input, -input)
    min_part = graphc.where(input < 0, input, _zeros_like(input))
    return min_part - graphc.log(1.0 + graphc.exp(negative_abs))


def _dim_or_default(input, dim):
    if dim is None:
        # PyTorch's legacy rule for softmax without dim.
        return 0 if input.dim() in (0, 1, 3) else 1
    return dim


@tensor_params("input")
def softmax(input, dim=None, dtype=None):
    """exp(x) / sum(exp(x)) along `dim`, shifted by the (detached) maximum."""
    dim = _dim_or_default(input, dim)
    if dtype is not None:
        input = input.to(dtype)
    shifted = input - input.amax(dim, keepdim=True).detach()
    e = graphc.exp(shifted)
    return e / e.sum(dim, keepdim=True)


@tensor_params("input")
def log_softmax(input, dim=None, dtype=None):
    """x - logsumexp(x) along `dim`, numerically stable."""
    dim = _dim_or_default(input, dim)
    if dtype is not None:
        input = input.to(dtype)
    shifted = input - input.amax(dim, keepdim=True).detach()
    return shifted - graphc.log(graphc.exp(shifted).sum(dim, keepdim=True))


@tensor_params("input")
def softmin(input, dim=None, dtype=None):
    return softmax(-input, dim, dtype)


# PyTorch's SELU constants (Klambauer et al., 2017).
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _scaled_elu(input, alpha: float, scale: float, input_scale: float):
    """scale * (x for x > 0, alpha * (exp(x * input_scale) - 1) otherwise),
    the form PyTorch's elu, celu and selu share. The test is `x <= 0` so that
    x = 0 takes the exponential side's gradient and NaN the linear side's,
    as in PyTorch's backward."""
    negative = input <= 0
    safe = graphc.where(negative, input, _zeros_like(input))
    out = graphc.where(negative, alpha * (graphc.exp(safe * input_scale) - 1.0), input)
    return out * scale if scale != 1.0 else out


@tensor_params("input")
def celu(input, alpha: float = 1.0, inplace: bool = False):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)); gradient 1 at 0."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    return _maybe_inplace(input, _scaled_elu(input, alpha, 1.0, 1.0 / alpha), inplace)


def celu_(input, alpha: float = 1.0):
    """In-place celu."""
    return celu(input, alpha, inplace=True)


@tensor_params("input")
def selu(input, inplace: bool = False):
    """scale * elu(x, alpha) with PyTorch's fixed alpha and scale; the
    gradient at 0 is scale * alpha."""
    return _maybe_inplace(input, _scaled_elu(input, _SELU_ALPHA, _SELU_SCALE, 1.0), inplace)


def selu_(input):
    """In-place selu."""
    return selu(input, inplace=True)


@tensor_params("input")
def mish(input, inplace: bool = False):
    """x * tanh(softplus(x)), with tanh(log(1 + e)) written as n / (n + 2),
    n = e * (e + 2), e = exp(x): accurate for very negative x, where
    log(1 + e) would round e away. Past 20 the factor is 1 to working
    precision, so exp sees at most 20 and nothing overflows."""
    e = graphc.exp(graphc.clamp(input, max=20.0))
    n = e * (e + 2.0)
    return _maybe_inplace(input, input * (n / (n + 2.0)), inplace)


@tensor_params("input")
def softsign(input):
    """x / (1 + |x|); the gradient at 0 is 1."""
    return input / (graphc.abs(input) + 1.0)


@tensor_params("input")
def tanhshrink(input):
    """x - tanh(x)."""
    return input - graphc.tanh(input)


@tensor_params("input")
def hardsigmoid(input, inplace: bool = False):
    """relu6(x + 3) / 6; gradient 1/6 strictly inside (-3, 3), 0 at the
    kinks, outside and at NaN (which stays NaN), as in PyTorch."""
    out = graphc.where(
        input <= -3.0,
        _zeros_like(input),
        graphc.where(input >= 3.0, graphc.ones_like(input), (input + 3.0) / 6.0),
    )
    out = _elementwise.nan_without_gradient(input, out)
    return _maybe_inplace(input, out, inplace)


@tensor_params("input")
def hardswish(input, inplace: bool = False):
    """x * relu6(x + 3) / 6; the gradient is 0 up to and at -3, x/3 + 1/2
    inside (-3, 3), and 1 from 3 on and at NaN, as in PyTorch."""
    # The quadratic piece sees 0 where it is not used, so that NaN's
    # gradient is not 0 * NaN.
    inner = graphc.where(input < 3.0, input, _zeros_like(input))
    out = graphc.where(input <= -3.0, _zeros_like(input), graphc.where(input < 3.0, inner * (inner + 3.0) / 6.0, input))
    return _maybe_inplace(input, out, inplace)


def _torch_dtype_name(dtype) -> str:
    """The name PyTorch's C++ messages give a dtype (Float, Double, Half)."""
    return {graphc.float16: "Half", graphc.float32: "Float", graphc.float64: "Double"}.get(dtype, dtype.name)


def _check_lambd(input, lambd: float) -> None:
    if lambd < 0:
        top = {graphc.float16: 65504.0, graphc.float64: 1.7976931348623157e308}.get(input.dtype, 3.4028234663852886e38)
        name = _torch_dtype_name(input.dtype)
        raise RuntimeError(f"lambda must be in range [0, {top:g}] for input dtype {name}, but found {lambd:g}")


def _shrink_band(input, lambd: float):
    """-lambd <= x <= lambd: where PyTorch's shrink backward gives 0 (NaN
    lies outside, so keeps its value and, as in PyTorch's scalar kernel,
    gets gradient 1)."""
    return graphc.logical_and(input >= -lambd, input <= lambd)


@tensor_params("input")
def softshrink(input, lambd: float = 0.5):
    """x - lambd above lambd, x + lambd below -lambd, 0 between; the
    gradient is 0 on [-lambd, lambd] and 1 elsewhere."""
    _check_lambd(input, lambd)
    moved = graphc.where(input > lambd, input - lambd, input + lambd)
    return graphc.where(_shrink_band(input, lambd), _zeros_like(input), moved)


@tensor_params("input")
def hardshrink(input, lambd: float = 0.5):
    """x where |x| > lambd, else 0; the gradient is 0 on [-lambd, lambd]
    and 1 elsewhere."""
    return graphc.where(_shrink_band(input, lambd), _zeros_like(input), input)


@tensor_params("input")
def threshold(input, threshold: float, value: float, inplace: bool = False):
    """x where x > threshold, else `value`; the gradient is 0 at the
    threshold and 1 at NaN (which stays NaN), as in PyTorch."""
    out = graphc.where(input <= threshold, graphc.full_like(input, value), input)
    return _maybe_inplace(input, out, inplace)


# threshold_'s parameter `threshold` (PyTorch's name) hides the function.
_threshold = threshold


def threshold_(input, threshold: float, value: float):
    """In-place threshold."""
    return _threshold(input, threshold, value, inplace=True)


@tensor_params("input")
def glu(input, dim: int = -1):
    """a * sigmoid(b), where a and b are the halves of `input` along `dim`."""
    if input.dim() == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    dim = _elementwise_dim(input, dim)
    size = input.shape[dim]
    if size % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim} is size {size}")
    a, b = graphc.chunk(input, 2, dim)
    return a * sigmoid(b)


def _elementwise_dim(input, dim: int) -> int:
    n = input.dim()
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


@tensor_params("input", "weight")
def prelu(input, weight):
    """x where x > 0, else weight * x, with one weight or one per channel
    (dim 1); at 0 the input's gradient is the weight and the weight's is 0."""
    if weight.dim() > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {weight.dim()}")
    if input.dtype is not weight.dtype:
        got = " and ".join(_torch_dtype_name(d) for d in (input.dtype, weight.dtype))
        raise RuntimeError(f"prelu: Type promoting not supported. Got {got}")
    count = weight.numel()
    if count != 1:
        channels = input.shape[1] if input.dim() >= 2 else 1
        if count != channels:
            raise RuntimeError(
                "Mismatch of parameter numbers and input channel size. "
                f"Found parameter numbers = {count} and channel size = {channels}."
            )
        weight = weight.reshape((count,) + (1,) * (input.dim() - 2))
    elif weight.dim() == 1 and input.dim() == 0:
        weight = weight.reshape(())
    return graphc.where(input > 0, input, weight * input)


def elu_(input, alpha: float = 1.0):
    """In-place elu."""
    return elu(input, alpha, inplace=True)


def hardtanh_(input, min_val: float = -1.0, max_val: float = 1.0):
    """In-place hardtanh."""
    return hardtanh(input, min_val, max_val, inplace=True)


def leaky_relu_(input, negative_slope: float = 0.01):
    """In-place leaky_relu."""
    return leaky_relu(input, negative_slope, inplace=True)


@tensor_params("input")
def rrelu(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, inplace: bool = False):
    """Leaky ReLU with a random slope per element, drawn from U(lower, upper)
    while training; the mean slope (lower + upper) / 2 otherwise."""
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    slope = graphc.rand_like(input) * (upper - lower) + lower
    out = graphc.where(input >= 0, input, input * slope)
    return _maybe_inplace(input, out, inplace)


def rrelu_(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False):
    """In-place rrelu."""
    return rrelu(input, lower, upper, training, inplace=True)


@tensor_params("logits")
def gumbel_softmax(logits, tau: float = 1.0, hard: bool = False, eps: float = 1e-10, dim: int = -1):
    """Samples from the Gumbel-softmax distribution: softmax((logits + g) /
    tau) with g = -log(Exponential(1)). With hard=True the result is one-hot
    in the forward pass and has the soft sample's gradient (straight-through)."""
    # Exponential(1) by inversion; 1 - U lies in (0, 1], so the log is finite.
    exponential = -graphc.log(1.0 - graphc.rand_like(logits))
    gumbels = -graphc.log(exponential)
    soft = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return soft
    index = soft.argmax(dim, keepdim=True)
    one_hot = graphc.zeros_like(logits).scatter(dim, index, 1.0)
    return one_hot - soft.detach() + soft
