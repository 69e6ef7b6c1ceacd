"""The text IR: printer output, parser round trips, parse errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from graphgen import graph_cases
from hypothesis import given, settings
from hypothesis import strategies as st

from graphc.ir import dtypes
from graphc.ir.graph import Graph, const, input_node, node
from graphc.ir.ops import Op
from graphc.ir.parser import IRParseError, parse_graph
from graphc.ir.printer import format_graph


def roundtrip(g: Graph) -> Graph:
    text = format_graph(g)
    back = parse_graph(text)
    assert format_graph(back) == text
    assert back.outputs == g.outputs and back.inputs == g.inputs
    assert back.output_names == g.output_names and back.name == g.name
    return back


def _mlp() -> Graph:
    x = input_node("x", (32, 784), dtypes.float32)
    w = input_node("fc1.weight", (128, 784), dtypes.float32)
    h = node(Op.DOT, x, node(Op.PERMUTE, w, perm=(1, 0)))
    zero = node(Op.EXPAND, const(0.0, dtypes.float32), shape=(32, 128))
    return Graph([x, w], [node(Op.MAX, h, zero)], name="mlp", output_names=["hidden"])


def test_printed_form_is_exact():
    assert str(_mlp()) == (
        "graph @mlp(%x: f32[32,784], %fc1.weight: f32[128,784]) -> (f32[32,128]) {\n"
        "  %0: f32[784,128] = permute %fc1.weight {perm=[1,0]}\n"
        "  %1: f32[32,128] = dot %x, %0\n"
        "  %2: f32[32,128] = expand 0.0:f32 {shape=[32,128]}\n"
        "  %3: f32[32,128] = maximum %1, %2\n"
        "  return %3 as hidden\n"
        "}"
    )
    roundtrip(_mlp())


@settings(max_examples=200, deadline=None)
@given(graph_cases())
def test_random_graphs_round_trip(case):
    roundtrip(case.graph)


SPECIAL_FLOATS = [
    -0.0,
    0.0,
    math.inf,
    -math.inf,
    math.nan,
    1e-300,
    5e-324,
    1.7976931348623157e308,
    0.1,
    -2.5e-7,
]


@pytest.mark.parametrize("value", SPECIAL_FLOATS, ids=repr)
def test_special_float_attrs_and_scalars_round_trip(value):
    x = input_node("x", (2,), dtypes.float64)
    padded = node(Op.PAD, x, pads=((1, 0),), value=value)
    c = const(value, dtypes.float64)
    g = Graph([x], [padded, c], output_names=["p", "c"])
    back = roundtrip(g)
    got_pad, got_c = back.outputs[0].attrs["value"], back.outputs[1].attrs["value"]
    for got in (got_pad, got_c):
        assert (math.isnan(got) and math.isnan(value)) or (
            got == value and math.copysign(1, got) == math.copysign(1, value)
        )


@pytest.mark.parametrize("dtype", dtypes.ALL, ids=lambda d: d.short)
def test_const_arrays_of_every_dtype_round_trip(dtype):
    rng = np.random.default_rng(0)
    if dtype.is_bool:
        arr = rng.random((2, 3)) < 0.5
    elif dtype.is_int:
        info = np.iinfo(dtype.np)
        arr = np.array([[info.min, info.max, 0], [1, -1 if info.min < 0 else 2, 7]])
    else:
        arr = np.array([[-0.0, np.inf, np.nan], [0.1, -1e-4, 3.0]])
    c = const(arr.astype(dtype.np), dtype, (2, 3))
    back = roundtrip(Graph([], [c]))
    np.testing.assert_array_equal(back.outputs[0].attrs["value"].array, arr.astype(dtype.np))


def test_odd_names_and_attr_kinds_round_trip():
    x = input_node("layer 1.weight", (1, 2, 4, 4), dtypes.float16)
    y = input_node("inf", (3,), dtypes.int64)
    unfolded = node(Op.UNFOLD, x, kernel=(2, 2), stride=(1, 2), padding=(0, 1), dilation=(1, 1))
    iota = node(Op.IOTA, shape=(3,), axis=0, dtype=dtypes.int64)
    ys = node(Op.ADD, y, iota)
    g = Graph(
        [x, y],
        [unfolded, ys, ys],
        name="odd.name-1",
        output_names=["a.b", "true", 'with "quotes"'],
    )
    text = format_graph(roundtrip(g))
    assert '%"layer 1.weight"' in text and '%"inf"' in text and '@"odd.name-1"' in text


def test_single_scalar_const_output_and_graph_without_inputs():
    roundtrip(Graph([], [const(3, dtypes.int32)]))
    roundtrip(Graph([], [const(True, dtypes.bool_)]))


def test_non_header_input_node_prints_as_a_line():
    # A broken graph must still print (the verifier shows it), and the text
    # parses back to the same broken graph.
    x = input_node("x", (2,), dtypes.float32)
    stray = input_node("stray", (2,), dtypes.float32)
    g = Graph([x], [node(Op.ADD, x, stray)])
    assert 'input {dtype=f32, name="stray", shape=[2]}' in format_graph(g)
    roundtrip(g)


@given(st.text(min_size=1, max_size=12))
@settings(max_examples=100, deadline=None)
def test_any_name_round_trips(name):
    x = input_node(name, (1,), dtypes.float32)
    roundtrip(Graph([x], [node(Op.NEG, x)], name=name, output_names=[name]))


BAD = [
    (
        "graph @f(%x: f32[2]) -> (f32[2]) {\n  return %y\n}",
        2,
        "%y is used before it is defined",
    ),
    (
        "graph @f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = frobnicate %x\n  return %0\n}",
        2,
        "unknown op 'frobnicate'",
    ),
    (
        "graph @f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[3] = neg %x\n  return %0\n}",
        2,
        "declared type f32[3]",
    ),
    (
        "graph @f(%x: f32[2]) -> (f32[3]) {\n  return %x\n}",
        1,
        "header declares results (f32[3])",
    ),
    ("graph @f(%x: q32[2]) -> (f32[2]) {\n  return %x\n}", 1, "unknown dtype 'q32'"),
    (
        "graph @f(%x: f32[2], %y: f32[3]) -> (f32[2]) {\n  %0: f32[2] = add %x, %y\n  return %0\n}",
        2,
        "add: operand shapes differ: f32[2] and f32[3]",
    ),
    (
        "graph @f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = neg %x\n  %0: f32[2] = neg %0\n  return %0\n}",
        3,
        "%0 is defined twice",
    ),
    (
        "graph @f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = neg %x {a=1, a=2}\n  return %0\n}",
        2,
        "given twice",
    ),
    (
        "graph @f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = neg %x\n  return %0\n",
        4,
        "expected '}'",
    ),
    (
        "graph @f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = const [1.0]\n  return %0\n}",
        2,
        "1 values for type f32[2]",
    ),
    (
        "graph @f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = neg %x $\n  return %0\n}",
        2,
        "unexpected character '$'",
    ),
    (
        "graph @f() -> (f32[]) {\n  return 1.0:f32\n}\ntrailing",
        4,
        "after the graph's closing brace",
    ),
]


@pytest.mark.parametrize("text, line, message", BAD, ids=[b[2] for b in BAD])
def test_parse_errors_name_the_line(text, line, message):
    with pytest.raises(IRParseError) as info:
        parse_graph(text)
    assert str(info.value).startswith(f"line {line}:")
    assert message in str(info.value)


def test_comments_and_blank_lines_are_ignored():
    g = parse_graph(
        """
        # a comment
        graph @f(%x: f32[2]) -> (f32[2]) {   # trailing comment

          %0: f32[2] = neg %x
          return %0 as y
        }
        """
    )
    assert g.output_names == ("y",) and g.outputs[0].op is Op.NEG
