"""`graphc.nn.parallel`: PyTorch's data-parallel wrappers.

`DataParallel` is a pass-through wrapper kept for code ported from PyTorch
(graphc runs a model on one device): it calls the wrapped module and its
state_dict keys carry the `module.` prefix, as PyTorch's do.
`DistributedDataParallel` trains over the ranks of `graphc.distributed`
(graphc/nn/parallel/distributed.py).
"""

from graphc.nn.module import Module
from graphc.nn.parallel.distributed import DistributedDataParallel


class DataParallel(Module):
    """Wraps `module` and calls it on one device (no replication or scatter).

    `device_ids`, `output_device` and `dim` are accepted and kept for
    compatibility; `.module` is the wrapped module.
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0) -> None:
        super().__init__()
        self.module = module
        self.device_ids = [] if device_ids is None else list(device_ids)
        self.output_device = output_device if output_device is not None else (self.device_ids or [None])[0]
        self.dim = dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


__all__ = ["DataParallel", "DistributedDataParallel"]
