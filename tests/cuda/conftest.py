"""The `cuda_device` fixture runs a test twice: on the GPU (marked `cuda`;
skipped with the reason where graphc's CUDA runtime is unusable) and on the
host emulator of cuda_emu.py (skipped only without a C++ compiler)."""

import cuda_emu
import pytest

from graphc.runtime import cuda as rt


@pytest.fixture(params=[pytest.param("gpu", marks=pytest.mark.cuda), "emulated"])
def cuda_device(request, monkeypatch):
    """The device a test runs on: the real GPU, or the emulated one (whose
    EmulatedDriver is returned; None for the GPU)."""
    if request.param == "gpu":
        if not rt.is_available():
            pytest.skip(f"CUDA unavailable: {rt.unavailable_reason()}")
        return None
    if cuda_emu.compiler() is None:
        pytest.skip("no host C++ compiler (g++) for the CUDA emulator")
    return cuda_emu.install(monkeypatch)
