"""`graphc.backends`: queries about optional device backends (as torch.backends)."""

from graphc.backends import mps

__all__ = ["mps"]
