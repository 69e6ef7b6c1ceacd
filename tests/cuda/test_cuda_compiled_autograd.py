"""graphc.compile(model) on CUDA tensors on graphc's own CUDA runtime: the
compiled forward and backward programs (graphc/_compiled_autograd.py) give
the CPU's outputs and gradients. Runs on the GPU and on the host emulator
(the `cuda_device` fixture)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.nn import functional as F
from graphc.vision.models import Net

pytestmark = pytest.mark.usefixtures("cuda_device")


def _forward_backward(device: str, steps: int = 3):
    graphc.manual_seed(0)
    model = Net().to(device)
    compiled = graphc.compile(model)
    x = graphc.randn(4, 1, 28, 28).to(device).requires_grad_()
    y = graphc.randint(0, 10, (4,)).to(device)
    for _ in range(steps):
        model.zero_grad()
        x.grad = None
        out = compiled(x)
        F.nll_loss(out, y).backward()
    return out, [x.grad] + [p.grad for p in model.parameters()]


def test_compiled_cnn_forward_and_backward_on_cuda_match_the_cpu():
    out, grads = _forward_backward("cuda")
    assert out.grad_fn.name() == "CompiledFunctionBackward" and out.device == "cuda:0"
    cpu_out, cpu_grads = _forward_backward("cpu")
    np.testing.assert_allclose(out.detach().cpu().numpy(), cpu_out.detach().numpy(), rtol=1e-4, atol=1e-5)
    for g, c in zip(grads, cpu_grads):
        assert g.device == "cuda:0"
        np.testing.assert_allclose(g.cpu().numpy(), c.numpy(), rtol=1e-4, atol=1e-5)
