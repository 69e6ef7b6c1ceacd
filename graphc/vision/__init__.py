"""`graphc.vision`: what torchvision is to PyTorch — datasets (MNIST,
FashionMNIST, SyntheticDigits, FakeData, ImageFolder), transforms, models,
and utils (make_grid, save_image).

`models` is imported when present, so datasets and transforms work on
their own.
"""

from graphc.vision import datasets, transforms, utils

try:
    from graphc.vision import models
except ImportError as _error:  # only a missing models module is tolerated
    if getattr(_error, "name", None) != "graphc.vision.models":
        raise

__all__ = ["datasets", "transforms", "models", "utils"]
