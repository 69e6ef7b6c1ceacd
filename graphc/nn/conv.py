"""Conv1d, Conv2d, Conv3d, ConvTranspose1d and ConvTranspose2d with PyTorch's
parameters and init."""

from __future__ import annotations

import math

import graphc
import graphc.nn.functional as F
from graphc._checks import require_tensor
from graphc.errors import InputShapeError
from graphc.nn import init
from graphc.nn.module import Module
from graphc.nn.parameter import Parameter


def _ntuple(value, n: int) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"expected {n} values, got {tuple(value)}")
        return tuple(value)
    return (value,) * n


class _ConvNd(Module):
    """Shared parameters, init and repr of the convolution layers."""

    _dims = 2

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        dilation,
        transposed,
        output_padding,
        groups,
        bias,
        padding_mode,
    ):
        super().__init__()
        n = self._dims
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{type(self).__name__}: in_channels={in_channels} and out_channels={out_channels} "
                f"must be divisible by groups={groups}"
            )
        if padding_mode != "zeros":
            raise NotImplementedError(f"{type(self).__name__}: padding_mode {padding_mode!r} is not supported")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of ('valid', 'same')")
            if padding == "same" and any(s != 1 for s in _ntuple(stride, n)):
                raise ValueError("padding='same' is not supported for strided convolutions")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _ntuple(kernel_size, n)
        self.stride = _ntuple(stride, n)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, n)
        self.dilation = _ntuple(dilation, n)
        self.transposed = transposed
        self.output_padding = _ntuple(output_padding, n)
        self.groups = groups
        self.padding_mode = padding_mode
        if transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(graphc.empty(*shape))
        if bias:
            self.bias = Parameter(graphc.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _check_input(self, input) -> None:
        require_tensor(self._get_name(), "input", 1, input)
        n = self._dims
        if input.dim() not in (n + 1, n + 2) or input.shape[-n - 1] != self.in_channels:
            layout = {1: "[N, C, L]", 2: "[N, C, H, W]", 3: "[N, C, D, H, W]"}[n]
            raise InputShapeError(
                f"{self._get_name()}: expected input {layout} with C=in_channels={self.in_channels}, "
                f"got input of shape {tuple(input.shape)}"
            )

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        zeros = (0,) * self._dims
        ones = (1,) * self._dims
        if self.padding != zeros:
            text += f", padding={self.padding}"
        if self.dilation != ones:
            text += f", dilation={self.dilation}"
        if self.output_padding != zeros:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class _Conv(_ConvNd):
    """Conv1d and Conv2d: PyTorch's constructor, and a forward through the
    functional form `_conv` of the layer's dimension."""

    def __init__(
        self,
        in_channels: int,
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
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            False,
            0,
            groups,
            bias,
            padding_mode,
        )

    def forward(self, input):
        self._check_input(input)
        return self._conv(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )


class Conv2d(_Conv):
    """2-D convolution over [N, C_in, H, W] (or unbatched [C_in, H, W]).

    weight: [C_out, C_in / groups, kh, kw]; bias: [C_out]. padding may be an
    int, a pair, 'valid' or 'same'.
    """

    _dims = 2
    _conv = staticmethod(F.conv2d)


class Conv1d(_Conv):
    """1-D convolution over [N, C_in, L]; weight [C_out, C_in / groups, k]."""

    _dims = 1
    # F.conv1d takes the layer's 1-tuples as they are.
    _conv = staticmethod(F.conv1d)


class Conv3d(_Conv):
    """3-D convolution over [N, C_in, D, H, W]; weight [C_out, C_in / groups, kd, kh, kw]."""

    _dims = 3
    _conv = staticmethod(F.conv3d)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution; weight [C_in, C_out / groups, kh, kw]."""

    _dims = 2
    _conv_transpose = staticmethod(F.conv_transpose2d)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__} does not support string padding")  # noqa: TRY004 (as PyTorch)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            True,
            output_padding,
            groups,
            bias,
            padding_mode,
        )

    def forward(self, input, output_size=None):
        self._check_input(input)
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._output_padding_for(input, output_size)
        return self._conv_transpose(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            output_padding,
            self.groups,
            self.dilation,
        )

    def _output_padding_for(self, input, output_size) -> tuple:
        n = self._dims
        wanted = tuple(output_size)[-n:]
        result = []
        for i in range(n):
            smallest = (
                (input.shape[-n + i] - 1) * self.stride[i]
                - 2 * self.padding[i]
                + self.dilation[i] * (self.kernel_size[i] - 1)
                + 1
            )
            extra = wanted[i] - smallest
            if not 0 <= extra < max(self.stride[i], self.dilation[i]):
                raise ValueError(f"{self._get_name()}: requested output size {wanted} is not reachable")
            result.append(extra)
        return tuple(result)


class ConvTranspose1d(ConvTranspose2d):
    """Transposed 1-D convolution over [N, C_in, L]; weight [C_in, C_out / groups, k]."""

    _dims = 1
    _conv_transpose = staticmethod(F.conv_transpose1d)
