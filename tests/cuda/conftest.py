"""CUDA tests use a private disk cache folder and register the `cuda`
marker's skip: GPU tests run only where graphc's CUDA runtime is usable."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    # Tests never touch the user's ~/.cache/graphc.
    old = os.environ.get("GRAPHC_CACHE_DIR")
    os.environ["GRAPHC_CACHE_DIR"] = str(tmp_path_factory.mktemp("graphc-cuda-cache"))
    yield
    if old is None:
        os.environ.pop("GRAPHC_CACHE_DIR", None)
    else:
        os.environ["GRAPHC_CACHE_DIR"] = old
