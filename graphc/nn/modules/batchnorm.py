"""`torch.nn.modules.batchnorm` import path: graphc's batchnorm layers."""

from graphc.nn.normalization import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
)

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
]
