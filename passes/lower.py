"""Lowering: Graph -> Graph, replacing the primitives that have no kernel of
their own by primitives that do. Fusion (codegen/fusion.py) runs it first, so
every backend compiles the same expansion; the interpreter and eager tensors
run the primitive's numpy reference instead.

What it expands:

- ARGSORT (stable, NaN largest) along an axis of length n. Short rows
  (n <= RANK_SORT_MAX) become a rank count and a scatter; the rank of
  element i is the number of elements that sort before it:

      before(j, i) = x[j] < x[i]  or  (x[j] == x[i] and j < i)

  (`>` when descending; NaN compares as the largest value and equal to
  NaN), summed over j: a SUM over an [..., n, n] comparison that fusion
  inlines into the reduction's loop, so it is never stored. The ranks are a
  permutation, and SCATTER_ADD of the positions 0..n-1 to them writes
  out[rank[i]] = i, the sorting permutation. That is O(n^2) work per row,
  in two kernels.
  Longer rows go through a bitonic sorting network: the row is padded to
  a power of two N and log2(N) * (log2(N) + 1) / 2 compare-exchange stages
  run over (class, value, position) triples, ordered lexicographically, so
  the order is total and the result the stable one (class: NaN after
  numbers, padding after everything). In each stage every element reads
  its partner (i xor j, a GATHER) and keeps itself or the partner: two
  elementwise kernels per stage, O(N log^2 N) work.
  Neither has data-dependent control flow, so both run unchanged on every
  backend.

- ATTENTION becomes its unfused formula (autodiff.attention_weights, then
  a DOT with v): the [..., L, S] weights are materialized. Only backends
  without an attention kernel ask for this (`keep` names the primitives a
  backend compiles itself: the CPU backend keeps float32/float64
  ATTENTION, codegen/llvm/attention.py).

It changes nothing else and leaves no ARGSORT (and no ATTENTION not kept)
behind.
"""

from __future__ import annotations

from collections.abc import Callable

from graphc.ir import dtypes
from graphc.ir.graph import Graph, Node, const, node
from graphc.ir.ops import Op
from graphc.passes import autodiff
from graphc.passes.rewrite import rebuild

# Rows up to this long sort by counting ranks: two kernels, quick to
# compile. Longer ones go through the bitonic network: far fewer operations
# (64 rows of 4000 run in about 1 s instead of 7 s on one core) but two
# kernels per stage, so compiling takes tens of seconds.
RANK_SORT_MAX = 1024

# Float dtypes a backend's attention kernel handles (see `lower`'s `keep`).
ATTENTION_DTYPES = (dtypes.float32, dtypes.float64)


def _expands(n: Node, keep) -> bool:
    if n.op not in EXPANSIONS:
        return False
    if n.op is Op.ATTENTION and Op.ATTENTION in keep:
        # A backend's attention kernel takes float32/float64 and non-empty operands.
        empty = any(s.type.numel == 0 for s in n.srcs)  # nothing for a kernel to do
        return n.dtype not in ATTENTION_DTYPES or empty
    return True


def lower(graph: Graph, keep: frozenset = frozenset()) -> Graph:
    """`graph` with every ARGSORT, and every ATTENTION unless `keep` has it,
    expanded (see the module docstring)."""
    if not any(_expands(n, keep) for n in graph.nodes):
        return graph
    mapping: dict[Node, Node] = {}
    for n in graph.nodes:
        new = rebuild(n, tuple(mapping[s] for s in n.srcs))
        if _expands(new, keep):
            new = EXPANSIONS[new.op](new)
        mapping[n] = new
    return graph.replace(outputs=[mapping[o] for o in graph.outputs])


def expand_argsort(x: Node, axis: int, descending: bool) -> Node:
    """ARGSORT of `x` along `axis` from primitives fusion has kernels for."""
    last = x.ndim - 1
    perm = [d for d in range(x.ndim) if d != axis] + [axis]
    moved = x if axis == last else node(Op.PERMUTE, x, perm=tuple(perm))
    if moved.dtype.is_bool:
        moved = node(Op.CAST, moved, dtype=dtypes.int8)
    n = moved.shape[-1]
    out = _rank_sort(moved, descending) if n <= RANK_SORT_MAX else _bitonic_sort(moved, descending)
    if axis == last:
        return out
    inverse = [perm.index(d) for d in range(x.ndim)]
    return node(Op.PERMUTE, out, perm=tuple(inverse))


def _rank_sort(moved: Node, descending: bool) -> Node:
    """Sorting indices along the last axis: ranks by counting, then a scatter."""
    last = moved.ndim - 1
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
    return node(Op.SCATTER_ADD, positions, rank, axis=last, shape=moved.shape)


def _full(value, dtype, shape) -> Node:
    return node(Op.EXPAND, const(value, dtype), shape=tuple(shape))


def _bitonic_sort(moved: Node, descending: bool) -> Node:
    """Sorting indices along the last axis through a bitonic network."""
    *batch, n = moved.shape
    rows = 1
    for d in batch:
        rows *= d
    size = 1
    while size < n:
        size *= 2
    flat = node(Op.RESHAPE, moved, shape=(rows, n))
    shape = (rows, size)
    # key = class * size + position: the class (0 number, 1 NaN, 2 padding;
    # descending: 0 NaN, 1 number) decides first, the position breaks ties.
    # NaN and padding values are set to 0 so that the value comparison of
    # equal classes falls through to the position.
    value = node(Op.PAD, flat, pads=((0, 0), (0, size - n)), value=0)
    position = node(Op.IOTA, shape=shape, axis=1, dtype=dtypes.int64)
    padding = node(Op.NOT, node(Op.CMPLT, position, _full(n, dtypes.int64, shape)))
    cls = node(Op.WHERE, padding, _full(2, dtypes.int64, shape), _full(0, dtypes.int64, shape))
    if value.dtype.is_float:
        nan = node(Op.AND, _isnan(value), node(Op.NOT, padding))
        zero = _full(0, value.dtype, shape)
        value = node(Op.WHERE, nan, zero, value)
        number_class, nan_class = (1, 0) if descending else (0, 1)
        cls = node(
            Op.WHERE,
            padding,
            cls,
            node(Op.WHERE, nan, _full(nan_class, dtypes.int64, shape), _full(number_class, dtypes.int64, shape)),
        )
    key = node(Op.ADD, node(Op.MUL, cls, _full(size, dtypes.int64, shape)), position)
    k = 2
    while k <= size:
        j = k // 2
        while j >= 1:
            value, key = _compare_exchange(value, key, size, k, j, descending)
            j //= 2
        k *= 2
    first = node(Op.SLICE, key, starts=(0, 0), stops=(rows, n), steps=(1, 1))
    # The key's position part is the original index.
    index = node(
        Op.SUB,
        first,
        node(Op.MUL, node(Op.DIV, first, _full(size, dtypes.int64, (rows, n))), _full(size, dtypes.int64, (rows, n))),
    )
    return node(Op.RESHAPE, index, shape=moved.shape)


def _parity(position: Node, period: int) -> Node:
    """(position // period) % 2 == 0, for non-negative positions."""
    shape = position.shape
    group = node(Op.DIV, position, _full(period, dtypes.int64, shape))
    twice = node(Op.MUL, node(Op.DIV, group, _full(2, dtypes.int64, shape)), _full(2, dtypes.int64, shape))
    return node(Op.CMPEQ, group, twice)


def _compare_exchange(value: Node, key: Node, size: int, k: int, j: int, descending: bool) -> tuple[Node, Node]:
    """One stage of the network: every element meets its partner j places
    away (i xor j, read with a GATHER); blocks of k are sorted up and down
    alternately (up when (i // k) is even). The lower element of an up
    pair keeps the one that sorts first, and so on."""
    shape = value.shape
    position = node(Op.IOTA, shape=shape, axis=1, dtype=dtypes.int64)
    lower = _parity(position, j)
    step = _full(j, dtypes.int64, shape)
    partner = node(Op.WHERE, lower, node(Op.ADD, position, step), node(Op.SUB, position, step))
    v_other = node(Op.GATHER, value, partner, axis=1)
    k_other = node(Op.GATHER, key, partner, axis=1)
    keep_first = node(Op.CMPEQ, lower, _parity(position, k))
    mine_first = _before(value, key, v_other, k_other, size, descending)
    keep = node(Op.CMPEQ, keep_first, mine_first)
    return node(Op.WHERE, keep, value, v_other), node(Op.WHERE, keep, key, k_other)


def _before(va: Node, ka: Node, vb: Node, kb: Node, size: int, descending: bool) -> Node:
    """Whether (class, value, position) a sorts before b (keys carry the
    class and the position; see _bitonic_sort)."""
    width = _full(size, dtypes.int64, ka.shape)
    ca, cb = node(Op.DIV, ka, width), node(Op.DIV, kb, width)
    smaller = node(Op.CMPLT, vb, va) if descending else node(Op.CMPLT, va, vb)
    by_value = node(Op.OR, smaller, node(Op.AND, node(Op.CMPEQ, va, vb), node(Op.CMPLT, ka, kb)))
    return node(Op.OR, node(Op.CMPLT, ca, cb), node(Op.AND, node(Op.CMPEQ, ca, cb), by_value))


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


def _expand_argsort_node(n: Node) -> Node:
    return expand_argsort(n.srcs[0], n.attrs["axis"], n.attrs["descending"])


# What `lower` expands, by its expansion: ARGSORT always, ATTENTION where
# the backend has no kernel for it (`_expands`). codegen/fusion.py computes
# every other primitive.
EXPANSIONS: dict[Op, Callable[[Node], Node]] = {
    Op.ARGSORT: _expand_argsort_node,
    Op.ATTENTION: expand_attention,
}


__all__ = ["ATTENTION_DTYPES", "EXPANSIONS", "expand_argsort", "expand_attention", "lower"]
