"""The IR: immutable typed nodes and the graphs that hold them.

A `Node` is (op, srcs, attrs, type). Nodes are hash-consed: building a node
that is structurally equal to a live one returns that same object, so
equality is identity, common subexpressions are shared as they are built,
and nodes are safe dictionary keys. A `Graph` is a named function: its input
nodes (op INPUT, in order) and its output nodes. The nodes in between are
whatever the outputs reach.

Create nodes with `node(op, *srcs, **attrs)`: it checks the operands with the
op's shape rule (graphc/ir/rules.py) and raises `IRTypeError` naming the op
and both sides of a mismatch.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from graphc.ir import dtypes
from graphc.ir.dtypes import DType
from graphc.ir.ops import Op
from graphc.ir.rules import infer_type

# The value types live in graphc/ir/types.py (the shape rules use them);
# they are part of this module's interface too.
from graphc.ir.types import ConstArray, IRTypeError, TensorType


def _attr_key(value: Any):
    """A hashable key that tells apart values Python considers equal
    (0.0 and -0.0, 1 and 1.0 and True), so hash-consing never merges them."""
    if isinstance(value, float):
        return ("f", value.hex())
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, tuple):
        return tuple(_attr_key(v) for v in value)
    return value


class Node:
    """One SSA value. Do not construct directly: use `node(...)`."""

    __slots__ = ("op", "srcs", "attrs", "type", "_key", "_hash", "__weakref__")

    op: Op
    srcs: tuple[Node, ...]
    attrs: dict[str, Any]
    type: TensorType
    _key: tuple
    _hash: int

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return self is other

    def __setattr__(self, name, value):
        if hasattr(self, "_hash"):
            raise AttributeError("IR nodes are immutable")
        object.__setattr__(self, name, value)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> DType:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return len(self.type.shape)

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={v!r}" for k, v in self.attrs.items())
        return f"<Node {self.op.value} {self.type} ({len(self.srcs)} srcs{', ' + attrs if attrs else ''})>"

    # Values built from nodes by VJP rules (passes/autodiff.py) dispatch here.
    @staticmethod
    def _emit(op: Op, srcs: Sequence[Node], attrs: dict[str, Any]) -> Node:
        return node(op, *srcs, **attrs)


_INTERNED: weakref.WeakValueDictionary[tuple, Node] = weakref.WeakValueDictionary()


def node(op: Op, *srcs: Node, **attrs: Any) -> Node:
    """Build (or find) the node `op(srcs; attrs)`, type-checked by its rule."""
    attrs = {k: v for k, v in sorted(attrs.items())}
    out_type = infer_type(op, [s.type for s in srcs], attrs)
    key = (op, tuple(id(s) for s in srcs), tuple((k, _attr_key(v)) for k, v in attrs.items()), out_type)
    found = _INTERNED.get(key)
    if found is not None:
        return found
    n = object.__new__(Node)
    object.__setattr__(n, "op", op)
    object.__setattr__(n, "srcs", tuple(srcs))
    object.__setattr__(n, "attrs", attrs)
    object.__setattr__(n, "type", out_type)
    object.__setattr__(n, "_key", key)
    object.__setattr__(n, "_hash", hash(key))
    _INTERNED[key] = n
    return n


def input_node(name: str, shape: Sequence[int], dtype: DType) -> Node:
    """A graph input. Inputs are told apart by name."""
    return node(Op.INPUT, name=name, shape=tuple(int(d) for d in shape), dtype=dtype)


def const(value, dtype: DType, shape: Sequence[int] = ()) -> Node:
    """A constant: a scalar broadcast-free value of `shape` () or, given an
    array, that array. Scalars of other shapes are built with EXPAND."""
    if isinstance(value, np.ndarray) or (isinstance(value, (list, tuple)) and len(shape) > 0):
        arr = np.asarray(value, dtype=dtype.np).reshape(tuple(shape))
        if arr.ndim == 0:
            return node(Op.CONST, value=_scalar(arr.item(), dtype), dtype=dtype, shape=())
        return node(Op.CONST, value=ConstArray(arr), dtype=dtype, shape=tuple(arr.shape))
    return node(Op.CONST, value=_scalar(value, dtype), dtype=dtype, shape=())


def _scalar(value, dtype: DType):
    if dtype.is_float:
        return float(value)
    if dtype.is_bool:
        return bool(value)
    return int(value)


class Graph:
    """A function in the IR: named inputs, outputs, and the nodes between.

    `output_names` optionally labels outputs (e.g. 'loss', 'fc1.weight') and
    is carried through passes so a compiled program knows what each output is.
    """

    def __init__(
        self,
        inputs: Iterable[Node],
        outputs: Iterable[Node],
        name: str = "main",
        output_names: Sequence[str] | None = None,
    ):
        self.inputs: tuple[Node, ...] = tuple(inputs)
        self.outputs: tuple[Node, ...] = tuple(outputs)
        self.name = name
        self.output_names: tuple[str, ...] = (
            tuple(output_names) if output_names is not None else tuple(f"out{i}" for i in range(len(self.outputs)))
        )
        if len(self.output_names) != len(self.outputs):
            raise ValueError("output_names must name every output")
        for i in self.inputs:
            if i.op is not Op.INPUT:
                raise ValueError(f"graph input must be an INPUT node, got {i.op.value}")
        self._nodes: tuple[Node, ...] | None = None

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Every node the outputs reach, inputs first, in a deterministic
        topological order (depth-first from the outputs, operands in order)."""
        if self._nodes is None:
            order: list[Node] = list(self.inputs)
            seen = set(order)
            for out in self.outputs:
                _topo(out, seen, order)
            self._nodes = tuple(order)
        return self._nodes

    def users(self) -> dict[Node, list[Node]]:
        """Map from each node to the nodes that use it, in graph order."""
        result: dict[Node, list[Node]] = {n: [] for n in self.nodes}
        for n in self.nodes:
            for s in n.srcs:
                result[s].append(n)
        return result

    def replace(self, outputs: Iterable[Node] | None = None, **kw) -> Graph:
        """A copy with new outputs (and/or inputs/name/output_names)."""
        return Graph(
            kw.get("inputs", self.inputs),
            self.outputs if outputs is None else outputs,
            kw.get("name", self.name),
            kw.get("output_names", self.output_names),
        )

    def __str__(self) -> str:
        from graphc.ir.printer import format_graph

        return format_graph(self)

    def __repr__(self) -> str:
        return f"<Graph @{self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes, {len(self.outputs)} outputs>"


def _topo(root: Node, seen: set, order: list) -> None:
    # Iterative DFS: deep graphs (long training unrolls) must not hit the
    # recursion limit.
    stack = [(root, 0)]
    while stack:
        n, i = stack.pop()
        if n in seen:
            continue
        if i < len(n.srcs):
            stack.append((n, i + 1))
            s = n.srcs[i]
            if s not in seen:
                stack.append((s, 0))
        else:
            seen.add(n)
            order.append(n)


__all__ = ["TensorType", "ConstArray", "Node", "Graph", "node", "input_node", "const", "IRTypeError", "dtypes"]
