"""Algebraic simplification: local identities, as a table of rewrite rules.

`simplify(graph)` applies `RULES` with the shared driver (passes/rewrite.py).
Each rule replaces a node by an equal value, bit for bit, with one
documented exception: `x + 0 -> x` and `x - 0 -> x` also fire for floats
whatever the sign of the zero, so a zero result may keep a sign that IEEE
arithmetic would flip (`-0.0 + 0.0` is `+0.0`); NaN and inf are kept.

The rules (a "constant c" is a scalar CONST, an EXPAND/RESHAPE of one, or an
array constant whose elements are all equal):
- x * 1, 1 * x, x / 1, x + 0, 0 + x, x - 0        -> x
- x * 0, 0 * x -> 0                                 integers only (a float
  x may be NaN or inf, and x * 0 is then NaN)
- neg(neg(x)), not(not(x))                          -> x
- reshape(reshape(x)) -> reshape(x); reshape to x's own shape -> x
- permute(permute(x)) -> one permute; the identity permute -> x
- expand(expand(x)) -> expand(x); expand to x's own shape -> x
- reshape(expand(c)) -> expand(c) for a scalar constant c
- cast to x's own dtype -> x; cast(cast(x, a), b) -> cast(x, b) when the
  first cast is lossless (every value of x's dtype is exact in a)
- a slice that takes everything, a pad of nothing, a one-operand concat,
  a sum/max/prod over no axes                       -> x
- where(true, a, b) -> a; where(false, a, b) -> b; where(c, a, a) -> a
- permute(x, p) + permute(y, p) -> permute(x + y, p)
- pad(x) + pad(y), both zero-padded alike except along one axis where
  their places touch -> pad(concat(x, y)); as with x + 0, a -0.0 may stay
  -0.0
- permute(expand(x)) -> expand(permute(x)) when the expand only prepends
  axes and the permute leaves them in place
- batched dots become single large dots ("batch-major" form of X [B,R,C] is
  reshape(permute(X, [1,0,2]), [R, B*C])):
  - sum over the batch axis of a batched dot, sum_b A[b] @ B[b] (a
    convolution's weight gradient) -> batch_major(A) @ reshape(B, [B*K, N]);
    when B = permute(C, [0,2,1]), the right operand is written
    permute(batch_major(C), [1,0]), the value the forward dot of the
    next rule reads (CSE can share it). The second documented exception:
    the same products are summed in another order, so a float result may
    differ in the last bits (integers are exact).
  - dot(expand(W [M,K] -> [B,M,K]), C [B,K,N]) (a convolution) ->
    permute(reshape(W @ batch_major(C), [M,B,N]), [1,0,2]); exact.
  - dot(A [...,M,K], expand(W [K,N] -> [...,K,N])) (a Linear layer on a
    sequence) -> reshape(reshape(A, [(...)*M, K]) @ W, [...,M,N]): one
    large GEMM that packs W once instead of once per batch; exact.
  - A @ B + C @ D (2-D, floats) -> concat(A, C, axis 1) @ concat(B, D,
    axis 0) while a term's K is small ((M + N) x K <= M x N: copying its
    operands costs less than the add), so an RNN's per-timestep weight
    gradients become one GEMM; concats of concats on one axis are flat.
    Same exception as the first rule: the products are summed in another
    order.
- scatter_add(src, index, axis, shape) with src and index of extent 1 on
  the axis and the output's extents elsewhere (max-pool's backward, the
  gradient of a gather that picks one class per row)
  -> where(iota(axis) == index, src, 0); an index that is not an argmax
  over the same axis and shape (in range by construction) is read as
  gather(iota, index), which checks its range as the scatter did. As with
  x + 0, a -0.0 in src may come out as -0.0 where the scatter's 0.0 + -0.0
  gave +0.0.
- slice(fold(x)) keeping the middle of the fold's output (max-pool's
  backward with padding) -> a fold with that much more padding; exact

It does not fold constants (passes/fold.py), merge duplicates
(passes/cse.py), reassociate arithmetic, or change graph inputs/outputs.
"""

from __future__ import annotations

import math

import numpy as np

from graphc.ir import dtypes
from graphc.ir.graph import Graph, Node, const, node
from graphc.ir.ops import Op
from graphc.passes.rewrite import P, Pat, PatternMatcher, Replace, graph_rewrite, is_value, scalar_value

X = P(name="x")
ONE = P(where=is_value(1))
ZERO = P(where=is_value(0))


def _bool_const(flag: bool):
    def pred(n: Node) -> bool:
        v = scalar_value(n)
        return isinstance(v, bool) and v is flag

    return pred


def _int_zero(x: Node, zero: Node) -> Node | None:
    return zero if x.dtype.is_int else None


def _compose_reshape(outer: Node, inner: Node) -> Node:
    return node(Op.RESHAPE, inner.srcs[0], shape=outer.attrs["shape"])


def _compose_permute(outer: Node, inner: Node) -> Node:
    first, second = inner.attrs["perm"], outer.attrs["perm"]
    return node(Op.PERMUTE, inner.srcs[0], perm=tuple(first[p] for p in second))


def _compose_expand(outer: Node, inner: Node) -> Node:
    return node(Op.EXPAND, inner.srcs[0], shape=outer.attrs["shape"])


def _reshape_broadcast(outer: Node, inner: Node) -> Node | None:
    src = inner.srcs[0]
    if src.shape != () or scalar_value(src) is None:
        return None
    return node(Op.EXPAND, src, shape=outer.attrs["shape"])


def _same_shape(outer: Node, x: Node) -> Node | None:
    return x if outer.shape == x.shape else None


def _identity_permute(outer: Node, x: Node) -> Node | None:
    return x if tuple(outer.attrs["perm"]) == tuple(range(x.ndim)) else None


def _same_dtype(outer: Node, x: Node) -> Node | None:
    return x if outer.dtype is x.dtype else None


def is_lossless(src: dtypes.DType, dst: dtypes.DType) -> bool:
    """True when every value of `src` is exactly representable in `dst`."""
    if src is dst or src.is_bool:
        return True
    if dst.is_bool:
        return False
    if src.is_float:
        return dst.is_float and dst.itemsize >= src.itemsize
    # integers
    info = _int_range(src)
    if dst.is_int:
        lo, hi = _int_range(dst)
        return lo <= info[0] and info[1] <= hi
    mantissa = {2: 11, 4: 24, 8: 53}[dst.itemsize]
    return max(abs(info[0]), info[1]) <= 2**mantissa


def _int_range(d: dtypes.DType) -> tuple[int, int]:
    info = np.iinfo(d.np)
    return int(info.min), int(info.max)


def _cast_of_cast(outer: Node, inner: Node) -> Node | None:
    x = inner.srcs[0]
    if not is_lossless(x.dtype, inner.dtype):
        return None
    return x if outer.dtype is x.dtype else node(Op.CAST, x, dtype=outer.dtype)


def _full_slice(outer: Node, x: Node) -> Node | None:
    a = outer.attrs
    everything = all(b == 0 and e == d and s == 1 for b, e, s, d in zip(a["starts"], a["stops"], a["steps"], x.shape))
    return x if everything else None


def _empty_pad(outer: Node, x: Node) -> Node | None:
    return x if all(lo == 0 and hi == 0 for lo, hi in outer.attrs["pads"]) else None


def _no_axes(outer: Node, x: Node) -> Node | None:
    return x if len(outer.attrs["axes"]) == 0 else None


def _single_concat(outer: Node) -> Node | None:
    return outer.srcs[0] if len(outer.srcs) == 1 else None


def _same_branches(a: Node, b: Node) -> Node | None:
    return a if a is b else None


def _batch_major(x: Node) -> Node:
    """x [B, R, C] as [R, B*C] (the batch moved inside the columns)."""
    nb, r, c = x.shape
    return node(Op.RESHAPE, node(Op.PERMUTE, x, perm=(1, 0, 2)), shape=(r, nb * c))


def _batch_sum_dot(outer: Node, d: Node) -> Node | None:
    """sum_b A[b] @ B[b] as one dot over the (batch, inner) pairs."""
    if tuple(outer.attrs["axes"]) != (0,) or d.ndim != 3:
        return None
    a, b = d.srcs
    nb, k, n = b.shape
    if b.op is Op.PERMUTE and tuple(b.attrs["perm"]) == (0, 2, 1):
        # B = C^T per batch: use the transpose of C's batch-major form, the
        # value a convolution's forward dot reads (one copy serves both).
        rhs = node(Op.PERMUTE, _batch_major(b.srcs[0]), perm=(1, 0))
    else:
        rhs = node(Op.RESHAPE, b, shape=(nb * k, n))
    return node(Op.DOT, _batch_major(a), rhs)


def _concat(parts: list[Node], axis: int) -> Node:
    """parts joined along `axis`, a part that is itself such a concat
    spliced in (so repeated merges build one flat concat)."""
    flat: list[Node] = []
    for p in parts:
        flat.extend(p.srcs if p.op is Op.CONCAT and p.attrs["axis"] == axis else [p])
    return node(Op.CONCAT, *flat, axis=axis)


def _dot_sum(outer: Node, d1: Node, d2: Node) -> Node | None:
    """A @ B + C @ D (2-D, same M x N) as [A C] @ [B; D]: one GEMM over the
    joined K instead of two and an add (an RNN's weight gradient sums one
    small-K dot per timestep: the LSTM LM's 35 dots of K = 20). Only while
    copying a term's operands into the joined ones, (M + N) x K elements,
    costs no more than the M x N sum it replaces; a dot already merged (both
    operands concats) adds no new copy."""
    if d1.ndim != 2 or d2.ndim != 2 or not outer.dtype.is_float:
        return None
    m, n = outer.shape
    if tuple(d1.shape) != (m, n) or tuple(d2.shape) != (m, n):
        return None
    for d in (d1, d2):
        merged = d.srcs[0].op is Op.CONCAT and d.srcs[1].op is Op.CONCAT
        if not merged and (m + n) * d.srcs[0].shape[1] > m * n:
            return None
    a = _concat([d1.srcs[0], d2.srcs[0]], axis=1)
    b = _concat([d1.srcs[1], d2.srcs[1]], axis=0)
    return node(Op.DOT, a, b)


def _pad_sum(p1: Node, p2: Node) -> Node | None:
    """pad(x) + pad(y), zero-padded, padded alike but along one axis where
    x's and y's places touch -> pad(concat(x, y)) (an RNN's input gradient
    stacks its timesteps as a sum of zero-padded slices: a where-chain over
    every timestep at every element). Like x + 0, a -0.0 in x or y stays
    -0.0 where the add gave +0.0."""
    if p1.shape != p2.shape or p1.dtype != p2.dtype or p1.attrs["value"] != 0 or p2.attrs["value"] != 0:
        return None
    pads1, pads2 = [tuple(p) for p in p1.attrs["pads"]], [tuple(p) for p in p2.attrs["pads"]]
    differ = [d for d in range(len(pads1)) if pads1[d] != pads2[d]]
    if len(differ) != 1:
        return None
    ax = differ[0]
    if min(pads1[ax] + pads2[ax]) < 0:  # a negative pad crops
        return None
    x, y = p1.srcs[0], p2.srcs[0]
    lo_x, lo_y = pads1[ax][0], pads2[ax][0]
    if lo_y + y.shape[ax] == lo_x:
        (x, lo_x), (y, lo_y) = (y, lo_y), (x, lo_x)
    if lo_x + x.shape[ax] != lo_y:
        return None
    pads = list(pads1)
    pads[ax] = (lo_x, p1.shape[ax] - lo_y - y.shape[ax])
    return node(Op.PAD, _concat([x, y], ax), pads=tuple(pads), value=p1.attrs["value"])


def _add_permutes(p1: Node, p2: Node) -> Node | None:
    """permute(x, p) + permute(y, p) -> permute(x + y, p): exact, and the
    sum of transposed per-timestep weight gradients, (h_t^T g_t)^T, becomes
    the transpose of a sum of dots that dot-sum can join."""
    if tuple(p1.attrs["perm"]) != tuple(p2.attrs["perm"]) or p1.srcs[0].shape != p2.srcs[0].shape:
        return None
    return node(Op.PERMUTE, node(Op.ADD, p1.srcs[0], p2.srcs[0]), perm=tuple(p1.attrs["perm"]))


def _slice_fold(outer: Node, f: Node) -> Node | None:
    """slice(fold(cols, output H + 2p, padding q)) keeping the middle H rows
    (and likewise columns) -> fold(cols, output H, padding q + p): a fold
    crops its padded canvas itself (a padded max-pool's backward folds to
    the padded size, then slices off the border). Exact; the border's sums
    are skipped, and readers get a contiguous value. A fold with other
    readers would be computed twice."""
    a = outer.attrs
    if f.ndim != 4 or any(s != 1 for s in a["steps"]):
        return None
    if any(b != 0 or e != d for b, e, d in zip(a["starts"][:2], a["stops"][:2], f.shape[:2])):
        return None
    crop = [a["starts"][ax] for ax in (2, 3)]
    if any(c != f.shape[ax] - a["stops"][ax] for c, ax in zip(crop, (2, 3))):
        return None
    attrs = dict(f.attrs)
    attrs["output_size"] = tuple(outer.shape[2:])
    attrs["padding"] = tuple(p + c for p, c in zip(f.attrs["padding"], crop))
    return node(Op.FOLD, f.srcs[0], **attrs)


def _shared_lhs_dot(d: Node, w: Node) -> Node | None:
    """W @ C[b] for every b, W one matrix: one dot of W with C batch-major.
    Only when the expand just adds the batch axis (W [m, k] -> [nb, m, k]);
    one that also grows a size-1 axis of W changes W's shape."""
    if d.ndim != 3 or w.srcs[0].ndim != 2 or tuple(w.shape[1:]) != tuple(w.srcs[0].shape):
        return None
    c = d.srcs[1]
    nb, _, n = c.shape
    m = w.shape[1]
    flat = node(Op.DOT, w.srcs[0], _batch_major(c))
    return node(Op.PERMUTE, node(Op.RESHAPE, flat, shape=(m, nb, n)), perm=(1, 0, 2))


def _shared_rhs_dot(d: Node, w: Node) -> Node | None:
    """A[b] @ W for every b, W one matrix (a Linear layer on [batch, seq,
    features]): one dot of A's rows, all batches stacked, with W. Only when
    the expand just adds leading axes (W [k, n] -> [..., k, n])."""
    if d.ndim < 3 or w.srcs[0].ndim != 2 or tuple(w.shape[-2:]) != tuple(w.srcs[0].shape):
        return None
    a = d.srcs[0]
    *batch, m, k = a.shape
    flat = node(Op.DOT, node(Op.RESHAPE, a, shape=(math.prod(batch) * m, k)), w.srcs[0])
    return node(Op.RESHAPE, flat, shape=d.shape)


def _permute_expand(outer: Node, inner: Node) -> Node | None:
    """permute(expand(x)) -> expand(permute(x)) when the expand only adds
    leading axes and the permute keeps them in place."""
    x = inner.srcs[0]
    lead = inner.ndim - x.ndim
    perm = tuple(outer.attrs["perm"])
    if lead == 0 or tuple(inner.shape[lead:]) != tuple(x.shape) or perm[:lead] != tuple(range(lead)):
        return None
    moved = node(Op.PERMUTE, x, perm=tuple(p - lead for p in perm[lead:]))
    return node(Op.EXPAND, moved, shape=outer.shape)


def _scatter_one_hot(outer: Node) -> Node | None:
    """scatter_add of one value per row (src and index of extent 1 on the
    axis, the output's extent elsewhere: max-pool's backward, the gradient
    of a picked log-probability) is where(iota == index, src, 0), a select
    each consumer computes inline, instead of a serial scatter into zeros
    (the LSTM LM's [700, 10000] logits gradient: a 28 MB buffer written and
    read again). The index is in range by construction when it is an argmax
    over the same axis and shape; otherwise it is first read back through
    gather(iota, index), which checks it as the scatter did."""
    src, index = outer.srcs
    axis, shape = outer.attrs["axis"], tuple(outer.shape)
    if src.shape[axis] != 1 or any(s != d for a, (s, d) in enumerate(zip(src.shape, shape)) if a != axis):
        return None
    if tuple(index.shape) != tuple(src.shape):
        return None
    iota = node(Op.IOTA, shape=shape, axis=axis, dtype=index.dtype)
    am = index.srcs[0] if index.op is Op.RESHAPE else None
    if am is None or am.op is not Op.ARGMAX or am.attrs["axis"] != axis or tuple(am.srcs[0].shape) != shape:
        index = node(Op.GATHER, iota, index, axis=axis)
    hit = node(Op.CMPEQ, iota, node(Op.EXPAND, index, shape=shape))
    zero = node(Op.EXPAND, const(0, src.dtype), shape=shape)
    return node(Op.WHERE, hit, node(Op.EXPAND, src, shape=shape), zero)


OUTER = "outer"

RULES: list[tuple[str, Pat, Replace]] = [
    ("mul-one", P(Op.MUL, X, ONE), lambda x: x),
    ("div-one", P(Op.DIV, X, ONE), lambda x: x),
    ("add-zero", P(Op.ADD, X, ZERO), lambda x: x),
    ("sub-zero", P(Op.SUB, X, ZERO), lambda x: x),
    ("int-mul-zero", P(Op.MUL, X, P(where=is_value(0), name="zero")), _int_zero),
    ("neg-neg", P(Op.NEG, P(Op.NEG, X)), lambda x: x),
    ("not-not", P(Op.NOT, P(Op.NOT, X)), lambda x: x),
    (
        "reshape-reshape",
        P(Op.RESHAPE, P(Op.RESHAPE, name="inner"), name=OUTER),
        _compose_reshape,
    ),
    ("reshape-same", P(Op.RESHAPE, X, name=OUTER), _same_shape),
    (
        "reshape-broadcast",
        P(Op.RESHAPE, P(Op.EXPAND, name="inner"), name=OUTER),
        _reshape_broadcast,
    ),
    (
        "permute-permute",
        P(Op.PERMUTE, P(Op.PERMUTE, name="inner"), name=OUTER),
        _compose_permute,
    ),
    ("permute-identity", P(Op.PERMUTE, X, name=OUTER), _identity_permute),
    (
        "expand-expand",
        P(Op.EXPAND, P(Op.EXPAND, name="inner"), name=OUTER),
        _compose_expand,
    ),
    ("expand-same", P(Op.EXPAND, X, name=OUTER), _same_shape),
    ("cast-same", P(Op.CAST, X, name=OUTER), _same_dtype),
    ("cast-cast", P(Op.CAST, P(Op.CAST, name="inner"), name=OUTER), _cast_of_cast),
    ("slice-all", P(Op.SLICE, X, name=OUTER), _full_slice),
    ("pad-none", P(Op.PAD, X, name=OUTER), _empty_pad),
    ("reduce-no-axes", P({Op.SUM, Op.REDUCE_MAX, Op.PROD}, X, name=OUTER), _no_axes),
    ("concat-one", P(Op.CONCAT, name=OUTER), _single_concat),
    (
        "where-true",
        P(Op.WHERE, P(where=_bool_const(True)), P(name="a"), P()),
        lambda a: a,
    ),
    (
        "where-false",
        P(Op.WHERE, P(where=_bool_const(False)), P(), P(name="b")),
        lambda b: b,
    ),
    ("where-same", P(Op.WHERE, P(), P(name="a"), P(name="b")), _same_branches),
    (
        "permute-expand",
        P(Op.PERMUTE, P(Op.EXPAND, name="inner"), name=OUTER),
        _permute_expand,
    ),
    ("sum-batched-dot", P(Op.SUM, P(Op.DOT, name="d"), name=OUTER), _batch_sum_dot),
    ("dot-sum", P(Op.ADD, P(Op.DOT, name="d1"), P(Op.DOT, name="d2"), name=OUTER), _dot_sum),
    ("add-permutes", P(Op.ADD, P(Op.PERMUTE, name="p1"), P(Op.PERMUTE, name="p2")), _add_permutes),
    ("pad-sum", P(Op.ADD, P(Op.PAD, name="p1"), P(Op.PAD, name="p2")), _pad_sum),
    ("dot-shared-lhs", P(Op.DOT, P(Op.EXPAND, name="w"), P(), name="d"), _shared_lhs_dot),
    ("dot-shared-rhs", P(Op.DOT, P(), P(Op.EXPAND, name="w"), name="d"), _shared_rhs_dot),
    ("scatter-one-hot", P(Op.SCATTER_ADD, name=OUTER), _scatter_one_hot),
    ("slice-fold", P(Op.SLICE, P(Op.FOLD, name="f"), name=OUTER), _slice_fold),
]

MATCHER = PatternMatcher(RULES)


def simplify(graph: Graph, stats: dict[str, int] | None = None) -> Graph:
    """Apply every rule in `RULES` (see module doc); `stats` counts firings."""
    return graph_rewrite(graph, MATCHER, stats)


__all__ = ["MATCHER", "RULES", "is_lossless", "simplify"]
