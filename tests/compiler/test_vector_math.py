"""float32 exp, tanh and erf are generated as polynomials the loop vectorizer
widens (codegen/llvm/expr.py `_exp`, `_tanh`, `_erf`), not libm calls per lane:
within 2 ulp (erf: 3) of the float64 result over the normal range, and IEEE at the
edges (inf, NaN, signed zero, overflow; results below FLT_MIN are flushed
to zero, as the entry point runs with FTZ)."""

import math

import numpy as np
import pytest

import graphc.runtime.cpu as cpu
from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph, input_node, node
from graphc.ir.ops import Op

REFERENCE = {Op.EXP: np.exp, Op.TANH: np.tanh, Op.ERF: np.vectorize(math.erf, otypes=[np.float64])}
EDGES = [
    0.0,
    -0.0,
    np.inf,
    -np.inf,
    np.nan,
    88.72,
    88.7228,
    88.73,
    -87.33,
    -87.34,
    1e-30,
    -1e-30,
    0.6249,
    0.6251,
    9.5,
    0.999,
    1.0,
    1.001,
    3.9,
    4.0,
    -4.5,
]


def _run(op, values):
    x = input_node("x", values.shape, dt.float32)
    return cpu.compile_cpu(Graph([x], [node(op, x)]))([values])[0]


def _ulps(got, want):
    spacing = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - want) / spacing


@pytest.mark.parametrize("op", [Op.EXP, Op.TANH, Op.ERF])
def test_within_two_ulp(op):
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [rng.uniform(-90, 90, 50_000), rng.uniform(-3, 3, 50_000), rng.uniform(-1e-3, 1e-3, 20_000)]
    ).astype(np.float32)
    got = _run(op, values)
    want = REFERENCE[op](values.astype(np.float64))
    normal = (np.abs(want) >= np.finfo(np.float32).tiny) & (np.abs(want) <= np.finfo(np.float32).max)
    assert normal.sum() > 100_000
    assert _ulps(got[normal], want[normal]).max() <= (3.0 if op is Op.ERF else 2.0)


@pytest.mark.parametrize("op", [Op.EXP, Op.TANH, Op.ERF])
def test_edges(op):
    values = np.array(EDGES, np.float32)
    got = _run(op, values)
    with np.errstate(over="ignore"):
        want = REFERENCE[op](values)
    # FTZ: a result below FLT_MIN is zero
    want = np.where(np.abs(want) < np.finfo(np.float32).tiny, np.copysign(0.0, want), want).astype(np.float32)
    np.testing.assert_allclose(got, want, rtol=3e-7, atol=0)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    assert np.array_equal(np.isnan(got), np.isnan(want))


def test_long_kernels_ask_for_the_widest_vectors_on_avx512_hosts():
    # A log-softmax-sized reduction gets LLVM's 512-bit vector preference on
    # an AVX-512 host (and nothing elsewhere); a 20-element kernel never.
    from graphc.codegen.llvm import target

    avx512 = "+avx512f,+avx512vl,+avx2,+avx,+fma"
    assert target.wide_vector_attribute(avx512) == '"prefer-vector-width"="512"'
    assert target.wide_vector_attribute("+avx2,+avx,+fma") is None
    attr = target.wide_vector_attribute()
    for n, wide in ((1000, True), (20, False)):
        x = input_node("x", (50, n), dt.float32)
        llvm_ir = cpu.explain(Graph([x], [node(Op.SUM, node(Op.EXP, x), axes=(1,))]))["llvm"]
        assert ("prefer-vector-width" in llvm_ir) == (wide and attr is not None), n
