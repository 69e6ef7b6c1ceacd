"""`torch.nn.modules.conv` import path: graphc's convolution layers."""

from graphc.nn.conv import Conv1d, Conv2d, ConvTranspose2d

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]
