"""Device tests run the CUDA frontend on the simulated runtime in fake_cuda.py."""

import pytest
from fake_cuda import FakeCudaRuntime

import graphc


@pytest.fixture
def fake_cuda(monkeypatch):
    """Install a fresh simulated CUDA runtime; the previous one (usually
    none, or graphc's own) comes back after the test."""
    rt = FakeCudaRuntime()
    monkeypatch.setattr(graphc.cuda, "_runtime", rt)
    return rt
