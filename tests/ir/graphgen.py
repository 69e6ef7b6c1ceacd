"""Random well-typed graphs with input arrays, for property tests.

`random_graph(rng)` builds a graph over most primitives (elementwise,
reductions, movement, dot, unfold/fold, gather/scatter-add, casts, random,
array and scalar constants) plus the identity patterns the simplifier
removes (x*1, x+0, reshape to the same shape ...), and returns it with
input arrays to run it on. `graph_cases()` is the hypothesis strategy:
it draws a seed, so failures replay from the printed seed.

Values stay finite-ish: unary ops that could blow up get bounded operands
(tanh first, abs-like via x*x + 1 before log/sqrt/recip).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphc.ir import dtypes
from graphc.ir.graph import Graph, Node, const, input_node, node
from graphc.ir.ops import Op

FLOATS = (dtypes.float32, dtypes.float64)


@dataclass
class GraphCase:
    graph: Graph
    arrays: list[np.ndarray]
    seed: int = -1

    def __repr__(self) -> str:
        return f"GraphCase(seed={self.seed})\n{self.graph}"


class _Builder:
    def __init__(self, rng: np.random.Generator, dtype: dtypes.DType):
        self.rng = rng
        self.dtype = dtype
        self.pool: list[Node] = []
        self.inputs: list[Node] = []

    def pick(self) -> Node:
        # Prefer recent nodes so graphs grow deep, not just wide.
        k = len(self.pool)
        weights = np.arange(1, k + 1, dtype=float)
        return self.pool[self.rng.choice(k, p=weights / weights.sum())]

    def add_input(self) -> Node:
        rank = int(self.rng.integers(0, 4))
        shape = tuple(int(d) for d in self.rng.integers(1, 5, size=rank))
        n = input_node(f"in{len(self.inputs)}.{'abc'[len(self.inputs) % 3]}", shape, self.dtype)
        self.inputs.append(n)
        return n

    def scalar(self, value, dtype=None) -> Node:
        return const(value, dtype or self.dtype)

    def full(self, value, shape) -> Node:
        c = self.scalar(value)
        return c if shape == () else node(Op.EXPAND, c, shape=shape)

    def partner(self, x: Node) -> Node:
        """A second operand with x's type: a pool node, a scalar or an array const."""
        same = [n for n in self.pool if n.type == x.type and n is not x]
        choice = self.rng.integers(0, 3)
        if same and choice == 0:
            return same[self.rng.integers(0, len(same))]
        if choice == 1 or x.shape == ():
            return self.full(float(np.round(self.rng.normal(), 2)), x.shape)
        return const(self.rng.normal(size=x.shape).round(3), self.dtype, x.shape)


def _unary(b: _Builder, x: Node) -> Node:
    op = b.rng.choice([Op.NEG, Op.EXP, Op.SIN, Op.COS, Op.TANH, Op.ERF, Op.LOG, Op.SQRT, Op.RECIP, Op.FLOOR])
    if op in (Op.LOG, Op.SQRT, Op.RECIP):
        x = node(Op.ADD, node(Op.MUL, x, x), b.full(1.0, x.shape))
    if op is Op.EXP:
        x = node(Op.TANH, x)
    return node(op, x)


def _binary(b: _Builder, x: Node) -> Node:
    op = b.rng.choice([Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MAX, Op.MIN, Op.POW])
    y = b.partner(x)
    if op is Op.DIV:
        y = node(Op.ADD, node(Op.MUL, y, y), b.full(0.5, x.shape))
    if op is Op.POW:
        x = node(Op.ADD, node(Op.MUL, x, x), b.full(0.25, x.shape))
        y = node(Op.TANH, y)
    return node(op, x, y)


def _where(b: _Builder, x: Node) -> Node:
    y = b.partner(x)
    cond = node(b.rng.choice([Op.CMPLT, Op.CMPEQ]), x, y)
    if b.rng.random() < 0.3:
        cond = node(Op.OR, node(Op.NOT, cond), node(Op.CMPLT, y, x))
    return node(Op.WHERE, cond, x, y)


def _reduce(b: _Builder, x: Node) -> Node:
    if x.ndim == 0:
        return node(Op.SUM, x, axes=())
    axes = tuple(sorted(int(a) for a in b.rng.choice(x.ndim, size=b.rng.integers(1, x.ndim + 1), replace=False)))
    op = b.rng.choice([Op.SUM, Op.REDUCE_MAX, Op.PROD])
    if op is Op.PROD:
        x = node(Op.TANH, x)  # keep products bounded
    return node(op, x, axes=axes)


def _movement(b: _Builder, x: Node) -> Node:
    kind = b.rng.integers(0, 6)
    if kind == 0:
        shape = (x.type.numel,) if b.rng.random() < 0.5 else (1,) + x.shape
        return node(Op.RESHAPE, x, shape=shape)
    if kind == 1:
        return node(Op.PERMUTE, x, perm=tuple(int(p) for p in b.rng.permutation(x.ndim)))
    if kind == 2:
        return node(Op.EXPAND, x, shape=(2,) + x.shape)
    if kind == 3 and x.ndim:
        starts = tuple(int(b.rng.integers(0, d)) for d in x.shape)
        stops = tuple(int(b.rng.integers(s + 1, d + 1)) for s, d in zip(starts, x.shape))
        steps = tuple(int(b.rng.integers(1, 3)) for _ in x.shape)
        return node(Op.SLICE, x, starts=starts, stops=stops, steps=steps)
    if kind == 4:
        pads = tuple((int(b.rng.integers(0, 2)), int(b.rng.integers(0, 2))) for _ in x.shape)
        return node(Op.PAD, x, pads=pads, value=float(b.rng.choice([0.0, -0.0, 1.5, -np.inf])))
    if x.ndim:
        return node(Op.CONCAT, x, b.partner(x), axis=int(b.rng.integers(0, x.ndim)))
    return node(Op.RESHAPE, x, shape=(1, 1))


def _contract(b: _Builder, x: Node) -> Node:
    if x.ndim < 2:
        x = node(Op.RESHAPE, x, shape=(1, x.type.numel))
    swap = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    if b.rng.random() < 0.7:
        return node(Op.DOT, x, node(Op.PERMUTE, x, perm=swap))
    flat = node(Op.RESHAPE, x, shape=(1, 1, 1, x.type.numel))
    k = int(b.rng.integers(1, min(3, x.type.numel) + 1))
    window = {"kernel": (1, k), "stride": (1, 1), "padding": (0, 0), "dilation": (1, 1)}
    cols = node(Op.UNFOLD, flat, **window)
    return node(Op.FOLD, cols, output_size=(1, x.type.numel), **window)


def _indexing(b: _Builder, x: Node) -> Node:
    if x.ndim == 0:
        x = node(Op.RESHAPE, x, shape=(1,))
    axis = int(b.rng.integers(0, x.ndim))
    index = b.rng.integers(0, x.shape[axis], size=x.shape)
    idx = const(index, dtypes.int64, x.shape)
    if b.rng.random() < 0.5:
        return node(Op.GATHER, x, idx, axis=axis)
    return node(Op.SCATTER_ADD, x, idx, axis=axis, shape=x.shape)


def _casts(b: _Builder, x: Node) -> Node:
    kind = b.rng.integers(0, 4)
    other = dtypes.float64 if x.dtype is dtypes.float32 else dtypes.float32
    if kind == 0:
        return node(Op.CAST, node(Op.CAST, x, dtype=other), dtype=x.dtype)
    if kind == 1:
        ints = node(Op.CAST, node(Op.FLOOR, x), dtype=dtypes.int32)
        ints = node(Op.MUL, ints, node(Op.EXPAND, const(3, dtypes.int32), shape=x.shape)) if x.ndim else ints
        return node(Op.CAST, ints, dtype=x.dtype)
    if kind == 2:
        noise = node(Op.RANDOM, const(int(b.rng.integers(0, 100)), dtypes.int64), shape=x.shape)
        return node(Op.ADD, x, node(Op.CAST, noise, dtype=x.dtype))
    iota = node(Op.IOTA, shape=x.shape, axis=0, dtype=dtypes.int64) if x.ndim else const(0, dtypes.int64)
    return node(Op.ADD, x, node(Op.CAST, iota, dtype=x.dtype))


def _identity(b: _Builder, x: Node) -> Node:
    """Patterns the simplifier should remove; semantics must not change."""
    kind = b.rng.integers(0, 6)
    if kind == 0:
        return node(Op.MUL, x, b.full(1.0, x.shape))
    if kind == 1:
        return node(Op.ADD, b.full(0.0, x.shape), x)
    if kind == 2:
        return node(Op.RESHAPE, x, shape=x.shape)
    if kind == 3:
        return node(Op.NEG, node(Op.NEG, x))
    if kind == 4:
        return node(Op.PERMUTE, x, perm=tuple(range(x.ndim)))
    return node(Op.CAST, x, dtype=x.dtype)


_STEPS = (
    _unary,
    _binary,
    _where,
    _reduce,
    _movement,
    _contract,
    _indexing,
    _casts,
    _identity,
)


def random_graph(rng: np.random.Generator, max_steps: int = 10, max_numel: int = 4096) -> GraphCase:
    """A random well-typed float graph and input arrays for it."""
    b = _Builder(rng, FLOATS[int(rng.integers(0, 2))])
    for _ in range(int(rng.integers(1, 4))):
        b.pool.append(b.add_input())
    for _ in range(int(rng.integers(1, max_steps + 1))):
        step = _STEPS[int(rng.integers(0, len(_STEPS)))]
        out = step(b, b.pick())
        if out.type.numel <= max_numel:
            b.pool.append(out)
    n_out = int(rng.integers(1, min(3, len(b.pool)) + 1))
    outputs = [b.pool[-1]] + [b.pool[i] for i in rng.choice(len(b.pool), size=n_out - 1)]
    names = [f"out{i}" if rng.random() < 0.5 else f"r{i}.v" for i in range(len(outputs))]
    graph = Graph(b.inputs, outputs, name="random", output_names=names)
    arrays = [rng.normal(size=i.shape).astype(i.dtype.np) for i in b.inputs]
    return GraphCase(graph, arrays)


def graph_cases(max_steps: int = 10):
    """Hypothesis strategy of `GraphCase`s (imports hypothesis lazily)."""
    from hypothesis import strategies as st

    def build(seed: int) -> GraphCase:
        case = random_graph(np.random.default_rng(seed), max_steps)
        case.seed = seed
        return case

    return st.integers(0, 2**32 - 1).map(build)
