"""`graphc.backends`: queries and flags of optional device backends (as torch.backends)."""

from graphc.backends import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
