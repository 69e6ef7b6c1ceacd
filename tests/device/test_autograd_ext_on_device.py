"""Custom autograd Functions, tensor hooks and graphc.func on CUDA tensors
(simulated runtime, fake_cuda.py): gradients stay on the device and equal
the CPU's."""

import numpy as np

import graphc
from graphc._device_storage import DeviceArray
from graphc.func import grad

DATA = np.array([[1.0, 3.0, 2.0], [5.0, 4.0, 0.5]], dtype=np.float32)


class MaxWithIndex(graphc.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        v, i = x.max(dim=-1)
        ctx.mark_non_differentiable(i)
        ctx.save_for_backward(x, i)
        return v, i

    @staticmethod
    def backward(ctx, g, g_idx):
        x, i = ctx.saved_tensors
        # new_zeros keeps x's device; the unused index gradient is zeros there too.
        assert g_idx.device == x.device
        return x.new_zeros(x.shape).scatter(-1, i.unsqueeze(-1), g.unsqueeze(-1))


def _run(device, compiled: bool):
    x = graphc.tensor(DATA).to(device).requires_grad_()
    x.register_hook(lambda g: g * 2)

    def fn(x):
        v, _ = MaxWithIndex.apply(x.exp())
        return v

    f = graphc.compile(fn) if compiled else fn
    for _ in range(3 if compiled else 1):
        x.grad = None
        out = f(x)
        (out * 3).sum().backward()
    return out, x.grad


def test_custom_function_and_hooks_on_the_device(fake_cuda):
    cpu_out, cpu_grad = _run("cpu", False)
    for compiled in (False, True):
        out, g = _run("cuda", compiled)
        assert out.device == "cuda:0" and isinstance(g._value, DeviceArray)
        assert out.grad_fn.name() == ("CompiledFunctionBackward" if compiled else "MaxWithIndexBackward")
        np.testing.assert_allclose(out.cpu().detach().numpy(), cpu_out.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(g.cpu().numpy(), cpu_grad.numpy(), rtol=1e-6)


def test_func_grad_on_the_device(fake_cuda):
    x = graphc.tensor(DATA).to("cuda")
    g = grad(lambda t: (t * t).sum())(x)
    assert g.device == "cuda:0"
    np.testing.assert_allclose(g.cpu().numpy(), 2 * DATA)
