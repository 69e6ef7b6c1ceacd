"""`graphc.vision`: what torchvision is to PyTorch — datasets (MNIST,
FashionMNIST, SyntheticDigits), transforms, and models.

`models` is imported when present, so datasets and transforms work on
their own.
"""

from graphc.vision import datasets, transforms

try:
    from graphc.vision import models
except ImportError as _error:  # only a missing models module is tolerated
    if getattr(_error, "name", None) != "graphc.vision.models":
        raise

__all__ = ["datasets", "transforms", "models"]
