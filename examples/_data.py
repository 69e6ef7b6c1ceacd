"""Where the examples find MNIST: $GRAPHC_DATA, else the checkout's
../shared/data/mnist (the 10,000-image test set, split 8,000 / 2,000),
else ./data (downloaded)."""

from pathlib import Path

from graphc import config
from graphc.utils.data import Subset
from graphc.vision import datasets

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"


def mnist_root():
    folder = config.get("GRAPHC_DATA")
    if folder:
        return Path(folder)
    return SHARED if SHARED.is_dir() else Path("data")


def mnist_splits(transform, root=None, train_size=8000):
    """(train_set, test_set): MNIST's own splits when both are under `root`;
    a split of the test set when only that is there (nothing is downloaded
    next to it); otherwise both splits, downloaded into `root`."""
    root = Path(root) if root else mnist_root()
    try:
        test = datasets.MNIST(root, train=False, transform=transform)
    except (RuntimeError, OSError):
        test = None
    if test is not None:
        try:
            return datasets.MNIST(root, train=True, transform=transform), test
        except (RuntimeError, OSError):
            return Subset(test, range(train_size)), Subset(test, range(train_size, len(test)))
    train = datasets.MNIST(root, train=True, download=True, transform=transform)
    test = datasets.MNIST(root, train=False, download=True, transform=transform)
    return train, test
