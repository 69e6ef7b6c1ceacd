"""Fixtures shared by every test folder."""

from pathlib import Path

import pytest

# The real MNIST test set lies beside a checkout, in ../shared/data/mnist.
# A clone without it still passes the suite: the tests that train on the
# real digits skip, saying where the files were looked for.
MNIST_DIR = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist").resolve()
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder holding the real MNIST test files; skips the test when absent."""
    missing = [f for f in MNIST_FILES if not (MNIST_DIR / f).is_file()]
    if missing:
        pytest.skip(f"real MNIST test files not found in {MNIST_DIR} (missing {', '.join(missing)})")
    return MNIST_DIR
