"""graphc.compile on calls whose results require grad: a compiled forward and
a compiled backward (graphc/_compiled_autograd.py) that fill `.grad` as
eager graphc and PyTorch do."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
from graphc._compile import _Entry
from graphc.vision.models import Net

RNG = np.random.default_rng(7)


def _compiled_call(compiled, *args, **kwargs):
    """Call `compiled` until it runs the compiled program (the first call of
    a signature is eager, the second traces), returning that result."""
    for _ in range(3):
        out = compiled(*args, **kwargs)
    first = out[0] if isinstance(out, (tuple, list)) else out
    assert first.grad_fn is not None and first.grad_fn.name() == "CompiledFunctionBackward", first.grad_fn
    return out


def _zero_grads(*tensors):
    for t in tensors:
        t.grad = None


def _grads(params) -> list:
    return [None if p.grad is None else p.grad.numpy().copy() for p in params]


def _copy_from_torch(g_model, t_model):
    g_model.load_state_dict({k: graphc.tensor(v.detach().numpy().copy()) for k, v in t_model.state_dict().items()})
    return g_model


def _assert_grads_match(g_params, t_params, rtol=1e-5, atol=1e-6):
    for (name, g), t in zip(g_params, t_params):
        assert g.grad is not None, name
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol, err_msg=name)


class TorchMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(12, 32)
        self.fc2 = torch.nn.Linear(32, 5)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 32)
        self.fc2 = nn.Linear(32, 5)

    def forward(self, x):
        return self.fc2(graphc.tanh(self.fc1(x)))


class TorchNet(torch.nn.Module):
    """The reference CNN (graphc.vision.models.Net) in PyTorch."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = torch.nn.Conv2d(10, 20, kernel_size=5)
        self.fc1 = torch.nn.Linear(320, 50)
        self.fc2 = torch.nn.Linear(50, 10)

    def forward(self, x):
        tf = torch.nn.functional
        x = tf.relu(tf.max_pool2d(self.conv1(x), 2))
        x = tf.relu(tf.max_pool2d(self.conv2(x), 2))
        x = tf.relu(self.fc1(x.view(-1, 320)))
        return tf.log_softmax(self.fc2(x), dim=1)


# ---------------------------------------------------------------------------
# gradients against eager graphc and PyTorch


def test_mlp_parameter_and_input_grads_match_eager_and_torch():
    torch.manual_seed(0)
    t_model = TorchMLP()
    g_model = _copy_from_torch(MLP(), t_model)
    compiled = graphc.compile(g_model)
    x_np = RNG.standard_normal((16, 12)).astype(np.float32)
    x = graphc.tensor(x_np, requires_grad=True)
    params = list(g_model.parameters())

    eager_out = g_model(x)
    eager_out.sum().backward()
    eager = _grads(params + [x])
    _zero_grads(*params, x)

    out = _compiled_call(compiled, x)
    _zero_grads(*params, x)
    out.sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), eager_out.detach().numpy(), rtol=1e-5, atol=1e-6)
    for got, want in zip(_grads(params + [x]), eager):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    tx = torch.tensor(x_np, requires_grad=True)
    t_model(tx).sum().backward()
    _assert_grads_match(list(g_model.named_parameters()), list(t_model.parameters()))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_reference_cnn_grads_match_torch_and_sgd_steps_follow():
    torch.manual_seed(1)
    t_model = TorchNet()
    g_model = _copy_from_torch(Net(), t_model)
    compiled = graphc.compile(g_model)
    x_np = RNG.standard_normal((8, 1, 28, 28)).astype(np.float32)
    y_np = RNG.integers(0, 10, 8)
    x, y = graphc.tensor(x_np, requires_grad=True), graphc.tensor(y_np)
    tx, ty = torch.tensor(x_np, requires_grad=True), torch.tensor(y_np)
    _compiled_call(compiled, x)
    g_opt = graphc.optim.SGD(g_model.parameters(), lr=0.05, momentum=0.9)
    t_opt = torch.optim.SGD(t_model.parameters(), lr=0.05, momentum=0.9)
    for step in range(3):
        g_opt.zero_grad()
        t_opt.zero_grad()
        x.grad, tx.grad = None, None
        out = compiled(x)
        assert out.grad_fn.name() == "CompiledFunctionBackward"
        loss = F.nll_loss(out, y)
        loss.backward()
        t_loss = torch.nn.functional.nll_loss(t_model(tx), ty)
        t_loss.backward()
        np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-5, err_msg=f"step {step}")
        _assert_grads_match(list(g_model.named_parameters()), list(t_model.parameters()), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)
        g_opt.step()
        t_opt.step()
    for (name, g), t in zip(g_model.named_parameters(), t_model.parameters()):
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def test_only_some_inputs_require_grad():
    def f(a, b, c):
        return (a * b + c.exp() * b).sum(dim=1)

    arrays = [RNG.standard_normal((4, 3)).astype(np.float32) for _ in range(3)]
    flags = (True, False, True)
    g_in = [graphc.tensor(a, requires_grad=r) for a, r in zip(arrays, flags)]
    t_in = [torch.tensor(a, requires_grad=r) for a, r in zip(arrays, flags)]
    out = _compiled_call(graphc.compile(f), *g_in)
    out.sum().backward()
    f(*t_in).sum().backward()
    assert g_in[1].grad is None
    for g, t in zip(g_in, t_in):
        if t.requires_grad:
            np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_parameter_the_forward_does_not_use_keeps_no_grad():
    model = MLP()
    model.unused = nn.Linear(2, 2)
    out = _compiled_call(graphc.compile(model), graphc.randn(3, 12))
    out.sum().backward()
    assert model.fc1.weight.grad is not None
    assert model.unused.weight.grad is None


def test_tuple_outputs_and_an_output_without_gradient():
    def f(x, w):
        h = x @ w
        return h.relu(), h.sum(dim=0), h.argmax(dim=1)

    x_np, w_np = RNG.standard_normal((5, 4)).astype(np.float32), RNG.standard_normal((4, 3)).astype(np.float32)
    x, w = graphc.tensor(x_np), graphc.tensor(w_np, requires_grad=True)
    tw = torch.tensor(w_np, requires_grad=True)
    a, b, idx = _compiled_call(graphc.compile(f), x, w)
    assert not idx.requires_grad and idx.grad_fn is None
    ta, tb, tidx = f(torch.tensor(x_np), tw)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    (a * 2).sum().backward(retain_graph=True)
    (ta * 2).sum().backward(retain_graph=True)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-6)
    (a.mean() + (b**2).sum()).backward()
    (ta.mean() + (tb**2).sum()).backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_output_used_twice_and_returned_twice():
    def f(x):
        y = x.sin() * 3
        return y, y

    x_np = RNG.standard_normal(6).astype(np.float32)
    x, tx = graphc.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    y1, y2 = _compiled_call(graphc.compile(f), x)
    x.grad = None
    (y1 * y1 + y2).sum().backward()
    ty1, ty2 = f(tx)
    (ty1 * ty1 + ty2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_backward_with_a_non_scalar_gradient():
    model = MLP()
    x = graphc.randn(7, 12, requires_grad=True)
    out = _compiled_call(graphc.compile(model), x)
    seed_np = RNG.standard_normal((7, 5)).astype(np.float32)
    x.grad = None
    out.backward(graphc.tensor(seed_np))
    got = x.grad.numpy().copy()
    x.grad = None
    model(x).backward(graphc.tensor(seed_np))
    np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        _compiled_call(graphc.compile(model), x).backward()


def test_gradient_flows_on_through_an_eager_history():
    a_np = RNG.standard_normal((3, 12)).astype(np.float32)
    a, ta = graphc.tensor(a_np, requires_grad=True), torch.tensor(a_np, requires_grad=True)
    compiled = graphc.compile(lambda v: (v * v).sum(dim=1))
    out = _compiled_call(compiled, a * 2 + 1)
    out.sum().backward()
    ((ta * 2 + 1) ** 2).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_detach_inside_the_function_cuts_the_gradient_as_in_eager():
    x_np = RNG.standard_normal(5).astype(np.float32)
    x, tx = graphc.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    out = _compiled_call(graphc.compile(lambda v: v * v.detach()), x)
    out.sum().backward()
    (tx * tx.detach()).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


def test_autograd_grad_and_retain_grad_on_compiled_outputs():
    x_np = RNG.standard_normal((2, 12)).astype(np.float32)
    x, tx = graphc.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    torch.manual_seed(2)
    t_model = TorchMLP()
    out = _compiled_call(graphc.compile(_copy_from_torch(MLP(), t_model)), x)
    (gx,) = graphc.autograd.grad((out**2).sum(), x, retain_graph=True)
    (tgx,) = torch.autograd.grad((t_model(tx) ** 2).sum(), tx)
    np.testing.assert_allclose(gx.numpy(), tgx.numpy(), rtol=1e-5, atol=1e-6)
    assert x.grad is None
    out.retain_grad()
    (out * 3).sum().backward()
    np.testing.assert_allclose(out.grad.numpy(), np.full((2, 5), 3.0, np.float32))


# ---------------------------------------------------------------------------
# autograd semantics


def test_second_backward_raises_unless_retain_graph():
    model = MLP()
    x = graphc.randn(3, 12)
    # The compiled node is the root: its own residuals decide, not an eager record's.
    compiled = graphc.compile(lambda v: model(v).sum())
    loss = _compiled_call(compiled, x)
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()

    loss = compiled(x)
    model.zero_grad()
    loss.backward(retain_graph=True)
    once = model.fc1.weight.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(model.fc1.weight.grad.numpy(), 2 * once, rtol=1e-6)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_double_backward_through_a_compiled_forward_is_a_clear_error():
    x = graphc.randn(3, 12, requires_grad=True)
    out = _compiled_call(graphc.compile(MLP()), x)
    with pytest.raises(RuntimeError, match="create_graph=True .double backward. is not supported"):
        graphc.autograd.grad(out.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        out.sum().backward(create_graph=True)


def test_no_grad_calls_use_the_forward_only_program():
    model = MLP()
    compiled = graphc.compile(model)
    x = graphc.randn(4, 12)
    with_grad = _compiled_call(compiled, x)
    with graphc.no_grad():
        for _ in range(3):
            plain = compiled(x)
    assert plain.grad_fn is None and not plain.requires_grad
    np.testing.assert_allclose(plain.numpy(), with_grad.detach().numpy(), rtol=1e-6)
    kinds = sorted(type(e).__name__ for entries in compiled._cache.values() for e in entries)
    assert kinds == ["AutogradEntry", "_Entry"], kinds
    assert any(isinstance(e, _Entry) for entries in compiled._cache.values() for e in entries)


# ---------------------------------------------------------------------------
# state: dropout's random numbers, BatchNorm statistics, train/eval


class DropNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 20)
        self.bn = nn.BatchNorm1d(20)
        self.drop = nn.Dropout(0.4)
        self.out = nn.Linear(20, 3)

    def forward(self, x):
        return self.out(self.drop(F.relu(self.bn(self.fc(x)))))


def _run_steps(model, call, x, steps, seed):
    """Forward+backward `steps` times from a fixed seed: outputs and grads."""
    graphc.manual_seed(seed)
    results = []
    for _ in range(steps):
        model.zero_grad()
        x.grad = None
        out = call(x)
        out.pow(2).sum().backward()
        results.append([out.detach().numpy().copy(), x.grad.numpy().copy()] + _grads(model.parameters()))
    return results


def test_dropout_mask_is_shared_by_forward_and_backward():
    x = graphc.randn(16, 10, requires_grad=True)
    drop = graphc.compile(lambda v: F.dropout(v, 0.5, training=True))
    graphc.manual_seed(3)
    out = _compiled_call(drop, x)
    x.grad = None
    out.sum().backward()
    kept = out.detach().numpy() != 0
    assert 0 < kept.sum() < kept.size
    np.testing.assert_array_equal(x.grad.numpy(), np.where(kept, 2.0, 0.0).astype(np.float32))


def test_dropout_and_batchnorm_model_matches_eager_across_train_and_eval():
    graphc.manual_seed(4)
    eager_model, compiled_model = DropNet(), DropNet()
    compiled_model.load_state_dict(eager_model.state_dict())
    compiled = graphc.compile(compiled_model)
    x = graphc.randn(32, 10, requires_grad=True)
    for mode in ("train", "eval", "train"):
        getattr(eager_model, mode)()
        getattr(compiled_model, mode)()
        # Warm-up (the compiled model's eager call, then its trace), the same in both.
        _run_steps(compiled_model, compiled, x, 2, seed=0)
        _run_steps(eager_model, eager_model, x, 2, seed=0)
        eager = _run_steps(eager_model, eager_model, x, 3, seed=5)
        comp = _run_steps(compiled_model, compiled, x, 3, seed=5)
        for step, (e, c) in enumerate(zip(eager, comp)):
            for i, (a, b) in enumerate(zip(c, e)):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=f"{mode} step {step} item {i}")
        # The running statistics moved once per forward call, in both models.
        np.testing.assert_allclose(
            compiled_model.bn.running_mean.numpy(), eager_model.bn.running_mean.numpy(), rtol=1e-5, atol=1e-6
        )
    assert int(compiled_model.bn.num_batches_tracked.item()) == 2 * (2 + 3)


def test_batchnorm_statistics_update_once_per_forward_not_per_backward():
    graphc.manual_seed(6)
    model = nn.BatchNorm1d(4)
    compiled = graphc.compile(model)
    x = graphc.randn(8, 4, requires_grad=True)
    out = _compiled_call(compiled, x)
    mean_after_forward = model.running_mean.numpy().copy()
    tracked = int(model.num_batches_tracked.item())
    out.sum().backward()
    np.testing.assert_array_equal(model.running_mean.numpy(), mean_after_forward)
    assert int(model.num_batches_tracked.item()) == tracked == 3
    t_model = torch.nn.BatchNorm1d(4)
    tx = torch.tensor(x.detach().numpy())
    for _ in range(3):
        t_model(tx)
    np.testing.assert_allclose(mean_after_forward, t_model.running_mean.numpy(), rtol=1e-5, atol=1e-6)


def test_backward_inputs_and_nested_keyword_arguments():
    def f(x, params):
        return (x @ params["w"] + params["b"]).tanh()

    x_np, w_np, b_np = (RNG.standard_normal(s).astype(np.float32) for s in ((3, 4), (4, 2), (2,)))
    x = graphc.tensor(x_np, requires_grad=True)
    w, b = graphc.tensor(w_np, requires_grad=True), graphc.tensor(b_np, requires_grad=True)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
    out = _compiled_call(graphc.compile(f), x, params={"w": w, "b": b})
    _zero_grads(x, w, b)
    out.sum().backward(inputs=[w])
    assert x.grad is None and b.grad is None
    f(tx, {"w": tw, "b": tb}).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_freezing_a_parameter_recompiles_without_its_gradient():
    model = MLP()
    compiled = graphc.compile(model)
    x = graphc.randn(4, 12)
    _compiled_call(compiled, x).sum().backward()
    model.fc1.weight.requires_grad_(False)
    model.zero_grad(set_to_none=True)
    out = _compiled_call(compiled, x)
    out.sum().backward()
    assert model.fc1.weight.grad is None
    frozen = _grads([model.fc1.bias, model.fc2.weight])
    model.zero_grad(set_to_none=True)
    model(x).sum().backward()
    for got, want in zip(frozen, _grads([model.fc1.bias, model.fc2.weight])):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_compiled_loss_on_a_compiled_model_chains_both_backwards():
    torch.manual_seed(3)
    t_model = TorchMLP()
    g_model = _copy_from_torch(MLP(), t_model)
    model = graphc.compile(g_model)
    loss_fn = graphc.compile(lambda out, target: F.cross_entropy(out, target))
    x_np, y_np = RNG.standard_normal((6, 12)).astype(np.float32), RNG.integers(0, 5, 6)
    x, y = graphc.tensor(x_np), graphc.tensor(y_np)
    for _ in range(3):
        g_model.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
    assert loss.grad_fn.name() == "CompiledFunctionBackward"
    assert loss.grad_fn.next_functions[0][0].name() == "CompiledFunctionBackward"
    t_loss = torch.nn.functional.cross_entropy(t_model(torch.tensor(x_np)), torch.tensor(y_np))
    t_loss.backward()
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-5)
    _assert_grads_match(list(g_model.named_parameters()), list(t_model.parameters()))


def test_an_argument_named_like_a_cotangent_does_not_clash():
    def f(grad_out):
        return grad_out * 2

    x = graphc.randn(3, requires_grad=True)
    out = _compiled_call(graphc.compile(f), x)
    out.backward(graphc.ones(3))
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 2.0, np.float32))


def test_copies_and_in_place_ops_on_compiled_outputs_keep_the_gradient():
    x_np = RNG.standard_normal(5).astype(np.float32)
    x, tx = graphc.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    compiled = graphc.compile(lambda v: v.sin())
    out = _compiled_call(compiled, x)
    copied, sliced = graphc.zeros(5), graphc.zeros(5)
    copied.copy_(out)
    sliced[:] = out
    activated = compiled(x).relu_()
    x.grad = None
    (copied.sum() + sliced.sum() + (activated * 3).sum()).backward()
    t_copied, t_sliced = torch.zeros(5), torch.zeros(5)
    t_copied.copy_(tx.sin())
    t_sliced[:] = tx.sin()
    (t_copied.sum() + t_sliced.sum() + (tx.sin().relu_() * 3).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("modified", ["output", "input"])
def test_in_place_change_of_a_saved_tensor_raises_at_backward_as_in_torch(modified):
    # exp saves its output; mul by w saves w: changing either in place
    # before backward changes the gradient, so backward raises (torch's
    # version counter), eager and compiled alike.
    def fn(lib, v, w):
        return (v * w).exp()

    x_np = RNG.standard_normal(4).astype(np.float32)
    compiled = graphc.compile(lambda v, w: fn(graphc, v, w))
    for lib, call in ((torch, lambda v, w: fn(torch, v, w)), (graphc, compiled)):
        x = lib.tensor(x_np, requires_grad=True)
        w = lib.tensor(x_np + 1, requires_grad=True)
        out = _compiled_call(call, x, w) if lib is graphc else call(x, w)
        with lib.no_grad():
            (out if modified == "output" else w).mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()


def test_unchanged_saved_tensors_backward_after_other_in_place_ops():
    x_np = RNG.standard_normal(4).astype(np.float32)
    compiled = graphc.compile(lambda v: v.exp().sum())
    x = graphc.tensor(x_np, requires_grad=True)
    out = _compiled_call(compiled, x)
    unrelated = graphc.ones(4)
    unrelated.mul_(2)
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp(x_np), rtol=1e-6)
