"""`torch.nn.modules.instancenorm` import path: graphc's instancenorm layers."""

from graphc.nn.normalization import (
    InstanceNorm1d,
    InstanceNorm2d,
)

__all__ = [
    "InstanceNorm1d",
    "InstanceNorm2d",
]
