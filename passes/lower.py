"""Lowering: Graph -> Graph, replacing the primitives that have no kernel of
their own by primitives that do. Fusion (passes/fusion.py) runs it first, so
every backend compiles the same expansion; the interpreter and eager tensors
run the primitive's numpy reference instead.

What it expands:

- ARGSORT (stable, NaN largest) along an axis of length n becomes a rank
  count and a scatter. The rank of element i is the number of elements
  that sort before it:

      before(j, i) = x[j] < x[i]  or  (x[j] == x[i] and j < i)

  (`>` when descending; NaN compares as the largest value and equal to
  NaN), summed over j: a SUM over an [..., n, n] comparison that fusion
  inlines into the reduction's loop, so it is never stored. The ranks are a
  permutation, and SCATTER_ADD of the positions 0..n-1 to them writes
  out[rank[i]] = i, the sorting permutation. The work is O(n^2) per row
  (no data-dependent control flow, so it runs unchanged on every backend);
  sorts of long rows are better done eagerly.

- ATTENTION becomes its unfused formula (autodiff.attention_weights, then
  a DOT with v): the [..., L, S] weights are materialized. Only backends
  without an attention kernel ask for this (`keep` names the primitives a
  backend compiles itself: the CPU backend keeps float32/float64
  ATTENTION, codegen/llvm/attention.py).

It changes nothing else and leaves no ARGSORT (and no ATTENTION not kept)
behind.
"""

from __future__ import annotations

from graphc.ir import dtypes
from graphc.ir.graph import Graph, Node, node
from graphc.ir.ops import Op
from passes import autodiff
from passes.rewrite import rebuild

# Float dtypes a backend's attention kernel handles (see `lower`'s `keep`).
ATTENTION_DTYPES = (dtypes.float32, dtypes.float64)


def _expands(n: Node, keep) -> bool:
    if n.op is Op.ARGSORT:
        return True
    if n.op is not Op.ATTENTION:
        return False
    empty = any(s.type.numel == 0 for s in n.srcs)  # nothing for a kernel to do
    return Op.ATTENTION not in keep or n.dtype not in ATTENTION_DTYPES or empty


def lower(graph: Graph, keep: frozenset = frozenset()) -> Graph:
    """`graph` with every ARGSORT, and every ATTENTION unless `keep` has it,
    expanded (see the module docstring)."""
    if not any(_expands(n, keep) for n in graph.nodes):
        return graph
    mapping: dict[Node, Node] = {}
    for n in graph.nodes:
        new = rebuild(n, tuple(mapping[s] for s in n.srcs))
        if new.op is Op.ARGSORT:
            new = expand_argsort(new.srcs[0], new.attrs["axis"], new.attrs["descending"])
        elif _expands(new, keep):
            new = expand_attention(new)
        mapping[n] = new
    return graph.replace(outputs=[mapping[o] for o in graph.outputs])


def expand_argsort(x: Node, axis: int, descending: bool) -> Node:
    """ARGSORT of `x` along `axis` from CMPLT/CMPEQ, SUM and SCATTER_ADD."""
    last = x.ndim - 1
    perm = [d for d in range(x.ndim) if d != axis] + [axis]
    moved = x if axis == last else node(Op.PERMUTE, x, perm=tuple(perm))
    if moved.dtype.is_bool:
        moved = node(Op.CAST, moved, dtype=dtypes.int8)
    *batch, n = moved.shape
    square = (*batch, n, n)
    # mine[..., i, j] = x[i], other[..., i, j] = x[j]
    mine = node(Op.EXPAND, node(Op.RESHAPE, moved, shape=(*batch, n, 1)), shape=square)
    other = node(Op.EXPAND, node(Op.RESHAPE, moved, shape=(*batch, 1, n)), shape=square)
    first, second = (mine, other) if descending else (other, mine)
    earlier = node(
        Op.CMPLT,
        node(Op.IOTA, shape=square, axis=len(square) - 1, dtype=dtypes.int64),
        node(Op.IOTA, shape=square, axis=len(square) - 2, dtype=dtypes.int64),
    )
    before = node(Op.OR, _less(first, second), node(Op.AND, _equal(first, second), earlier))
    rank = node(Op.SUM, node(Op.CAST, before, dtype=dtypes.int64), axes=(len(square) - 1,))
    positions = node(Op.IOTA, shape=moved.shape, axis=last, dtype=dtypes.int64)
    out = node(Op.SCATTER_ADD, positions, rank, axis=last, shape=moved.shape)
    if axis == last:
        return out
    inverse = [perm.index(d) for d in range(x.ndim)]
    return node(Op.PERMUTE, out, perm=tuple(inverse))


def _isnan(a: Node) -> Node:
    return node(Op.NOT, node(Op.CMPEQ, a, a))


def _less(a: Node, b: Node) -> Node:
    """a < b with NaN as the largest value."""
    lt = node(Op.CMPLT, a, b)
    if not a.dtype.is_float:
        return lt
    return node(Op.OR, lt, node(Op.AND, _isnan(b), node(Op.NOT, _isnan(a))))


def _equal(a: Node, b: Node) -> Node:
    """a == b with NaN equal to NaN."""
    eq = node(Op.CMPEQ, a, b)
    if not a.dtype.is_float:
        return eq
    return node(Op.OR, eq, node(Op.AND, _isnan(a), _isnan(b)))


def expand_attention(n: Node) -> Node:
    """ATTENTION node n as DOT(weights, v), the weights from the unfused
    softmax formula."""
    q, k, v = n.srcs[:3]
    mask = n.srcs[3] if len(n.srcs) == 4 else None
    weights = autodiff.attention_weights(q, k, mask, n.attrs["scale"], n.attrs["causal"])
    return node(Op.DOT, weights, v)


__all__ = ["ATTENTION_DTYPES", "expand_argsort", "expand_attention", "lower"]
