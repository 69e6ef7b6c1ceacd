"""`torch.nn.modules.linear` import path: graphc's linear layers."""

from graphc.nn.lazy import LazyLinear
from graphc.nn.linear import Bilinear, Identity, Linear

__all__ = ["Bilinear", "Identity", "LazyLinear", "Linear"]
