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
