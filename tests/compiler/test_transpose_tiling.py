"""Elementwise kernels whose loads are contiguous along an outer loop (a
transposing copy, a sum of transposed gradients) walk that loop innermost
in strips (codegen/llvm/kernels.py `transposed_dim`): same values as the
interpreter for any extents, strips cut at thread and array boundaries."""

import numpy as np
import pytest

from graphc.codegen.llvm import kernels
from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph, input_node, node
from graphc.ir.ops import Op
from tests.compiler.compiler_util import assert_matches


def _elementwise(exe):
    return [k for k in exe.program.kernels if k.kind == "elementwise"]


def _data(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_sum_of_transposed_buffers_runs_along_the_loads():
    # The LSTM weight gradient: per-timestep [in, out] gradients summed into
    # an [out, in] buffer. Large enough to split across threads.
    xs = [input_node(f"x{i}", (200, 800), dt.float32) for i in range(6)]
    acc = node(Op.PERMUTE, xs[0], perm=(1, 0))
    for x in xs[1:]:
        acc = node(Op.ADD, acc, node(Op.PERMUTE, x, perm=(1, 0)))
    exe = assert_matches(Graph(xs, [acc]), [_data(200, 800, seed=i) for i in range(6)])
    (k,) = _elementwise(exe)
    assert kernels.transposed_dim(k) == 0


@pytest.mark.parametrize(
    ("shape", "perm"),
    [((37, 53), (1, 0)), ((3, 19, 45), (0, 2, 1)), ((17, 5, 33), (2, 0, 1)), ((64, 16), (1, 0))],
)
def test_transposing_copies_match_the_interpreter(shape, perm):
    x = input_node("x", shape, dt.float32)
    t = node(Op.PERMUTE, x, perm=perm)
    y = node(Op.MUL, t, t)
    exe = assert_matches(Graph([x], [y]), [_data(*shape)])
    assert any(kernels.transposed_dim(k) is not None for k in _elementwise(exe))


def test_contiguous_kernels_keep_their_loop_order():
    a, b = input_node("a", (64, 48), dt.float32), input_node("b", (64, 48), dt.float32)
    exe = assert_matches(Graph([a, b], [node(Op.ADD, a, b)]), [_data(64, 48), _data(64, 48, seed=1)])
    assert all(kernels.transposed_dim(k) is None for k in _elementwise(exe))


def test_short_outer_extents_keep_their_loop_order():
    # Fewer rows than one strip: nothing to gain from reordering.
    x = input_node("x", (40, 8), dt.float32)
    exe = assert_matches(Graph([x], [node(Op.PERMUTE, x, perm=(1, 0))]), [_data(40, 8)])
    assert all(kernels.transposed_dim(k) is None for k in _elementwise(exe))


def test_affine_sees_a_split_and_merged_index():
    from graphc.codegen import kernel as K

    k = K.var("k")
    # [B*T] split into (T = 64) and merged back with the value's strides.
    merged = K.add(K.mul(K.floordiv(k, 64), K.const(32768)), K.mul(K.mod(k, 64), K.const(512)))
    assert K.affine(merged) == ({"k": 512}, 0)
    off = K.add(merged, K.const(3))
    assert K.affine(off) == ({"k": 512}, 3)
    # Not a merge: the strides do not line up.
    assert K.affine(K.add(K.mul(K.floordiv(k, 64), K.const(1000)), K.mul(K.mod(k, 64), K.const(512)))) is None
    assert K.affine(K.mod(k, 64)) is None


def test_weight_gradient_of_a_computed_activation_reads_it_in_place():
    # The GPT MLP's second weight gradient: dW = h^T dy with h = gelu-like
    # f(x) of [B, T, 512] seen as [B*T, 512]. h is computed into its own
    # layout (a contiguous copy) and the GEMM reads h^T through strides,
    # not through a transposing copy of h^T.
    x = input_node("x", (4, 16, 96), dt.float32)
    dy = input_node("dy", (64, 40), dt.float32)
    h = node(Op.MUL, x, node(Op.TANH, x))
    ht = node(Op.PERMUTE, node(Op.RESHAPE, h, shape=(64, 96)), perm=(1, 0))
    dw = node(Op.DOT, ht, dy)
    xs, dys = _data(4, 16, 96), _data(64, 40, seed=1)
    exe = assert_matches(Graph([x, dy], [dw]), [xs, dys])
    (copy,) = _elementwise(exe)
    (dot,) = [k for k in exe.program.kernels if k.kind == "dot"]
    # The copy writes h in its own layout: along its innermost loop.
    assert kernels.transposed_dim(copy) is None
    assert (dot.a.row_stride, dot.a.col_stride) == (1, 96)
    hv = (xs * np.tanh(xs)).reshape(64, 96).astype(np.float64)
    np.testing.assert_allclose(exe([xs, dys])[0], hv.T @ dys, rtol=1e-4, atol=1e-4)
