"""Where the examples find MNIST: $GRAPHC_DATA, else the checkout's
../shared/data/mnist (the 10,000-image test set, split 8,000 / 2,000),
else ./data (downloaded)."""
import os
from pathlib import Path

from graphc.utils.data import Subset
from graphc.vision import datasets


def mnist_splits(transform, root=None, train_size=8000):
    root = Path(root or os.environ.get("GRAPHC_DATA") or Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist")
    try:
        train = datasets.MNIST(root, train=True, download=True, transform=transform)
        test = datasets.MNIST(root, train=False, download=True, transform=transform)
        return train, test
    except (RuntimeError, OSError):
        test = datasets.MNIST(root, train=False, download=False, transform=transform)
        return Subset(test, range(train_size)), Subset(test, range(train_size, len(test)))
