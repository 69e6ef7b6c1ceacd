"""`torch.nn.modules.normalization` import path: graphc's normalization layers."""

from graphc.nn.normalization import (
    GroupNorm,
    LayerNorm,
    RMSNorm,
)

__all__ = [
    "GroupNorm",
    "LayerNorm",
    "RMSNorm",
]
