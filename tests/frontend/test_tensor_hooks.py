"""Tensor.register_hook, retain_grad and register_post_accumulate_grad_hook
against PyTorch: the same program (written once for both libraries) sees
the same gradients and leaves the same `.grad`."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from frontend_helpers import assert_same  # noqa: E402

import graphc  # noqa: E402
from graphc.errors import GraphcError  # noqa: E402

DATA = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=np.float32)


def hooked_program(lib):
    """Hooks on a leaf and on intermediates; returns what each one saw."""
    seen = []
    x = lib.tensor(DATA, requires_grad=True)
    hx = x.register_hook(lambda g: g * 2)  # doubles the leaf's gradient
    x.register_hook(lambda g: seen.append(("x", g.clone())))
    y = x.sin() * 3
    y.register_hook(lambda g: seen.append(("y", g.clone())))
    y.register_hook(lambda g: g + 1)  # the replacement reaches what y came from
    y.retain_grad()
    z = y * y  # y used twice: its hooks see the summed gradient once
    z.register_hook(lambda g: g * lib.tensor([1.0, 0.0, 2.0]))
    (z + y).sum().backward()
    return x, y, seen, hx


def test_hooks_modify_gradients_like_torch():
    gx, gy, gseen, _ = hooked_program(graphc)
    tx, ty, tseen, _ = hooked_program(torch)
    assert_same(gx.grad, tx.grad)
    assert_same(gy.grad, ty.grad)  # retain_grad sees the hooked gradient
    assert [k for k, _ in gseen] == [k for k, _ in tseen] == ["y", "x"]
    for (_, g), (_, t) in zip(gseen, tseen):
        assert_same(g, t)


@pytest.mark.parametrize("lib", [graphc, torch], ids=["graphc", "torch"])
def test_removed_hook_no_longer_runs(lib):
    x = lib.ones(3, requires_grad=True)
    calls = []
    h = x.register_hook(lambda g: calls.append(1) or g * 10)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [20.0, 20.0, 20.0]
    h.remove()
    x.grad = None
    (x * 2).sum().backward()
    assert calls == [1]
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_hooks_in_autograd_grad_and_on_custom_function_outputs():
    class Double(graphc.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2 + gb * 3

    x = graphc.tensor(DATA, requires_grad=True)
    a, b = Double.apply(x)
    a.register_hook(lambda g: g * 0)  # cancels a's contribution
    x.register_hook(lambda g: -g)
    (g,) = graphc.autograd.grad((a + b).sum(), x)
    np.testing.assert_allclose(g.numpy(), np.full(DATA.shape, -3.0))
    assert x.grad is None


def test_post_accumulate_grad_hook_sees_accumulated_grad():
    def run(lib):
        w = lib.tensor(DATA, requires_grad=True)
        seen = []
        w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.clone()))
        (w * w).sum().backward()
        (w * 3).sum().backward()
        return seen

    g, t = run(graphc), run(torch)
    assert len(g) == len(t) == 2
    for a, b in zip(g, t):
        assert_same(a, b)


def test_hook_errors():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        graphc.ones(2).register_hook(lambda g: g)
    y = graphc.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="non-leaf"):
        y.register_post_accumulate_grad_hook(lambda t: None)
    y.register_hook(lambda g: graphc.ones(5))
    with pytest.raises(RuntimeError, match=r"hook returned a gradient of shape \[5\]"):
        y.sum().backward()


def test_gradient_clipping_hook_in_compiled_training_step():
    # Hooks on parameters run while the step is traced: part of the program.
    def run(lib, compile_step):
        w = lib.tensor(DATA, requires_grad=True)
        w.register_hook(lambda g: g.clamp(-0.5, 0.5))
        x = lib.tensor(DATA.T.copy())

        def step():
            w.grad = None
            loss = (w @ x).pow(2).sum()
            loss.backward()
            with lib.no_grad():
                w.sub_(0.1 * w.grad)
            return loss

        fn = graphc.compile(step) if compile_step else step
        return [fn().item() for _ in range(4)], w.detach()

    t_losses, tw = run(torch, False)
    for compile_step in (False, True):
        g_losses, gw = run(graphc, compile_step)
        np.testing.assert_allclose(g_losses, t_losses, rtol=1e-5)
        assert_same(gw, tw)


def test_hook_inside_compiled_forward_with_backward_outside_raises():
    def fn(x):
        y = x * 2
        y.register_hook(lambda g: g * 3)
        return y.sum()

    compiled = graphc.compile(fn)
    x = graphc.ones(3, requires_grad=True)
    compiled(x).backward()
    assert x.grad.tolist() == [6.0, 6.0, 6.0]  # the eager first call
    with pytest.raises(GraphcError, match="gradient hook"):
        compiled(x)
