"""`torch.nn.modules.lazy` import path: graphc's LazyModuleMixin."""

from graphc.nn.lazy import LazyModuleMixin

__all__ = ["LazyModuleMixin"]
