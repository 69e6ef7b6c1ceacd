"""Parameter initialization, PyTorch's graphc.nn.init.

Every function fills its tensor in place under no_grad and returns it. The
random ones draw from `generator` when given, else from the global one.
"""

from __future__ import annotations

import math

import numpy as np

import graphc

_LINEAR_LIKE = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table)."""
    if nonlinearity in _LINEAR_LIKE or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    if tensor.dim() < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = 1
    for size in tensor.shape[2:]:
        receptive *= size
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    """Copy `values` (a Tensor of the same shape) into `tensor`, no grad."""
    with graphc.no_grad():
        tensor.copy_(values.to(tensor.dtype))
    return tensor


def _uniform_values(tensor, a: float, b: float, generator):
    u = graphc.rand(*tensor.shape, generator=generator) if generator is not None else graphc.rand(*tensor.shape)
    return u * (b - a) + a


def _normal_values(tensor, mean: float, std: float, generator):
    z = graphc.randn(*tensor.shape, generator=generator) if generator is not None else graphc.randn(*tensor.shape)
    return z * std + mean


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b)."""
    return _fill(tensor, _uniform_values(tensor, a, b, generator))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std^2)."""
    return _fill(tensor, _normal_values(tensor, mean, std, generator))


def trunc_normal_(
    tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator=None,
):
    """Fill with N(mean, std^2) truncated to [a, b], by the inverse CDF of a
    uniform draw between the bounds' CDF values."""

    def cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    low, high = cdf((a - mean) / std), cdf((b - mean) / std)
    u = _uniform_values(tensor, 2 * low - 1, 2 * high - 1, generator)
    # erfinv has no primitive; invert erf with a few Newton steps from an
    # initial guess (eager or traced alike: only Tensor arithmetic).
    from graphc.nn.functional.activation import erf

    x = u * 0.0
    for _ in range(30):
        x = x - (erf(x) - u) / ((2.0 / math.sqrt(math.pi)) * graphc.exp(-x * x))
    values = x * (std * math.sqrt(2.0)) + mean
    values = graphc.where(values < a, graphc.full_like(values, a), values)
    values = graphc.where(values > b, graphc.full_like(values, b), values)
    return _fill(tensor, values)


def constant_(tensor, val: float):
    """Fill with the constant `val`."""
    return _fill(tensor, graphc.full_like(tensor, val))


def ones_(tensor):
    return constant_(tensor, 1.0)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def eye_(tensor):
    """Fill a 2-D tensor with the identity matrix."""
    if tensor.dim() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _fill(tensor, graphc.tensor(np.eye(*tensor.shape, dtype=np.float32)))


def dirac_(tensor, groups: int = 1):
    """Fill a {3,4,5}-D convolution weight so the convolution is the identity."""
    if tensor.dim() not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    out_per_group = tensor.shape[0] // groups
    values = np.zeros(tuple(tensor.shape), dtype=np.float32)
    centre = tuple(size // 2 for size in tensor.shape[2:])
    for g in range(groups):
        for d in range(min(out_per_group, tensor.shape[1])):
            values[(g * out_per_group + d, d) + centre] = 1.0
    return _fill(tensor, graphc.tensor(values))


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(
    tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator=None,
):
    """U(-b, b) with b = gain(nonlinearity, a) * sqrt(3 / fan)."""
    if 0 in tuple(tensor.shape):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator=None,
):
    """N(0, std^2) with std = gain(nonlinearity, a) / sqrt(fan)."""
    if 0 in tuple(tensor.shape):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor, gain: float = 1.0, generator=None):
    """A (semi-)orthogonal matrix from the QR decomposition of a normal draw.
    QR has no primitive, so this is eager-only (as is all initialization)."""
    if tensor.dim() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    draw = _normal_values(graphc.empty(rows, cols), 0.0, 1.0, generator).numpy().astype(np.float64)
    if rows < cols:
        draw = draw.T
    q, r = np.linalg.qr(draw)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, graphc.tensor((gain * q).astype(np.float32)).reshape(tensor.shape))
