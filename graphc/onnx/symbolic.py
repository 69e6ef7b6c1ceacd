"""Symbolic sizes for ONNX export with `dynamic_axes`.

A traced graph has static shapes: a reshape to [8, 5, 4] does not say that
8 is 4 * batch. To find out, the exporter traces the model again with the
dynamic dims set to other sizes, checks that every trace built the same
graph, and fits each integer in the graph (each dim of each node's shape,
each integer attribute) as a polynomial in the dynamic sizes, linear in each
one (`Poly`): 2**k traces for k dynamic sizes give it exactly, and one more
trace at other sizes checks it. Integers the traces agree on stay plain
ints. A size that no such polynomial describes (a strided window's output
length, a constant that depends on the batch size) raises `ExportError`.

`SymbolicShapes` then answers, for the graph of the first trace, "what is
this dim" and "what is this attribute" with ints and Polys.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from graphc.errors import GraphcError
from graphc.ir.graph import ConstArray, Graph, Node
from graphc.ir.ops import Op


class ExportError(GraphcError):
    """A model (or an op in it) cannot be exported to ONNX."""


class TraceMismatch(ExportError):
    """Traces at other sizes built different graphs (maybe only because a
    dynamic size equalled a static one: worth retrying at other sizes)."""


# The `value` of a CONST that is 0, 1, ..., n - 1 with n a dynamic size
# (graphc.arange(x.shape[1]) in a forward): exported as a Range.
ARANGE = "arange"


class Poly:
    """A polynomial with integer coefficients in named sizes, of degree at
    most one in each: {monomial (sorted tuple of names): coefficient}."""

    __slots__ = ("terms", "_hash")

    def __init__(self, terms: dict):
        self.terms = {m: c for m, c in sorted(terms.items()) if c != 0}
        self._hash = hash(tuple(self.terms.items()))

    @staticmethod
    def symbol(name: str) -> Poly:
        return Poly({(name,): 1})

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return isinstance(other, Poly) and self.terms == other.terms

    def evaluate(self, sizes: dict) -> int:
        total = 0
        for mono, coef in self.terms.items():
            for name in mono:
                coef *= sizes[name]
            total += coef
        return total

    def __repr__(self) -> str:
        parts = ["*".join(([str(c)] if c != 1 or not m else []) + list(m)) for m, c in self.terms.items()]
        return " + ".join(parts) or "0"


def simplify(value):
    """A Poly that is a constant becomes that int."""
    if isinstance(value, Poly) and all(not m for m in value.terms):
        return value.terms.get((), 0)
    return value


def is_static(value) -> bool:
    """True for ints and for nested tuples holding no Poly."""
    if isinstance(value, Poly):
        return False
    if isinstance(value, tuple):
        return all(is_static(v) for v in value)
    return True


class SymbolicShapes:
    """Shapes and attributes of `graph`'s nodes with dynamic sizes as Polys
    (plain ints and the node's own attrs where nothing is dynamic)."""

    def __init__(self, graph: Graph, shapes: dict | None = None, attrs: dict | None = None):
        self.graph = graph
        self._shapes = shapes or {}
        self._attrs = attrs or {}

    def shape(self, n: Node) -> tuple:
        return self._shapes.get(n, n.shape)

    def attr(self, n: Node, key: str):
        return self._attrs.get((n, key), n.attrs[key])

    def static_node(self, n: Node) -> bool:
        """Nothing about `n` depends on a dynamic size."""
        return n not in self._shapes and not any((n, k) in self._attrs for k in n.attrs)


# ---------------------------------------------------------------------------
# fitting several traces


def _leaves(value, out: list, path: str) -> None:
    """Flatten an attribute value: ints are fitted, other scalars must match."""
    if isinstance(value, tuple):
        out.append(("len", path, len(value)))
        for i, v in enumerate(value):
            _leaves(v, out, f"{path}[{i}]")
    elif isinstance(value, int) and not isinstance(value, bool):
        out.append(("int", path, value))
    else:
        out.append(("eq", path, value))


def _rebuild(value, fitted: list):
    """`value` with its int leaves replaced from `fitted` (consumed in order)."""
    if isinstance(value, tuple):
        return tuple(_rebuild(v, fitted) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return fitted.pop(0)
    return value


def _describe(n: Node) -> str:
    return f"{n.op.value} {n.type}"


def _fit(values: dict, names: Sequence[str], lo: dict) -> Poly | int:
    """The multilinear polynomial through the corner values
    (values[corner] with corner a tuple of 0/1 per name, size lo + corner)."""
    k = len(names)
    # Coefficients in t = s - lo by inclusion-exclusion over the corners...
    in_t = {}
    for subset in itertools.product((0, 1), repeat=k):
        total = 0
        for sub in itertools.product(*[(0, 1) if s else (0,) for s in subset]):
            sign = (-1) ** (sum(subset) - sum(sub))
            total += sign * values[sub]
        if total:
            in_t[subset] = total
    # ... then expanded into powers of s: prod (s_i - lo_i).
    terms: dict = {}
    for subset, coef in in_t.items():
        chosen = [i for i in range(k) if subset[i]]
        for keep in itertools.product((0, 1), repeat=len(chosen)):
            c = coef
            mono = []
            for i, kept in zip(chosen, keep):
                if kept:
                    mono.append(names[i])
                else:
                    c *= -lo[names[i]]
            key = tuple(sorted(mono))
            terms[key] = terms.get(key, 0) + c
    return simplify(Poly(terms))


def fit_traces(graphs: dict, names: Sequence[str], lo: dict, check: Graph, check_sizes: dict) -> SymbolicShapes:
    """Fit the graphs traced at the corners (graphs[corner], corner a tuple
    of 0/1 per dynamic size name, sizes lo[name] + corner) and check the fit
    against `check`, traced at `check_sizes`. Raises ExportError when the
    traces differ in structure or a value fits no polynomial."""
    corners = sorted(graphs)  # the all-zeros corner first: its graph is the one exported
    base = graphs[corners[0]]
    everyone = [graphs[c] for c in corners] + [check]
    orders = [g.nodes for g in everyone]
    if len({len(o) for o in orders}) != 1 or len({len(g.outputs) for g in everyone}) != 1:
        raise _structure_error(names)
    index = [{n: i for i, n in enumerate(o)} for o in orders]
    leaves_of: list[list] = [[] for _ in everyone]
    for pos in range(len(orders[0])):
        first = orders[0][pos]
        for t, order in enumerate(orders):
            n = order[pos]
            if (
                n.op is not first.op
                or n.dtype is not first.dtype
                or sorted(n.attrs) != sorted(first.attrs)
                or [index[t][s] for s in n.srcs] != [index[0][s] for s in first.srcs]
            ):
                raise _structure_error(names, first)
            leaves_of[t].append(("shape", pos, None, n.shape))
            for key in sorted(n.attrs):
                leaves_of[t].append(("attr", pos, key, n.attrs[key]))
    for t, g in enumerate(everyone):
        if [index[t][o] for o in g.outputs] != [index[0][o] for o in everyone[0].outputs]:
            raise _structure_error(names)

    base_order = base.nodes
    shapes: dict = {}
    attrs: dict = {}
    for item in range(len(leaves_of[0])):
        kind, pos, key, _ = leaves_of[0][item]
        flat = []
        for t in range(len(everyone)):
            leaf: list = []
            _leaves(leaves_of[t][item][3], leaf, key or "shape")
            flat.append(leaf)
        if len({len(f) for f in flat}) != 1 or any(
            [(k, p) for k, p, _ in f] != [(k, p) for k, p, _ in flat[0]] for f in flat
        ):
            raise _structure_error(names, base_order[pos])
        fitted = []
        dynamic = arange = False
        for j, (lkind, path, _) in enumerate(flat[0]):
            vals = [f[j][2] for f in flat]
            if lkind == "len":
                continue
            if lkind == "eq":
                if _aranges(base_order[pos], key, vals):
                    arange = True
                elif any(v != vals[0] for v in vals):
                    raise ExportError(
                        f"graphc.onnx.export: the {path} of {_describe(base_order[pos])} changes with the "
                        f"dynamic size(s) {', '.join(names)} ({vals[0]!r} vs {vals[1]!r}); such a value cannot "
                        "be exported as dynamic (export with static shapes instead)"
                    )
                continue
            corner_vals = dict(zip(corners, vals[: len(corners)]))
            fit = _fit(corner_vals, names, lo)
            got = fit.evaluate(check_sizes) if isinstance(fit, Poly) else fit
            if got != vals[-1]:
                raise ExportError(
                    f"graphc.onnx.export: the {path} of {_describe(base_order[pos])} is not a polynomial in the "
                    f"dynamic size(s) {', '.join(names)} (it is {vals[-1]} at {check_sizes}, the fit predicts "
                    f"{got}); strided windows over a dynamic dim cannot be exported dynamically"
                )
            dynamic = dynamic or isinstance(fit, Poly)
            fitted.append(fit)
        if arange:
            attrs[(base_order[pos], key)] = ARANGE
            continue
        if not dynamic:
            continue
        value = leaves_of[0][item][3]
        rebuilt = _rebuild(value, fitted)
        if kind == "shape":
            shapes[base_order[pos]] = rebuilt
        else:
            attrs[(base_order[pos], key)] = rebuilt
    return SymbolicShapes(base, shapes, attrs)


def _aranges(n: Node, key: str | None, values: list) -> bool:
    """The values of a CONST that are 0, 1, ..., n - 1 in every trace, n varying."""
    if n.op is not Op.CONST or key != "value" or not all(isinstance(v, ConstArray) for v in values):
        return False
    arrays = [v.array for v in values]
    return len({a.shape for a in arrays}) > 1 and all(
        a.ndim == 1 and np.array_equal(a, np.arange(a.shape[0])) for a in arrays
    )


def _structure_error(names, n: Node | None = None) -> ExportError:
    where = f" (first difference at {_describe(n)})" if n is not None else ""
    return TraceMismatch(
        f"graphc.onnx.export: tracing with other sizes of the dynamic dim(s) {', '.join(names)} built a "
        f"different graph{where}: the model's computation depends on those sizes, so they cannot be dynamic"
    )
