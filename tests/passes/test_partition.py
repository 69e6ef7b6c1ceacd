"""passes/partition.py: golden split of a small forward and its gradients,
and the split programs computing what the joint VJP graph computes."""

from __future__ import annotations

import numpy as np

import graphc.passes.autodiff as autodiff
from graphc.ir.graph import Graph, input_node
from graphc.ir.parser import parse_graph
from graphc.ir.verifier import verify
from graphc.passes.partition import partition
from graphc.runtime.interpreter import run

FORWARD = """graph @f(%x: f32[4,3], %w: f32[3,2]) -> (f32[2,4]) {
  %0: f32[4,2] = dot %x, %w
  %1: f32[4,2] = tanh %0
  %2: f32[2,4] = permute %1 {perm=[1,0]}
  return %2
}"""

# tanh's output and both inputs are saved; the transposes of the inputs the
# weight and input gradients need are recomputed in the backward (movement).
EXPECTED_BACKWARD = (
    "graph @backward(%saved0: f32[4,2], %saved1: f32[3,2], %saved2: f32[4,3], %grad_out: f32[2,4])"
    """ -> (f32[4,3], f32[3,2]) {
  %0: f32[4,2] = permute %grad_out {perm=[1,0]}
  %1: f32[4,2] = expand 1.0:f32 {shape=[4,2]}
  %2: f32[4,2] = mul %saved0, %saved0
  %3: f32[4,2] = sub %1, %2
  %4: f32[4,2] = mul %0, %3
  %5: f32[2,3] = permute %saved1 {perm=[1,0]}
  %6: f32[4,3] = dot %4, %5
  %7: f32[3,4] = permute %saved2 {perm=[1,0]}
  %8: f32[3,2] = dot %7, %4
  return %6 as grad0, %8 as grad1
}"""
)


def _split(forward: Graph):
    cot = input_node("grad_out", forward.outputs[0].shape, forward.outputs[0].dtype)
    grads = autodiff.backprop(list(forward.outputs), [cot], list(forward.inputs))
    return cot, partition(forward, grads, [cot])


def test_golden_split_saves_tanh_and_the_inputs():
    forward = parse_graph(FORWARD)
    _, split = _split(forward)
    assert [r.op.value for r in split.residuals] == ["tanh", "input", "input"]
    assert [r.attrs.get("name") for r in split.residuals[1:]] == ["w", "x"]
    verify(split.backward)
    assert str(split.backward) == EXPECTED_BACKWARD


def test_split_programs_compute_the_joint_vjp():
    forward = parse_graph(FORWARD)
    _, split = _split(forward)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    g = rng.standard_normal((2, 4)).astype(np.float32)
    with_residuals = forward.replace(outputs=forward.outputs + tuple(split.residuals), output_names=None)
    saved = run(with_residuals, [x, w])[1:]
    got = run(split.backward, saved + [g])
    want = run(autodiff.vjp_graph(forward), [x, w, g])[1:]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6)


DROPOUT = """graph @drop(%x: f32[8], %u: f32[8], %p: f32[8]) -> (f32[8]) {
  %0: i1[8] = cmplt %u, %p
  %1: f32[8] = cast %0 {dtype=f32}
  %2: f32[8] = mul %x, %1
  return %2
}"""


def test_a_cast_mask_is_saved_as_the_bool_it_was_cast_from():
    forward = parse_graph(DROPOUT)
    cot = input_node("grad_out", (8,), forward.outputs[0].dtype)
    (grad_x,) = autodiff.backprop(list(forward.outputs), [cot], [forward.inputs[0]])
    split = partition(forward, [grad_x], [cot])
    assert [str(r.type) for r in split.residuals] == ["i1[8]"]
