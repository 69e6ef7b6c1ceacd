"""`torch.nn.modules.instancenorm` import path: graphc's instancenorm layers."""

from graphc.nn.normalization import (
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
)

__all__ = [
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
]
