"""Every VJP rule against central finite differences (float64, interpreter),
plus the tie/zero conventions and the graph-level `grad` / `vjp_graph`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from graphc.ir import dtypes
from graphc.ir.graph import ConstArray, Graph, const, input_node, node
from graphc.ir.ops import LEAF, NON_DIFFERENTIABLE, Op
from graphc.passes import autodiff
from graphc.passes.autodiff import VJP, grad, vjp_graph
from graphc.runtime.interpreter import run

F64 = dtypes.float64


@dataclass
class Case:
    """One op under test: input arrays and how to build the op on their nodes."""

    op: Op
    make: Callable[[np.random.Generator], list[np.ndarray]]
    build: Callable[..., object]
    eps: float = 1e-6
    tol: float = 1e-6
    label: str = ""


def normal(*shape):
    return lambda rng: rng.normal(size=shape)


def positive(*shape):
    return lambda rng: rng.uniform(0.5, 2.0, size=shape)


def distinct(*shape):
    # Well-separated values so max/min have no near-ties within eps.
    def make(rng):
        n = int(np.prod(shape))
        return rng.permutation(np.arange(n) * 0.37 - 1.0).reshape(shape)

    return make


def several(*makers):
    return lambda rng: [m(rng) for m in makers]


def unary(op, maker=None, **kw):
    return Case(op, several(maker or normal(3, 4)), lambda x: node(op, x), **kw)


def binary(op, ma=None, mb=None):
    return Case(op, several(ma or normal(3, 4), mb or normal(3, 4)), lambda a, b: node(op, a, b))


def _bool_mask(rng):
    return rng.random((3, 4)) < 0.5


def _gather_index(rng):
    return rng.integers(0, 5, size=(3, 4)).astype(np.int64)


def _scatter_index(rng):
    return rng.integers(0, 6, size=(3, 4)).astype(np.int64)


WINDOW = {"kernel": (3, 2), "stride": (2, 1), "padding": (1, 0), "dilation": (1, 2)}

CASES = [
    unary(Op.NEG),
    unary(Op.RECIP, positive(3, 4)),
    unary(Op.EXP),
    unary(Op.LOG, positive(3, 4)),
    unary(Op.SQRT, positive(3, 4)),
    unary(Op.SIN),
    unary(Op.COS),
    unary(Op.TANH),
    unary(Op.ERF),
    Case(
        Op.CAST,
        several(normal(3, 4)),
        lambda x: node(Op.CAST, node(Op.CAST, x, dtype=dtypes.float32), dtype=F64),
        eps=1e-2,
        tol=1e-4,
    ),
    binary(Op.ADD),
    binary(Op.SUB),
    binary(Op.MUL),
    binary(Op.DIV, mb=positive(3, 4)),
    binary(Op.POW, ma=positive(3, 4)),
    binary(Op.ATAN2),
    Case(
        Op.MAX,
        lambda rng: list(distinct(2, 3, 4)(rng)),
        lambda a, b: node(Op.MAX, a, b),
    ),
    Case(
        Op.MIN,
        lambda rng: list(distinct(2, 3, 4)(rng)),
        lambda a, b: node(Op.MIN, a, b),
    ),
    Case(
        Op.WHERE,
        several(_bool_mask, normal(3, 4), normal(3, 4)),
        lambda c, a, b: node(Op.WHERE, c, a, b),
    ),
    Case(Op.SUM, several(normal(2, 3, 4)), lambda x: node(Op.SUM, x, axes=(0, 2))),
    Case(
        Op.REDUCE_MAX,
        several(distinct(2, 3, 4)),
        lambda x: node(Op.REDUCE_MAX, x, axes=(1,)),
    ),
    Case(Op.PROD, several(positive(2, 3, 4)), lambda x: node(Op.PROD, x, axes=(0, 2))),
    Case(Op.RESHAPE, several(normal(2, 6)), lambda x: node(Op.RESHAPE, x, shape=(3, 4))),
    Case(
        Op.PERMUTE,
        several(normal(2, 3, 4)),
        lambda x: node(Op.PERMUTE, x, perm=(2, 0, 1)),
    ),
    Case(Op.EXPAND, several(normal(3, 1)), lambda x: node(Op.EXPAND, x, shape=(2, 3, 4))),
    Case(
        Op.SLICE,
        several(normal(6, 7)),
        lambda x: node(Op.SLICE, x, starts=(1, 0), stops=(6, 7), steps=(2, 3)),
    ),
    Case(
        Op.SLICE,
        several(normal(6, 7)),
        lambda x: node(Op.SLICE, x, starts=(2, 1), stops=(4, 7), steps=(1, 4)),
        label="slice-stop-before-end",
    ),
    Case(
        Op.PAD,
        several(normal(3, 4)),
        lambda x: node(Op.PAD, x, pads=((1, 2), (0, 3)), value=1.5),
    ),
    Case(
        Op.CONCAT,
        several(normal(3, 2), normal(3, 4), normal(3, 1)),
        lambda a, b, c: node(Op.CONCAT, a, b, c, axis=1),
    ),
    Case(
        Op.DOT,
        several(normal(2, 3, 4), normal(2, 4, 5)),
        lambda a, b: node(Op.DOT, a, b),
    ),
    Case(Op.UNFOLD, several(normal(1, 2, 5, 6)), lambda x: node(Op.UNFOLD, x, **WINDOW)),
    Case(
        Op.FOLD,
        several(normal(1, 12, 12)),
        lambda x: node(Op.FOLD, x, output_size=(5, 6), **WINDOW),
    ),
    Case(
        Op.ATTENTION,
        several(normal(2, 3, 4), normal(2, 5, 4), normal(2, 5, 3)),
        lambda q, k, v: node(Op.ATTENTION, q, k, v, scale=0.7, causal=True),
        label="attention_causal",
    ),
    Case(
        Op.ATTENTION,
        several(normal(2, 3, 4), normal(2, 5, 4), normal(2, 5, 3), normal(2, 3, 5)),
        lambda q, k, v, m: node(Op.ATTENTION, q, k, v, m, scale=0.5, causal=False),
        label="attention_float_mask",
    ),
    Case(
        Op.GATHER,
        several(normal(3, 5), _gather_index),
        lambda x, i: node(Op.GATHER, x, i, axis=1),
    ),
    Case(
        Op.SCATTER_ADD,
        several(normal(3, 4), _scatter_index),
        lambda s, i: node(Op.SCATTER_ADD, s, i, axis=1, shape=(3, 6)),
    ),
]


def _loss_graph(case: Case, arrays: list[np.ndarray], rng) -> Graph:
    """sum(op(inputs) * W) with a fixed random W, so every output element
    carries a distinct weight."""
    inputs = [input_node(f"x{i}", a.shape, dtypes.from_numpy(a.dtype)) for i, a in enumerate(arrays)]
    out = case.build(*inputs)
    weights = const(rng.normal(size=out.shape), F64, out.shape) if out.shape else const(1.7, F64)
    loss = node(Op.SUM, node(Op.MUL, out, weights), axes=tuple(range(len(out.shape))))
    return Graph(inputs, [loss], name=case.op.value, output_names=["loss"])


def _numeric_grad(graph: Graph, arrays: list[np.ndarray], which: int, eps: float) -> np.ndarray:
    result = np.zeros_like(arrays[which])
    for idx in np.ndindex(arrays[which].shape):
        values = []
        for sign in (1.0, -1.0):
            moved = [a.copy() for a in arrays]
            moved[which][idx] += sign * eps
            values.append(run(graph, moved)[0])
        result[idx] = (values[0] - values[1]) / (2 * eps)
    return result


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label or c.op.value)
def test_vjp_matches_finite_differences(case: Case):
    rng = np.random.default_rng(0)
    arrays = case.make(rng)
    graph = _loss_graph(case, arrays, rng)
    joint = grad(graph)
    results = run(joint, arrays)
    float_args = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    assert len(results) == 1 + len(float_args)
    for which, analytic in zip(float_args, results[1:]):
        numeric = _numeric_grad(graph, arrays, which, case.eps)
        bad = ~np.isclose(analytic, numeric, rtol=case.tol, atol=case.tol)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            pytest.fail(
                f"{case.op.value}: d loss / d arg{which}{list(idx)}: vjp gives {analytic[idx]!r}, "
                f"finite differences give {numeric[idx]!r}"
            )


def test_every_differentiable_op_has_a_vjp_and_a_case():
    differentiable = {op for op in Op if op not in LEAF and op not in NON_DIFFERENTIABLE}
    assert set(VJP) == differentiable
    assert {c.op for c in CASES} == differentiable


def _forward_values_read(cot, forward: set) -> set:
    """The nodes of `forward` that the cotangent expression `cot` uses
    directly (not through another forward node)."""
    seen, stack = set(), [] if cot is None else [cot]
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            if n not in forward:
                stack.extend(n.srcs)
    return seen & forward


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label or c.op.value)
def test_saved_table_lists_every_forward_value_a_rule_reads(case: Case):
    """The eager engine checks only the values in SAVED for in-place
    changes, so a rule reading any other forward value would escape it."""
    arrays = case.make(np.random.default_rng(0))
    inputs = [input_node(f"x{i}", a.shape, dtypes.from_numpy(a.dtype)) for i, a in enumerate(arrays)]
    out = case.build(*inputs)
    g = input_node("g", out.shape, out.dtype)
    cots = VJP[case.op](autodiff.VJPContext(out.srcs, out, out.attrs), g)
    saved = autodiff.SAVED.get(case.op, ())
    for i, cot in enumerate(cots):
        allowed = {
            out.srcs[v] if v != autodiff.OUT else out
            for v, need in saved
            if need in (None, i) and (v == autodiff.OUT or v < len(out.srcs))
        }
        read = _forward_values_read(cot, set(out.srcs) | {out})
        assert read <= allowed, f"{case.op.value}: the cotangent of operand {i} reads {read - allowed}"


# -- conventions shared with torch ---------------------------------------------


def _grads(build, *arrays):
    inputs = [input_node(f"x{i}", a.shape, F64) for i, a in enumerate(arrays)]
    out = build(*inputs)
    loss = node(Op.SUM, out, axes=tuple(range(len(out.shape))))
    return run(grad(Graph(inputs, [loss])), list(arrays))[1:]


def test_maximum_splits_ties_half_half_like_torch():
    ga, gb = _grads(
        lambda a, b: node(Op.MAX, a, b),
        np.array([1.0, 2.0, 3.0]),
        np.array([1.0, 5.0, 3.0]),
    )
    np.testing.assert_array_equal(ga, [0.5, 0.0, 0.5])
    np.testing.assert_array_equal(gb, [0.5, 1.0, 0.5])


def test_minimum_splits_ties_half_half():
    ga, gb = _grads(
        lambda a, b: node(Op.MIN, a, b),
        np.array([1.0, 2.0, 3.0]),
        np.array([1.0, 5.0, 0.0]),
    )
    np.testing.assert_array_equal(ga, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(gb, [0.5, 0.0, 1.0])


def test_reduce_max_distributes_evenly_among_ties_like_amax():
    (g,) = _grads(
        lambda x: node(Op.REDUCE_MAX, x, axes=(1,)),
        np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]),
    )
    np.testing.assert_allclose(g, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


@pytest.mark.parametrize(
    "x, expected",
    [
        ([0.0, 2.0, 3.0], [6.0, 0.0, 0.0]),
        ([0.0, 2.0, 0.0], [0.0, 0.0, 0.0]),
        ([4.0, 2.0, 3.0], [6.0, 12.0, 8.0]),
    ],
)
def test_prod_gradient_with_zeros_matches_torch(x, expected):
    (g,) = _grads(lambda v: node(Op.PROD, v, axes=(0,)), np.array(x))
    np.testing.assert_array_equal(g, expected)


def test_pow_guards_like_torch():
    base, exponent = np.array([0.0, -2.0, 3.0]), np.array([2.0, 0.5, 0.0])
    ga, gb = _grads(lambda a, b: node(Op.POW, a, b), base, exponent)
    np.testing.assert_array_equal(ga[[0, 2]], [0.0, 0.0])
    assert np.isnan(ga[1]) and np.isnan(gb[1])
    np.testing.assert_allclose(gb[[0, 2]], [0.0, np.log(3.0)])


# -- the graph pass ------------------------------------------------------------


def _mlp():
    x = input_node("x", (4, 3), F64)
    w = input_node("fc.weight", (3, 2), F64)
    labels = input_node("labels", (4,), dtypes.int64)
    h = node(Op.TANH, node(Op.DOT, x, w))
    picked = node(Op.GATHER, h, node(Op.RESHAPE, labels, shape=(4, 1)), axis=1)
    loss = node(Op.SUM, picked, axes=(0, 1))
    return Graph([x, w, labels], [loss, h], name="mlp", output_names=["loss", "hidden"])


def test_grad_pass_appends_named_gradients_in_wrt_order():
    g = _mlp()
    joint = grad(g, wrt=["fc.weight", "x"])
    assert joint.output_names == ("loss", "hidden", "grad_fc.weight", "grad_x")
    assert joint.inputs == g.inputs
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), np.array([0, 1, 1, 0])]
    loss, hidden, gw, gx = run(joint, arrays)
    np.testing.assert_allclose(loss, run(g, arrays)[0])
    np.testing.assert_allclose(hidden, run(g, arrays)[1])
    np.testing.assert_allclose(gw, _numeric_grad(g, arrays, 1, 1e-6), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gx, _numeric_grad(g, arrays, 0, 1e-6), rtol=1e-6, atol=1e-7)


def test_grad_default_wrt_is_float_inputs_and_unused_gives_zeros():
    x = input_node("x", (3,), F64)
    unused = input_node("unused", (2,), F64)
    loss = node(Op.SUM, node(Op.EXP, x), axes=(0,))
    joint = grad(Graph([x, unused], [loss]))
    assert joint.output_names == ("out0", "grad_x", "grad_unused")
    _, gx, gu = run(joint, [np.zeros(3), np.ones(2)])
    np.testing.assert_array_equal(gx, np.ones(3))
    np.testing.assert_array_equal(gu, np.zeros(2))


def test_grad_seed_scales():
    x = input_node("x", (3,), F64)
    joint = grad(Graph([x], [node(Op.SUM, x, axes=(0,))]), seed=2.5)
    np.testing.assert_array_equal(run(joint, [np.zeros(3)])[1], [2.5, 2.5, 2.5])


def test_grad_rejects_non_scalar_output_and_unknown_input():
    g = _mlp()
    with pytest.raises(ValueError, match="hidden.*f64\\[4,2\\].*scalar"):
        grad(g, output=1)
    with pytest.raises(ValueError, match="'nope' is not an input"):
        grad(g, wrt=["nope"])
    with pytest.raises(ValueError, match="labels.*only floating"):
        grad(g, wrt=["labels"])


def test_shared_subexpression_accumulates():
    x = input_node("x", (2,), F64)
    y = node(Op.MUL, x, x)
    loss = node(Op.SUM, node(Op.ADD, y, y), axes=(0,))
    (gx,) = run(grad(Graph([x], [loss])), [np.array([1.0, -3.0])])[1:]
    np.testing.assert_array_equal(gx, [4.0, -12.0])


def test_vjp_graph_takes_cotangent_inputs():
    g = _mlp()
    vg = vjp_graph(g, wrt=["x"], outputs=[1])
    assert [i.attrs["name"] for i in vg.inputs] == [
        "x",
        "fc.weight",
        "labels",
        "cotangent_hidden",
    ]
    rng = np.random.default_rng(2)
    x, w, ct = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    gx = run(vg, [x, w, np.zeros(4, np.int64), ct])[-1]
    expected = ((1 - np.tanh(x @ w) ** 2) * ct) @ w.T
    np.testing.assert_allclose(gx, expected, rtol=1e-12)


def test_rules_work_on_any_value_protocol_class():
    """The rules only use .shape/.dtype/_emit, so a foreign value class works."""

    class Recorder:
        log: ClassVar[list] = []

        def __init__(self, n):
            self.n = n
            self.shape, self.dtype = n.shape, n.dtype

        @staticmethod
        def _emit(op, srcs, attrs):
            Recorder.log.append(op)
            return Recorder(node(op, *[s.n for s in srcs], **attrs))

    a = Recorder(input_node("a", (2, 3), F64))
    b = Recorder(input_node("b", (3, 4), F64))
    out = Recorder(node(Op.DOT, a.n, b.n))
    ga, gb = autodiff.apply_vjp(Op.DOT, [a, b], out, {}, Recorder(input_node("g", (2, 4), F64)))
    assert isinstance(ga, Recorder) and ga.shape == (2, 3) and gb.shape == (3, 4)
    assert Op.DOT in Recorder.log and Op.PERMUTE in Recorder.log


def test_sum_to_undoes_expand():
    g = input_node("g", (2, 3, 4), F64)
    s = autodiff.sum_to(g, (3, 1))
    assert s.shape == (3, 1)
    value = run(Graph([g], [s]), [np.ones((2, 3, 4))])[0]
    np.testing.assert_array_equal(value, np.full((3, 1), 8.0))


def test_const_array_weights_are_used():
    # guards the harness: the loss really depends on W, so a wrong-sign VJP fails
    c = const(np.array([1.0, -1.0]), F64, (2,))
    assert isinstance(c.attrs["value"], ConstArray)
