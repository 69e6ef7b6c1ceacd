"""Tensor.register_post_accumulate_grad_hook and autograd.queue_callback,
which DistributedDataParallel builds on (in-process; no MPI needed)."""

import numpy as np
import pytest

import graphc
from graphc import autograd

torch = pytest.importorskip("torch")


def _net(lib, w1, w2, x):
    h = (lib.tensor(x) @ w1).tanh()
    return (h @ w2).sum()


def test_hooks_see_the_final_gradient_as_torch_does():
    rng = np.random.default_rng(0)
    w1v, w2v, xv = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((5, 3))
    seen = {}
    for lib in (graphc, torch):
        w1 = lib.tensor(w1v, requires_grad=True)
        w2 = lib.tensor(w2v, requires_grad=True)
        order = []
        for name, w in (("w1", w1), ("w2", w2)):
            w.register_post_accumulate_grad_hook(
                lambda p, name=name, order=order: order.append((name, p.grad.sum().item()))
            )
        _net(lib, w1, w2, xv).backward()
        seen[lib.__name__] = order
    # the layer nearer the loss is ready first, and the values are the final .grad
    assert [n for n, _ in seen["graphc"]] == [n for n, _ in seen["torch"]] == ["w2", "w1"]
    for (_, a), (_, b) in zip(seen["graphc"], seen["torch"]):
        assert a == pytest.approx(b, rel=1e-6)


def test_hook_runs_before_backward_ends_and_callbacks_after():
    w1 = graphc.randn(3, 4, requires_grad=True)
    w2 = graphc.randn(4, 2, requires_grad=True)
    events = []
    w2.register_post_accumulate_grad_hook(lambda p: events.append(("w2", w1.grad is None)))
    w1.register_post_accumulate_grad_hook(lambda p: events.append(("w1", None)))
    autograd.queue_callback(lambda: events.append(("end", w1.grad is not None)))
    _net(graphc, w1, w2, np.ones((5, 3), np.float32)).backward()
    # w2's hook ran while w1's gradient was still being computed
    assert events == [("w2", True), ("w1", None), ("end", True)]


def test_hooks_accumulate_and_remove():
    w = graphc.ones(2, requires_grad=True)
    calls = []
    handle = w.register_post_accumulate_grad_hook(lambda p: calls.append(p.grad.tolist()))
    (w * 3).sum().backward()
    (w * 3).sum().backward()
    assert calls == [[3.0, 3.0], [6.0, 6.0]]
    handle.remove()
    (w * 3).sum().backward()
    assert len(calls) == 2


def test_hooks_under_a_compiled_model():
    model = graphc.nn.Linear(3, 2)
    compiled = graphc.compile(model)
    ready = []
    for p in model.parameters():
        p.register_post_accumulate_grad_hook(lambda p: ready.append(p.grad.clone()))
    for _ in range(3):  # eager, trace + compile, compiled
        ready.clear()
        model.zero_grad()
        compiled(graphc.ones(4, 3)).sum().backward()
        assert len(ready) == 2
    np.testing.assert_allclose(sorted(g.numpy().sum() for g in ready), sorted([4.0 * 2, 4.0 * 3 * 2]))


def test_hook_errors():
    x = graphc.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda p: None)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        graphc.ones(2).register_post_accumulate_grad_hook(lambda p: None)


def test_backward_leaves_the_plain_path_once_hooks_are_gone():
    import gc

    w = graphc.ones(2, requires_grad=True)
    before = autograd._post_hooks_registered
    handle = w.register_post_accumulate_grad_hook(lambda p: None)
    w2 = graphc.ones(2, requires_grad=True)
    w2.register_post_accumulate_grad_hook(lambda p, own=w2: print(own))  # holds its own tensor
    assert autograd._post_hooks_registered == before + 2
    handle.remove()
    handle.remove()  # twice is harmless
    del w2
    gc.collect()
    assert autograd._post_hooks_registered == before
