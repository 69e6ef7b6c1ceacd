"""Fusion groups primitives into few kernels; the memory plan reuses buffers
and writes aliased outputs in place."""

import numpy as np
from compiler_util import assert_matches

import graphc.runtime.cpu as cpu
from graphc.codegen import memory
from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph, const, input_node, node
from graphc.ir.ops import Op

RNG = np.random.default_rng(1)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def zeros_like(x):
    return node(Op.EXPAND, const(0.0, x.dtype), shape=x.shape)


def relu(x):
    return node(Op.MAX, x, zeros_like(x))


def keepdim(r, shape):
    kept = tuple(1 if i == len(shape) - 1 else d for i, d in enumerate(shape))
    return node(Op.EXPAND, node(Op.RESHAPE, r, shape=kept), shape=shape)


def test_relu_mul_add_is_one_kernel():
    a, b, c = (input_node(n, (8, 16), dt.float32) for n in "abc")
    g = Graph([a, b, c], [relu(node(Op.ADD, node(Op.MUL, a, b), c))])
    exe = assert_matches(g, [f32(8, 16), f32(8, 16), f32(8, 16)])
    assert len(exe.program.kernels) == 1


def test_softmax_and_log_softmax_two_kernels_each():
    x = input_node("x", (6, 33), dt.float32)
    m = keepdim(node(Op.REDUCE_MAX, x, axes=(1,)), x.shape)
    e = node(Op.EXP, node(Op.SUB, x, m))
    s = keepdim(node(Op.SUM, e, axes=(1,)), x.shape)
    softmax = node(Op.DIV, e, s)
    log_softmax = node(Op.SUB, node(Op.SUB, x, m), node(Op.LOG, s))
    for out in (softmax, log_softmax):
        exe = assert_matches(Graph([x], [out]), [f32(6, 33)])
        assert len(exe.program.kernels) == 2
        assert exe.program.kernels[1].row_stores


def test_linear_bias_relu_fuses_into_dot():
    x, w, b = (
        input_node("x", (5, 12), dt.float32),
        input_node("w", (7, 12), dt.float32),
        input_node("b", (7,), dt.float32),
    )
    y = node(Op.DOT, x, node(Op.PERMUTE, w, perm=(1, 0)))
    out = relu(node(Op.ADD, y, node(Op.EXPAND, b, shape=(5, 7))))
    exe = assert_matches(Graph([x, w, b], [out]), [f32(5, 12), f32(7, 12), f32(7)])
    assert [k.kind for k in exe.program.kernels] == ["dot"]


def test_mean_epilogue_fused_into_sum():
    x = input_node("x", (4, 10), dt.float64)
    mean = node(Op.MUL, node(Op.SUM, x, axes=(1,)), node(Op.EXPAND, const(0.1, dt.float64), shape=(4,)))
    exe = assert_matches(Graph([x], [mean]), [RNG.standard_normal((4, 10))])
    assert len(exe.program.kernels) == 1


def _chain(x, n):
    # Sums force materialized buffers whose lifetimes do not overlap.
    for _ in range(n):
        s = node(Op.SUM, node(Op.EXP, x), axes=(1,))
        x = node(Op.ADD, x, node(Op.EXPAND, node(Op.RESHAPE, s, shape=(s.shape[0], 1)), shape=x.shape))
        x = node(Op.TANH, x)
    return x


def test_memory_plan_reuses_buffers():
    x = input_node("x", (16, 32), dt.float32)
    g = Graph([x], [_chain(x, 6)])
    exe = assert_matches(g, [f32(16, 32)], rtol=1e-4)
    prog = exe.program
    temps = [b for b in prog.buffers.values() if b.kind == "temp"]
    assert len(temps) >= 4
    assert prog.plan.peak_bytes < sum(memory._round(b.nbytes) for b in temps)
    text = memory.format_plan(prog)
    assert f"peak arena bytes: {prog.plan.peak_bytes}" in text


def test_in_place_elementwise_reuses_dead_input():
    x = input_node("x", (64,), dt.float32)
    s = node(Op.SUM, x, axes=(0,))
    big = node(Op.EXP, node(Op.MUL, x, node(Op.EXPAND, node(Op.RESHAPE, s, shape=(1,)), shape=(64,))))
    t1 = node(Op.TANH, node(Op.ADD, big, big))
    t2 = node(Op.SUM, node(Op.SIN, t1), axes=(0,))
    u = node(Op.MUL, t1, node(Op.EXPAND, node(Op.RESHAPE, t2, shape=(1,)), shape=(64,)))
    g = Graph([x], [node(Op.SUM, node(Op.COS, u), axes=(0,)), node(Op.NEG, u)])
    exe = assert_matches(g, [f32(64) * 0.1], rtol=1e-4)
    assert exe.program.plan.peak_bytes > 0


def test_aliased_output_written_in_place():
    p, grad = input_node("p", (10, 3), dt.float32), input_node("g", (10, 3), dt.float32)
    lr = node(Op.EXPAND, const(0.5, dt.float32), shape=(10, 3))
    new_p = node(Op.SUB, p, node(Op.MUL, lr, grad))
    loss = node(Op.SUM, node(Op.MUL, p, p), axes=(0, 1))
    g = Graph([p, grad], [loss, new_p])
    exe = cpu.compile_cpu(g, {1: 0})
    pa, ga = f32(10, 3), f32(10, 3)
    want = pa - 0.5 * ga
    want_loss = (pa * pa).sum()
    loss_v, out = exe([pa, ga])
    assert out is pa
    np.testing.assert_allclose(pa, want, rtol=1e-6)
    np.testing.assert_allclose(loss_v, want_loss, rtol=1e-5)


def test_alias_needing_copy_is_correct():
    # new_p is a transpose of p: it cannot overwrite p while reading it.
    p = input_node("p", (4, 4), dt.float32)
    new_p = node(Op.PERMUTE, node(Op.NEG, p), perm=(1, 0))
    exe = cpu.compile_cpu(Graph([p], [new_p]), {0: 0})
    pa = f32(4, 4)
    want = -pa.T
    (out,) = exe([pa])
    assert out is pa
    np.testing.assert_array_equal(pa, want)


def test_explain_has_every_stage():
    a = input_node("a", (4, 4), dt.float32)
    info = cpu.explain(Graph([a], [relu(a)]))
    assert "maximum" in info["fused"] and "peak arena bytes" in info["plan"]
    assert "define" in info["llvm"] and "entry" in info["asm"]


def test_threads_give_same_results():
    a = input_node("a", (512, 2048), dt.float32)
    b = input_node("b", (2048, 64), dt.float32)
    g = Graph([a, b], [node(Op.DOT, a, b), node(Op.TANH, a)])
    arrays = [f32(512, 2048), f32(2048, 64)]
    old = cpu.get_num_threads()
    try:
        cpu.set_num_threads(1)
        one = cpu.compile_cpu(g)(arrays)
        cpu.set_num_threads(2)
        two = cpu.compile_cpu(g)(arrays)
    finally:
        cpu.set_num_threads(old)
    for x, y in zip(one, two):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(one[0], arrays[0] @ arrays[1], rtol=1e-3, atol=1e-3)


def test_large_outputs_start_on_a_cache_line_and_views_of_them_survive_the_next_call():
    from graphc.runtime import cpu

    x = input_node("x", (64, 48), dt.float32)
    g = Graph([x], [node(Op.MUL, x, x)])
    exe = cpu.compile_cpu(g)
    a = np.random.default_rng(0).standard_normal((64, 48)).astype(np.float32)
    (first,) = exe([a])
    assert first.ctypes.data % 64 == 0
    kept = first.reshape(-1)  # a view: it holds the raw buffer, not `first`
    del first
    (second,) = exe([a + 1])
    np.testing.assert_array_equal(kept, (a * a).reshape(-1))  # not overwritten
    np.testing.assert_array_equal(second, (a + 1) * (a + 1))
    del kept
    (third,) = exe([a])
    (fourth,) = exe([a + 2])
    np.testing.assert_array_equal(fourth, (a + 2) * (a + 2))
    assert not np.shares_memory(third, fourth)


def test_reshaped_output_is_written_by_its_producer():
    # A convolution weight's gradient: the dot's [C_out, C_in*k*k] result
    # is the output seen as [C_out, C_in, k, k]; the dot writes it, with no
    # copy kernel, and another kernel reads it there.
    from graphc.codegen.fusion import fuse

    a, b = input_node("a", (16, 40), dt.float32), input_node("b", (40, 18), dt.float32)
    m = input_node("m", (16, 2, 3, 3), dt.float32)
    grad = node(Op.RESHAPE, node(Op.DOT, a, b), shape=(16, 2, 3, 3))
    decay = node(Op.EXPAND, const(0.9, dt.float32), shape=(16, 2, 3, 3))
    g = Graph([a, b, m], [grad, node(Op.ADD, node(Op.MUL, m, decay), grad)])
    prog = fuse(g)
    (dot,) = [k for k in prog.kernels if k.kind == "dot"]
    assert dot.outputs == (prog.outputs[0],)
    assert len(prog.kernels) == 2  # the dot and the update: no copy
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((16, 40), (40, 18), (16, 2, 3, 3))]
    assert_matches(g, arrays, rtol=1e-5, atol=1e-5)
