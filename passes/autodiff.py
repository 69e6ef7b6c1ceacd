"""Reverse-mode autodiff: the VJP table and the graph -> graph `grad` pass.

The VJP rules are written once against the *value protocol*
(docs/internals.md): a value has `.shape`, `.dtype`, and
`type(value)._emit(op, srcs, attrs)` builds a new value of the same kind.
IR `Node`s implement it (this module's `grad` pass uses them) and so do the
frontend's Tensors (eager `backward()` uses the same table).

`VJP[op](ctx, g)` gets `ctx.srcs` (operand values), `ctx.out` (the output
value), `ctx.attrs` and the output cotangent `g` (same shape and dtype as
`ctx.out`), and returns one cotangent or None per operand. None means "no
gradient flows here": integer/bool operands (WHERE's condition, GATHER's
index) and operands that are not floating point. Rules are only called for
floating-point outputs.

Tie-breaking follows PyTorch:
- MAX/MIN (torch.maximum/minimum): on a tie each operand gets half of g;
  where one operand is NaN both get g.
- REDUCE_MAX has torch.amax semantics: g is split evenly among all elements
  equal to the maximum (not given to a single index as torch.max(dim) does);
  a NaN maximum makes the gradient of its whole row NaN.
- POW: d/dbase is 0 where the exponent is 0; d/dexponent is 0 where the base
  is 0 and the exponent >= 0, otherwise g * out * log(base) (NaN for a
  negative base, as in torch).
- PROD: exact with zeros (one zero: its slot gets the product of the
  others; two or more: all zero), without dividing by zero.

The `grad` pass does not simplify what it builds; run passes/pipeline.py's
`optimize` afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from graphc.ir import dtypes
from graphc.ir.graph import Graph, Node, input_node
from graphc.ir.ops import LEAF, NON_DIFFERENTIABLE, Op

# ---------------------------------------------------------------------------
# value-protocol helpers


class VJPContext:
    """What a VJP rule sees of the forward op (any object with these works)."""

    __slots__ = ("attrs", "out", "srcs")

    def __init__(self, srcs: Sequence[Any], out: Any, attrs: dict[str, Any]):
        self.srcs = tuple(srcs)
        self.out = out
        self.attrs = attrs


def emit(op: Op, *srcs, **attrs):
    """Apply `op` to values, building a value of the first operand's kind."""
    return type(srcs[0])._emit(op, list(srcs), attrs)


def _scalar(value, dtype):
    if dtype.is_float:
        return float(value)
    if dtype.is_bool:
        return bool(value)
    return int(value)


def const_like(v, value, shape=None, dtype=None):
    """A constant of `v`'s kind filled with `value` (default: `v`'s shape and dtype)."""
    shape = tuple(v.shape if shape is None else shape)
    dtype = v.dtype if dtype is None else dtype
    c = type(v)._emit(Op.CONST, [], {"value": _scalar(value, dtype), "dtype": dtype, "shape": ()})
    return c if shape == () else emit(Op.EXPAND, c, shape=shape)


def zeros_like(v):
    return const_like(v, 0)


def reshape(v, shape):
    shape = tuple(shape)
    return v if tuple(v.shape) == shape else emit(Op.RESHAPE, v, shape=shape)


def sum_to(g, shape):
    """Undo an EXPAND to `g.shape` from `shape`: sum the new leading dims and
    the dims that grew from 1, then reshape to `shape`."""
    shape = tuple(shape)
    lead = len(g.shape) - len(shape)
    axes = list(range(lead))
    axes += [lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1]
    if axes:
        g = emit(Op.SUM, g, axes=tuple(axes))
    return reshape(g, shape)


def unreduce(g, in_shape, axes):
    """Broadcast a reduction's cotangent back over the reduced `axes`."""
    keep = tuple(1 if i in axes else d for i, d in enumerate(in_shape))
    return emit(Op.EXPAND, reshape(g, keep), shape=tuple(in_shape))


def mask_to(mask, v):
    """A bool mask as `v`'s dtype (1 where true, 0 elsewhere)."""
    return emit(Op.CAST, mask, dtype=v.dtype)


def swap_last(v):
    perm = tuple(range(len(v.shape) - 2)) + (len(v.shape) - 1, len(v.shape) - 2)
    return emit(Op.PERMUTE, v, perm=perm)


_I64 = dtypes.int64


def _float_or_none(src, cot):
    return cot if src.dtype.is_float else None


# ---------------------------------------------------------------------------
# elementwise rules


def _neg(ctx, g):
    return (emit(Op.NEG, g),)


def _recip(ctx, g):
    out = ctx.out
    return (emit(Op.NEG, emit(Op.MUL, g, emit(Op.MUL, out, out))),)


def _exp(ctx, g):
    return (emit(Op.MUL, g, ctx.out),)


def _log(ctx, g):
    return (emit(Op.DIV, g, ctx.srcs[0]),)


def _sqrt(ctx, g):
    two_out = emit(Op.MUL, ctx.out, const_like(g, 2.0))
    return (emit(Op.DIV, g, two_out),)


def _sin(ctx, g):
    return (emit(Op.MUL, g, emit(Op.COS, ctx.srcs[0])),)


def _cos(ctx, g):
    return (emit(Op.NEG, emit(Op.MUL, g, emit(Op.SIN, ctx.srcs[0]))),)


def _tanh(ctx, g):
    one_minus = emit(Op.SUB, const_like(g, 1.0), emit(Op.MUL, ctx.out, ctx.out))
    return (emit(Op.MUL, g, one_minus),)


def _erf(ctx, g):
    # d erf(x) = 2/sqrt(pi) exp(-x^2): exactly 0 where exp underflows, as in PyTorch.
    (x,) = ctx.srcs
    density = emit(Op.EXP, emit(Op.NEG, emit(Op.MUL, x, x)))
    return (emit(Op.MUL, g, emit(Op.MUL, density, const_like(g, 2.0 / math.sqrt(math.pi)))),)


def _cast(ctx, g):
    (x,) = ctx.srcs
    if not (x.dtype.is_float and ctx.out.dtype.is_float):
        return (None,)
    return (g if x.dtype is g.dtype else emit(Op.CAST, g, dtype=x.dtype),)


def _add(ctx, g):
    return (g, g)


def _sub(ctx, g):
    return (g, emit(Op.NEG, g))


def _mul(ctx, g):
    a, b = ctx.srcs
    return (emit(Op.MUL, g, b), emit(Op.MUL, g, a))


def _div(ctx, g):
    _, b = ctx.srcs
    ga = emit(Op.DIV, g, b)
    gb = emit(Op.NEG, emit(Op.DIV, emit(Op.MUL, g, ctx.out), b))
    return (ga, gb)


def _atan2(ctx, g):
    # atan2(a, b): d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2).
    a, b = ctx.srcs
    scale = emit(Op.DIV, g, emit(Op.ADD, emit(Op.MUL, a, a), emit(Op.MUL, b, b)))
    return (emit(Op.MUL, scale, b), emit(Op.NEG, emit(Op.MUL, scale, a)))


def _pow(ctx, g):
    a, b = ctx.srcs
    zero = zeros_like(g)
    # d/da = g * b * a**(b-1), forced to 0 where b == 0 (a**-1 may be inf).
    a_pow = emit(Op.POW, a, emit(Op.SUB, b, const_like(g, 1.0)))
    ga = emit(Op.MUL, g, emit(Op.MUL, b, a_pow))
    ga = emit(Op.WHERE, emit(Op.CMPEQ, b, zero), zero, ga)
    # d/db = g * out * log(a), forced to 0 where a == 0 and b >= 0.
    gb = emit(Op.MUL, emit(Op.MUL, g, ctx.out), emit(Op.LOG, a))
    b_nonneg = emit(Op.NOT, emit(Op.CMPLT, b, zero))
    gb = emit(Op.WHERE, emit(Op.AND, emit(Op.CMPEQ, a, zero), b_nonneg), zero, gb)
    return (ga, gb)


def _minmax(ctx, g, a_loses, b_loses):
    # Each operand gets g unless it lost; on a tie each gets half (torch).
    # Where one side is NaN neither loses (NaN compares false), so both get
    # g, as in torch.
    a, b = ctx.srcs
    zero = zeros_like(g)
    half = emit(Op.MUL, g, const_like(g, 0.5))
    share = emit(Op.WHERE, emit(Op.CMPEQ, a, b), half, g)
    return (emit(Op.WHERE, a_loses, zero, share), emit(Op.WHERE, b_loses, zero, share))


def _max(ctx, g):
    a, b = ctx.srcs
    return _minmax(ctx, g, emit(Op.CMPLT, a, b), emit(Op.CMPLT, b, a))


def _min(ctx, g):
    a, b = ctx.srcs
    return _minmax(ctx, g, emit(Op.CMPLT, b, a), emit(Op.CMPLT, a, b))


def _where(ctx, g):
    cond, _, _ = ctx.srcs
    zero = zeros_like(g)
    return (None, emit(Op.WHERE, cond, g, zero), emit(Op.WHERE, cond, zero, g))


# ---------------------------------------------------------------------------
# reductions


def _sum(ctx, g):
    (x,) = ctx.srcs
    return (unreduce(g, x.shape, ctx.attrs["axes"]),)


def _reduce_max(ctx, g):
    (x,) = ctx.srcs
    axes = tuple(ctx.attrs["axes"])
    hit = emit(Op.CMPEQ, x, unreduce(ctx.out, x.shape, axes))
    count = emit(Op.SUM, mask_to(hit, x), axes=axes)
    share = unreduce(emit(Op.DIV, g, count), x.shape, axes)
    # A multiply, not a select: where the maximum is NaN nothing equals it,
    # count is 0, and 0 * inf makes the whole row's gradient NaN (torch).
    return (emit(Op.MUL, share, mask_to(hit, x)),)


def _prod(ctx, g):
    (x,) = ctx.srcs
    axes = tuple(ctx.attrs["axes"])
    zero, one = zeros_like(x), const_like(x, 1.0)
    is_zero = emit(Op.CMPEQ, x, zero)
    safe_x = emit(Op.WHERE, is_zero, one, x)
    prod_nonzero = emit(Op.PROD, safe_x, axes=axes)
    n_zeros = emit(Op.SUM, mask_to(is_zero, x), axes=axes)
    g_prod = emit(Op.MUL, g, prod_nonzero)
    # Where x has no zero: g * prod / x_i. Exactly one zero: that slot gets
    # g * prod(others); every other slot gets 0.
    no_zero = mask_to(emit(Op.CMPEQ, n_zeros, zeros_like(n_zeros)), x)
    one_zero = mask_to(emit(Op.CMPEQ, n_zeros, const_like(n_zeros, 1.0)), x)
    at_nonzero = emit(Op.DIV, unreduce(emit(Op.MUL, g_prod, no_zero), x.shape, axes), safe_x)
    at_zero = unreduce(emit(Op.MUL, g_prod, one_zero), x.shape, axes)
    return (emit(Op.WHERE, is_zero, at_zero, at_nonzero),)


# ---------------------------------------------------------------------------
# movement


def _reshape(ctx, g):
    return (reshape(g, ctx.srcs[0].shape),)


def _permute(ctx, g):
    perm = ctx.attrs["perm"]
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return (emit(Op.PERMUTE, g, perm=tuple(inverse)),)


def _expand(ctx, g):
    return (sum_to(g, ctx.srcs[0].shape),)


def _spread(g, dim, step):
    """Interleave `step - 1` zeros after each element of `g` along `dim`."""
    shape = tuple(g.shape)
    g = reshape(g, shape[: dim + 1] + (1,) + shape[dim + 1 :])
    pads = tuple((0, step - 1) if i == dim + 1 else (0, 0) for i in range(len(shape) + 1))
    g = emit(Op.PAD, g, pads=pads, value=0.0)
    return reshape(g, shape[:dim] + (shape[dim] * step,) + shape[dim + 1 :])


def _slice(ctx, g):
    (x,) = ctx.srcs
    starts, steps = ctx.attrs["starts"], ctx.attrs["steps"]
    for dim, step in enumerate(steps):
        if step > 1:
            g = _spread(g, dim, step)
    # A spread dim may now reach past the source's end: trim it.
    stops = tuple(min(n, d - b) for n, d, b in zip(g.shape, x.shape, starts))
    if stops != tuple(g.shape):
        g = emit(Op.SLICE, g, starts=(0,) * len(stops), stops=stops, steps=(1,) * len(stops))
    pads = tuple((b, d - b - n) for b, d, n in zip(starts, x.shape, g.shape))
    if any(lo or hi for lo, hi in pads):
        g = emit(Op.PAD, g, pads=pads, value=0.0)
    return (g,)


def _pad(ctx, g):
    (x,) = ctx.srcs
    starts = tuple(lo for lo, _ in ctx.attrs["pads"])
    stops = tuple(lo + d for lo, d in zip(starts, x.shape))
    return (emit(Op.SLICE, g, starts=starts, stops=stops, steps=(1,) * len(starts)),)


def _concat(ctx, g):
    axis = ctx.attrs["axis"]
    ndim = len(g.shape)
    result, offset = [], 0
    for x in ctx.srcs:
        size = x.shape[axis]
        starts = tuple(offset if i == axis else 0 for i in range(ndim))
        stops = tuple(offset + size if i == axis else d for i, d in enumerate(g.shape))
        result.append(emit(Op.SLICE, g, starts=starts, stops=stops, steps=(1,) * ndim))
        offset += size
    return tuple(result)


# ---------------------------------------------------------------------------
# contractions, windows, indexing


def _dot(ctx, g):
    a, b = ctx.srcs
    return (emit(Op.DOT, g, swap_last(b)), emit(Op.DOT, swap_last(a), g))


def attention_weights(q, k, mask, scale: float, causal: bool):
    """softmax(q k^T * scale + mask) over the keys, as values: PyTorch's
    safe softmax (a query whose keys are all masked gets zero weights).
    ATTENTION's VJP recomputes the weights with it, and passes/lower.py
    builds the unfused ATTENTION from it. Materializes [..., L, S]."""
    rank = len(q.shape)
    scores = emit(Op.MUL, emit(Op.DOT, q, swap_last(k)), const_like(q, scale, shape=q.shape[:-1] + (k.shape[-2],)))
    shape = tuple(scores.shape)
    if shape[-1] == 0:  # no keys: no weights (the output is zeros, as torch)
        return zeros_like(scores)
    neg_inf = const_like(scores, -math.inf)
    if causal:
        n_l, n_s = shape[-2:]
        row = type(q)._emit(Op.IOTA, [], {"shape": (n_l, n_s), "axis": 0, "dtype": _I64})
        col = type(q)._emit(Op.IOTA, [], {"shape": (n_l, n_s), "axis": 1, "dtype": _I64})
        above = emit(Op.EXPAND, emit(Op.CMPLT, row, col), shape=shape)
        scores = emit(Op.WHERE, above, neg_inf, scores)
    if mask is not None:
        if mask.dtype.is_bool:
            scores = emit(Op.WHERE, mask, scores, neg_inf)
        else:
            scores = emit(Op.ADD, scores, mask)
    last = (rank - 1,)
    # Rows whose scores are all -inf: max 0 there (no NaN from -inf - -inf),
    # zero weights at the end.
    m = emit(Op.REDUCE_MAX, scores, axes=last)
    row_empty = emit(Op.CMPEQ, m, const_like(m, -math.inf))
    m = emit(Op.WHERE, row_empty, zeros_like(m), m)
    empty = unreduce(row_empty, shape, last)
    zero = zeros_like(scores)
    e = emit(Op.EXP, emit(Op.SUB, emit(Op.WHERE, empty, zero, scores), unreduce(m, shape, last)))
    z = unreduce(emit(Op.SUM, e, axes=last), shape, last)
    return emit(Op.WHERE, empty, zero, emit(Op.DIV, e, z))


def _attention(ctx, g):
    q, k, v = ctx.srcs[:3]
    mask = ctx.srcs[3] if len(ctx.srcs) == 4 else None
    scale = ctx.attrs["scale"]
    p = attention_weights(q, k, mask, scale, ctx.attrs["causal"])
    last = (len(p.shape) - 1,)
    dv = emit(Op.DOT, swap_last(p), g)
    dp = emit(Op.DOT, g, swap_last(v))
    row = unreduce(emit(Op.SUM, emit(Op.MUL, dp, p), axes=last), p.shape, last)
    ds = emit(Op.MUL, p, emit(Op.SUB, dp, row))  # the gradient of the masked scores
    ds_scaled = emit(Op.MUL, ds, const_like(ds, scale))
    dq = emit(Op.DOT, ds_scaled, k)
    dk = emit(Op.DOT, swap_last(ds_scaled), q)
    if mask is None:
        return (dq, dk, dv)
    return (dq, dk, dv, None if mask.dtype.is_bool else ds)


_WINDOW_ATTRS = ("kernel", "stride", "padding", "dilation")


def _unfold(ctx, g):
    (x,) = ctx.srcs
    window = {k: ctx.attrs[k] for k in _WINDOW_ATTRS}
    return (emit(Op.FOLD, g, output_size=tuple(x.shape[2:]), **window),)


def _fold(ctx, g):
    window = {k: ctx.attrs[k] for k in _WINDOW_ATTRS}
    return (emit(Op.UNFOLD, g, **window),)


def _gather(ctx, g):
    x, index = ctx.srcs
    return (
        emit(Op.SCATTER_ADD, g, index, axis=ctx.attrs["axis"], shape=tuple(x.shape)),
        None,
    )


def _scatter_add(ctx, g):
    _, index = ctx.srcs
    return (emit(Op.GATHER, g, index, axis=ctx.attrs["axis"]), None)


VJPRule = Callable[[Any, Any], tuple]

# One rule per differentiable primitive (ops.py: everything not in LEAF or
# NON_DIFFERENTIABLE); tests/passes/test_autodiff.py checks coverage.
VJP: dict[Op, VJPRule] = {
    Op.NEG: _neg,
    Op.RECIP: _recip,
    Op.EXP: _exp,
    Op.LOG: _log,
    Op.SQRT: _sqrt,
    Op.SIN: _sin,
    Op.COS: _cos,
    Op.TANH: _tanh,
    Op.ERF: _erf,
    Op.CAST: _cast,
    Op.ADD: _add,
    Op.SUB: _sub,
    Op.MUL: _mul,
    Op.DIV: _div,
    Op.POW: _pow,
    Op.ATAN2: _atan2,
    Op.MAX: _max,
    Op.MIN: _min,
    Op.WHERE: _where,
    Op.SUM: _sum,
    Op.REDUCE_MAX: _reduce_max,
    Op.PROD: _prod,
    Op.RESHAPE: _reshape,
    Op.PERMUTE: _permute,
    Op.EXPAND: _expand,
    Op.SLICE: _slice,
    Op.PAD: _pad,
    Op.CONCAT: _concat,
    Op.DOT: _dot,
    Op.ATTENTION: _attention,
    Op.UNFOLD: _unfold,
    Op.FOLD: _fold,
    Op.GATHER: _gather,
    Op.SCATTER_ADD: _scatter_add,
}


# What each VJP rule reads of the forward values beyond their shapes and
# dtypes, as (value, needed_for) pairs: `value` is an operand index or OUT,
# `needed_for` the operand whose gradient reads it (None: any). The eager
# autograd engine checks that these values were not modified in place
# between the forward op and backward (PyTorch's saved-tensor version
# check); a rule not listed reads none. tests/passes/test_autodiff.py checks
# this table against the rules. An entry for an optional operand (ATTENTION's
# mask) is skipped when the op has no such operand.
OUT = "out"
SAVED: dict[Op, tuple[tuple[int | str, int | None], ...]] = {
    Op.RECIP: ((OUT, None),),
    Op.EXP: ((OUT, None),),
    Op.LOG: ((0, None),),
    Op.SQRT: ((OUT, None),),
    Op.SIN: ((0, None),),
    Op.ERF: ((0, None),),
    Op.COS: ((0, None),),
    Op.TANH: ((OUT, None),),
    Op.MUL: ((1, 0), (0, 1)),
    Op.DIV: ((1, None), (OUT, 1)),
    Op.POW: ((0, None), (1, None), (OUT, 1)),
    Op.ATAN2: ((0, None), (1, None)),
    Op.MAX: ((0, None), (1, None)),
    Op.MIN: ((0, None), (1, None)),
    Op.WHERE: ((0, None),),
    Op.REDUCE_MAX: ((0, None), (OUT, None)),
    Op.PROD: ((0, None),),
    Op.DOT: ((1, 0), (0, 1)),
    Op.ATTENTION: ((0, None), (1, None), (2, None), (3, None)),
    Op.GATHER: ((1, None),),
    Op.SCATTER_ADD: ((1, None),),
}


def is_differentiable(op: Op) -> bool:
    """True when gradients flow through `op` (it has a VJP rule)."""
    return op in VJP


def apply_vjp(op: Op, srcs: Sequence[Any], out: Any, attrs: dict[str, Any], g: Any) -> tuple:
    """Run `op`'s VJP rule; integer/bool operands always get None."""
    if op in LEAF or op in NON_DIFFERENTIABLE:
        return (None,) * len(srcs)
    cots = VJP[op](VJPContext(srcs, out, attrs), g)
    if len(cots) != len(srcs):
        raise RuntimeError(f"vjp of {op.value} returned {len(cots)} cotangents for {len(srcs)} operands")
    return tuple(None if c is None else _float_or_none(s, c) for s, c in zip(srcs, cots))


# ---------------------------------------------------------------------------
# the graph pass


def _needs_grad(nodes: Sequence[Node], wrt: set[Node]) -> set[Node]:
    """Nodes through which a gradient can reach one of `wrt`."""
    need: set[Node] = set()
    for n in nodes:
        if n in wrt or n.dtype.is_float and n.op in VJP and any(s in need for s in n.srcs):
            need.add(n)
    return need


def backprop(outputs: Sequence[Node], cotangents: Sequence[Node], wrt: Sequence[Node]) -> list[Node]:
    """Gradients of sum(<outputs[i], cotangents[i]>) w.r.t. each of `wrt`
    (zeros for an input the outputs do not depend on)."""
    order = Graph(list(wrt), list(outputs)).nodes
    need = _needs_grad(order, set(wrt))
    cot: dict[Node, Node] = {}
    for out, c in zip(outputs, cotangents):
        if out in need:
            cot[out] = emit(Op.ADD, cot[out], c) if out in cot else c
    for n in reversed(order):
        g = cot.get(n)
        if g is None or n.op in LEAF:
            continue
        for s, c in zip(n.srcs, apply_vjp(n.op, n.srcs, n, n.attrs, g)):
            if c is not None and s in need:
                cot[s] = emit(Op.ADD, cot[s], c) if s in cot else c
    return [cot.get(w) or zeros_like(w) for w in wrt]


def _select_wrt(graph: Graph, wrt) -> list[Node]:
    if wrt is None:
        return [i for i in graph.inputs if i.dtype.is_float]
    by_name = {i.attrs["name"]: i for i in graph.inputs}
    chosen = []
    for w in wrt:
        n = by_name.get(w) if isinstance(w, str) else w
        if n is None or n not in graph.inputs:
            raise ValueError(f"grad: {w!r} is not an input of @{graph.name}; inputs are {sorted(by_name)}")
        if not n.dtype.is_float:
            raise ValueError(f"grad: input %{n.attrs['name']} is {n.type}; only floating inputs have gradients")
        chosen.append(n)
    return chosen


def grad(graph: Graph, wrt=None, output: int = 0, seed: float | None = None) -> Graph:
    """The joint forward+backward graph of `graph`'s scalar output `output`.

    Outputs: the original outputs, then d(output)/d(w) for each `w` in
    `wrt` (input nodes or input names; default all floating inputs), named
    `grad_<input name>`. `seed` scales the gradient (default 1.0).

    >>> from graphc.ir import dtypes
    >>> from graphc.ir.graph import input_node, node
    >>> x = input_node("x", (3,), dtypes.float32)
    >>> g = grad(Graph([x], [node(Op.SUM, node(Op.MUL, x, x), axes=(0,))]))
    >>> g.output_names
    ('out0', 'grad_x')
    """
    y = graph.outputs[output]
    if y.shape != () or not y.dtype.is_float:
        raise ValueError(
            f"grad: output {output} ({graph.output_names[output]}) is {y.type}; it must be a float scalar "
            "(use vjp_graph for other outputs)"
        )
    chosen = _select_wrt(graph, wrt)
    seed_node = const_like(y, 1.0 if seed is None else seed)
    grads = backprop([y], [seed_node], chosen)
    names = graph.output_names + tuple(f"grad_{w.attrs['name']}" for w in chosen)
    return Graph(graph.inputs, graph.outputs + tuple(grads), graph.name, names)


def vjp_graph(graph: Graph, wrt=None, outputs: Sequence[int] | None = None) -> Graph:
    """The vector-Jacobian product graph: one new input per chosen output,
    `cotangent_<output name>` of that output's type, appended after the
    original inputs; outputs are the original outputs followed by the
    gradients of sum(<output, cotangent>) w.r.t. `wrt`, named `grad_<name>`."""
    chosen = _select_wrt(graph, wrt)
    picked = list(range(len(graph.outputs))) if outputs is None else list(outputs)
    outs = [graph.outputs[i] for i in picked]
    for i, o in zip(picked, outs):
        if not o.dtype.is_float:
            raise ValueError(f"vjp_graph: output {i} ({graph.output_names[i]}) is {o.type}, not floating point")
    cot_inputs = [input_node(f"cotangent_{graph.output_names[i]}", o.shape, o.dtype) for i, o in zip(picked, outs)]
    grads = backprop(outs, cot_inputs, chosen)
    names = graph.output_names + tuple(f"grad_{w.attrs['name']}" for w in chosen)
    return Graph(
        graph.inputs + tuple(cot_inputs),
        graph.outputs + tuple(grads),
        graph.name,
        names,
    )


__all__ = [
    "OUT",
    "SAVED",
    "VJP",
    "VJPContext",
    "apply_vjp",
    "backprop",
    "const_like",
    "emit",
    "grad",
    "is_differentiable",
    "sum_to",
    "unreduce",
    "vjp_graph",
    "zeros_like",
]
