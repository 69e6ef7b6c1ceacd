"""Module hooks against PyTorch: forward pre/post hooks (with and without
kwargs), full backward (pre) hooks, global hooks, handles; forward hooks
under graphc.compile."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from frontend_helpers import assert_same  # noqa: E402

import graphc  # noqa: E402
import graphc.nn as gnn  # noqa: E402

RNG = np.random.default_rng(11)
X = RNG.standard_normal((4, 3)).astype(np.float32)


def net(lib):
    """A small model with the same weights in both libraries."""
    nn = lib.nn
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    rng = np.random.default_rng(0)
    with lib.no_grad():
        for p in model.parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
    return model


class Scale(gnn.Module):
    def forward(self, x, factor=1.0):
        return x * factor


class TScale(torch.nn.Module):
    def forward(self, x, factor=1.0):
        return x * factor


def test_forward_pre_hook_and_forward_hook_replace_args_and_output():
    outs = []
    for lib in (graphc, torch):
        model = net(lib)
        model[0].register_forward_pre_hook(lambda m, args: args[0] * 2)  # a single value
        h = model[2].register_forward_hook(lambda m, args, out: out + args[0].sum())
        a = model(lib.tensor(X))
        h.remove()
        b = model(lib.tensor(X))
        outs.append((a, b))
    assert_same(outs[0][0], outs[1][0].detach(), rtol=1e-5, atol=1e-5)
    assert_same(outs[0][1], outs[1][1].detach(), rtol=1e-5, atol=1e-5)


def test_hooks_with_kwargs():
    results = []
    for lib, cls in ((graphc, Scale), (torch, TScale)):
        m = cls()
        m.register_forward_pre_hook(
            lambda mod, args, kwargs: (args, {"factor": kwargs["factor"] * 10}), with_kwargs=True
        )
        m.register_forward_hook(lambda mod, args, kwargs, out: out - kwargs["factor"], with_kwargs=True)
        results.append(m(lib.tensor(X), factor=0.5))
    assert_same(results[0], results[1])
    m = Scale()
    m.register_forward_pre_hook(lambda mod, args, kwargs: args, with_kwargs=True)
    with pytest.raises(RuntimeError, match=r"tuple of \(new_args, new_kwargs\)"):
        m(graphc.tensor(X))


def _features(lib) -> dict:
    model = net(lib)
    got = {}

    def keep(name):
        return lambda m, args, out: got.__setitem__(name, out.detach())

    handles = [model[1].register_forward_hook(keep("relu")), model[0].register_forward_hook(keep("fc1"))]
    model(lib.tensor(X))
    for h in handles:
        h.remove()
    return got


def test_feature_extraction_with_forward_hooks():
    g, t = _features(graphc), _features(torch)
    for k in ("relu", "fc1"):
        assert_same(g[k], t[k], rtol=1e-5, atol=1e-6)


def test_global_forward_hooks():
    from graphc.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    names = []
    h1 = register_module_forward_pre_hook(lambda m, args: names.append(("pre", type(m).__name__)))
    h2 = register_module_forward_hook(lambda m, args, out: names.append(("post", type(m).__name__)))
    try:
        net(graphc)(graphc.tensor(X))
    finally:
        h1.remove()
        h2.remove()
    assert names[:2] == [("pre", "Sequential"), ("pre", "Linear")]
    assert names[-1] == ("post", "Sequential") and len(names) == 8
    net(graphc)(graphc.tensor(X))
    assert len(names) == 8


def _backward_hook_run(lib, modify: bool):
    model = net(lib)
    log = []

    def pre(m, grad_output):
        log.append(("pre", [g.clone() for g in grad_output]))
        return (grad_output[0] * 2,) if modify else None

    def post(m, grad_input, grad_output):
        log.append(("post", [g.clone() for g in grad_input], [g.clone() for g in grad_output]))
        return (grad_input[0] + 1,) if modify else None

    model[2].register_full_backward_pre_hook(pre)
    model[2].register_full_backward_hook(post)
    x = lib.tensor(X, requires_grad=True)
    model(x).pow(2).sum().backward()
    return log, x.grad, model[0].weight.grad


@pytest.mark.parametrize("modify", [False, True])
def test_full_backward_hooks_like_torch(modify):
    glog, gx, gw = _backward_hook_run(graphc, modify)
    tlog, tx, tw = _backward_hook_run(torch, modify)
    assert [e[0] for e in glog] == [e[0] for e in tlog] == ["pre", "post"]
    for ge, te in zip(glog, tlog):
        for gs, ts in zip(ge[1:], te[1:]):
            assert_same(gs, ts, rtol=1e-5, atol=1e-5)
    assert_same(gx, tx, rtol=1e-5, atol=1e-5)
    assert_same(gw, tw, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("lib", [graphc, torch], ids=["graphc", "torch"])
def test_full_backward_hook_when_no_input_requires_grad(lib):
    lin = net(lib)[0]
    seen = []
    lin.register_full_backward_hook(lambda m, gi, go: seen.append((gi, tuple(go[0].shape))))
    lin(lib.tensor(X)).sum().backward()
    assert seen == [((None,), (4, 5))]


def test_forward_hooks_run_while_tracing_under_compile():
    model = net(graphc)
    model[1].register_forward_hook(lambda m, args, out: out * 0.5)
    model[0].register_forward_pre_hook(lambda m, args: (args[0] + 1,))
    calls = []
    model[2].register_forward_hook(lambda m, args, out: calls.append(out.is_symbolic))
    tmodel = net(torch)
    tmodel[1].register_forward_hook(lambda m, args, out: out * 0.5)
    tmodel[0].register_forward_pre_hook(lambda m, args: (args[0] + 1,))
    compiled = graphc.compile(model)
    for _ in range(3):
        out = compiled(graphc.tensor(X))
    assert calls == [False, True]  # the eager first call, then the trace
    assert_same(out, tmodel(torch.tensor(X)).detach(), rtol=1e-5, atol=1e-5)


def test_full_backward_hook_scaling_grad_input_under_compile():
    # The hooks' tensor ops become part of the compiled backward program.
    def run(lib, compiled):
        model = net(lib)
        model[2].register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,))
        model[0].register_full_backward_pre_hook(lambda m, go: (go[0].clamp(-0.1, 0.1),))
        fn = graphc.compile(model) if compiled else model
        x = lib.tensor(X, requires_grad=True)
        for _ in range(3 if compiled else 1):
            x.grad = None
            model.zero_grad()
            out = fn(x)
            out.pow(2).sum().backward()
        return out, x.grad, model[0].weight.grad

    tout, tx, tw = run(torch, False)
    for compiled in (False, True):
        gout, gx, gw = run(graphc, compiled)
        if compiled:
            assert gout.grad_fn.name() == "CompiledFunctionBackward"
        for g, t in [(gout, tout), (gx, tx), (gw, tw)]:
            assert_same(g, t.detach(), rtol=1e-5, atol=1e-5)


def test_global_backward_hooks_and_prepend_order():
    from graphc.nn.modules.module import register_module_full_backward_hook, register_module_full_backward_pre_hook

    model = net(graphc)
    order = []
    model[2].register_forward_hook(lambda m, a, o: order.append("second"))
    model[2].register_forward_hook(lambda m, a, o: order.append("first"), prepend=True)
    seen = []
    h1 = register_module_full_backward_pre_hook(lambda m, go: seen.append(("pre", type(m).__name__)))
    h2 = register_module_full_backward_hook(lambda m, gi, go: seen.append(("post", type(m).__name__)))
    try:
        model(graphc.tensor(X, requires_grad=True)).sum().backward()
    finally:
        h1.remove()
        h2.remove()
    assert order == ["first", "second"]
    # Outermost module first: its output gradient is known before its layers'.
    assert seen[0] == ("pre", "Sequential") and seen[-1] == ("post", "Sequential")
    assert [k for k, name in seen if name == "Linear"] == ["pre", "post", "pre", "post"]
    seen.clear()
    model(graphc.tensor(X, requires_grad=True)).sum().backward()
    assert seen == []
