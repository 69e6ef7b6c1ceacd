"""The fused attention kernel (ATTENTION primitive, codegen/llvm/attention.py):
compiled scaled_dot_product_attention equals the unfused formula and
torch's, with masks, causal, fully masked rows and gradients; the compiled
program stores no [L, S] buffer; other backends get the unfused formula."""

from __future__ import annotations

import numpy as np
import pytest
from compiler_util import assert_matches

import graphc
import graphc.nn.functional as F
import graphc.runtime.cpu as cpu
from graphc._trace import trace_program
from graphc.ir import dtypes
from graphc.ir.graph import Graph, input_node, node
from graphc.ir.ops import Op
from graphc.nn.functional.attention import _composed

torch = pytest.importorskip("torch")
TF = torch.nn.functional
RTOL, ATOL = 1e-5, 1e-6


def _arrays(lead, L, S, E, Ev, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(lead + (n, e)).astype(dtype) for n, e in ((L, E), (S, E), (S, Ev))]


def _mask(kind, shape, dtype=np.float32, seed=1):
    rng = np.random.default_rng(seed)
    if kind == "bool":
        return rng.random(shape) < 0.6
    if kind == "float":
        return rng.standard_normal(shape).astype(dtype)
    return None


def _compiled(fn, *args):
    """The result of fn's compiled program (the first call of a signature
    runs eagerly, the second compiles)."""
    compiled = graphc.compile(fn)
    for _ in range(2):
        out = compiled(*args)
    return out.detach().numpy()


def _sdpa(mask=None, **kw):
    def fn(q, k, v):
        m = None if mask is None else graphc.tensor(mask)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m, **kw)

    return fn


def _unfused(mask=None, causal=False, scale=None):
    def fn(q, k, v):
        m = None if mask is None else graphc.tensor(mask)
        s = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
        return _composed(q, k, v, m, 0.0, causal, s)

    return fn


def _torch(arrays, mask=None, **kw):
    ts = [torch.tensor(a) for a in arrays]
    m = None if mask is None else torch.tensor(mask)
    return TF.scaled_dot_product_attention(*ts, attn_mask=m, **kw).numpy()


CASES = [
    # lead dims, L, S, E, Ev, mask kind, mask shape (None: [L, S]), causal, scale
    ((2, 3), 5, 7, 8, 8, None, None, False, None),
    ((2, 1), 37, 29, 16, 16, None, None, True, None),
    ((3,), 29, 37, 16, 5, None, None, True, 0.3),
    ((1, 2), 70, 130, 64, 64, "bool", None, False, None),
    ((2, 2), 33, 65, 64, 40, "float", (2, 1, 33, 65), False, 0.2),
    ((), 17, 9, 8, 12, "bool", None, False, None),
    ((4, 2), 64, 64, 32, 32, "float", None, False, None),
    ((4,), 1, 50, 64, 64, None, None, False, None),  # one query (decoding)
    ((2,), 20, 45, 24, 136, "bool", (2, 20, 45), False, None),  # wide values: several accumulator passes
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-L{c[1]}-S{c[2]}-E{c[3]}-{c[5]}-causal{c[7]}")
def test_compiled_fused_equals_unfused_and_torch(case):
    lead, L, S, E, Ev, kind, mshape, causal, scale = case
    arrays = _arrays(lead, L, S, E, Ev)
    mask = _mask(kind, mshape or (L, S))
    args = [graphc.tensor(a) for a in arrays]
    fused = _compiled(_sdpa(mask, is_causal=causal, scale=scale), *args)
    unfused = _unfused(mask, causal, scale)(*args).numpy()
    want = _torch(arrays, mask, is_causal=causal, scale=scale)
    assert fused.shape == want.shape
    np.testing.assert_allclose(fused, unfused, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(fused, want, rtol=RTOL, atol=ATOL)


def test_float64_and_strided_inputs():
    """q, k, v as [B, L, H, E] transposed to [B, H, L, E] (the layout of
    MultiheadAttention): read through strides, no copy."""
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((2, n, 3, 16)) for n in (21, 19, 19)]

    def fn(q, k, v):
        return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)

    got = _compiled(fn, *[graphc.tensor(a) for a in arrays])
    want = TF.scaled_dot_product_attention(*[torch.tensor(a).transpose(1, 2) for a in arrays], is_causal=True)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_rows_give_zeros_like_torch(kind):
    L, S = 40, 70
    arrays = _arrays((2, 2), L, S, 16, 16)
    keep = np.random.default_rng(5).random((L, S)) < 0.5
    keep[[3, 17, 39]] = False
    mask = keep if kind == "bool" else np.where(keep, 0.25, -np.inf).astype(np.float32)
    got = _compiled(_sdpa(mask), *[graphc.tensor(a) for a in arrays])
    want = _torch(arrays, mask)
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got[..., [3, 17, 39], :], 0.0)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_causal_query_longer_than_keys_and_empty_keys():
    # L > S causal: queries past S see every key; S == 0: zeros (as torch).
    arrays = _arrays((2,), 50, 20, 8, 8)
    got = _compiled(_sdpa(is_causal=True), *[graphc.tensor(a) for a in arrays])
    np.testing.assert_allclose(got, _torch(arrays, is_causal=True), rtol=RTOL, atol=ATOL)
    empty = _arrays((2,), 6, 0, 8, 4)
    got = _compiled(_sdpa(), *[graphc.tensor(a) for a in empty])
    np.testing.assert_array_equal(got, np.zeros((2, 6, 4), np.float32))


@pytest.mark.parametrize("causal,kind", [(False, None), (True, None), (False, "float"), (False, "bool")])
def test_compiled_gradients_equal_unfused_and_torch(causal, kind):
    L, S = 24, 31
    arrays = _arrays((2, 2), L, S, 16, 8)
    mask = _mask(kind, (L, S))
    rng = np.random.default_rng(9)
    weight = rng.standard_normal((2, 2, L, 8)).astype(np.float32)

    def run(fn, compiled):
        ins = [graphc.tensor(a, requires_grad=True) for a in arrays]
        m = None if mask is None else graphc.tensor(mask, requires_grad=kind == "float")
        f = graphc.compile(fn) if compiled else fn
        for _ in range(2 if compiled else 1):  # the second call runs the compiled program
            for t in ins + [m]:
                if t is not None:
                    t.grad = None
            out = f(*ins, m)
            (out * graphc.tensor(weight)).sum().backward()
        return [t.grad.numpy() for t in ins] + ([m.grad.numpy()] if kind == "float" else [])

    def fused(q, k, v, m):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=causal)

    def unfused(q, k, v, m):
        return _composed(q, k, v, m, 0.0, causal, 1.0 / np.sqrt(16))

    got = run(fused, compiled=True)
    ref = run(unfused, compiled=False)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    tm = None if mask is None else torch.tensor(mask, requires_grad=kind == "float")
    (TF.scaled_dot_product_attention(*ts, attn_mask=tm, is_causal=causal) * torch.tensor(weight)).sum().backward()
    want = [t.grad.numpy() for t in ts] + ([tm.grad.numpy()] if kind == "float" else [])
    for g, r, w in zip(got, ref, want):
        np.testing.assert_allclose(g, r, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_interpreter_and_llvm_agree_on_the_primitive(causal):
    # The primitive also takes a mask and causal together (torch's API does not).
    q = input_node("q", (3, 45, 16), dtypes.float32)
    k = input_node("k", (3, 77, 16), dtypes.float32)
    v = input_node("v", (3, 77, 24), dtypes.float32)
    m = input_node("m", (45, 77), dtypes.bool_)
    mask = node(Op.EXPAND, m, shape=(3, 45, 77))
    g = Graph([q, k, v, m], [node(Op.ATTENTION, q, k, v, mask, scale=0.3, causal=causal)])
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(x.shape).astype(np.float32) for x in (q, k, v)] + [rng.random((45, 77)) < 0.5]
    assert_matches(g, arrays)


def test_text_ir_round_trips():
    from graphc.ir.parser import parse_graph
    from graphc.ir.verifier import verify

    q = input_node("q", (2, 5, 8), dtypes.float32)
    k = input_node("k", (2, 6, 8), dtypes.float32)
    v = input_node("v", (2, 6, 3), dtypes.float32)
    m = input_node("m", (2, 5, 6), dtypes.bool_)
    g = Graph([q, k, v, m], [node(Op.ATTENTION, q, k, v, m, scale=0.125, causal=False)])
    text = str(g)
    assert "attention %q, %k, %v, %m {causal=false, scale=0.125}" in text
    again = verify(parse_graph(text))
    assert again.outputs[0] is g.outputs[0]


def _program(fn, *arrays):
    graph = trace_program(fn, tuple(graphc.tensor(a) for a in arrays), {}).graph
    return graph, cpu.lower(graph)


def test_long_sequence_program_has_no_score_sized_buffer():
    L = S = 512
    arrays = _arrays((1, 2), L, S, 32, 32)
    mask = _mask("float", (L, S))
    _, prog = _program(_sdpa(mask, is_causal=False), *arrays[:3])
    kinds = [k.kind for k in prog.kernels]
    assert kinds == ["attention"], kinds
    # The mask itself is an input of L*S; nothing the program allocates is.
    own = [b for b in prog.buffers.values() if b.kind in ("temp", "output")]
    assert all(b.numel < L * S for b in own), [(b.name, b.shape) for b in own]
    assert prog.plan.peak_bytes < L * S * 4
    # The unfused formula does store [.., L, S] (what the check would catch).
    _, unfused = _program(_unfused(mask), *arrays[:3])
    assert any(b.numel >= L * S and b.kind == "temp" for b in unfused.buffers.values())


def test_dropout_and_other_backends_use_the_unfused_formula():
    arrays = _arrays((2,), 8, 8, 8, 8)
    graph, _ = _program(_sdpa(dropout_p=0.5), *arrays)
    assert not any(n.op is Op.ATTENTION for n in graph.nodes)
    graph, _ = _program(_sdpa(), *arrays)
    assert any(n.op is Op.ATTENTION for n in graph.nodes)
    # The CUDA backend has no attention kernel: fusion expands the primitive.
    from graphc.runtime import cuda as rt

    prog = rt.lower(graph)
    assert "attention" not in [k.kind for k in prog.kernels]
    assert "dot" in [k.kind for k in prog.kernels]


def test_bad_operands_name_the_problem():
    q = input_node("q", (2, 5, 8), dtypes.float32)
    k = input_node("k", (2, 6, 4), dtypes.float32)
    v = input_node("v", (2, 6, 3), dtypes.float32)
    with pytest.raises(Exception, match="head dimensions differ"):
        node(Op.ATTENTION, q, k, v, scale=1.0, causal=False)
    k = input_node("k2", (2, 6, 8), dtypes.float32)
    bad = input_node("m", (2, 5, 7), dtypes.bool_)
    with pytest.raises(Exception, match=r"mask must have shape \[2, 5, 6\]"):
        node(Op.ATTENTION, q, k, v, bad, scale=1.0, causal=False)


def test_float32_exp_is_within_one_ulp():
    """The kernel's vectorized exp (codegen/llvm/attention.py) against
    numpy's float64 exp on 2M points of [-87, 0], plus -inf and NaN."""
    import ctypes

    import llvmlite.binding as llvm
    from llvmlite import ir

    from graphc.codegen.llvm import attention, target
    from graphc.codegen.llvm.expr import F32, I64

    w = target.vector_bits() // 32
    module = ir.Module("exp_test")
    module.triple, module.data_layout = target.triple_and_layout()
    ptr = F32.as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, ptr, I64]), "vexp")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    em = attention._Builder.__new__(attention._Builder)
    em.b, em.module, em.t, em.item = b, module, F32, 4
    em.blk = type("Blk", (), {"w": w})()
    em.vt = ir.VectorType(F32, w)
    em.fma = attention.intrinsic(module, f"llvm.fma.v{w}f32", em.vt, [em.vt] * 3)
    em.vmax = attention.intrinsic(module, f"llvm.maxnum.v{w}f32", em.vt, [em.vt] * 2)
    em.vfloor = attention.intrinsic(module, f"llvm.floor.v{w}f32", em.vt, [em.vt])
    src, dst, n = fn.args

    def step(i, _v):
        at = b.mul(i, attention._c(w))
        em.vstore(em.vexp(em.vload(src, at)), dst, at)

    attention._loop(b, attention._c(0), b.udiv(n, attention._c(w)), "i", [], step)
    b.ret_void()
    engine = llvm.create_mcjit_compiler(target.optimize(str(module)), target.new_target_machine())
    engine.finalize_object()
    run = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(engine.get_function_address("vexp"))
    x = np.concatenate([np.linspace(-87, 0, 2_000_000, dtype=np.float32), [-np.inf, np.nan, -1e30, -88.0]])
    x = np.ascontiguousarray(np.pad(x, (0, -len(x) % w)), dtype=np.float32)
    y = np.empty_like(x)
    run(x.ctypes.data, y.ctypes.data, len(x))
    want = np.exp(x.astype(np.float64))
    finite = np.isfinite(x) & (x >= -87)
    ulps = np.abs(y[finite] - want[finite]) / np.spacing(want[finite].astype(np.float32))
    assert ulps.max() <= 1.0, f"exp off by {ulps.max():.2f} ulp at x={x[finite][ulps.argmax()]}"
    assert y[x == -np.inf][0] == 0.0 and y[x == -1e30][0] == 0.0 and y[x == -88.0][0] == 0.0
    assert np.isnan(y[np.isnan(x)]).all()


@pytest.mark.parametrize("bits", [128, 512])
def test_other_vector_widths(bits, monkeypatch):
    """The kernel for SSE (4 lanes) and AVX-512 (16 lanes) hosts: LLVM
    legalizes the vectors on this host, so the lane logic (tails, masks,
    reductions) is checked for every width."""
    from graphc.codegen.llvm import target

    monkeypatch.setattr(target, "vector_bits", lambda: bits)
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    n_l, n_s = 33 + bits // 128, 150  # shapes of their own: no in-memory cache hit
    q = input_node("q", (2, n_l, 24), dtypes.float32)
    k = input_node("k", (2, n_s, 24), dtypes.float32)
    v = input_node("v", (2, n_s, 20), dtypes.float32)
    m = input_node("m", (2, n_l, n_s), dtypes.float32)
    g = Graph([q, k, v, m], [node(Op.ATTENTION, q, k, v, m, scale=0.2, causal=True)])
    rng = np.random.default_rng(bits)
    arrays = [rng.standard_normal(x.shape).astype(np.float32) for x in (q, k, v, m)]
    assert_matches(g, arrays)
