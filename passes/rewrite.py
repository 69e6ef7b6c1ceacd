"""A small pattern-rewrite driver shared by the local-rewrite passes.

Rewrites are data: a `PatternMatcher` is a table of `(Pat, replace)` pairs.
A `Pat` matches a node by op, operands (sub-patterns) and a predicate, and
binds named sub-nodes; `replace(**bindings)` returns the replacement node, or
None to decline. `graph_rewrite(graph, matcher)` rebuilds the graph bottom-up:
each node is rebuilt on its rewritten operands (through `node(...)`, so
results stay hash-consed and type-checked), then the first matching rule is
applied, repeatedly, until none matches. A replacement must have the type of
the node it replaces; the driver raises `RewriteError` naming the rule
otherwise.

What it does not do: it does not revisit the operands that a replacement
freshly builds (run the pass again, as `passes.pipeline.optimize` does, to
reach a fixed point), and it never changes graph inputs or output names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from graphc.ir.graph import ConstArray, Graph, Node, node
from graphc.ir.ops import COMMUTATIVE, Op

MAX_LOCAL_REWRITES = 32


class RewriteError(RuntimeError):
    """A rewrite rule produced a node of the wrong type."""


@dataclass(frozen=True)
class Pat:
    """A node pattern.

    ops: an Op, a set of Ops, or None for any op.
    srcs: sub-patterns for the operands (None: any operands). For a
      commutative binary op both operand orders are tried.
    name: bind the matched node under this name.
    where: an extra predicate on the node.
    """

    ops: Any = None
    srcs: tuple[Pat, ...] | None = None
    name: str | None = None
    where: Callable[[Node], bool] | None = None

    def op_set(self) -> frozenset[Op] | None:
        if self.ops is None:
            return None
        return frozenset({self.ops}) if isinstance(self.ops, Op) else frozenset(self.ops)

    def match(self, n: Node, bindings: dict[str, Node]) -> bool:
        ops = self.op_set()
        if ops is not None and n.op not in ops:
            return False
        if self.where is not None and not self.where(n):
            return False
        if self.name is not None:
            if self.name in bindings and bindings[self.name] is not n:
                return False
            bindings[self.name] = n
        if self.srcs is None:
            return True
        if len(self.srcs) != len(n.srcs):
            return False
        orders = [n.srcs]
        if n.op in COMMUTATIVE and len(n.srcs) == 2:
            orders.append(n.srcs[::-1])
        for order in orders:
            trial = dict(bindings)
            if all(p.match(s, trial) for p, s in zip(self.srcs, order)):
                bindings.update(trial)
                return True
        return False


def P(ops=None, *srcs: Pat, name: str | None = None, where=None) -> Pat:
    """Shorthand: `P(Op.MUL, P(name="x"), ONE)`."""
    return Pat(ops, tuple(srcs) if srcs else None, name, where)


Replace = Callable[..., "Node | None"]


class PatternMatcher:
    """An ordered table of (pattern, replacement) rules, indexed by op."""

    def __init__(self, rules: Iterable[tuple[str, Pat, Replace]]):
        self.rules = list(rules)
        self._by_op: dict[Op | None, list[tuple[str, Pat, Replace]]] = {}
        for rule in self.rules:
            ops = rule[1].op_set()
            for op in ops if ops is not None else [None]:
                self._by_op.setdefault(op, []).append(rule)

    def rewrite(self, n: Node) -> tuple[str, Node] | None:
        """The first rule that rewrites `n`: (rule name, replacement)."""
        for name, pat, replace in self._by_op.get(n.op, []) + self._by_op.get(None, []):
            bindings: dict[str, Node] = {}
            if not pat.match(n, bindings):
                continue
            result = replace(**bindings)
            if result is None or result is n:
                continue
            if result.type != n.type:
                raise RewriteError(f"rule {name!r} rewrote {n.op.value} {n.type} into {result.op.value} {result.type}")
            return name, result
        return None


def rebuild(n: Node, srcs: tuple[Node, ...]) -> Node:
    """`n` with new operands (the same node when they are unchanged)."""
    if all(a is b for a, b in zip(srcs, n.srcs)):
        return n
    return node(n.op, *srcs, **n.attrs)


def graph_rewrite(graph: Graph, matcher: PatternMatcher, stats: dict[str, int] | None = None) -> Graph:
    """Apply `matcher` to every node bottom-up (see module doc); `stats`
    counts how often each rule fired."""
    mapping: dict[Node, Node] = {}
    for n in graph.nodes:
        new = rebuild(n, tuple(mapping[s] for s in n.srcs))
        for _ in range(MAX_LOCAL_REWRITES):
            hit = matcher.rewrite(new)
            if hit is None:
                break
            rule_name, new = hit
            if stats is not None:
                stats[rule_name] = stats.get(rule_name, 0) + 1
        mapping[n] = new
    return graph.replace(outputs=[mapping[o] for o in graph.outputs])


# ---------------------------------------------------------------------------
# predicates shared by rule tables


def scalar_value(n: Node):
    """The value of a constant that is one scalar everywhere (a scalar CONST,
    or an EXPAND/RESHAPE of one), else None."""
    while n.op in (Op.EXPAND, Op.RESHAPE):
        n = n.srcs[0]
    if n.op is Op.CONST and not isinstance(n.attrs["value"], ConstArray):
        return n.attrs["value"]
    if n.op is Op.CONST:
        arr = n.attrs["value"].array
        if arr.size and (arr == arr.flat[0]).all() and arr.flat[0] == arr.flat[0]:
            return arr.flat[0].item()
    return None


def is_value(value) -> Callable[[Node], bool]:
    """Predicate: the node is a constant equal to `value` everywhere."""

    def pred(n: Node) -> bool:
        v = scalar_value(n)
        return v is not None and not isinstance(v, bool) and v == value

    return pred


__all__ = [
    "P",
    "Pat",
    "PatternMatcher",
    "RewriteError",
    "graph_rewrite",
    "is_value",
    "rebuild",
    "scalar_value",
]
