"""Split a forward graph and the gradient nodes built on it into a forward
program that also returns residuals and a separate backward program.

`partition(forward, grads, cotangents)` takes:
- `forward`: the traced forward graph;
- `grads`: gradient nodes (one per differentiated input) built on the
  forward's nodes, for example by applying the VJP rules to them;
- `cotangents`: the INPUT nodes standing for the output gradients, which
  `grads` use.

It returns a `Partition`:
1. The residuals: forward nodes that depend on a forward input and that the
   backward uses directly. A residual that is only a movement of another
   forward value (reshape, permute, expand, slice, pad, concat, unfold,
   cast) is recomputed in the backward from its operands instead, so the
   forward does not have to materialize (for example) an im2col matrix
   only to save it.
2. The backward graph: inputs `saved0, saved1, ...` (one per residual)
   then the cotangents; outputs the grads, named `grad<i>`. Nodes that
   depend on no forward input (constants) are rebuilt in the backward.

It does not change the forward graph: the caller appends the residuals
that are not forward inputs to the forward's outputs (a forward input is
fed to the backward as it is), and runs the usual pipeline on both graphs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graphc.ir.graph import Graph, Node, input_node
from graphc.ir.ops import MOVEMENT, Op
from graphc.passes.rewrite import rebuild

# Residuals of these ops are recomputed in the backward (see the module doc).
RECOMPUTE = MOVEMENT | {Op.UNFOLD, Op.CAST}


@dataclass
class Partition:
    """The residuals (forward nodes, in backward-input order) and the
    backward graph (inputs: one per residual, then the cotangents)."""

    residuals: list[Node]
    backward: Graph


def _input_dependent(forward: Graph) -> set[Node]:
    """Forward nodes that depend on at least one forward input."""
    live: set[Node] = set(forward.inputs)
    for n in forward.nodes:
        if any(s in live for s in n.srcs):
            live.add(n)
    return live


def _saved_here(n: Node, live: set[Node]) -> bool:
    return n in live and (n.op is Op.INPUT or n.op not in RECOMPUTE)


def _backward_order(roots: Sequence[Node], live: set[Node], cotangents: set[Node]) -> list[Node]:
    """Nodes the backward computes or reads, operands first, without
    descending into residuals (iterative: backward graphs can be deep)."""
    order: list[Node] = []
    seen: set[Node] = set()
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        n, expanded = stack.pop()
        if expanded:
            order.append(n)
            continue
        if n in seen:
            continue
        seen.add(n)
        stack.append((n, True))
        if n in cotangents or _saved_here(n, live):
            continue
        for s in reversed(n.srcs):
            if s not in seen:
                stack.append((s, False))
    return order


def partition(forward: Graph, grads: Sequence[Node], cotangents: Sequence[Node], name: str = "backward") -> Partition:
    """Split off the backward of `grads` (see the module doc)."""
    live = _input_dependent(forward)
    cots = set(cotangents)
    for c in cotangents:
        if c.op is not Op.INPUT or c in live:
            raise ValueError(f"partition: cotangent {c!r} must be an INPUT node that is not a forward input")
    residuals: list[Node] = []
    mapping: dict[Node, Node] = {}
    for n in _backward_order(list(grads), live, cots):
        if n in cots:
            mapping[n] = n
        elif _saved_here(n, live):
            mapping[n] = input_node(f"saved{len(residuals)}", n.shape, n.dtype)
            residuals.append(n)
        else:
            mapping[n] = rebuild(n, tuple(mapping[s] for s in n.srcs))
    saved_inputs = [mapping[r] for r in residuals]
    backward = Graph(
        saved_inputs + list(cotangents),
        [mapping[g] for g in grads],
        name,
        [f"grad{i}" for i in range(len(grads))],
    )
    return Partition(residuals, backward)


__all__ = ["RECOMPUTE", "Partition", "partition"]
