"""graphc.profiler on CUDA programs: CUDA events time each launch. Runs on
the host emulator of tests/cuda/cuda_emu.py (its events are wall-clock
stand-ins), and on a GPU when there is one."""

import sys
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.profiler import profile
from graphc.runtime import cuda as rt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cuda"))
import cuda_emu  # noqa: E402


@pytest.fixture(params=[pytest.param("gpu", marks=pytest.mark.cuda), "emulated"])
def cuda_device(request, monkeypatch):
    if request.param == "gpu":
        if not rt.is_available():
            pytest.skip(f"CUDA unavailable: {rt.unavailable_reason()}")
        return None
    if cuda_emu.compiler() is None:
        pytest.skip("no host C++ compiler (g++) for the CUDA emulator")
    return cuda_emu.install(monkeypatch)


def test_cuda_program_kernels_are_timed(cuda_device):
    graphc.manual_seed(0)
    a, b = graphc.randn(16, 8), graphc.randn(8, 12)

    @graphc.compile
    def f(x, y):
        return (x @ y).relu() + 1.0

    ac, bc = a.cuda(), b.cuda()
    f(ac, bc)
    f(ac, bc)  # compiled
    with profile() as prof:
        got = f(ac, bc)
    want = (a @ b).relu() + 1.0
    np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    events = prof.events()
    (call,) = [e for e in events if e.cat == "program"]
    assert call.name == "call @f (cuda)"
    kernels = [e for e in events if e.cat == "cuda kernel"]
    assert kernels and all(e.name.endswith("@f (cuda)") for e in kernels)
    assert all(call.start <= e.start <= e.end <= call.end for e in kernels)
    assert sum(e.flops for e in kernels) >= 2 * 16 * 12 * 8
    table = prof.key_averages().table()
    assert "call @f (cuda)" in table
