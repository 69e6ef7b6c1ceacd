"""`torch.nn.modules.flatten` import path: graphc's Flatten and Unflatten."""

from graphc.nn.linear import Flatten, Unflatten

__all__ = ["Flatten", "Unflatten"]
