"""`torch.nn.modules.module` import path: graphc.nn.Module, and the global
module hooks (`register_module_forward_hook` and friends) that torch keeps
here."""

from graphc.nn._hooks import (  # noqa: F401  (torch's import path for them)
    register_module_forward_hook,
    register_module_forward_pre_hook,
    register_module_full_backward_hook,
    register_module_full_backward_pre_hook,
)
from graphc.nn.module import Module

__all__ = ["Module"]
