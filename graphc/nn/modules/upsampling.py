"""`torch.nn.modules.upsampling` import path: graphc's upsampling layers."""

from graphc.nn.upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = ["Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d"]
