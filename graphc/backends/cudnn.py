"""`graphc.backends.cudnn`: PyTorch's cuDNN flags.

graphc does not use cuDNN: `benchmark`, `deterministic`, `enabled` and
`allow_tf32` can be set (as code ported from PyTorch does) but have no effect.
"""

benchmark = False
deterministic = False
enabled = True
allow_tf32 = True


def is_available() -> bool:
    return False


def version():
    return None
