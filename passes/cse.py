"""Common-subexpression elimination.

Nodes are hash-consed (graphc/ir/graph.py): a node built with the same op,
operands and attributes as a live node *is* that node, so two structurally
equal nodes never coexist, whether built side by side, rebuilt by a pass or
parsed from text. What is left for this pass is equality up to operand
order:
1. Commutative ops (ops.COMMUTATIVE) get a canonical operand order:
   non-constants first, in order of first appearance in the graph, then
   constants; so `a + b` and `b + a` become one node, and a constant always
   ends up on the right (`2 * x` -> `x * 2`).
2. Every user of a reordered node is rebuilt bottom-up through `node(...)`,
   so nodes that become equal through (1) merge, transitively.

It does not reorder CONCAT or any non-commutative op, merge values that are
equal only numerically (x * 2 vs x + x), or change inputs or output names.
"""

from __future__ import annotations

from graphc.ir.graph import Graph, Node, node
from graphc.ir.ops import COMMUTATIVE, Op


def _is_constant(n: Node) -> bool:
    while n.op is Op.EXPAND:
        n = n.srcs[0]
    return n.op is Op.CONST


def cse(graph: Graph) -> Graph:
    """Canonicalize commutative operand order and merge equal nodes."""
    mapping: dict[Node, Node] = {}
    rank: dict[Node, int] = {}
    for n in graph.nodes:
        srcs = [mapping[s] for s in n.srcs]
        if n.op in COMMUTATIVE and len(srcs) == 2:
            srcs.sort(key=lambda s: (_is_constant(s), rank[s]))
        new = n if all(a is b for a, b in zip(srcs, n.srcs)) else node(n.op, *srcs, **n.attrs)
        mapping[n] = new
        rank.setdefault(new, len(rank))
    return graph.replace(outputs=[mapping[o] for o in graph.outputs])


__all__ = ["cse"]
