"""`graphc.nn.modules`: PyTorch's `torch.nn.modules.*` import paths.

Code ported from PyTorch imports layers as `from torch.nn.modules.linear
import Linear`; each submodule here re-exports graphc's own classes (the
same objects as `graphc.nn.Linear`, no copies).
"""

from graphc.nn.modules import (  # noqa: F401  (the submodules are the API)
    activation,
    batchnorm,
    container,
    conv,
    dropout,
    flatten,
    fold,
    instancenorm,
    lazy,
    linear,
    loss,
    module,
    normalization,
    padding,
    pooling,
    rnn,
    sparse,
    transformer,
    upsampling,
)
from graphc.nn.modules.module import Module

__all__ = ["Module"]
