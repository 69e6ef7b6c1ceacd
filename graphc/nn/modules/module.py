"""`torch.nn.modules.module` import path: graphc.nn.Module."""

from graphc.nn.module import Module

__all__ = ["Module"]
