"""Golden Before/Expected pairs for every simplify rule, written as text IR."""

from __future__ import annotations

import numpy as np
import pytest

from graphc.ir import dtypes
from graphc.ir.parser import parse_graph
from graphc.ir.printer import format_graph
from graphc.ir.verifier import verify
from graphc.passes.simplify import RULES, is_lossless, simplify
from graphc.runtime.interpreter import run


def _graph(params: str, result: str, body: str):
    return parse_graph(f"graph @t({params}) -> ({result}) {{\n{body}\n}}")


# (rule name, params, result type, before body, expected body)
GOLDEN = [
    (
        "mul-one",
        "%x: f32[2,3]",
        "f32[2,3]",
        "%0: f32[2,3] = expand 1.0:f32 {shape=[2,3]}\n %1: f32[2,3] = mul %0, %x\n return %1",
        "return %x",
    ),
    (
        "div-one",
        "%x: f32[3]",
        "f32[3]",
        "%0: f32[3] = const [1.0, 1.0, 1.0]\n %1: f32[3] = div %x, %0\n return %1",
        "return %x",
    ),
    (
        "add-zero",
        "%x: i32[]",
        "i32[]",
        "%0: i32[] = add 0:i32, %x\n return %0",
        "return %x",
    ),
    (
        "sub-zero",
        "%x: f64[]",
        "f64[]",
        "%0: f64[] = sub %x, -0.0:f64\n return %0",
        "return %x",
    ),
    (
        "int-mul-zero",
        "%x: i64[4]",
        "i64[4]",
        "%0: i64[4] = expand 0:i64 {shape=[4]}\n %1: i64[4] = mul %x, %0\n return %1",
        "%0: i64[4] = expand 0:i64 {shape=[4]}\n return %0",
    ),
    (
        "neg-neg",
        "%x: f32[2]",
        "f32[2]",
        "%0: f32[2] = neg %x\n %1: f32[2] = neg %0\n return %1",
        "return %x",
    ),
    (
        "not-not",
        "%x: i1[2]",
        "i1[2]",
        "%0: i1[2] = not %x\n %1: i1[2] = not %0\n return %1",
        "return %x",
    ),
    (
        "reshape-reshape",
        "%x: f32[2,6]",
        "f32[3,4]",
        "%0: f32[12] = reshape %x {shape=[12]}\n %1: f32[3,4] = reshape %0 {shape=[3,4]}\n return %1",
        "%0: f32[3,4] = reshape %x {shape=[3,4]}\n return %0",
    ),
    (
        "reshape-same",
        "%x: f32[2,6]",
        "f32[2,6]",
        "%0: f32[2,6] = reshape %x {shape=[2,6]}\n return %0",
        "return %x",
    ),
    (
        "reshape-broadcast",
        "",
        "f32[6]",
        "%0: f32[2,3] = expand 2.5:f32 {shape=[2,3]}\n %1: f32[6] = reshape %0 {shape=[6]}\n return %1",
        "%0: f32[6] = expand 2.5:f32 {shape=[6]}\n return %0",
    ),
    (
        "permute-permute",
        "%x: f32[2,3,4]",
        "f32[3,2,4]",
        "%0: f32[4,2,3] = permute %x {perm=[2,0,1]}\n %1: f32[3,2,4] = permute %0 {perm=[2,1,0]}\n return %1",
        "%0: f32[3,2,4] = permute %x {perm=[1,0,2]}\n return %0",
    ),
    (
        "permute-identity",
        "%x: f32[2,3]",
        "f32[2,3]",
        "%0: f32[3,2] = permute %x {perm=[1,0]}\n %1: f32[2,3] = permute %0 {perm=[1,0]}\n return %1",
        "return %x",
    ),
    (
        "expand-expand",
        "%x: f32[3,1]",
        "f32[5,2,3,4]",
        "%0: f32[2,3,4] = expand %x {shape=[2,3,4]}\n %1: f32[5,2,3,4] = expand %0 {shape=[5,2,3,4]}\n return %1",
        "%0: f32[5,2,3,4] = expand %x {shape=[5,2,3,4]}\n return %0",
    ),
    (
        "expand-same",
        "%x: f32[3]",
        "f32[3]",
        "%0: f32[3] = expand %x {shape=[3]}\n return %0",
        "return %x",
    ),
    (
        "cast-same",
        "%x: f16[3]",
        "f16[3]",
        "%0: f16[3] = cast %x {dtype=f16}\n return %0",
        "return %x",
    ),
    (
        "cast-cast",
        "%x: f32[3]",
        "i32[3]",
        "%0: f64[3] = cast %x {dtype=f64}\n %1: i32[3] = cast %0 {dtype=i32}\n return %1",
        "%0: i32[3] = cast %x {dtype=i32}\n return %0",
    ),
    (
        "slice-all",
        "%x: f32[2,3]",
        "f32[2,3]",
        "%0: f32[2,3] = slice %x {starts=[0,0], steps=[1,1], stops=[2,3]}\n return %0",
        "return %x",
    ),
    (
        "pad-none",
        "%x: f32[2,3]",
        "f32[2,3]",
        "%0: f32[2,3] = pad %x {pads=[[0,0],[0,0]], value=0.0}\n return %0",
        "return %x",
    ),
    (
        "reduce-no-axes",
        "%x: f32[2,3]",
        "f32[2,3]",
        "%0: f32[2,3] = reduce_max %x {axes=[]}\n return %0",
        "return %x",
    ),
    (
        "concat-one",
        "%x: f32[2,3]",
        "f32[2,3]",
        "%0: f32[2,3] = concat %x {axis=1}\n return %0",
        "return %x",
    ),
    (
        "where-true",
        "%a: f32[2], %b: f32[2]",
        "f32[2]",
        "%0: i1[2] = expand true:i1 {shape=[2]}\n %1: f32[2] = where %0, %a, %b\n return %1",
        "return %a",
    ),
    (
        "where-false",
        "%a: f32[2], %b: f32[2]",
        "f32[2]",
        "%0: i1[2] = const [false, false]\n %1: f32[2] = where %0, %a, %b\n return %1",
        "return %b",
    ),
    (
        "where-same",
        "%c: i1[2], %a: f32[2]",
        "f32[2]",
        "%0: f32[2] = where %c, %a, %a\n return %0",
        "return %a",
    ),
    (
        "permute-expand",
        "%x: f32[3,4]",
        "f32[2,4,3]",
        "%0: f32[2,3,4] = expand %x {shape=[2,3,4]}\n %1: f32[2,4,3] = permute %0 {perm=[0,2,1]}\n return %1",
        "%0: f32[4,3] = permute %x {perm=[1,0]}\n %1: f32[2,4,3] = expand %0 {shape=[2,4,3]}\n return %1",
    ),
    (
        "dot-sum",
        "%a: f32[4,2], %b: f32[2,4], %c: f32[4,1], %d: f32[1,4]",
        "f32[4,4]",
        "%0: f32[4,4] = dot %a, %b\n %1: f32[4,4] = dot %c, %d\n %2: f32[4,4] = add %0, %1\n return %2",
        "%0: f32[4,3] = concat %a, %c {axis=1}\n %1: f32[3,4] = concat %b, %d {axis=0}\n"
        " %2: f32[4,4] = dot %0, %1\n return %2",
    ),
    (
        "add-permutes",
        "%a: f32[2,3], %b: f32[2,3]",
        "f32[3,2]",
        "%0: f32[3,2] = permute %a {perm=[1,0]}\n %1: f32[3,2] = permute %b {perm=[1,0]}\n"
        " %2: f32[3,2] = add %0, %1\n return %2",
        "%0: f32[2,3] = add %a, %b\n %1: f32[3,2] = permute %0 {perm=[1,0]}\n return %1",
    ),
    (
        "pad-sum",
        "%a: f32[1,3], %b: f32[2,3]",
        "f32[4,3]",
        "%0: f32[4,3] = pad %a {pads=[[1,2],[0,0]], value=0.0}\n"
        " %1: f32[4,3] = pad %b {pads=[[2,0],[0,0]], value=0.0}\n"
        " %2: f32[4,3] = add %0, %1\n return %2",
        "%0: f32[3,3] = concat %a, %b {axis=0}\n %1: f32[4,3] = pad %0 {pads=[[1,0],[0,0]], value=0.0}\n return %1",
    ),
    (
        "slice-fold",
        "%c: f32[1,18,16]",
        "f32[1,2,7,7]",
        "%0: f32[1,2,9,9] = fold %c {dilation=[1,1], kernel=[3,3], output_size=[9,9], padding=[0,0], stride=[2,2]}\n"
        " %1: f32[1,2,7,7] = slice %0 {starts=[0,0,1,1], steps=[1,1,1,1], stops=[1,2,8,8]}\n return %1",
        "%0: f32[1,2,7,7] = fold %c {dilation=[1,1], kernel=[3,3], output_size=[7,7], padding=[1,1], stride=[2,2]}\n"
        " return %0",
    ),
    (
        "sum-batched-dot",
        "%a: f32[2,3,4], %b: f32[2,4,5]",
        "f32[3,5]",
        "%0: f32[2,3,5] = dot %a, %b\n %1: f32[3,5] = sum %0 {axes=[0]}\n return %1",
        "%0: f32[3,2,4] = permute %a {perm=[1,0,2]}\n %1: f32[3,8] = reshape %0 {shape=[3,8]}\n"
        " %2: f32[8,5] = reshape %b {shape=[8,5]}\n %3: f32[3,5] = dot %1, %2\n return %3",
    ),
    (
        "dot-shared-lhs",
        "%w: f32[3,4], %c: f32[2,4,5]",
        "f32[2,3,5]",
        "%0: f32[2,3,4] = expand %w {shape=[2,3,4]}\n %1: f32[2,3,5] = dot %0, %c\n return %1",
        "%0: f32[4,2,5] = permute %c {perm=[1,0,2]}\n %1: f32[4,10] = reshape %0 {shape=[4,10]}\n"
        " %2: f32[3,10] = dot %w, %1\n %3: f32[3,2,5] = reshape %2 {shape=[3,2,5]}\n"
        " %4: f32[2,3,5] = permute %3 {perm=[1,0,2]}\n return %4",
    ),
    (
        "dot-shared-rhs",
        "%a: f32[2,3,4], %w: f32[4,5]",
        "f32[2,3,5]",
        "%0: f32[2,4,5] = expand %w {shape=[2,4,5]}\n %1: f32[2,3,5] = dot %a, %0\n return %1",
        "%0: f32[6,4] = reshape %a {shape=[6,4]}\n %1: f32[6,5] = dot %0, %w\n"
        " %2: f32[2,3,5] = reshape %1 {shape=[2,3,5]}\n return %2",
    ),
    (
        "scatter-one-hot",
        "%s: f32[2,1,3], %i: i64[2,1,3]",
        "f32[2,4,3]",
        "%0: f32[2,4,3] = scatter_add %s, %i {axis=1, shape=[2,4,3]}\n return %0",
        "%0: i64[2,4,3] = iota {axis=1, dtype=i64, shape=[2,4,3]}\n %1: i64[2,1,3] = gather %0, %i {axis=1}\n"
        " %2: i64[2,4,3] = expand %1 {shape=[2,4,3]}\n %3: i1[2,4,3] = cmpeq %0, %2\n"
        " %4: f32[2,4,3] = expand %s {shape=[2,4,3]}\n %5: f32[2,4,3] = expand 0.0:f32 {shape=[2,4,3]}\n"
        " %6: f32[2,4,3] = where %3, %4, %5\n return %6",
    ),
    (
        "scatter-one-hot",
        "%x: f32[2,4,3], %s: f32[2,1,3]",
        "f32[2,4,3]",
        "%0: i64[2,3] = argmax %x {axis=1}\n %1: i64[2,1,3] = reshape %0 {shape=[2,1,3]}\n"
        " %2: f32[2,4,3] = scatter_add %s, %1 {axis=1, shape=[2,4,3]}\n return %2",
        "%0: i64[2,4,3] = iota {axis=1, dtype=i64, shape=[2,4,3]}\n %1: i64[2,3] = argmax %x {axis=1}\n"
        " %2: i64[2,1,3] = reshape %1 {shape=[2,1,3]}\n %3: i64[2,4,3] = expand %2 {shape=[2,4,3]}\n"
        " %4: i1[2,4,3] = cmpeq %0, %3\n %5: f32[2,4,3] = expand %s {shape=[2,4,3]}\n"
        " %6: f32[2,4,3] = expand 0.0:f32 {shape=[2,4,3]}\n %7: f32[2,4,3] = where %4, %5, %6\n return %7",
    ),
]


def test_weight_gradient_dot_shares_the_forward_operand():
    # sum_b A[b] @ C[b]^T (a convolution's weight gradient): the right
    # operand is written as the transpose of C's batch-major form, the value
    # the forward convolution's dot (dot-shared-lhs) reads.
    g = _graph(
        "%a: f32[2,3,4], %c: f32[2,5,4]",
        "f32[3,5]",
        "%0: f32[2,4,5] = permute %c {perm=[0,2,1]}\n %1: f32[2,3,5] = dot %a, %0\n"
        " %2: f32[3,5] = sum %1 {axes=[0]}\n return %2",
    )
    want = _graph(
        "%a: f32[2,3,4], %c: f32[2,5,4]",
        "f32[3,5]",
        "%0: f32[3,2,4] = permute %a {perm=[1,0,2]}\n %1: f32[3,8] = reshape %0 {shape=[3,8]}\n"
        " %2: f32[5,2,4] = permute %c {perm=[1,0,2]}\n %3: f32[5,8] = reshape %2 {shape=[5,8]}\n"
        " %4: f32[8,5] = permute %3 {perm=[1,0]}\n %5: f32[3,5] = dot %1, %4\n return %5",
    )
    got = verify(simplify(g), pass_name="simplify")
    assert format_graph(got) == format_graph(want)


@pytest.mark.parametrize(
    "params, result, body",
    [
        (
            "%a: f64[3,4,5], %b: f64[3,5,2]",
            "f64[4,2]",
            "%0: f64[3,4,2] = dot %a, %b\n %1: f64[4,2] = sum %0 {axes=[0]}\n return %1",
        ),
        (
            "%a: f64[3,4,5], %c: f64[3,2,5]",
            "f64[4,2]",
            "%0: f64[3,5,2] = permute %c {perm=[0,2,1]}\n %1: f64[3,4,2] = dot %a, %0\n"
            " %2: f64[4,2] = sum %1 {axes=[0]}\n return %2",
        ),
        (
            "%w: f64[4,5], %c: f64[3,5,2]",
            "f64[3,4,2]",
            "%0: f64[3,4,5] = expand %w {shape=[3,4,5]}\n %1: f64[3,4,2] = dot %0, %c\n return %1",
        ),
        (
            "%w: f64[5,4], %c: f64[3,5,2]",
            "f64[3,4,2]",
            "%0: f64[3,5,4] = expand %w {shape=[3,5,4]}\n %1: f64[3,4,5] = permute %0 {perm=[0,2,1]}\n"
            " %2: f64[3,4,2] = dot %1, %c\n return %2",
        ),
    ],
)
def test_batched_dot_rewrites_keep_values(params, result, body):
    g = _graph(params, result, body)
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(n.shape) for n in g.inputs]
    got = run(simplify(simplify(g)), args)[0]
    assert simplify(simplify(g)).outputs != g.outputs
    np.testing.assert_allclose(got, run(g, args)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rule, params, result, before, expected", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_rule_golden(rule, params, result, before, expected):
    stats: dict[str, int] = {}
    got = verify(simplify(_graph(params, result, before), stats), pass_name="simplify")
    want = _graph(params, result, expected)
    assert format_graph(got) == format_graph(want)
    assert got.outputs == want.outputs
    assert stats.get(rule, 0) >= 1, f"rule {rule} did not fire: {stats}"


def test_every_rule_has_a_golden_test():
    assert {name for name, _, _ in RULES} == {g[0] for g in GOLDEN}


NOT_SIMPLIFIED = [
    (
        "scatter_add of two values per row",
        "%s: f32[2,2,3], %i: i64[2,2,3]",
        "f32[2,4,3]",
        "%0: f32[2,4,3] = scatter_add %s, %i {axis=1, shape=[2,4,3]}\n return %0",
    ),
    (
        "scatter_add over fewer columns than the output",
        "%s: f32[2,1,2], %i: i64[2,1,2]",
        "f32[2,4,3]",
        "%0: f32[2,4,3] = scatter_add %s, %i {axis=1, shape=[2,4,3]}\n return %0",
    ),
    (
        "sum of two dots whose K is too long to copy",
        "%a: f32[2,8], %b: f32[8,2], %c: f32[2,8], %d: f32[8,2]",
        "f32[2,2]",
        "%0: f32[2,2] = dot %a, %b\n %1: f32[2,2] = dot %c, %d\n %2: f32[2,2] = add %0, %1\n return %2",
    ),
    (
        "sum of differently permuted values",
        "%a: f32[2,3,4], %b: f32[3,4,2]",
        "f32[3,2,4]",
        "%0: f32[3,2,4] = permute %a {perm=[1,0,2]}\n %1: f32[3,2,4] = permute %b {perm=[0,2,1]}\n"
        " %2: f32[3,2,4] = add %0, %1\n return %2",
    ),
    (
        "sum of padded slices with a gap between them",
        "%a: f32[1,3], %b: f32[1,3]",
        "f32[4,3]",
        "%0: f32[4,3] = pad %a {pads=[[0,3],[0,0]], value=0.0}\n"
        " %1: f32[4,3] = pad %b {pads=[[2,1],[0,0]], value=0.0}\n"
        " %2: f32[4,3] = add %0, %1\n return %2",
    ),
    (
        "sum of slices padded with ones",
        "%a: f32[1,3], %b: f32[3,3]",
        "f32[4,3]",
        "%0: f32[4,3] = pad %a {pads=[[0,3],[0,0]], value=1.0}\n"
        " %1: f32[4,3] = pad %b {pads=[[1,0],[0,0]], value=1.0}\n"
        " %2: f32[4,3] = add %0, %1\n return %2",
    ),
    (
        "sum of a batched dot over a non-batch axis",
        "%a: f32[2,3,4], %b: f32[2,4,5]",
        "f32[2,5]",
        "%0: f32[2,3,5] = dot %a, %b\n %1: f32[2,5] = sum %0 {axes=[1]}\n return %1",
    ),
    (
        "permute moving an expanded axis",
        "%x: f32[3,4]",
        "f32[3,2,4]",
        "%0: f32[2,3,4] = expand %x {shape=[2,3,4]}\n %1: f32[3,2,4] = permute %0 {perm=[1,0,2]}\n return %1",
    ),
    (
        "dot of an expand that broadcasts a size-1 axis",
        "%w: f32[1,3,4], %c: f32[2,4,5]",
        "f32[2,3,5]",
        "%0: f32[2,3,4] = expand %w {shape=[2,3,4]}\n %1: f32[2,3,5] = dot %0, %c\n return %1",
    ),
    (
        "float x*0 keeps NaN/inf",
        "%x: f32[2]",
        "f32[2]",
        "%0: f32[2] = expand 0.0:f32 {shape=[2]}\n %1: f32[2] = mul %x, %0\n return %1",
    ),
    (
        "lossy cast-cast",
        "%x: f64[3]",
        "f64[3]",
        "%0: f32[3] = cast %x {dtype=f32}\n %1: f64[3] = cast %0 {dtype=f64}\n return %1",
    ),
    (
        "int to float cast-cast",
        "%x: i64[3]",
        "i64[3]",
        "%0: f64[3] = cast %x {dtype=f64}\n %1: i64[3] = cast %0 {dtype=i64}\n return %1",
    ),
    (
        "slice of a fold off its middle",
        "%c: f32[1,18,16]",
        "f32[1,2,8,8]",
        "%0: f32[1,2,9,9] = fold %c {dilation=[1,1], kernel=[3,3], output_size=[9,9], padding=[0,0], stride=[2,2]}\n"
        " %1: f32[1,2,8,8] = slice %0 {starts=[0,0,1,1], steps=[1,1,1,1], stops=[1,2,9,9]}\n return %1",
    ),
    (
        "strided slice",
        "%x: f32[4]",
        "f32[2]",
        "%0: f32[2] = slice %x {starts=[0], steps=[2], stops=[4]}\n return %0",
    ),
    (
        "mul by non-uniform array",
        "%x: f32[2]",
        "f32[2]",
        "%0: f32[2] = const [1.0, 2.0]\n %1: f32[2] = mul %x, %0\n return %1",
    ),
    (
        "where with unknown condition",
        "%c: i1[2], %a: f32[2], %b: f32[2]",
        "f32[2]",
        "%0: f32[2] = where %c, %a, %b\n return %0",
    ),
]


@pytest.mark.parametrize("label, params, result, body", NOT_SIMPLIFIED, ids=[n[0] for n in NOT_SIMPLIFIED])
def test_unsafe_patterns_are_left_alone(label, params, result, body):
    g = _graph(params, result, body)
    assert simplify(g).outputs == g.outputs


def test_float_mul_zero_really_differs_on_nan():
    # Why the rule is integer-only: the interpreter keeps NaN * 0 = NaN.
    g = _graph(
        "%x: f32[2]",
        "f32[2]",
        "%0: f32[2] = expand 0.0:f32 {shape=[2]}\n %1: f32[2] = mul %x, %0\n return %1",
    )
    out = run(simplify(g), [np.array([np.nan, np.inf], np.float32)])[0]
    assert np.isnan(out).all()


def test_rules_apply_transitively_in_one_pass():
    g = _graph(
        "%x: f32[2,3]",
        "f32[2,3]",
        "%0: f32[3,2] = permute %x {perm=[1,0]}\n %1: f32[2,3] = permute %0 {perm=[1,0]}\n"
        " %2: f32[2,3] = neg %1\n %3: f32[2,3] = neg %2\n %4: f32[2,3] = expand 1.0:f32 {shape=[2,3]}\n"
        " %5: f32[2,3] = mul %3, %4\n return %5",
    )
    assert simplify(g).outputs == g.inputs


@pytest.mark.parametrize(
    "src, dst, expected",
    [
        (dtypes.float32, dtypes.float64, True),
        (dtypes.float64, dtypes.float32, False),
        (dtypes.int32, dtypes.int64, True),
        (dtypes.int64, dtypes.int32, False),
        (dtypes.int32, dtypes.float64, True),
        (dtypes.int32, dtypes.float32, False),
        (dtypes.uint8, dtypes.int8, False),
        (dtypes.uint8, dtypes.float16, True),
        (dtypes.bool_, dtypes.float16, True),
        (dtypes.float32, dtypes.int64, False),
        (dtypes.int8, dtypes.bool_, False),
    ],
)
def test_lossless_casts(src, dst, expected):
    assert is_lossless(src, dst) is expected
    if expected and src.is_int and dst.np.kind in "iuf":
        info = np.iinfo(src.np)
        values = np.array([info.min, info.max, 0], dtype=src.np)
        assert (values.astype(dst.np).astype(src.np) == values).all()


def test_dot_shared_lhs_skips_an_expand_that_grows_the_matrix():
    # expand [4,1] -> [3,4,3] adds a batch axis *and* grows W's columns: the
    # rewrite would contract W's 1 column with C's 3 rows (fuzzer seed 800076).
    g = _graph(
        "%w: f32[4,1], %c: f32[3,3,2]",
        "f32[3,4,2]",
        "%0: f32[3,4,3] = expand %w {shape=[3,4,3]}\n %1: f32[3,4,2] = dot %0, %c\n return %1",
    )
    got = verify(simplify(g), pass_name="simplify")
    assert format_graph(got) == format_graph(g)
    rng = np.random.default_rng(0)
    w, c = rng.standard_normal((4, 1)).astype(np.float32), rng.standard_normal((3, 3, 2)).astype(np.float32)
    np.testing.assert_allclose(run(got, [w, c])[0], np.broadcast_to(w, (3, 4, 3)) @ c, rtol=1e-6)


def test_dot_shared_rhs_skips_an_expand_that_grows_the_matrix():
    # expand [1,2] -> [3,4,2] adds a batch axis and grows W's rows: W is not
    # the [4, 2] matrix the dot contracts with.
    g = _graph(
        "%a: f32[3,5,4], %w: f32[1,2]",
        "f32[3,5,2]",
        "%0: f32[3,4,2] = expand %w {shape=[3,4,2]}\n %1: f32[3,5,2] = dot %a, %0\n return %1",
    )
    got = verify(simplify(g), pass_name="simplify")
    assert format_graph(got) == format_graph(g)


def test_dot_shared_rhs_stacks_every_batch_axis():
    g = _graph(
        "%a: f32[2,3,4,6], %w: f32[6,5]",
        "f32[2,3,4,5]",
        "%0: f32[2,3,6,5] = expand %w {shape=[2,3,6,5]}\n %1: f32[2,3,4,5] = dot %a, %0\n return %1",
    )
    got = verify(simplify(g), pass_name="simplify")
    assert [n.op.value for n in got.nodes if n.op.value == "dot"] == ["dot"]
    assert next(n for n in got.nodes if n.op.value == "dot").shape == (24, 5)
    rng = np.random.default_rng(0)
    a, w = rng.standard_normal((2, 3, 4, 6)).astype(np.float32), rng.standard_normal((6, 5)).astype(np.float32)
    np.testing.assert_allclose(run(got, [a, w])[0], a @ w, rtol=1e-5)


@pytest.mark.parametrize(("size", "kernel", "stride", "crop"), [(9, 3, 2, 1), (10, 3, 1, 2), (8, 2, 2, 1)])
def test_slice_fold_keeps_values(size, kernel, stride, crop):
    blocks = ((size - kernel) // stride + 1) ** 2
    body = (
        f"%0: f32[2,3,{size},{size}] = fold %c {{dilation=[1,1], kernel=[{kernel},{kernel}], "
        f"output_size=[{size},{size}], padding=[0,0], stride=[{stride},{stride}]}}\n"
        f" %1: f32[2,3,{size - 2 * crop},{size - 2 * crop}] = slice %0 {{starts=[0,0,{crop},{crop}], "
        f"steps=[1,1,1,1], stops=[2,3,{size - crop},{size - crop}]}}\n return %1"
    )
    g = _graph(f"%c: f32[2,{3 * kernel * kernel},{blocks}]", f"f32[2,3,{size - 2 * crop},{size - 2 * crop}]", body)
    stats: dict[str, int] = {}
    simplified = simplify(g, stats)
    assert stats.get("slice-fold") == 1
    args = [np.random.default_rng(1).standard_normal(g.inputs[0].shape).astype(np.float32)]
    np.testing.assert_array_equal(run(simplified, args)[0], run(g, args)[0])
