"""Linear, Bilinear, Identity, Flatten and Unflatten."""

from __future__ import annotations

import math

import graphc
import graphc.nn.functional as F
from graphc._checks import require_tensor
from graphc.errors import InputShapeError
from graphc.nn import init
from graphc.nn.module import Module
from graphc.nn.parameter import Parameter


def check_last_dim(layer: Module, input, expected: int, what: str = "in_features") -> None:
    """Raise a clear error when `input` is not a tensor whose last dim is `expected`."""
    require_tensor(layer._get_name(), "input", 1, input)
    if input.dim() == 0 or input.shape[-1] != expected:
        raise InputShapeError(
            f"{layer._get_name()}: expected input with last dimension {what}={expected}, "
            f"got input of shape {tuple(input.shape)}"
        )


class Identity(Module):
    """Returns its input unchanged (accepts and ignores any arguments)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x W^T + b.

    weight: [out_features, in_features] ~ U(-1/sqrt(in), 1/sqrt(in)) (from
    kaiming_uniform_ with a=sqrt(5)); bias: [out_features], same bound.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(graphc.empty(out_features, in_features, dtype=dtype or graphc.float32))
        if bias:
            self.bias = Parameter(graphc.empty(out_features, dtype=dtype or graphc.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        check_last_dim(self, input, self.in_features)
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Bilinear(Module):
    """y = x1^T A x2 + b, weight [out, in1, in2], all ~ U(-1/sqrt(in1), 1/sqrt(in1))."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = (
            in1_features,
            in2_features,
            out_features,
        )
        self.weight = Parameter(graphc.empty(out_features, in1_features, in2_features))
        if bias:
            self.bias = Parameter(graphc.empty(out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        check_last_dim(self, input1, self.in1_features, "in1_features")
        check_last_dim(self, input2, self.in2_features, "in2_features")
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )


class Flatten(Module):
    """Flatten dims start_dim..end_dim into one."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim `dim` into `unflattened_size`."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        dim = self.dim % input.dim()
        shape = tuple(input.shape[:dim]) + self.unflattened_size + tuple(input.shape[dim + 1 :])
        return input.reshape(shape)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
