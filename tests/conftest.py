"""Fixtures shared by every test folder."""

import os
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


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    """Tests never touch the user's ~/.cache/graphc: every compile, CPU and
    CUDA, caches into a folder of this test session."""
    old = os.environ.get("GRAPHC_CACHE_DIR")
    os.environ["GRAPHC_CACHE_DIR"] = str(tmp_path_factory.mktemp("graphc-cache"))
    yield
    if old is None:
        os.environ.pop("GRAPHC_CACHE_DIR", None)
    else:
        os.environ["GRAPHC_CACHE_DIR"] = old
