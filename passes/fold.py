"""Constant folding: evaluate, at compile time, what depends only on constants.

`fold(graph, max_elements=1024)` rebuilds the graph bottom-up and replaces
1. any node (not a leaf, not RANDOM) whose operands are all CONST nodes and
   whose result has at most `max_elements` elements by a CONST holding the
   reference interpreter's result (a scalar CONST for shape (), else an
   array constant);
2. any elementwise node whose operands are all broadcast scalar constants
   (a scalar CONST, or an EXPAND/RESHAPE/PERMUTE of one), of any size, by
   an EXPAND of the scalar result, so `expand(2.0) * expand(3.0)` becomes
   `expand(6.0)`;
3. an EXPAND/RESHAPE/PERMUTE of a broadcast scalar constant by one EXPAND
   of that scalar.

It never turns a broadcast scalar into an array constant (the broadcast
form is the cheaper one), never folds RANDOM (its bits belong to
the program's RNG stream), and leaves a node alone when evaluating it
raises (e.g. an out-of-range GATHER index: the program reports that at run
time). Results are computed with the same numpy rules the interpreter uses,
so folding never changes what the interpreter computes.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from graphc.ir.graph import ConstArray, Graph, Node, node
from graphc.ir.ops import ELEMENTWISE, LEAF, RANDOM_OPS, Op
from graphc.ir.rules import evaluate
from graphc.passes.rewrite import rebuild

DEFAULT_MAX_ELEMENTS = 1024


def const_node(value: np.ndarray, like: Node) -> Node:
    """A CONST of `like`'s type holding `value`."""
    arr = np.asarray(value, dtype=like.dtype.np).reshape(like.shape)
    if arr.ndim == 0:
        return node(Op.CONST, value=_python_scalar(arr), dtype=like.dtype, shape=())
    return node(Op.CONST, value=ConstArray(arr), dtype=like.dtype, shape=like.shape)


def _python_scalar(arr: np.ndarray):
    item = arr.item()
    if arr.dtype.kind == "f":
        return float(item)
    if arr.dtype.kind == "b":
        return bool(item)
    return int(item)


_BROADCAST_MOVES = (Op.EXPAND, Op.RESHAPE, Op.PERMUTE)


def _scalar_const(n: Node) -> Node | None:
    """The scalar CONST behind a broadcast constant, else None."""
    while n.op in _BROADCAST_MOVES:
        n = n.srcs[0]
    if n.op is Op.CONST and n.shape == () and not isinstance(n.attrs["value"], ConstArray):
        return n
    return None


def _evaluate(n: Node, srcs: list[Node]) -> np.ndarray | None:
    try:
        args = [evaluate(Op.CONST, [], s.attrs) for s in srcs]
        with np.errstate(all="ignore"):
            return evaluate(n.op, args, n.attrs)
    except Exception:  # noqa: BLE001 - e.g. a bad GATHER index: left for run time to report
        return None


def fold_node(n: Node, max_elements: int = DEFAULT_MAX_ELEMENTS) -> Node:
    """`n` folded to a constant when the rules in the module doc allow."""
    if n.op in LEAF or n.op in RANDOM_OPS or not n.srcs:
        return n
    if n.op in _BROADCAST_MOVES:
        scalar = _scalar_const(n.srcs[0])
        if scalar is not None:  # keep the cheap broadcast form, whatever the size
            return scalar if n.shape == () else node(Op.EXPAND, scalar, shape=n.shape)
    if n.op in ELEMENTWISE:
        scalars = [_scalar_const(s) for s in n.srcs]
        if all(s is not None for s in scalars) and any(s is not t for s, t in zip(scalars, n.srcs)):
            # Evaluate on the scalars, then broadcast the result.
            scalar_out = node(n.op, *cast("list[Node]", scalars), **n.attrs)
            folded = fold_node(scalar_out, max_elements)
            if folded.op is Op.CONST:
                return node(Op.EXPAND, folded, shape=n.shape)
            return n
    if not all(s.op is Op.CONST for s in n.srcs) or n.type.numel > max_elements:
        return n
    if n.op is Op.EXPAND and n.srcs[0].shape == () and not isinstance(n.srcs[0].attrs["value"], ConstArray):
        return n
    value = _evaluate(n, list(n.srcs))
    return n if value is None else const_node(value, n)


def fold(graph: Graph, max_elements: int = DEFAULT_MAX_ELEMENTS) -> Graph:
    """Fold constant subexpressions (see module doc)."""
    mapping: dict[Node, Node] = {}
    for n in graph.nodes:
        mapping[n] = fold_node(rebuild(n, tuple(mapping[s] for s in n.srcs)), max_elements)
    return graph.replace(outputs=[mapping[o] for o in graph.outputs])


__all__ = ["DEFAULT_MAX_ELEMENTS", "const_node", "fold", "fold_node"]
