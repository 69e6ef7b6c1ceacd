"""PyTorch's version counter: in-place ops count versions (shared by views),
and backward raises when a value a gradient needs was modified in place
after the forward op; values no gradient reads are free to change. Each
scenario runs on graphc and torch and must end the same way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc

MODIFIED = "modified by an inplace operation"


def _versions(lib):
    t = lib.ones(3)
    seen = []
    t.add_(1)
    seen.append(t._version)
    t[0] = 2.0
    seen.append(t._version)
    t.zero_()
    t += 1
    seen.append(t._version)
    view = t.view(-1)
    view.add_(1)
    seen.append((t._version, view._version))
    part = t[0:2]
    part.mul_(2)
    seen.append((t._version, part._version))
    detached = t.detach()
    detached.add_(1)
    seen.append((t._version, detached._version))
    t.data.add_(1)  # .data is invisible to autograd: no version bump
    seen.append(t._version)
    m = lib.ones(2, 3)
    m.t().add_(1)
    m.t().reshape(-1).add_(1)  # reshape of a transpose copies
    seen.append(m._version)
    return seen


def test_versions_count_like_torch_and_views_share_them():
    assert _versions(graphc) == _versions(torch)


def _sigmoid_then_mul_(lib):
    x = lib.ones(3, requires_grad=True)
    a = x.sigmoid()
    y = a * 2
    a.mul_(2)
    y.sum().backward()
    return x.grad


def _modified_through_view(lib):
    x = lib.ones(3, requires_grad=True)
    a = x.exp()
    a[0:2].mul_(2)
    a.sum().backward()
    return x.grad


def _input_of_a_product_changed_under_no_grad(lib):
    w = lib.ones(3, requires_grad=True)
    x = lib.ones(3, requires_grad=True)
    y = (w * x).sum()
    with lib.no_grad():
        w.add_(1)
    y.backward()
    return w.grad


def _square_input_changed(lib):
    w = lib.ones(3, requires_grad=True)
    y = (w * w).sum()
    with lib.no_grad():
        w.mul_(2)
    y.backward()
    return w.grad


def _weight_changed_before_backward(lib):
    weight = lib.ones(3, 3, requires_grad=True)
    x = lib.ones(2, 3, requires_grad=True)
    y = (x @ weight.t()).sum()
    with lib.no_grad():
        weight.add_(1)
    y.backward()
    return x.grad


def _sin_input_changed_between_backwards(lib):
    w = lib.ones(3, requires_grad=True)
    y = w.sin().sum()
    y.backward(retain_graph=True)
    with lib.no_grad():
        w.mul_(2)
    y.backward()
    return w.grad


def _softmax_output_changed(lib):
    x = lib.ones(2, 3, requires_grad=True)
    p = x.softmax(1)
    p.add_(1)
    p.sum().backward()
    return x.grad


def _where_mask_changed(lib):
    x = lib.ones(3, requires_grad=True)
    mask = lib.tensor([True, False, True])
    y = lib.where(mask, x, -x)
    mask.logical_not_()
    y.sum().backward()
    return x.grad


def _exp_then_sin_(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.exp_()  # its gradient reads its output, which sin_ then changes
    y.sin_()
    y.sum().backward()
    return x.grad


RAISES = [
    _exp_then_sin_,
    _sigmoid_then_mul_,
    _modified_through_view,
    _input_of_a_product_changed_under_no_grad,
    _square_input_changed,
    _weight_changed_before_backward,
    _sin_input_changed_between_backwards,
    _softmax_output_changed,
    _where_mask_changed,
]


@pytest.mark.parametrize("scenario", RAISES, ids=lambda f: f.__name__.strip("_"))
def test_modified_saved_value_raises_at_backward_like_torch(scenario):
    with pytest.raises(RuntimeError, match=MODIFIED):
        scenario(torch)
    with pytest.raises(RuntimeError, match=MODIFIED) as err:
        scenario(graphc)
    assert "test_version_counter.py:" in str(err.value)


def test_message_names_the_backward_op_versions_and_the_inplace_op():
    with pytest.raises(RuntimeError) as err:
        _sigmoid_then_mul_(graphc)
    msg = str(err.value)
    assert "Backward0" in msg and "is at version 1; expected version 0" in msg and "mul_" in msg


def _unsaved_value_changed(lib):
    x = lib.ones(3, requires_grad=True)
    a = x + 1
    y = a * 2
    a.mul_(3)  # add saves nothing and mul by a constant saves only the constant
    y.sum().backward()
    return x.grad


def _constant_operand_of_a_product(lib):
    w = lib.ones(3, requires_grad=True)
    x = lib.full((3,), 2.0)
    y = (w * x).sum()
    with lib.no_grad():
        w.add_(1)  # only x is needed for w's gradient
    y.backward()
    return w.grad


def _exp_input_changed_between_backwards(lib):
    w = lib.ones(3, requires_grad=True)
    y = w.exp().sum()  # exp's gradient reads its output, not its input
    y.backward(retain_graph=True)
    with lib.no_grad():
        w.mul_(2)
    y.backward()
    return w.grad


def _inplace_chain_on_a_non_leaf(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.add_(1)
    y.mul_(x)
    y.sin_()  # sin_ saves the value from before it; graphc keeps that value
    y.sum().backward()
    return x.grad


def _relu_inplace_after_linear(lib):
    lib.manual_seed(0)
    layer = lib.nn.Linear(3, 2)
    with lib.no_grad():
        layer.weight.copy_(lib.tensor([[0.5, -1.0, 0.25], [1.0, 0.5, -0.5]]))
        layer.bias.copy_(lib.tensor([0.1, -2.0]))
    h = layer(lib.ones(4, 3))
    lib.nn.functional.relu(h, inplace=True)
    h.sum().backward()
    return layer.weight.grad


WORKS = [
    _unsaved_value_changed,
    _constant_operand_of_a_product,
    _exp_input_changed_between_backwards,
    _inplace_chain_on_a_non_leaf,
    _relu_inplace_after_linear,
]


@pytest.mark.parametrize("scenario", WORKS, ids=lambda f: f.__name__.strip("_"))
def test_changes_no_gradient_reads_are_allowed_like_torch(scenario):
    expected = scenario(torch)
    got = scenario(graphc)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_optimizer_updates_in_place_between_steps():
    """The usual loop (forward, backward, in-place step) never trips the
    check: each backward frees the records the step would invalidate."""
    graphc.manual_seed(0)
    model = graphc.nn.Sequential(graphc.nn.Linear(4, 8), graphc.nn.Tanh(), graphc.nn.Linear(8, 1))
    params = list(model.parameters())
    for optimizer in (graphc.optim.SGD(params, lr=0.1, momentum=0.9), graphc.optim.Adam(params)):
        x, y = graphc.randn(16, 4), graphc.randn(16, 1)
        losses = []
        for _ in range(5):
            optimizer.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0]
    assert all(p._version > 0 for p in model.parameters())


def test_check_fires_while_tracing_and_compiling():
    def bad_step(x):
        a = x.sigmoid()
        y = a * 2
        a.mul_(2)
        y.sum().backward()
        return y

    with pytest.raises(RuntimeError, match=MODIFIED):
        graphc.trace(bad_step, graphc.ones(3, requires_grad=True))
    step = graphc.compile(bad_step, backend="interp")
    with pytest.raises(RuntimeError, match=MODIFIED):
        step(graphc.ones(3, requires_grad=True))
