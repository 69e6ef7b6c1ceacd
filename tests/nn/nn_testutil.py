"""Helpers for comparing graphc.nn with PyTorch: same inputs and weights
in, same values and gradients out."""

from __future__ import annotations

import numpy as np
import torch

import graphc

RTOL = 1e-4
ATOL = 1e-5


def to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x.detach().numpy())


def assert_close(actual, expected, rtol=RTOL, atol=ATOL, what="value"):
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != torch's {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=what)


def pair(*arrays, grad=True):
    """(graphc tensors, torch tensors) built from the same numpy arrays;
    floating arrays require grad when `grad`."""
    gs, ts = [], []
    for arr in arrays:
        arr = np.asarray(arr)
        floating = arr.dtype.kind == "f"
        gs.append(graphc.tensor(arr, requires_grad=grad and floating))
        ts.append(torch.tensor(arr, requires_grad=grad and floating))
    return gs, ts


def compare(g_fn, t_fn, *arrays, grad=True, rtol=RTOL, atol=ATOL, seed=0):
    """Run g_fn on graphc tensors and t_fn on torch tensors made from
    `arrays`; compare outputs and (when grad) input gradients under a random
    cotangent."""
    gs, ts = pair(*arrays, grad=grad)
    g_out, t_out = g_fn(*gs), t_fn(*ts)
    assert_close(g_out, t_out, rtol, atol, "forward")
    if not grad:
        return g_out, t_out
    cot = np.random.default_rng(seed).standard_normal(tuple(t_out.shape)).astype(np.float32)
    (g_out * graphc.tensor(cot)).sum().backward()
    (t_out * torch.tensor(cot)).sum().backward()
    for i, (g, t) in enumerate(zip(gs, ts)):
        if t.requires_grad:
            assert g.grad is not None, f"input {i} got no gradient"
            assert_close(g.grad, t.grad, rtol, atol, f"gradient of input {i}")
    return g_out, t_out


def copy_weights(g_module, t_module):
    """Load the torch module's state dict into the graphc module."""
    state = {k: graphc.tensor(v.detach().numpy().copy()) for k, v in t_module.state_dict().items()}
    g_module.load_state_dict(state)


def compare_modules(g_module, t_module, *arrays, rtol=RTOL, atol=ATOL, check_params=True):
    """Copy weights torch -> graphc, then compare outputs, input gradients
    and parameter gradients."""
    copy_weights(g_module, t_module)
    compare(g_module, t_module, *arrays, rtol=rtol, atol=atol)
    if check_params:
        g_params = dict(g_module.named_parameters())
        for name, t_param in t_module.named_parameters():
            assert g_params[name].grad is not None, f"parameter {name} got no gradient"
            assert_close(g_params[name].grad, t_param.grad, rtol, atol, f"gradient of {name}")


def randn(*shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def compare_precise(g_fn, t_fn, *arrays, grad_inputs=None, compiled=True):
    """Values in float32 and float64, float64 input gradients to rtol 1e-9
    (for the floating inputs, or those indexed by `grad_inputs`), and,
    when `compiled`, graphc.compile of g_fn (eager call, tracing call,
    compiled call) equal to eager."""
    for dtype, rtol, atol in ((np.float32, 1e-5, 1e-6), (np.float64, 1e-10, 1e-12)):
        cast = [np.asarray(a).astype(dtype) if np.asarray(a).dtype.kind == "f" else np.asarray(a) for a in arrays]
        wants = [
            c.dtype.kind == "f" and (grad_inputs is None or i in grad_inputs) and dtype == np.float64
            for i, c in enumerate(cast)
        ]
        gs = [graphc.tensor(c, requires_grad=w) for c, w in zip(cast, wants)]
        ts = [torch.tensor(c, requires_grad=w) for c, w in zip(cast, wants)]
        g_out, t_out = g_fn(*gs), t_fn(*ts)
        assert_close(g_out, t_out, rtol, atol, f"forward {dtype.__name__}")
        if dtype == np.float64 and any(wants):
            cot = np.random.default_rng(1).standard_normal(tuple(t_out.shape))
            (g_out * graphc.tensor(cot)).sum().backward()
            (t_out * torch.tensor(cot)).sum().backward()
            for i, (g, t, w) in enumerate(zip(gs, ts, wants)):
                if w:
                    assert g.grad is not None, f"input {i} got no gradient"
                    assert_close(g.grad, t.grad, 1e-9, 1e-12, f"gradient of input {i}")
    if compiled:
        inputs = [graphc.tensor(np.asarray(a)) for a in arrays]
        expected = to_numpy(g_fn(*inputs))
        fn = graphc.compile(g_fn, backend="interp")
        for _ in range(3):
            np.testing.assert_allclose(to_numpy(fn(*inputs)), expected, rtol=1e-6, atol=1e-7, err_msg="compiled")
