"""Lazy layers: LazyLinear, LazyConv1d, LazyConv2d.

Their input size (in_features, in_channels) is read from the first input:
until then the weights are UninitializedParameter placeholders, and the
first call creates them with the usual initialization and turns the layer
into a plain Linear / Conv1d / Conv2d, as PyTorch does. Run such a layer
once eagerly before compiling it or building its optimizer.
"""

from __future__ import annotations

import graphc
from graphc._trace import active as _tracing
from graphc.errors import TraceError
from graphc.nn.conv import Conv1d, Conv2d
from graphc.nn.linear import Linear
from graphc.nn.parameter import Parameter


class UninitializedParameter(Parameter):
    """A parameter whose shape is not known yet (no elements until a lazy
    layer's first call, or load_state_dict, replaces it)."""

    _uninitialized = True

    def __new__(cls, requires_grad: bool = True, device=None, dtype=None):
        return super().__new__(cls, graphc.empty(0, dtype=dtype or graphc.float32), requires_grad)

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        pass

    def __repr__(self) -> str:
        return "<UninitializedParameter>"


class LazyModuleMixin:
    """has_uninitialized_params and the first-call materialization."""

    cls_to_become: type | None = None

    def has_uninitialized_params(self) -> bool:
        return any(isinstance(p, UninitializedParameter) for p in self.parameters(recurse=False))

    def _materialize(self, input, in_size: int) -> None:
        if _tracing() is not None:
            raise TraceError(
                f"{type(self).__name__}: its parameters are created by the first call; call the module once "
                "eagerly before compiling it"
            )
        dtype = self.weight.dtype
        self._create_parameters(in_size, dtype)
        self.to(input.device)
        self.reset_parameters()
        self.__class__ = self.cls_to_become

    def _load_uninitialized(self, name: str, value) -> None:
        """load_state_dict into a placeholder: the parameter takes the
        checkpoint's value and shape; once none is left, the layer becomes
        its plain class."""
        setattr(self, name, Parameter(value.detach().clone().to(self.weight.dtype)))
        if name == "weight":
            self._set_in_size(value.shape[1] * getattr(self, "groups", 1))
        if not self.has_uninitialized_params():
            self.__class__ = self.cls_to_become


class LazyLinear(LazyModuleMixin, Linear):
    """Linear whose in_features is the last dim of its first input."""

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None):
        graphc.nn.Module.__init__(self)
        self.in_features, self.out_features = 0, out_features
        self.weight = UninitializedParameter(dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)
        else:
            self.register_parameter("bias", None)

    def _set_in_size(self, size: int) -> None:
        self.in_features = size

    def _create_parameters(self, in_features: int, dtype) -> None:
        self.in_features = in_features
        self.weight = Parameter(graphc.empty(self.out_features, in_features, dtype=dtype))
        if self.bias is not None:
            self.bias = Parameter(graphc.empty(self.out_features, dtype=dtype))

    def forward(self, input):
        if self.has_uninitialized_params():
            if input.dim() == 0:
                raise ValueError("LazyLinear: expected an input with at least one dim, got a scalar")
            self._materialize(input, input.shape[-1])
        return Linear.forward(self, input)


class _LazyConv(LazyModuleMixin):
    """Conv layers whose in_channels is read from the first input."""

    def __init__(
        self,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        # The layer's own constructor with a placeholder in_channels (groups
        # divides it), then uninitialized parameters until the first input.
        self.cls_to_become.__init__(
            self, groups, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode
        )
        self._lazy_init(bias, dtype)

    def _lazy_init(self, bias: bool, dtype) -> None:
        self.in_channels = 0
        self.weight = UninitializedParameter(dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)

    def _set_in_size(self, size: int) -> None:
        self.in_channels = size

    def _create_parameters(self, in_channels: int, dtype) -> None:
        if in_channels % self.groups:
            raise ValueError(
                f"{type(self).__name__}: in_channels={in_channels} must be divisible by groups={self.groups}"
            )
        self.in_channels = in_channels
        shape = (self.out_channels, in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(graphc.empty(*shape, dtype=dtype))
        if self.bias is not None:
            self.bias = Parameter(graphc.empty(self.out_channels, dtype=dtype))

    def forward(self, input):
        layer = type(self).cls_to_become
        if self.has_uninitialized_params():
            n = self._dims
            if input.dim() not in (n + 1, n + 2):
                raise ValueError(
                    f"{type(self).__name__}: expected {n + 1}-D or {n + 2}-D input, got shape {tuple(input.shape)}"
                )
            self._materialize(input, input.shape[-n - 1])
        return layer.forward(self, input)


class LazyConv1d(_LazyConv, Conv1d):
    """Conv1d whose in_channels is read from the first input."""

    cls_to_become = Conv1d


class LazyConv2d(_LazyConv, Conv2d):
    """Conv2d whose in_channels is read from the first input."""

    cls_to_become = Conv2d
