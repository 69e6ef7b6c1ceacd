"""The verifier accepts well-formed graphs and pinpoints corrupted ones."""

from __future__ import annotations

import numpy as np
import pytest
from graphgen import graph_cases
from hypothesis import given, settings

from graphc.ir import dtypes
from graphc.ir.graph import ConstArray, Graph, TensorType, const, input_node, node
from graphc.ir.ops import Op
from graphc.ir.verifier import IRVerifyError, verify

F32 = dtypes.float32


def _forged(op: Op, srcs, attrs: dict, type_: TensorType):
    """A node built around the shape rules, the way a buggy pass might."""
    from graphc.ir.graph import Node

    n = object.__new__(Node)
    for name, value in (
        ("op", op),
        ("srcs", tuple(srcs)),
        ("attrs", attrs),
        ("type", type_),
    ):
        object.__setattr__(n, name, value)
    object.__setattr__(n, "_key", ("forged", id(n)))
    object.__setattr__(n, "_hash", hash(n._key))
    return n


@settings(max_examples=100, deadline=None)
@given(graph_cases())
def test_random_graphs_verify(case):
    assert verify(case.graph) is case.graph


def _chain(length: int = 12):
    x = input_node("x", (2, 3), F32)
    v = x
    for _ in range(length):
        v = node(Op.TANH, v)
    return x, v


def test_wrong_type_is_reported_with_pass_name_and_context():
    x, v = _chain()
    bad = _forged(Op.NEG, [v], {}, TensorType((3, 2), F32))
    out = node(Op.SUM, node(Op.RESHAPE, bad, shape=(6,)), axes=(0,))
    with pytest.raises(IRVerifyError) as info:
        verify(Graph([x], [out]), pass_name="fusion")
    msg = str(info.value)
    assert "after pass 'fusion'" in msg
    assert "neg: node type is f32[3,2] but its rule infers f32[2,3]" in msg
    marked = [line for line in msg.splitlines() if line.endswith("<--")]
    assert marked == ["      %12: f32[3,2] = neg %11   <--"]
    assert "graph @main" in msg and "..." in msg  # header kept, far lines elided
    assert len(msg.splitlines()) < 22


def test_operands_that_do_not_type_check():
    a = input_node("a", (2,), F32)
    b = input_node("b", (3,), F32)
    bad = _forged(Op.ADD, [a, b], {}, TensorType((2,), F32))
    with pytest.raises(IRVerifyError, match="add: operand shapes differ: f32\\[2\\] and f32\\[3\\]"):
        verify(Graph([a, b], [bad]))


def test_input_not_in_signature():
    x = input_node("x", (2,), F32)
    hidden = input_node("hidden", (2,), F32)
    with pytest.raises(IRVerifyError, match="%hidden .* is used but is not an input"):
        verify(Graph([x], [node(Op.MUL, x, hidden)], name="g"))


def test_duplicate_input_and_output_names():
    x = input_node("x", (2,), F32)
    x2 = input_node("x", (3,), F32)
    with pytest.raises(IRVerifyError, match="two inputs are named %x: f32\\[2\\] and f32\\[3\\]"):
        verify(Graph([x, x2], [x]))
    with pytest.raises(IRVerifyError, match="output name 'y' is used twice"):
        verify(Graph([x], [x, x], output_names=["y", "y"]))


def test_no_outputs():
    with pytest.raises(IRVerifyError, match="no outputs"):
        verify(Graph([input_node("x", (2,), F32)], []))


def test_list_attribute_is_not_plain_data():
    x = input_node("x", (2, 3), F32)
    bad = _forged(Op.PERMUTE, [x], {"perm": [1, 0]}, TensorType((3, 2), F32))
    with pytest.raises(IRVerifyError, match="attribute perm=\\[1, 0\\] is not plain data"):
        verify(Graph([x], [bad]))


def test_const_array_must_match_its_type():
    arr = ConstArray(np.zeros((2, 2), np.float64))
    bad = _forged(
        Op.CONST,
        [],
        {"value": arr, "dtype": F32, "shape": (2, 2)},
        TensorType((2, 2), F32),
    )
    with pytest.raises(
        IRVerifyError,
        match="const: array is float64\\[2, 2\\] but the node is f32\\[2,2\\]",
    ):
        verify(Graph([], [bad]))


def test_missing_attribute():
    x = input_node("x", (2,), F32)
    bad = _forged(Op.SUM, [x], {}, TensorType((), F32))
    with pytest.raises(IRVerifyError, match="missing attribute 'axes'"):
        verify(Graph([x], [bad]))


def test_valid_small_graph_passes():
    x = input_node("x", (2,), F32)
    verify(Graph([x], [node(Op.ADD, x, node(Op.EXPAND, const(1.0, F32), shape=(2,)))]))
