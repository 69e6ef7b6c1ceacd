"""BatchNorm1d/2d, InstanceNorm1d/2d, LayerNorm, GroupNorm and RMSNorm with
PyTorch's state and init."""

from __future__ import annotations

import graphc
import graphc.nn.functional as F
from graphc.errors import InputShapeError
from graphc.nn import init
from graphc.nn.module import Module
from graphc.nn.parameter import Parameter


def _register_affine(module: Module, affine: bool, bias: bool, shape) -> None:
    """The parameters `weight` (ones of `shape`) and `bias` (zeros), each
    registered as None where it is not wanted."""
    weight = Parameter(graphc.ones(*shape)) if affine else None
    module.register_parameter("weight", weight)
    bias_param = Parameter(graphc.zeros(*shape)) if affine and bias else None
    module.register_parameter("bias", bias_param)


class _BatchNorm(Module):
    """Shared state of BatchNorm1d/2d: weight, bias (affine) and the buffers
    running_mean, running_var, num_batches_tracked (track_running_stats)."""

    _valid_dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self._has_bias = bias
        _register_affine(self, affine, bias, (num_features,))
        if track_running_stats:
            self.register_buffer("running_mean", graphc.zeros(num_features))
            self.register_buffer("running_var", graphc.ones(num_features))
            self.register_buffer("num_batches_tracked", graphc.tensor(0, dtype=graphc.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            with graphc.no_grad():
                self.num_batches_tracked.copy_(graphc.zeros_like(self.num_batches_tracked))

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input(self, input) -> None:
        if input.dim() not in self._valid_dims or input.shape[1] != self.num_features:
            raise InputShapeError(
                f"{self._get_name()}: expected {' or '.join(f'{d}-D' for d in self._valid_dims)} input "
                f"with {self.num_features} channels in dim 1, got input of shape {tuple(input.shape)}"
            )

    def forward(self, input):
        self._check_input(input)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            with graphc.no_grad():
                self.num_batches_tracked.copy_(self.num_batches_tracked + 1)
            if self.momentum is None:
                # Cumulative moving average: the factor is 1 / batches seen,
                # kept as a tensor so tracing does not read it eagerly.
                momentum = 1.0 / self.num_batches_tracked.to(graphc.float32)
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(
            input,
            self.running_mean if not self.training or self.track_running_stats else None,
            self.running_var if not self.training or self.track_running_stats else None,
            self.weight,
            self.bias,
            use_batch_stats,
            momentum,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalization over [N, C] or [N, C, L]."""

    _valid_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization over [N, C, H, W]."""

    _valid_dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalization over [N, C, D, H, W]."""

    _valid_dims = (5,)


class _InstanceNorm(_BatchNorm):
    """Shared state of InstanceNorm1d/2d: BatchNorm's parameters and buffers,
    with PyTorch's defaults affine=False, track_running_stats=False."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, input):
        batched = self._valid_dims[-1]
        if input.dim() not in self._valid_dims:
            raise ValueError(f"expected {batched - 1}D or {batched}D input (got {input.dim()}D input)")
        unbatched = input.dim() == batched - 1
        if unbatched:
            input = input.unsqueeze(0)
        if input.shape[1] != self.num_features and self.affine:
            raise ValueError(
                f"expected input's size at dim=1 to match num_features ({self.num_features}), "
                f"but got: {input.shape[1]}."
            )
        out = F.instance_norm(
            input,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training or not self.track_running_stats,
            self.momentum if self.momentum is not None else 0.0,
            self.eps,
        )
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization over [N, C, L] or [C, L]."""

    _valid_dims = (2, 3)


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization over [N, C, H, W] or [C, H, W]."""

    _valid_dims = (3, 4)


class LayerNorm(Module):
    """Normalize over the trailing `normalized_shape` dims; weight=1, bias=0."""

    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self._has_bias = bias
        _register_affine(self, elementwise_affine, bias, self.normalized_shape)

    def forward(self, input):
        n = len(self.normalized_shape)
        if tuple(input.shape[-n:]) != self.normalized_shape or input.dim() < n:
            raise InputShapeError(
                f"LayerNorm: expected input ending in normalized_shape {self.normalized_shape}, "
                f"got input of shape {tuple(input.shape)}"
            )
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self._has_bias}"
        )


class GroupNorm(Module):
    """Normalize groups of channels per sample; weight=1, bias=0 per channel."""

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups, self.num_channels, self.eps, self.affine = (
            num_groups,
            num_channels,
            eps,
            affine,
        )
        self._has_bias = bias
        _register_affine(self, affine, bias, (num_channels,))

    def forward(self, input):
        if input.dim() < 2 or input.shape[1] != self.num_channels:
            raise InputShapeError(
                f"GroupNorm: expected input [N, {self.num_channels}, ...], got input of shape {tuple(input.shape)}"
            )
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, bias={self._has_bias}"


class RMSNorm(Module):
    """x / sqrt(mean(x^2) + eps) over the trailing `normalized_shape` dims,
    times `weight` (ones); eps=None uses the input dtype's machine epsilon."""

    def __init__(
        self,
        normalized_shape,
        eps: float | None = None,
        elementwise_affine: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        weight = Parameter(graphc.ones(*self.normalized_shape)) if elementwise_affine else None
        self.register_parameter("weight", weight)

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            init.ones_(self.weight)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization over [N, C, D, H, W] or [C, D, H, W]."""

    _valid_dims = (4, 5)


class LocalResponseNorm(Module):
    """Normalize each channel by its neighbours' energy (AlexNet's LRN)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
