"""`torch.nn.modules.conv` import path: graphc's convolution layers."""

from graphc.nn.conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d
from graphc.nn.lazy import LazyConv1d, LazyConv2d

__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "LazyConv1d",
    "LazyConv2d",
]
