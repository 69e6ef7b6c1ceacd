"""`torch.nn.modules.container` import path: graphc's module containers."""

from graphc.nn.containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential

__all__ = ["ModuleDict", "ModuleList", "ParameterDict", "ParameterList", "Sequential"]
