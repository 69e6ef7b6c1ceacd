"""Dead-code elimination.

A Graph holds only what its outputs reach (graphc/ir/graph.py), so a node
that no output uses any more (say, the old operand of a simplified node) is
gone as soon as the pass that stopped using it returns. Nothing has to be
deleted node by node. What this pass does:
1. returns a graph over exactly the nodes its outputs reach (a fresh node
   list, computed once);
2. with `drop_unused_inputs=True`, removes graph inputs that no output
   reaches. Off by default: a compiled program's calling convention is its
   input list, and the frontend relies on it staying put;
3. when given a `stats` dict, records how many inputs no output reaches
   (`dead_inputs`) and which were dropped (`dropped_inputs`). Nodes made
   dead by earlier passes show up in the pipeline timeline's node counts
   (passes/pipeline.py), since they vanish as those passes return.

It does not remove outputs, merge duplicates (passes/cse.py) or prune
branches of a WHERE with a constant condition (passes/simplify.py).
"""

from __future__ import annotations

from graphc.ir.graph import Graph


def dce(graph: Graph, drop_unused_inputs: bool = False, stats: dict | None = None) -> Graph:
    """Drop what the outputs do not reach (see module doc)."""
    reached = set(Graph([], graph.outputs).nodes)  # no inputs listed: reachable nodes only
    unused = [i for i in graph.inputs if i not in reached]
    inputs = [i for i in graph.inputs if i in reached] if drop_unused_inputs else list(graph.inputs)
    if stats is not None:
        stats["dead_inputs"] = len(unused)
        stats["dropped_inputs"] = [i.attrs["name"] for i in unused] if drop_unused_inputs else []
    return graph.replace(inputs=inputs)


__all__ = ["dce"]
