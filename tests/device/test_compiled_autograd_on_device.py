"""graphc.compile's compiled forward+backward on CUDA tensors (simulated
runtime, fake_cuda.py): both programs run on device storage and give the
CPU's gradients."""

import numpy as np

import graphc
from graphc import nn
from graphc._device_storage import DeviceArray


def _forward_backward(device, steps=3):
    """Compiled model, eager loss, backward: per step the output, the input's
    gradient and the parameters' gradients (host copies)."""
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.25), nn.Linear(16, 3)).to(device)
    compiled = graphc.compile(model)
    x = graphc.randn(8, 6).to(device).requires_grad_()
    y = graphc.randint(0, 3, (8,)).to(device)
    results = []
    for _ in range(steps):
        model.zero_grad()
        x.grad = None
        out = compiled(x)
        nn.functional.cross_entropy(out, y).backward()
        grads = [x.grad] + [p.grad for p in model.parameters()]
        results.append((out, grads))
    return compiled, results


def test_compiled_forward_and_backward_run_on_the_device(fake_cuda):
    compiled, results = _forward_backward("cuda")
    out, grads = results[-1]
    assert out.grad_fn.name() == "CompiledFunctionBackward"
    assert out.device == "cuda:0" and all(isinstance(g._value, DeviceArray) for g in grads)
    (entry,) = [e for entries in compiled._ready.values() for e in entries]
    assert type(entry).__name__ == "AutogradEntry" and entry.device == "cuda:0"
    names = [g.name for g in fake_cuda.compiled]
    assert "Sequential" in names and "Sequential_backward" in names
    _, cpu_results = _forward_backward("cpu")
    for (out, grads), (cpu_out, cpu_grads) in zip(results, cpu_results):
        np.testing.assert_allclose(out.detach().cpu().numpy(), cpu_out.detach().numpy(), rtol=1e-5, atol=1e-6)
        for g, c in zip(grads, cpu_grads):
            np.testing.assert_allclose(g.cpu().numpy(), c.numpy(), rtol=1e-5, atol=1e-6)
