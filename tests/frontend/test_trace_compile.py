"""Tracing and graphc.compile: graphs that the interpreter runs to the eager
numbers, state capture and write-back, data-dependent control flow errors,
and a compiled training step that matches eager training."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.errors import GraphcError, TraceError
from graphc.ir.ops import Op
from graphc.runtime import interpreter


class TinyMLP:
    """Module-like object (named_parameters + forward) without graphc.nn."""

    def __init__(self, seed=0):
        graphc.manual_seed(seed)
        self.w1 = (graphc.randn(4, 8) * 0.5).requires_grad_()
        self.b1 = graphc.zeros(8, requires_grad=True)
        self.w2 = (graphc.randn(8, 3) * 0.5).requires_grad_()
        self.training = True

    def named_parameters(self):
        return [("fc1.weight", self.w1), ("fc1.bias", self.b1), ("fc2.weight", self.w2)]

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def modules(self):
        return [self]

    def forward(self, x):
        return graphc.relu(x @ self.w1 + self.b1) @ self.w2

    def __call__(self, x):
        return self.forward(x)


def test_trace_mlp_runs_on_interpreter_like_eager():
    model = TinyMLP()
    x = graphc.randn(5, 4)
    graph = graphc.trace(model, x)
    assert [i.attrs["name"] for i in graph.inputs] == [
        "x",
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
    ]
    assert any(n.op is Op.DOT for n in graph.nodes)
    arrays = [
        x.numpy(),
        model.w1.detach().numpy(),
        model.b1.detach().numpy(),
        model.w2.detach().numpy(),
    ]
    (out,) = interpreter.run(graph, arrays)
    np.testing.assert_allclose(out, model(x).detach().numpy(), rtol=1e-6)
    # The trace left the parameters concrete.
    assert not model.w1.is_symbolic and model.w1.grad is None


def test_trace_records_state_writes_and_output_structure():
    counter = graphc.zeros(())
    w = graphc.ones(3, requires_grad=True)

    def f(x, scale=2.0):
        counter.add_(1)
        loss = (w * x).sum() * scale
        loss.backward()
        return {"loss": loss.detach(), "pair": (x + 1, 7)}

    prog = graphc.trace_program(f, (graphc.ones(3),), {})
    names = prog.graph.output_names
    assert names[prog.n_results :] == ("c0", "c1.grad")
    assert prog.aliases == {prog.n_results: 1}
    assert [w_.kind for w_ in prog.state_writes] == ["value", "grad"]
    assert counter.item() == 0 and w.grad is None and not counter.is_symbolic


def test_concrete_tensors_created_inside_become_constants():
    def f(x):
        return x + graphc.arange(3.0) + graphc.ones(3)

    graph = graphc.trace(f, graphc.zeros(3))
    assert len(graph.inputs) == 1
    np.testing.assert_allclose(interpreter.run(graph, [np.zeros(3, np.float32)])[0], [1, 2, 3])


DATA_DEPENDENT = [
    ("if", lambda x: x if x.sum() > 0 else -x, "bool()"),
    ("item", lambda x: x * x.max().item(), "item()"),
    ("int", lambda x: x * int(x[0]), "int()"),
    ("tolist", lambda x: x.tolist(), "tolist()"),
    ("numpy", lambda x: x.numpy(), "numpy()"),
    ("mask", lambda x: x[x > 0], "boolean-mask"),
    ("nonzero", lambda x: x.nonzero(), "nonzero"),
]


@pytest.mark.parametrize("name,fn,what", DATA_DEPENDENT, ids=[d[0] for d in DATA_DEPENDENT])
def test_data_dependent_control_flow_raises_trace_error_with_line(name, fn, what):
    with pytest.raises(TraceError) as err:
        graphc.trace(fn, graphc.ones(3))
    message = str(err.value)
    assert what in message
    assert "test_trace_compile.py:" in message
    assert "graphc.where" in message or "outside" in message or "out of the compiled function" in message


def test_escaped_symbolic_tensor_raises_when_used_eagerly():
    leaked = []

    def f(x):
        leaked.append(x * 2)
        return x

    graphc.trace(f, graphc.ones(2))
    with pytest.raises(GraphcError, match="escaped the trace"):
        leaked[0] + 1


def _sgd_step(model, x, y, lr=0.1):
    for p in model.parameters():
        p.grad = None
    out = model(x)
    loss = ((out - y) ** 2).mean()
    loss.backward()
    with graphc.no_grad():
        for p in model.parameters():
            p.sub_(lr * p.grad)
    return loss.detach()


def test_compiled_training_step_matches_eager():
    x, y = graphc.randn(6, 4), graphc.randn(6, 3)
    eager_model, compiled_model = TinyMLP(1), TinyMLP(1)
    step = graphc.compile(lambda xb, yb: _sgd_step(compiled_model, xb, yb), backend="interp")
    eager_losses = [_sgd_step(eager_model, x, y).item() for _ in range(5)]
    compiled_losses = [step(x, y).item() for _ in range(5)]
    np.testing.assert_allclose(compiled_losses, eager_losses, rtol=1e-6)
    for pe, pc in zip(eager_model.parameters(), compiled_model.parameters()):
        np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(pc.grad.numpy(), pe.grad.numpy(), rtol=1e-6, atol=1e-7)
    assert eager_losses[-1] < eager_losses[0]


def test_compiled_step_with_accumulated_grads_and_momentum_state():
    def make():
        model = TinyMLP(2)
        return model, [graphc.zeros_like(p) for p in model.parameters()]

    def step(model, bufs, x, y):
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        with graphc.no_grad():
            for p, b in zip(model.parameters(), bufs):
                b.mul_(0.9).add_(p.grad)
                p.add_(b, alpha=-0.05)
                p.grad.zero_()
        return loss.detach()

    x, y = graphc.randn(6, 4), graphc.randn(6, 3)
    (m1, b1), (m2, b2) = make(), make()
    compiled = graphc.compile(step, backend="interp")
    eager = [step(m1, b1, x, y).item() for _ in range(4)]
    comp = [compiled(m2, b2, x, y).item() for _ in range(4)]
    np.testing.assert_allclose(comp, eager, rtol=1e-6)
    for p1, p2 in zip(m1.parameters() + b1, m2.parameters() + b2):
        np.testing.assert_allclose(p2.detach().numpy(), p1.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_compiled_random_ops_advance_the_generator_like_eager():
    def noisy(x):
        return x * (graphc.rand(x.shape) > 0.5) + graphc.randn(x.shape[0])

    x = graphc.ones(8)
    graphc.manual_seed(5)
    eager = [noisy(x).tolist() for _ in range(4)]
    graphc.manual_seed(5)
    compiled = graphc.compile(noisy, backend="interp")
    comp = [compiled(x).tolist() for _ in range(4)]
    np.testing.assert_allclose(comp, eager, rtol=1e-6)
    assert comp[1] != comp[2]


def test_compile_decorator_forms_and_recompile_log(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_DEBUG", "1")

    @graphc.compile(backend="interp")
    def double(x):
        return x * 2

    @graphc.compile
    def triple(x):
        return x * 3

    assert isinstance(triple, graphc._compile.CompiledFunction)
    for shape in [(2,), (2,), (2,), (3,), (3,)]:
        assert double(graphc.ones(shape)).tolist() == [2.0] * shape[0]
    err = capsys.readouterr().err
    assert err.count("new signature") == 2
    assert len(double._cache) == 2


def test_compile_returns_structures_and_wraps_results():
    @graphc.compile(backend="interp")
    def f(x, n):
        return x.sum(), (x * n, [x - n]), {"k": x.max(0).values}

    for _ in range(2):
        total, (scaled, [shifted]), d = f(graphc.arange(4.0), 2)
    assert total.item() == 6.0 and scaled.tolist() == [0, 2, 4, 6] and shifted.tolist() == [-2, -1, 0, 1]
    assert d["k"].item() == 3.0
    assert not total.is_symbolic and f(graphc.arange(4.0), 3)[1][0].tolist() == [
        0,
        3,
        6,
        9,
    ]


def test_compile_unknown_backend_is_a_clear_error():
    with pytest.raises(GraphcError, match="backend 'no-such' is not available"):
        graphc.compile(lambda x: x, backend="no-such")


def test_forward_needing_autograd_compiles_its_backward():
    model = TinyMLP(3)
    compiled = graphc.compile(model, backend="interp")
    x = graphc.randn(2, 4)
    for _ in range(3):
        out = compiled(x)
        out.sum().backward()
    assert out.requires_grad and model.w1.grad is not None
    assert out.grad_fn.name() == "CompiledFunctionBackward"
    with graphc.no_grad():
        compiled(x)
        np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-6)
    assert compiled.w1 is model.w1


class _FakeOptimizer:
    """Just what state naming looks at: param_groups and a state dict."""

    def __init__(self, params):
        self.param_groups = [{"params": list(params)}]
        self.state = {p: {"momentum_buffer": graphc.zeros_like(p)} for p in params}


def test_state_of_modules_and_optimizers_used_by_a_function_is_named():
    model = TinyMLP(4)
    opt = _FakeOptimizer(model.parameters())

    def step(x):
        loss = model(x).sum()
        loss.backward()
        with graphc.no_grad():
            for p in model.parameters():
                buf = opt.state[p]["momentum_buffer"]
                buf.mul_(0.9).add_(p.grad)
                p.sub_(buf)
        return loss.detach()

    graph = graphc.trace(step, graphc.ones(2, 4))
    names = [i.attrs["name"] for i in graph.inputs]
    assert names[:4] == ["x", "model.fc1.weight", "model.fc1.bias", "model.fc2.weight"]
    assert "opt.state.model.fc1.weight.momentum_buffer" in names
    assert "model.fc1.weight.grad" in graph.output_names
    assert graph.name == "step"


def test_llvm_backend_matches_eager_training():
    pytest.importorskip("llvmlite")
    x, y = graphc.randn(6, 4), graphc.randn(6, 3)
    eager_model, compiled_model = TinyMLP(5), TinyMLP(5)
    step = graphc.compile(lambda xb, yb: _sgd_step(compiled_model, xb, yb), backend="llvm")
    eager = [_sgd_step(eager_model, x, y).item() for _ in range(3)]
    comp = [step(x, y).item() for _ in range(3)]
    np.testing.assert_allclose(comp, eager, rtol=1e-5)
    for pe, pc in zip(eager_model.parameters(), compiled_model.parameters()):
        np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_traced_graphs_verify_and_round_trip_through_text():
    from graphc.ir.parser import parse_graph
    from graphc.ir.verifier import verify

    model = TinyMLP(6)
    prog = graphc.trace_program(lambda x: _sgd_step(model, x, graphc.zeros(2, 3)), (graphc.ones(2, 4),))
    verify(prog.graph)
    assert str(parse_graph(str(prog.graph))) == str(prog.graph)


def test_deepcopy_copies_leaves_and_refuses_non_leaves():
    import copy

    w = graphc.ones(2, requires_grad=True)
    w2 = copy.deepcopy(w)
    assert w2 is not w and w2.requires_grad and w2.tolist() == [1.0, 1.0]
    w2.data.add_(1)
    assert w.tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="deepcopy"):
        copy.deepcopy(w * 2)


def test_compiled_function_called_inside_a_trace_is_inlined():
    inner = graphc.compile(lambda x: x * 3, backend="interp")
    graph = graphc.trace(lambda x: inner(x) + 1, graphc.ones(2))
    assert interpreter.run(graph, [np.ones(2, np.float32)])[0].tolist() == [4.0, 4.0]


def test_a_smaller_last_batch_compiles_once_not_every_epoch(monkeypatch):
    import graphc._compile as compile_module

    traces = []
    real = compile_module.trace_program
    monkeypatch.setattr(compile_module, "trace_program", lambda *a, **k: traces.append(1) or real(*a, **k))
    model = graphc.nn.Sequential(graphc.nn.Linear(5, 8), graphc.nn.ReLU(), graphc.nn.Linear(8, 3))
    opt = graphc.optim.SGD(model.parameters(), 0.1)

    @graphc.compile
    def step(x, y):
        opt.zero_grad()
        loss = graphc.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    per_epoch = []
    for _ in range(4):
        before = len(traces)
        for bs in (8, 8, 8, 3):
            step(graphc.randn(bs, 5), graphc.randint(0, 3, (bs,)))
        per_epoch.append(len(traces) - before)
    # Batch 8 traces in epoch 1 (its second call), batch 3 in epoch 2; then none.
    assert per_epoch == [1, 1, 0, 0]
