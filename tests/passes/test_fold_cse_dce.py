"""Constant folding, CSE and DCE, as golden text-IR pairs and semantics checks."""

from __future__ import annotations

import numpy as np
import pytest

from graphc.ir import dtypes
from graphc.ir.graph import ConstArray, Graph, const, input_node, node
from graphc.ir.ops import Op
from graphc.ir.parser import parse_graph
from graphc.ir.printer import format_graph
from graphc.ir.verifier import verify
from graphc.passes.cse import cse
from graphc.passes.dce import dce
from graphc.passes.fold import fold
from graphc.runtime.interpreter import run


def _graph(params: str, result: str, body: str) -> Graph:
    return parse_graph(f"graph @t({params}) -> ({result}) {{\n{body}\n}}")


def _assert_same(got: Graph, want: Graph, pass_name: str) -> None:
    verify(got, pass_name=pass_name)
    assert format_graph(got) == format_graph(want)
    assert got.outputs == want.outputs


# -- fold ----------------------------------------------------------------------


def test_fold_small_constant_expression_to_array():
    before = _graph(
        "",
        "f32[2]",
        "%0: f32[2] = const [1.0, 4.0]\n %1: f32[2] = sqrt %0\n %2: f32[2] = add %1, %1\n return %2",
    )
    _assert_same(
        fold(before),
        _graph("", "f32[2]", "%0: f32[2] = const [2.0, 4.0]\n return %0"),
        "fold",
    )


def test_fold_broadcast_scalars_stays_broadcast():
    before = _graph(
        "%x: f32[64,64]",
        "f32[64,64]",
        "%0: f32[64,64] = expand 2.0:f32 {shape=[64,64]}\n %1: f32[64,64] = expand 3.0:f32 {shape=[64,64]}\n"
        " %2: f32[64,64] = mul %0, %1\n %3: f32[64,64] = add %x, %2\n return %3",
    )
    want = _graph(
        "%x: f32[64,64]",
        "f32[64,64]",
        "%0: f32[64,64] = expand 6.0:f32 {shape=[64,64]}\n %1: f32[64,64] = add %x, %0\n return %1",
    )
    _assert_same(fold(before), want, "fold")


def test_fold_scalar_result_is_inline_const():
    before = _graph(
        "",
        "i64[]",
        "%0: i64[3] = const [1, 2, 3]\n %1: i64[] = sum %0 {axes=[0]}\n return %1",
    )
    got = fold(before)
    assert got.outputs[0].op is Op.CONST and got.outputs[0].attrs["value"] == 6


def test_fold_respects_size_limit():
    c = const(np.ones((40, 40)), dtypes.float32, (40, 40))
    g = Graph([], [node(Op.EXP, c)])
    assert fold(g).outputs == g.outputs
    assert fold(g, max_elements=1600).outputs[0].op is Op.CONST


def test_fold_never_folds_random():
    key = const(7, dtypes.int64)
    g = Graph([], [node(Op.RANDOM, key, shape=(3,))])
    assert fold(g).outputs == g.outputs


def test_fold_leaves_failing_evaluation_for_runtime():
    x = const(np.arange(3.0), dtypes.float32, (3,))
    bad_index = const(np.array([0, 5, 1]), dtypes.int64, (3,))
    g = Graph([], [node(Op.GATHER, x, bad_index, axis=0)])
    assert fold(g).outputs == g.outputs


def test_fold_keeps_special_values_exact():
    c = const(np.array([-0.0, np.inf, np.nan]), dtypes.float64, (3,))
    g = Graph([], [node(Op.NEG, c)])
    out = fold(g).outputs[0]
    assert out.op is Op.CONST
    arr = out.attrs["value"].array
    assert not np.signbit(arr[0]) and arr[1] == -np.inf and np.isnan(arr[2])


def test_fold_does_not_turn_broadcast_into_array():
    g = _graph("", "f32[4]", "%0: f32[4] = expand 1.0:f32 {shape=[4]}\n return %0")
    assert fold(g).outputs == g.outputs


# -- cse -----------------------------------------------------------------------


def test_cse_merges_commuted_operands():
    before = _graph(
        "%a: f32[2], %b: f32[2]",
        "f32[2]",
        "%0: f32[2] = add %a, %b\n %1: f32[2] = add %b, %a\n %2: f32[2] = mul %0, %1\n return %2",
    )
    want = _graph(
        "%a: f32[2], %b: f32[2]",
        "f32[2]",
        "%0: f32[2] = add %a, %b\n %1: f32[2] = mul %0, %0\n return %1",
    )
    _assert_same(cse(before), want, "cse")


def test_cse_puts_constants_on_the_right():
    before = _graph("%x: f32[]", "f32[]", "%0: f32[] = mul 2.0:f32, %x\n return %0")
    want = _graph("%x: f32[]", "f32[]", "%0: f32[] = mul %x, 2.0:f32\n return %0")
    _assert_same(cse(before), want, "cse")


def test_cse_leaves_non_commutative_order():
    g = _graph(
        "%a: f32[2], %b: f32[2]",
        "f32[2], f32[2]",
        "%0: f32[2] = sub %b, %a\n %1: f32[4] = concat %b, %a {axis=0}\n"
        " %2: f32[2] = slice %1 {starts=[0], steps=[2], stops=[4]}\n return %0, %2",
    )
    assert cse(g).outputs == g.outputs


def test_cse_merges_transitively_across_two_graph_outputs():
    a = input_node("a", (2,), dtypes.float32)
    b = input_node("b", (2,), dtypes.float32)
    left = node(Op.EXP, node(Op.MAX, a, b))
    right = node(Op.EXP, node(Op.MAX, b, a))
    assert left is not right
    g = cse(Graph([a, b], [left, right]))
    assert g.outputs[0] is g.outputs[1]
    assert len(g.nodes) == 4


# -- dce -----------------------------------------------------------------------


def test_dce_keeps_inputs_by_default_and_drops_on_request():
    g = _graph("%x: f32[2], %unused: f32[3]", "f32[2]", "%0: f32[2] = neg %x\n return %0")
    stats: dict = {}
    kept = dce(g, stats=stats)
    assert kept.inputs == g.inputs and stats["dead_inputs"] == 1 and stats["dropped_inputs"] == []
    dropped = dce(g, drop_unused_inputs=True, stats=stats)
    assert [i.attrs["name"] for i in dropped.inputs] == ["x"]
    assert stats["dropped_inputs"] == ["unused"]
    verify(dropped, pass_name="dce")
    np.testing.assert_array_equal(run(dropped, [np.ones(2, np.float32)])[0], [-1, -1])


def test_dce_node_list_has_only_reachable_nodes():
    x = input_node("x", (2,), dtypes.float32)
    y = node(Op.NEG, node(Op.EXP, x))
    g = dce(Graph([x], [y]))
    assert [n.op for n in g.nodes] == [Op.INPUT, Op.EXP, Op.NEG]


@pytest.mark.parametrize("value", [ConstArray(np.zeros(2, np.float32))])
def test_const_arrays_are_plain_data(value):
    assert hash(value) == hash(ConstArray(np.zeros(2, np.float32)))


def test_fold_moved_scalar_stays_broadcast():
    # What autodiff's unreduce builds for a seed gradient of 1.0.
    before = _graph(
        "",
        "f32[4,2]",
        "%0: f32[1,1] = reshape 1.0:f32 {shape=[1,1]}\n %1: f32[4,2] = expand %0 {shape=[4,2]}\n return %1",
    )
    want = _graph("", "f32[4,2]", "%0: f32[4,2] = expand 1.0:f32 {shape=[4,2]}\n return %0")
    _assert_same(fold(before), want, "fold")
