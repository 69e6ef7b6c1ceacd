"""Fused kernel bodies are DAGs: merging epilogues substitutes a producer's
value for every load of it, so a chain whose ops read their operand twice
(`y * sin(y)`) and its backward share sub-expressions whose tree has about
2**depth nodes. Every walk over a body (fusion's rewrites, printing, the
cache key, both renderers) must visit each distinct node once."""

import numpy as np
import torch
from compiler_util import assert_matches

import graphc
import graphc.passes.autodiff as autodiff
import graphc.runtime.cpu as cpu
from graphc.codegen.kernel import Expr, format_program, walk
from graphc.runtime import cuda as rt

CHAIN = 30


def _chain(m, x):
    """30 elementwise ops, alternating ones that read their operand twice."""
    steps = [
        lambda y: y * m.sin(y),
        lambda y: y * 1.1,
        lambda y: m.tanh(y) * y,
        lambda y: y + 0.3,
        lambda y: m.exp(-y * y),
    ]
    y = x
    for i in range(CHAIN):
        y = steps[i % len(steps)](y)
    return y.sum()


def _tree_size(e: Expr) -> int:
    sizes: dict[int, int] = {}
    for x in walk(e):
        sizes[id(x)] = 1 + sum(sizes[id(a)] for a in x.args)
    return sizes[id(e)]


def _joint_graph():
    graph = graphc.trace(lambda x: _chain(graphc, x), graphc.randn(16))
    return autodiff.grad(graph, wrt=["x"])


def test_long_chain_with_backward_fuses_to_a_small_dag():
    prog = cpu.lower(_joint_graph())
    exprs = [e for k in prog.kernels for e in k._exprs()]
    distinct = len(walk(*exprs))
    # The bodies really are exponential as trees ...
    assert max(_tree_size(e) for e in exprs) > 100 * distinct
    # ... yet hold a few nodes per primitive, and print that small.
    assert distinct < 2000
    assert len(format_program(prog)) < 40 * distinct


def test_long_chain_with_backward_compiles_and_matches_torch():
    joint = _joint_graph()
    x = np.random.default_rng(0).uniform(-1, 1, 16)
    exe = assert_matches(joint, [x.astype(np.float32)], rtol=1e-4, atol=1e-5)
    got = exe([x.astype(np.float32)])
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    loss = _chain(torch, xt)
    loss.backward()
    np.testing.assert_allclose(got[0], loss.detach().numpy(), rtol=1e-4)
    np.testing.assert_allclose(got[1], xt.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_long_chain_renders_for_cuda():
    _, module = rt.render(_joint_graph())
    # One line of C per distinct value, not per tree node.
    assert len(module.source.splitlines()) < 5000


def _doubling_dag(depth: int) -> Expr:
    """x, then y + y repeated: a DAG of `depth` + 1 nodes whose tree has 2**depth leaves."""
    from graphc.codegen.kernel import load, scalar, var
    from graphc.ir.ops import Op

    y = load("x", var("i0"), graphc.float32)
    for _ in range(depth):
        y = scalar(Op.ADD, y, y)
    return y


def test_comparing_equal_dags_built_apart_is_linear():
    # Two copies share nothing by identity; == must not walk every path
    # (2**80 of them), so equal children get shared as they are compared.
    a, b = _doubling_dag(80), _doubling_dag(80)
    assert a is not b
    assert a == b
    assert a != _doubling_dag(79)
    assert hash(a) == hash(b)
