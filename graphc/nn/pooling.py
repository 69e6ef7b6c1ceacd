"""Pooling layers: MaxPool1d/2d/3d, AvgPool1d/2d/3d, AdaptiveAvgPool1d/2d/3d."""

from __future__ import annotations

import graphc.nn.functional as F
from graphc.nn.module import Module


def _check(layer: Module, input, dims: int) -> None:
    if input.dim() not in (dims + 1, dims + 2):
        raise ValueError(
            f"{layer._get_name()}: expected {dims + 1}-D or {dims + 2}-D input, got shape {tuple(input.shape)}"
        )


class _MaxPoolNd(Module):
    """MaxPool1d/2d: max over kernel_size windows (stride defaults to
    kernel_size), through the functional form `_pool` of `_dims` dims."""

    _dims = 2

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        dilation=1,
        return_indices=False,
        ceil_mode=False,
    ):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        _check(self, input, self._dims)
        return self._pool(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.return_indices,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool2d(_MaxPoolNd):
    """Max over kernel_size windows (stride defaults to kernel_size)."""

    _dims = 2
    _pool = staticmethod(F.max_pool2d)


class MaxPool1d(_MaxPoolNd):
    _dims = 1
    _pool = staticmethod(F.max_pool1d)


class _AvgPoolNd(Module):
    """The repr shared by AvgPool1d/2d."""

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    """Mean over kernel_size windows, PyTorch's count_include_pad rules."""

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = (
            count_include_pad,
            divisor_override,
        )

    def forward(self, input):
        _check(self, input, 2)
        return F.avg_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )


class AvgPool1d(_AvgPoolNd):
    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode=False,
        count_include_pad=True,
    ):
        super().__init__()
        self.kernel_size = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
        stride = stride if stride is not None else kernel_size
        self.stride = (stride,) if isinstance(stride, int) else tuple(stride)
        self.padding = (padding,) if isinstance(padding, int) else tuple(padding)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, input):
        _check(self, input, 1)
        return F.avg_pool1d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
        )


class _AdaptiveAvgPoolNd(Module):
    """AdaptiveAvgPool1d/2d/3d (and the base of the adaptive max pools):
    pooling to a fixed output size, through the functional form `_pool` of
    `_dims` dims."""

    _dims = 2

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        _check(self, input, self._dims)
        return self._pool(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Average pooling to a fixed output size (int, pair, or None entries)."""

    _dims = 2
    _pool = staticmethod(F.adaptive_avg_pool2d)


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    _dims = 1
    _pool = staticmethod(F.adaptive_avg_pool1d)


class _AdaptiveMaxPoolNd(_AdaptiveAvgPoolNd):
    """AdaptiveMaxPool1d/2d: max pooling to a fixed output size; with
    return_indices, also the flat index of each maximum."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input):
        _check(self, input, self._dims)
        return self._pool(input, self.output_size, self.return_indices)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Max pooling to a fixed output size (int, pair, or None entries)."""

    _dims = 2
    _pool = staticmethod(F.adaptive_max_pool2d)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    _dims = 1
    _pool = staticmethod(F.adaptive_max_pool1d)


class _LPPoolNd(Module):
    """LPPool1d/2d: (sum over each window of x^p)^(1/p)."""

    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
        super().__init__()
        self.norm_type, self.kernel_size, self.stride, self.ceil_mode = norm_type, kernel_size, stride, ceil_mode

    def forward(self, input):
        return self._pool(input, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (
            f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"ceil_mode={self.ceil_mode}"
        )


class LPPool2d(_LPPoolNd):
    _pool = staticmethod(F.lp_pool2d)


class LPPool1d(_LPPoolNd):
    _pool = staticmethod(F.lp_pool1d)


class MaxPool3d(_MaxPoolNd):
    """Max over kernel_size 3-D windows of [N, C, D, H, W] (stride defaults
    to kernel_size)."""

    _dims = 3
    _pool = staticmethod(F.max_pool3d)


class AvgPool3d(AvgPool2d):
    """Mean over kernel_size 3-D windows of [N, C, D, H, W], PyTorch's
    count_include_pad rules."""

    def forward(self, input):
        _check(self, input, 3)
        return F.avg_pool3d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Average pooling of [N, C, D, H, W] to a fixed output size."""

    _dims = 3
    _pool = staticmethod(F.adaptive_avg_pool3d)
