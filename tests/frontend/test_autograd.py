"""Autograd: the reference snippets, gradients of composite ops against
torch and finite differences, and PyTorch's autograd API semantics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from frontend_helpers import check_grad

import graphc

RNG = np.random.default_rng(1)


def test_reference_snippets():
    x = graphc.tensor(2.0, requires_grad=True)
    y = x**2
    y.backward()
    assert x.grad.item() == 4.0

    x = graphc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    z = y * 3
    out = z.mean()
    out.backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


# (name, fn usable on graphc and torch tensors, input shapes, positive inputs)
COMPOSITE = [
    (
        "mlp",
        lambda x, w, b: torch_or_graphc(x).relu(x @ w + b).sum(),
        [(4, 3), (3, 5), (5,)],
        False,
    ),
    (
        "softmax",
        lambda x: x.softmax(1) * torch_or_graphc(x).arange(1.0, 6.0),
        [(3, 5)],
        False,
    ),
    ("log_softmax", lambda x: x.log_softmax(-1)[:, 1], [(3, 5)], False),
    ("logsumexp", lambda x: x.logsumexp(0), [(4, 3)], False),
    ("var_std", lambda x: x.var(1) + x.std(0, keepdim=True).sum(), [(3, 4)], False),
    ("div_pow", lambda a, b: a / b + a**3 - b.sqrt(), [(2, 3), (2, 3)], True),
    ("sigmoid_tanh", lambda x: x.sigmoid() * x.tanh(), [(5,)], False),
    (
        "max_dim",
        lambda x: x.max(1).values + x.min(dim=0, keepdim=True).values.sum(),
        [(3, 4)],
        False,
    ),
    ("broadcast", lambda a, b: (a * b - a).exp(), [(2, 1, 3), (4, 1)], False),
    (
        "indexing",
        lambda x: x[1:, ::2] * x[[0, 2]][:, :2] + x[torch_or_graphc(x).tensor([[2, 0], [1, 1]]), 1:3],
        [(3, 4)],
        False,
    ),
    (
        "gather",
        lambda x: x.gather(1, torch_or_graphc(x).tensor([[0, 2], [1, 1], [3, 0]])),
        [(3, 4)],
        False,
    ),
    (
        "cat_stack",
        lambda a, b: torch_or_graphc(a).cat([a, b], 0).sum(0) * torch_or_graphc(a).stack([a, b]).mean(0),
        [(2, 3), (2, 3)],
        False,
    ),
    (
        "permute_reshape",
        lambda x: x.permute(2, 0, 1).reshape(4, -1) @ torch_or_graphc(x).ones(6, 2, dtype=x.dtype),
        [(2, 3, 4)],
        False,
    ),
    (
        "where_clamp",
        lambda x: torch_or_graphc(x).where(x > 0, x * 2, x.clamp(min=-0.5)),
        [(3, 3)],
        False,
    ),
    ("prod_abs", lambda x: x.prod(1) + x.abs().sum(), [(3, 3)], False),
    ("matmul_batched", lambda a, b: a @ b, [(2, 3, 4), (4, 2)], False),
    (
        "squeeze_expand",
        lambda x: x.unsqueeze(0).expand(3, 2, 2).squeeze(),
        [(2, 2)],
        False,
    ),
]


def torch_or_graphc(x):
    return graphc if isinstance(x, graphc.Tensor) else torch


@pytest.mark.parametrize("name,fn,shapes,positive", COMPOSITE, ids=[c[0] for c in COMPOSITE])
def test_composite_gradients_match_torch(name, fn, shapes, positive):
    arrays = [RNG.standard_normal(s) for s in shapes]
    if positive:
        arrays = [np.abs(a) + 0.5 for a in arrays]
    gs = [graphc.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    fn(*gs).sum().backward()
    fn(*ts).sum().backward()
    for i, (g, t) in enumerate(zip(gs, ts)):
        np.testing.assert_allclose(
            g.grad.numpy(),
            t.grad.numpy(),
            rtol=1e-6,
            atol=1e-9,
            err_msg=f"{name} arg {i}",
        )


@pytest.mark.parametrize("name,fn,shapes,positive", COMPOSITE[:8], ids=[c[0] for c in COMPOSITE[:8]])
def test_composite_gradients_match_finite_differences(name, fn, shapes, positive):
    arrays = [RNG.standard_normal(s) for s in shapes]
    if positive:
        arrays = [np.abs(a) + 0.5 for a in arrays]
    check_grad(fn, arrays, rtol=1e-5, atol=1e-6, name=name)


def test_grad_accumulates_on_leaves_only():
    x = graphc.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    (y.sum()).backward(retain_graph=True)
    (y.sum()).backward()
    assert x.grad.tolist() == [6.0, 6.0]
    assert y.grad is None
    assert x.is_leaf and not y.is_leaf


def test_retain_grad_keeps_non_leaf_gradient():
    x = graphc.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.retain_grad()
    y.sum().backward()
    assert y.grad.tolist() == [1.0, 1.0]
    assert x.grad.tolist() == [2.0, 4.0]


def test_second_backward_without_retain_graph_raises():
    x = graphc.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_backward_with_gradient_and_non_scalar_error():
    x = graphc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="only for scalar outputs") as err:
        y.backward()
    assert "test_autograd.py" in str(err.value)
    y.backward(gradient=graphc.tensor([1.0, 0.5, 0.0]))
    assert x.grad.tolist() == [2.0, 1.0, 0.0]


def test_grad_fn_names_and_detach():
    x = graphc.ones(2, requires_grad=True)
    y = x * 2
    assert y.grad_fn.name() == "MulBackward0"
    assert "MulBackward0" in repr(y)
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None
    y.detach_()
    assert y.grad_fn is None and not y.requires_grad


def test_no_grad_enable_grad_set_grad_enabled():
    x = graphc.ones(2, requires_grad=True)
    with graphc.no_grad():
        assert not (x * 2).requires_grad
        with graphc.enable_grad():
            assert (x * 2).requires_grad

    @graphc.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    with graphc.set_grad_enabled(False):
        assert not graphc.is_grad_enabled()
    assert graphc.is_grad_enabled()
    graphc.set_grad_enabled(False)
    assert not graphc.is_grad_enabled()
    graphc.set_grad_enabled(True)
    assert graphc.is_grad_enabled()


def test_inplace_on_leaf_requiring_grad_raises_outside_no_grad():
    w = graphc.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.add_(1)
    with graphc.no_grad():
        w.add_(1)
    assert w.tolist() == [2.0, 2.0, 2.0] and w.requires_grad


def test_inplace_on_non_leaf_is_differentiated():
    x = graphc.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.add_(1)
    y.mul_(x)
    y.exp_()
    y.sum().backward()
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    yt = xt * 2
    yt.add_(1)
    yt.mul_(xt)
    yt.exp_()
    yt.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-6)


def test_autograd_grad_api():
    x = graphc.tensor([1.0, 2.0], requires_grad=True)
    z = graphc.tensor([3.0], requires_grad=True)
    y = (x**3).sum()
    (gx,) = graphc.autograd.grad(y, x, create_graph=True)
    assert gx.tolist() == [3.0, 12.0]
    assert x.grad is None
    (ggx,) = graphc.autograd.grad(gx.sum(), x)
    assert ggx.tolist() == [6.0, 12.0]
    with pytest.raises(RuntimeError, match="appears to not have been used"):
        graphc.autograd.grad((x * 2).sum(), [x, z])
    gx2, gz = graphc.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gz is None and gx2.tolist() == [2.0, 2.0]


def test_requires_grad_rules():
    with pytest.raises(RuntimeError, match="floating point"):
        graphc.tensor([1, 2]).requires_grad_()
    x = graphc.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf variables"):
        (x * 2).requires_grad = False
    assert graphc.ones(2).requires_grad_().requires_grad


def test_comparison_and_integer_results_do_not_require_grad():
    x = graphc.ones(2, requires_grad=True)
    assert not (x > 0).requires_grad
    assert not x.argmax().requires_grad
    assert x.float().requires_grad


def test_leaf_grads_never_share_storage():
    a = graphc.ones(2, requires_grad=True)
    b = graphc.ones(2, requires_grad=True)
    (a + b).sum().backward()
    assert a.grad is not b.grad
    (a * 3 + b).sum().backward()
    assert a.grad.tolist() == [4.0, 4.0] and b.grad.tolist() == [2.0, 2.0]
    g = graphc.ones(2)
    c = graphc.ones(2, requires_grad=True)
    c.view(2).backward(g)
    c.grad.add_(5)
    assert g.tolist() == [1.0, 1.0]


def test_backward_inputs_limits_accumulation():
    a = graphc.ones(2, requires_grad=True)
    b = graphc.ones(2, requires_grad=True)
    (a * b * 3).sum().backward(inputs=[a])
    assert a.grad.tolist() == [3.0, 3.0] and b.grad is None
