"""optimize(): semantics preserved on random graphs, fixed point, timeline."""

from __future__ import annotations

import numpy as np
import pytest
from graphgen import graph_cases, random_graph
from hypothesis import given, settings

from graphc.ir import dtypes
from graphc.ir.graph import Graph, input_node, node
from graphc.ir.ops import MOVEMENT, Op
from graphc.ir.parser import parse_graph
from graphc.ir.verifier import IRVerifyError, verify
from graphc.passes.autodiff import grad
from graphc.passes.pipeline import PIPELINE, Timeline, optimize, run_passes
from graphc.runtime.interpreter import run


def _compute(g: Graph) -> int:
    return sum(1 for n in g.nodes if n.op not in MOVEMENT)


def _assert_same_results(before: Graph, after: Graph, arrays) -> None:
    for i, (x, y) in enumerate(zip(run(before, arrays), run(after, arrays))):
        assert x.dtype == y.dtype and x.shape == y.shape, f"output {i}"
        np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=f"output {i}")


@settings(max_examples=150, deadline=None)
@given(graph_cases(max_steps=12))
def test_optimize_preserves_semantics_on_random_graphs(case):
    optimized = optimize(case.graph, verify=True)
    assert optimized.inputs == case.graph.inputs
    assert optimized.output_names == case.graph.output_names
    # Optimizing never adds work: movement ops (index arithmetic in the
    # kernels that read them) may grow, as when a batched dot becomes one
    # dot of reshaped operands, but compute nodes do not. The one exception
    # is simplify's scatter-one-hot: a scatter_add of one value per row
    # becomes iota, a checking gather, cmpeq, a zero and where (inline
    # selects instead of a serial scatter into a zeroed buffer).
    scatters = sum(1 for n in case.graph.nodes if n.op is Op.SCATTER_ADD)
    assert _compute(optimized) <= _compute(case.graph) + len(case.graph.outputs) + 4 * scatters
    assert len(optimized.nodes) <= 3 * len(case.graph.nodes) + len(case.graph.outputs) + 6 * scatters
    _assert_same_results(case.graph, optimized, case.arrays)


@settings(max_examples=40, deadline=None)
@given(graph_cases(max_steps=8))
def test_optimize_preserves_joint_gradient_graphs(case):
    g = case.graph
    first = g.outputs[0]
    if not first.dtype.is_float:
        return
    loss = node(Op.SUM, first, axes=tuple(range(first.ndim)))
    joint = grad(Graph(g.inputs, [loss], g.name, ["loss"]))
    _assert_same_results(joint, optimize(joint, verify=True), case.arrays)


def test_optimize_reaches_a_fixed_point():
    for seed in range(30):
        case = random_graph(np.random.default_rng(seed))
        once = optimize(case.graph)
        assert optimize(once).outputs == once.outputs, f"seed {seed}"


def test_timeline_records_each_pass_and_node_counts():
    g = parse_graph(
        """graph @f(%x: f32[2]) -> (f32[2]) {
          %0: f32[2] = neg %x
          %1: f32[2] = neg %0
          %2: f32[2] = const [1.0, 2.0]
          %3: f32[2] = const [3.0, 4.0]
          %4: f32[2] = add %2, %3
          %5: f32[2] = add %4, %1
          return %5
        }"""
    )
    timeline = Timeline()
    out = optimize(g, timeline=timeline)
    names = [r.name for r in timeline.records]
    assert names[: len(PIPELINE)] == [name for name, _ in PIPELINE]
    first = timeline.records[0]
    assert (first.name, first.nodes_before, first.nodes_after) == ("simplify", 7, 5)
    assert timeline.records[1].nodes_after == 3  # fold merged the two constants
    assert [n.op for n in out.nodes] == [Op.INPUT, Op.CONST, Op.ADD]
    text = str(timeline)
    assert "simplify" in text and "7 -> 5" in text and "total" in text


def test_run_passes_is_extensible_and_dumps():
    x = input_node("x", (2,), dtypes.float32)
    g = Graph([x], [node(Op.NEG, node(Op.NEG, x))])
    seen = []

    def rename(graph):
        return graph.replace(name="renamed")

    out = run_passes(
        g,
        PIPELINE + [("rename", rename)],
        verify=True,
        dump=lambda n, gr: seen.append((n, gr.name)),
    )
    assert out.outputs == (x,) and out.name == "renamed"
    assert seen[-1] == ("rename", "renamed") and [s[0] for s in seen[:-1]] == [n for n, _ in PIPELINE]


def test_verify_flag_names_the_pass_that_broke_the_graph():
    x = input_node("x", (2,), dtypes.float32)
    stray = input_node("stray", (2,), dtypes.float32)
    g = Graph([x], [node(Op.NEG, x)])

    def broken(graph):
        return graph.replace(outputs=[node(Op.ADD, graph.outputs[0], stray)])

    with pytest.raises(IRVerifyError) as info:
        run_passes(g, [("broken", broken)], verify=True)
    assert "after pass 'broken'" in str(info.value) and "%stray" in str(info.value)


def test_debug_level_prints_timeline(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_DEBUG", "4")
    x = input_node("x", (2,), dtypes.float32)
    optimize(Graph([x], [node(Op.NEG, node(Op.NEG, x))], name="dbg"))
    err = capsys.readouterr().err
    assert "pass timeline for @dbg" in err and "after simplify" in err
    verify(Graph([x], [x]))
