"""The packed GEMM path of dot kernels and the low-overhead call path."""

import numpy as np
import pytest
from compiler_util import assert_matches

import graphc.runtime.cpu as cpu
from graphc.codegen.llvm import gemm
from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph, const, input_node, node
from graphc.ir.ops import Op

RNG = np.random.default_rng(1)


def data(shape, dtype):
    if dtype.is_float:
        return RNG.uniform(-1, 1, shape).astype(dtype.np)
    return RNG.integers(-5, 5, shape).astype(dtype.np)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    old = cpu.get_num_threads()
    cpu.set_num_threads(request.param)
    yield request.param
    cpu.set_num_threads(old)


def _dot_graph(ashape, bshape, dtype):
    a, b = input_node("a", ashape, dtype), input_node("b", bshape, dtype)
    return Graph([a, b], [node(Op.DOT, a, b)])


def _uses_gemm(exe) -> bool:
    return any(gemm.uses_gemm(k) for k in exe.program.kernels)


SIZES = [1, 3, 17, 63, 65, 257]


@pytest.mark.parametrize("m", SIZES)
@pytest.mark.parametrize("n", [1, 17, 65, 257])
def test_odd_sizes(m, n, threads):
    k = 63
    exe = assert_matches(
        _dot_graph((m, k), (k, n), dt.float32),
        [data((m, k), dt.float32), data((k, n), dt.float32)],
        rtol=1e-4,
        atol=1e-5,
    )
    if m >= gemm.GEMM_MIN_ROWS and n >= gemm.GEMM_MIN_COLS and m * n * k >= gemm.GEMM_MIN_WORK:
        assert _uses_gemm(exe)


@pytest.mark.parametrize("mkn", [(257, 600, 33), (20, 3, 1100), (300, 257, 70), (5, 1, 9)])
def test_block_edges(mkn, threads):
    # K past one KC block (sums carried in scratch), N past one NC block,
    # M past one MC block, K = 1.
    m, k, n = mkn
    assert_matches(
        _dot_graph((m, k), (k, n), dt.float32),
        [data((m, k), dt.float32), data((k, n), dt.float32)],
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("mkn", [(257, 600, 33), (45, 203, 70), (14, 99, 40), (10, 3000, 25), (5, 800, 9)])
def test_block_edges_of_transposed_operands(mkn, threads):
    # A^T (lines contiguous: packed k-outer across the panels, the last
    # panel partial) and B^T (k contiguous: 8x8 register transposes, a k
    # tail that is not a multiple of 8; a partial last panel, as a
    # convolution's weight gradient reads its im2col, reads its last line
    # into the lines past the edge and zeroes them).
    m, k, n = mkn
    a, b = input_node("a", (k, m), dt.float32), input_node("b", (n, k), dt.float32)
    prod = node(Op.DOT, node(Op.PERMUTE, a, perm=(1, 0)), node(Op.PERMUTE, b, perm=(1, 0)))
    exe = assert_matches(
        Graph([a, b], [prod]), [data((k, m), dt.float32), data((n, k), dt.float32)], rtol=1e-4, atol=1e-4
    )
    assert _uses_gemm(exe)


@pytest.mark.parametrize("dtype", [dt.float64, dt.int32, dt.int64])
def test_other_dtypes(dtype, threads):
    exe = assert_matches(
        _dot_graph((65, 40), (40, 33), dtype), [data((65, 40), dtype), data((40, 33), dtype)], rtol=1e-10, atol=1e-10
    )
    assert _uses_gemm(exe) == dtype.is_float


def test_transposed_operands(threads):
    # A^T @ B and A @ B^T, as the backward pass produces them.
    x, y = input_node("x", (70, 50), dt.float32), input_node("y", (70, 40), dt.float32)
    w = input_node("w", (30, 40), dt.float32)
    xt_y = node(Op.DOT, node(Op.PERMUTE, x, perm=(1, 0)), y)
    y_wt = node(Op.DOT, y, node(Op.PERMUTE, w, perm=(1, 0)))
    g = Graph([x, y, w], [xt_y, y_wt])
    exe = assert_matches(
        g, [data((70, 50), dt.float32), data((70, 40), dt.float32), data((30, 40), dt.float32)], rtol=1e-4, atol=1e-5
    )
    assert all(gemm.uses_gemm(k) for k in exe.program.kernels if k.kind == "dot")


@pytest.mark.parametrize(("batch", "m", "n", "k"), [(64, 64, 32, 64), (9, 20, 40, 33), (5, 64, 64, 32), (2, 3, 6, 11)])
def test_many_small_batched_items(batch, m, n, k, threads):
    # Items of at most BATCH_SPLIT_TILES micro-tiles: with enough of them
    # each thread takes whole items (attention's backward: 64 x 32 x 64 per
    # head); 9 items do not split evenly over 2 threads; with fewer items
    # than BATCH_SPLIT_ITEMS per thread the threads share each item's tiles.
    assert gemm._small_items(_dot_graph_kernel(batch, m, n, k), gemm.blocking(dt.float32))
    a, b = input_node("a", (batch, m, k), dt.float32), input_node("b", (batch, k, n), dt.float32)
    exe = assert_matches(
        Graph([a, b], [node(Op.DOT, a, b)]),
        [data((batch, m, k), dt.float32), data((batch, k, n), dt.float32)],
        rtol=1e-4,
        atol=1e-5,
    )
    assert _uses_gemm(exe) == (m >= gemm.GEMM_MIN_ROWS and n >= gemm.GEMM_MIN_COLS and m * n * k >= gemm.GEMM_MIN_WORK)


def _dot_graph_kernel(batch, m, n, k):
    from graphc.codegen.kernel import Kernel

    return Kernel("k", "dot", (batch, m, n), k=k)


def test_batched_and_broadcast(threads):
    a, b = input_node("a", (3, 33, 40), dt.float32), input_node("b", (40, 45), dt.float32)
    out = node(Op.DOT, a, node(Op.EXPAND, b, shape=(3, 40, 45)))
    exe = assert_matches(
        Graph([a, b], [out]), [data((3, 33, 40), dt.float32), data((40, 45), dt.float32)], rtol=1e-4, atol=1e-5
    )
    assert _uses_gemm(exe)


def test_fused_epilogue(threads):
    # relu(x @ w + bias) * 0.5: the epilogue runs on the GEMM's result.
    x, w, bias = (
        input_node("x", (67, 90), dt.float32),
        input_node("w", (90, 35), dt.float32),
        input_node("b", (35,), dt.float32),
    )
    y = node(Op.ADD, node(Op.DOT, x, w), node(Op.EXPAND, node(Op.RESHAPE, bias, shape=(1, 35)), shape=(67, 35)))
    zero = node(Op.EXPAND, const(0.0, dt.float32), shape=(67, 35))
    half = node(Op.EXPAND, const(0.5, dt.float32), shape=(67, 35))
    out = node(Op.MUL, node(Op.MAX, y, zero), half)
    exe = assert_matches(
        Graph([x, w, bias], [out]),
        [data((67, 90), dt.float32), data((90, 35), dt.float32), data((35,), dt.float32)],
        rtol=1e-4,
        atol=1e-5,
    )
    dots = [k for k in exe.program.kernels if k.kind == "dot"]
    assert len(dots) == 1 and gemm.uses_gemm(dots[0]) and len(exe.program.kernels) == 1


@pytest.fixture(params=[1, 2, 3], ids=["1thread", "2threads", "3threads"])
def more_threads(request):
    old = cpu.get_num_threads()
    cpu.set_num_threads(request.param)
    yield request.param
    cpu.set_num_threads(old)


# Shapes as fractions of the target's tile (MR x NR) and K block (KC): the
# tile is 14x32 with AVX-512, 6x16 with AVX2, so fixed sizes would test a
# single tile on one machine and a multi-tile product on another.
@pytest.mark.parametrize(
    "rows,cols,k_blocks,k_extra",
    [("full", "full", 4, 0), ("min", "min", 19, 136), ("odd", "odd", 13, 5)],
    ids=["full-tile", "smallest", "ragged"],
)
def test_single_tile_products_split_k_across_threads(rows, cols, k_blocks, k_extra, more_threads):
    # A convolution weight gradient's shape: x^T @ g with a long K, then a
    # fused epilogue (scale and bias) that must run once, after the threads'
    # partial sums are added up.
    blk = gemm.blocking(dt.float32)
    m = {"full": blk.mr, "min": gemm.GEMM_MIN_ROWS, "odd": blk.mr - 1}[rows]
    n = {"full": blk.nr, "min": gemm.GEMM_MIN_COLS, "odd": blk.nr - 7}[cols]
    k = k_blocks * blk.kc + k_extra
    xt, g, bias = (
        input_node("xt", (k, m), dt.float32),
        input_node("g", (k, n), dt.float32),
        input_node("b", (n,), dt.float32),
    )
    prod = node(Op.DOT, node(Op.PERMUTE, xt, perm=(1, 0)), g)
    scaled = node(Op.MUL, prod, node(Op.EXPAND, const(0.5, dt.float32), shape=(m, n)))
    out = node(Op.ADD, scaled, node(Op.EXPAND, node(Op.RESHAPE, bias, shape=(1, n)), shape=(m, n)))
    arrays = [data((k, m), dt.float32), data((k, n), dt.float32), data((n,), dt.float32)]
    exe = assert_matches(Graph([xt, g, bias], [out, prod]), arrays, rtol=1e-4, atol=1e-4)
    (dot,) = [kern for kern in exe.program.kernels if kern.kind == "dot"]
    assert gemm.splits_k(dot)
    first = exe([a.copy() for a in arrays])
    again = exe([a.copy() for a in arrays])  # the barrier and scratch are reusable
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)


def test_wide_or_short_k_products_do_not_split_k():
    # Shapes from this target's blocking (AVX2 and AVX-512 tiles differ):
    # two column tiles, K just short of the split threshold, and a batch.
    blk = gemm.blocking(dt.float32)
    long_k, short_k = 3 * gemm.K_SPLIT_MIN_BLOCKS * blk.kc, gemm.K_SPLIT_MIN_BLOCKS * blk.kc - 100
    cases = [
        ((10, long_k), (long_k, blk.nr + 8)),
        ((10, short_k), (short_k, blk.nr - 7)),
        ((3, 10, long_k), (3, long_k, 5)),
    ]
    for shape_a, shape_b in cases:
        exe = cpu.compile_cpu(_dot_graph(shape_a, shape_b, dt.float32))
        assert not any(gemm.splits_k(k) for k in exe.program.kernels if gemm.uses_gemm(k)), shape_a


# --- the call path -----------------------------------------------------------


def _add_graph(n=16):
    a, b = input_node("a", (n,), dt.float32), input_node("b", (n,), dt.float32)
    return Graph([a, b], [node(Op.ADD, a, b)])


def test_results_are_never_overwritten():
    exe = cpu.compile_cpu(_add_graph())
    a, b = np.ones(16, np.float32), np.ones(16, np.float32)
    (first,) = exe([a, b])
    view = exe([a, b])[0][2:]
    (third,) = exe([a * 2, b])
    assert first is not third and view.base is not third
    np.testing.assert_array_equal(first, 2.0)
    np.testing.assert_array_equal(view, 2.0)
    np.testing.assert_array_equal(third, 3.0)


def test_same_input_object_new_contents():
    exe = cpu.compile_cpu(_add_graph())
    a, b = np.ones(16, np.float32), np.ones(16, np.float32)
    exe([a, b])
    a[:] = 5
    np.testing.assert_array_equal(exe([a, b])[0], 6.0)
    # Non-contiguous and non-array inputs are copied, not misread.
    c = np.arange(32, dtype=np.float32)[::2]
    np.testing.assert_array_equal(exe([c, b])[0], c + 1)
    with pytest.raises(ValueError):
        exe([np.ones(15, np.float32), b])


def test_out_argument():
    exe = cpu.compile_cpu(_add_graph())
    a, b = np.ones(16, np.float32), np.full(16, 2, np.float32)
    out = np.empty(16, np.float32)
    (res,) = exe([a, b], out=[out])
    assert res is out
    np.testing.assert_array_equal(out, 3.0)
    with pytest.raises(ValueError):
        exe([a, b], out=[np.empty(8, np.float32)])
    with pytest.raises(ValueError):
        exe([a, b], out=[a])  # overlaps an input
    with pytest.raises(ValueError):
        exe([a, b], out=[np.empty(32, np.float32)[::2]])


def test_loop_invariant_scalar_read_through_aliased_output():
    # p <- p - lr / (1 - 0.9 ** t) * g, t read from a one-element buffer,
    # p written in place: the hoisted bias correction must use this call's t.
    p, g, t = input_node("p", (300,), dt.float32), input_node("g", (300,), dt.float32), input_node("t", (), dt.float32)
    corr = node(Op.SUB, const(1.0, dt.float32), node(Op.POW, const(0.9, dt.float32), t))
    scale = node(Op.EXPAND, node(Op.RECIP, corr), shape=(300,))
    new_p = node(Op.SUB, p, node(Op.MUL, g, scale))
    graph = Graph([p, g, t], [new_p])
    for step in (1.0, 2.0, 7.0):
        assert_matches(
            graph,
            [data((300,), dt.float32), data((300,), dt.float32), np.array(step, np.float32)],
            rtol=1e-5,
            atol=1e-5,
            aliases={0: 0},
        )
