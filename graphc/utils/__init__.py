"""`graphc.utils`: utilities with PyTorch's names (`graphc.utils.data`)."""

from graphc.utils import data

__all__ = ["data"]
