"""Every primitive compiled by the LLVM backend against the interpreter:
dtypes, broadcasting, non-contiguous views, size-1 and empty dimensions."""

import numpy as np
import pytest
from compiler_util import assert_matches

from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph, const, input_node, node
from graphc.ir.ops import Op

RNG = np.random.default_rng(0)
NUMERIC = [dt.float32, dt.float64, dt.int32, dt.int64, dt.uint8]


def data(shape, dtype, low=-5, high=5):
    if dtype.is_bool:
        return RNG.random(shape) < 0.5
    if dtype.is_float:
        return RNG.uniform(low, high, shape).astype(dtype.np)
    if dtype.np.kind == "u":
        low = 0
    return RNG.integers(low, high, shape).astype(dtype.np)


def unary_graph(op, in_dtype, in_shape, **attrs):
    x = input_node("x", in_shape, in_dtype)
    return Graph([x], [node(op, x, **attrs)])


FLOAT_UNARY = [Op.NEG, Op.EXP, Op.SIN, Op.COS, Op.TANH, Op.ERF, Op.FLOOR]


@pytest.mark.parametrize("dtype", [dt.float32, dt.float64])
@pytest.mark.parametrize("op", FLOAT_UNARY + [Op.LOG, Op.SQRT, Op.RECIP])
def test_float_unary(op, dtype):
    low = 0.1 if op in (Op.LOG, Op.SQRT, Op.RECIP) else -5
    assert_matches(unary_graph(op, dtype, (3, 17)), [data((3, 17), dtype, low=low)])


@pytest.mark.parametrize("dtype", [dt.int32, dt.int64, dt.int8])
def test_int_neg(dtype):
    assert_matches(unary_graph(Op.NEG, dtype, (5, 3)), [data((5, 3), dtype)])


def test_not():
    assert_matches(unary_graph(Op.NOT, dt.bool_, (4, 9)), [data((4, 9), dt.bool_)])


BINARY_ARITH = [Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MAX, Op.MIN, Op.CMPLT, Op.CMPEQ]


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("op", BINARY_ARITH)
def test_binary(op, dtype):
    x, y = input_node("x", (6, 7), dtype), input_node("y", (6, 7), dtype)
    a, b = data((6, 7), dtype), data((6, 7), dtype, low=-3, high=3)
    if op is Op.DIV and dtype.is_float:
        b[b == 0] = 1
    if op is Op.DIV and not dtype.is_float:
        b[b == 0] = 1  # integer division by zero is an error (test_numerics_compiled.py)
    assert_matches(Graph([x, y], [node(op, x, y)]), [a, b])


def test_int_div_min_by_minus_one():
    x, y = input_node("x", (3,), dt.int32), input_node("y", (3,), dt.int32)
    a = np.array([-(2**31), 7, -7], np.int32)
    b = np.array([-1, -2, 2], np.int32)
    assert_matches(Graph([x, y], [node(Op.DIV, x, y)]), [a, b])


def test_pow_and_logic():
    x, y = input_node("x", (8,), dt.float64), input_node("y", (8,), dt.float64)
    assert_matches(Graph([x, y], [node(Op.POW, x, y)]), [data((8,), dt.float64, 0.5, 3), data((8,), dt.float64)])
    p, q = input_node("p", (9,), dt.bool_), input_node("q", (9,), dt.bool_)
    g = Graph([p, q], [node(Op.AND, p, q), node(Op.OR, p, q)])
    assert_matches(g, [data((9,), dt.bool_), data((9,), dt.bool_)])


def test_atan2_quadrants_zeros_and_infinities():
    special = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 2.5])
    for dtype in (dt.float32, dt.float64):
        y, x = (a.reshape(-1).astype(dtype.np) for a in np.meshgrid(special, special))
        a, b = input_node("a", y.shape, dtype), input_node("b", x.shape, dtype)
        assert_matches(Graph([a, b], [node(Op.ATAN2, a, b)]), [y, x])


def test_nan_semantics():
    x = input_node("x", (2, 4), dt.float32)
    a = np.array([[1, np.nan, 3, 3], [2, 5, 5, np.nan]], np.float32)
    g = Graph([x], [node(Op.ARGMAX, x, axis=1), node(Op.REDUCE_MAX, x, axes=(1,)), node(Op.MAX, x, x)])
    assert_matches(g, [a])


def test_where():
    c, x, y = (
        input_node("c", (4, 5), dt.bool_),
        input_node("x", (4, 5), dt.float32),
        input_node("y", (4, 5), dt.float32),
    )
    g = Graph([c, x, y], [node(Op.WHERE, c, x, y)])
    assert_matches(g, [data((4, 5), dt.bool_), data((4, 5), dt.float32), data((4, 5), dt.float32)])


CASTS = [dt.bool_, dt.uint8, dt.int32, dt.int64, dt.float32, dt.float64]


@pytest.mark.parametrize("src", CASTS)
@pytest.mark.parametrize("dst", CASTS)
def test_cast(src, dst):
    a = data((5, 6), src, low=-100, high=100)
    assert_matches(unary_graph(Op.CAST, src, (5, 6), dtype=dst), [a])


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize(
    "op,axes", [(Op.SUM, (1,)), (Op.SUM, (0, 2)), (Op.REDUCE_MAX, (2,)), (Op.PROD, (0,)), (Op.SUM, ())]
)
def test_reduce(op, axes, dtype):
    a = data((3, 4, 5), dtype, low=-2, high=3)
    assert_matches(unary_graph(op, dtype, (3, 4, 5), axes=axes), [a], rtol=1e-4)


@pytest.mark.parametrize("dtype", [dt.float32, dt.int64, dt.uint8, dt.bool_])
@pytest.mark.parametrize("axis", [0, 1])
def test_argmax(dtype, axis):
    a = data((6, 5), dtype, low=-2, high=3)
    assert_matches(unary_graph(Op.ARGMAX, dtype, (6, 5), axis=axis), [a])


def test_reduce_bool_max_and_empty():
    assert_matches(unary_graph(Op.REDUCE_MAX, dt.bool_, (4, 6), axes=(1,)), [data((4, 6), dt.bool_)])
    assert_matches(unary_graph(Op.SUM, dt.float32, (0, 3), axes=(0,)), [np.zeros((0, 3), np.float32)])
    assert_matches(unary_graph(Op.SUM, dt.float32, (3, 0), axes=(0,)), [np.zeros((3, 0), np.float32)])


@pytest.mark.parametrize("dtype", [dt.float32, dt.float64, dt.int32, dt.bool_])
@pytest.mark.parametrize("op", [Op.SUM, Op.REDUCE_MAX, Op.PROD])
@pytest.mark.parametrize(
    "shape,axes",
    [
        ((37, 70), (0,)),
        ((3, 5, 130), (0,)),
        ((3, 5, 130), (0, 1)),
        ((6, 5, 67), (1,)),
        ((300, 1000), (0,)),
        ((40, 2500), (0,)),
    ],
)
def test_reduce_over_strided_axes_in_column_tiles(op, shape, axes, dtype):
    # Output columns are contiguous and the reduced axes strided: these run
    # COLUMN_TILE columns at a time, with a partial last tile. The last two
    # cases are large enough to run on several threads; the last one spans
    # two full tiles and a partial one.
    from graphc.codegen.llvm.kernels import _column_tiled

    if dtype.is_bool and op is not Op.REDUCE_MAX:
        pytest.skip("bool tensors only reduce with max")
    a = data(shape, dtype, low=-2, high=3)
    if op is Op.PROD and not dtype.is_bool:
        a = np.where(np.abs(a) > 1.05, np.sign(a), a).astype(dtype.np) if dtype.is_float else np.sign(a)
    if op is Op.REDUCE_MAX and dtype.is_float:
        a.flat[::17] = np.nan  # NaN propagates through the tiles too
    exe = assert_matches(unary_graph(op, dtype, shape, axes=axes), [a], rtol=1e-4)
    assert any(_column_tiled(k) for k in exe.program.kernels)


MOVES = [
    ((2, 3, 4), Op.PERMUTE, dict(perm=(2, 0, 1))),
    ((2, 3, 4), Op.RESHAPE, dict(shape=(6, 4))),
    ((2, 3, 4), Op.RESHAPE, dict(shape=(4, 1, 6))),
    ((3, 1), Op.EXPAND, dict(shape=(2, 3, 5))),
    ((7, 8), Op.SLICE, dict(starts=(1, 0), stops=(7, 8), steps=(2, 3))),
    ((3, 4), Op.PAD, dict(pads=((1, 2), (0, 3)), value=1.5)),
    ((0, 4), Op.PAD, dict(pads=((1, 0), (0, 0)), value=2.0)),
    ((1, 5), Op.EXPAND, dict(shape=(4, 5))),
    ((2, 0, 3), Op.PERMUTE, dict(perm=(1, 2, 0))),
]


@pytest.mark.parametrize("shape,op,attrs", MOVES)
def test_movement(shape, op, attrs):
    assert_matches(unary_graph(op, dt.float32, shape, **attrs), [data(shape, dt.float32)])


def test_non_contiguous_chain():
    # A reshape of a permuted, sliced view must index correctly (div/mod).
    x = input_node("x", (4, 6, 5), dt.float64)
    v = node(Op.SLICE, node(Op.PERMUTE, x, perm=(2, 0, 1)), starts=(0, 1, 0), stops=(5, 4, 6), steps=(2, 1, 2))
    y = node(Op.RESHAPE, v, shape=(9, 3))
    z = node(Op.EXP, node(Op.PERMUTE, y, perm=(1, 0)))
    assert_matches(Graph([x], [z]), [data((4, 6, 5), dt.float64, -1, 1)])


def test_concat():
    a, b, c = input_node("a", (2, 3), dt.int32), input_node("b", (2, 0), dt.int32), input_node("c", (2, 4), dt.int32)
    g = Graph([a, b, c], [node(Op.CONCAT, a, b, c, axis=1)])
    assert_matches(g, [data((2, 3), dt.int32), data((2, 0), dt.int32), data((2, 4), dt.int32)])


@pytest.mark.parametrize("dtype", [dt.float32, dt.float64, dt.int32, dt.int64])
@pytest.mark.parametrize("shapes", [((5, 7), (7, 3)), ((2, 3, 4), (2, 4, 6)), ((1, 1), (1, 1)), ((3, 0), (0, 4))])
def test_dot(shapes, dtype):
    x, y = input_node("x", shapes[0], dtype), input_node("y", shapes[1], dtype)
    assert_matches(Graph([x, y], [node(Op.DOT, x, y)]), [data(shapes[0], dtype), data(shapes[1], dtype)], rtol=1e-5)


def test_dot_transposed_and_broadcast_operands():
    x, w = input_node("x", (6, 4), dt.float32), input_node("w", (5, 4), dt.float32)
    t = node(Op.DOT, x, node(Op.PERMUTE, w, perm=(1, 0)))
    b = input_node("b", (4, 5), dt.float32)
    e = node(Op.DOT, node(Op.EXPAND, x, shape=(3, 6, 4)), node(Op.EXPAND, b, shape=(3, 4, 5)))
    ex = node(Op.DOT, node(Op.EXP, x), b)  # operand not a view: copied first
    g = Graph([x, w, b], [t, e, ex])
    assert_matches(g, [data((6, 4), dt.float32), data((5, 4), dt.float32), data((4, 5), dt.float32)])


@pytest.mark.parametrize(
    "kernel,stride,padding,dilation", [(3, 1, 1, 1), (2, 2, 0, 1), ((3, 2), (2, 1), (1, 0), (1, 2))]
)
def test_unfold_fold(kernel, stride, padding, dilation):
    x = input_node("x", (2, 3, 7, 6), dt.float32)
    attrs = dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    u = node(Op.UNFOLD, x, **attrs)
    f = node(Op.FOLD, u, output_size=(7, 6), **attrs)
    assert_matches(Graph([x], [u, f]), [data((2, 3, 7, 6), dt.float32)])


@pytest.mark.parametrize(
    "size,kernel,stride,padding",
    [
        ((8, 6), 3, 2, 1),  # a 3x3 stride-2 max-pool's or convolution's backward
        ((8, 6), 1, 2, 0),  # a 1x1 stride-2 shortcut's data gradient
        ((9, 8), (5, 3), (3, 2), (2, 1)),
        ((6, 6), (3, 3), (2, 1), (0, 1)),  # stride 1 along one axis
        ((8, 8), 4, 2, 3),  # padding wider than the stride
    ],
)
def test_strided_fold_runs_over_phases(size, kernel, stride, padding):
    # Output sizes that are multiples of the stride take the phase loops
    # (codegen/fusion.py `_fold_strided`): same sums as the interpreter.
    from graphc.codegen.fusion import fuse

    h, w = size
    x = input_node("x", (2, 3, h, w), dt.float32)
    attrs = dict(kernel=kernel, stride=stride, padding=padding, dilation=1)
    u = node(Op.UNFOLD, x, **attrs)
    cols = input_node("c", u.shape, dt.float32)
    g = Graph([cols], [node(Op.FOLD, cols, output_size=(h, w), **attrs)])
    (k,) = fuse(g).kernels
    assert k.kind == "reduce" and len(k.shape) == 6  # (n, c, row phase, row, column phase, column)
    assert_matches(g, [data(u.shape, dt.float32)])


def test_conv_as_unfold_dot():
    x, w = input_node("x", (2, 3, 8, 8), dt.float32), input_node("w", (4, 27), dt.float32)
    cols = node(Op.UNFOLD, x, kernel=3, stride=1, padding=1, dilation=1)
    out = node(Op.DOT, node(Op.EXPAND, w, shape=(2, 4, 27)), cols)
    # Its own seeded data, so the result does not depend on which tests ran
    # first. Each output sums 27 products of values in [-5, 5] that may
    # cancel to near zero, so a relative tolerance alone is meaningless; the
    # absolute one is float32's worst-case bound for such a sum, K * eps *
    # sum(|products|) <= 27 * 1.2e-7 * 27 * 25 ~= 2e-3, of which the
    # summation orders seen differ by far less.
    rng = np.random.default_rng(189)
    arrays = [rng.uniform(-5, 5, (2, 3, 8, 8)).astype(np.float32), rng.uniform(-5, 5, (4, 27)).astype(np.float32)]
    bound = 27 * np.finfo(np.float32).eps * 27 * 25
    assert_matches(Graph([x, w], [out]), arrays, rtol=1e-5, atol=bound)


@pytest.mark.parametrize("axis", [0, 1])
def test_gather_scatter(axis):
    x = input_node("x", (4, 5), dt.float32)
    idx = input_node("i", (3, 4) if axis == 0 else (4, 3), dt.int64)
    shape = (3, 4) if axis == 0 else (4, 3)
    index = RNG.integers(0, 4 if axis == 0 else 5, shape).astype(np.int64)
    src = input_node("s", shape, dt.float32)
    g = Graph(
        [x, idx, src], [node(Op.GATHER, x, idx, axis=axis), node(Op.SCATTER_ADD, src, idx, axis=axis, shape=(4, 5))]
    )
    assert_matches(g, [data((4, 5), dt.float32), index, data(shape, dt.float32)])


@pytest.mark.parametrize("op", [Op.GATHER, Op.SCATTER_ADD])
def test_out_of_range_index_raises(op):
    import graphc.runtime.cpu as cpu

    x = input_node("x", (4, 5), dt.float32)
    idx = input_node("i", (4, 5), dt.int64)
    out = node(op, x, idx, axis=1) if op is Op.GATHER else node(op, x, idx, axis=1, shape=(4, 5))
    exe = cpu.compile_cpu(Graph([x, idx], [out]))
    index = np.zeros((4, 5), np.int64)
    exe([data((4, 5), dt.float32), index])  # in range: fine
    for bad in (5, -1, 10**12):
        index[2, 3] = bad
        with pytest.raises(IndexError):
            exe([data((4, 5), dt.float32), index])


def test_one_value_per_row_scatter_keeps_its_index_check():
    # scatter_add of one value per row (a picked log-probability's gradient)
    # compiles to a one-hot select (simplify's scatter-one-hot): the same
    # values as the scatter, and an index out of range still raises.
    import graphc.runtime.cpu as cpu

    src = input_node("s", (6, 1), dt.float32)
    idx = input_node("i", (6, 1), dt.int64)
    g = Graph([src, idx], [node(Op.SCATTER_ADD, src, idx, axis=1, shape=(6, 9))])
    index = RNG.integers(0, 9, (6, 1)).astype(np.int64)
    assert_matches(g, [data((6, 1), dt.float32), index])
    exe = cpu.compile_cpu(g)
    assert {k.kind for k in exe.program.kernels} == {"elementwise"}
    for bad in (9, -1):
        index[4, 0] = bad
        with pytest.raises(IndexError):
            exe([data((6, 1), dt.float32), index])


def test_sum_of_small_dots_runs_as_one_gemm_over_joined_operands():
    # An RNN's weight gradient: sum_t (h_t^T g_t)^T over 6 timesteps. dot-sum
    # and add-permutes join it into one dot of two concats of 6 parts, each
    # part copied by a kernel of its own (no where-chain over every part).
    import graphc.runtime.cpu as cpu

    hs = [input_node(f"h{t}", (3, 16), dt.float32) for t in range(10)]
    gs = [input_node(f"g{t}", (3, 24), dt.float32) for t in range(10)]
    total = None
    for h, g in zip(hs, gs):
        term = node(Op.PERMUTE, node(Op.DOT, node(Op.PERMUTE, h, perm=(1, 0)), g), perm=(1, 0))
        total = term if total is None else node(Op.ADD, total, term)
    graph = Graph(hs + gs, [total])
    arrays = [data(x.shape, dt.float32) for x in hs + gs]
    assert_matches(graph, arrays, rtol=1e-5, atol=1e-5)
    kinds = [k.kind for k in cpu.compile_cpu(graph).program.kernels]
    assert kinds.count("dot") == 1 and kinds.count("elementwise") == 20 and "add" not in kinds


def test_iota_random_const():
    k = input_node("k", (), dt.int64)
    r = node(Op.RANDOM, k, shape=(3, 7))
    io = node(Op.IOTA, shape=(3, 7), axis=1, dtype=dt.int32)
    c = const(np.arange(6, dtype=np.float32).reshape(2, 3), dt.float32, (2, 3))
    s = const(2.5, dt.float64)
    g = Graph([k], [r, io, c, s, node(Op.ADD, c, c)])
    exe = assert_matches(g, [np.array(12345, np.int64)], rtol=0, atol=0)
    assert exe([np.array(-7, np.int64)])[0].std() > 0.1
