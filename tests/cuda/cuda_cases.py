"""Test graphs for the CUDA backend: one or more per primitive (several
dtypes), plus a whole training step. Each case is (name, Graph, inputs),
the inputs a list of numpy arrays in graph-input order, so the same table
drives the nvcc --ptx check (no GPU) and the differential GPU suite.
"""

from __future__ import annotations

import numpy as np

from graphc.ir import dtypes
from graphc.ir.graph import Graph, const, input_node, node
from graphc.ir.ops import Op

F32, F64, F16, I64, I32, I8, U8, BOOL = (
    dtypes.float32,
    dtypes.float64,
    dtypes.float16,
    dtypes.int64,
    dtypes.int32,
    dtypes.int8,
    dtypes.uint8,
    dtypes.bool_,
)


def _data(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    if dtype.is_bool:
        return rng.random(shape) < 0.5
    if dtype.is_int:
        lo, hi = (0, 20) if dtype is U8 else (-20, 20)
        return rng.integers(lo, hi, size=shape).astype(dtype.np)
    return rng.standard_normal(shape).astype(dtype.np)


def _positive(rng, shape, dtype) -> np.ndarray:
    return (rng.random(shape) + 0.5).astype(dtype.np)


def _nonzero(rng, shape, dtype) -> np.ndarray:
    """Data without zeros (integer division by zero is an error)."""
    x = _data(rng, shape, dtype)
    return np.where(x == 0, np.asarray(1, dtype.np), x).astype(dtype.np)


class Cases:
    """Collects cases; `inp` makes an input node and its value together."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.items: list[tuple[str, Graph, list[np.ndarray]]] = []
        self._inputs: list = []
        self._values: list = []

    def inp(self, shape, dtype, value=None):
        name = f"x{len(self._inputs)}"
        n = input_node(name, shape, dtype)
        self._inputs.append(n)
        self._values.append(_data(self.rng, shape, dtype) if value is None else np.asarray(value, dtype.np))
        return n

    def add(self, name: str, *outputs) -> None:
        self.items.append((name, Graph(self._inputs, outputs, name=name), self._values))
        self._inputs, self._values = [], []


_UNARY_FLOAT = [Op.RECIP, Op.EXP, Op.LOG, Op.SQRT, Op.SIN, Op.COS, Op.TANH, Op.ERF, Op.FLOOR]
_BINARY_NUM = [Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MAX, Op.MIN, Op.CMPLT, Op.CMPEQ]


def elementwise_cases(c: Cases) -> None:
    for dt in (F32, F64, F16):
        for op in _UNARY_FLOAT:
            positive = op in (Op.LOG, Op.SQRT, Op.RECIP)
            x = c.inp((5, 7), dt, _positive(c.rng, (5, 7), dt) if positive else None)
            c.add(f"{op.value}_{dt.short}", node(op, x))
        c.add(f"atan2_{dt.short}", node(Op.ATAN2, c.inp((6,), dt), c.inp((6,), dt)))
        c.add(
            f"pow_{dt.short}",
            node(Op.POW, c.inp((6,), dt, _positive(c.rng, (6,), dt)), c.inp((6,), dt)),
        )
    for dt in (F32, I64, I32, I8, U8, F16):
        for op in _BINARY_NUM:
            a, b = c.inp((4, 9), dt), c.inp((4, 9), dt, _nonzero(c.rng, (4, 9), dt) if op is Op.DIV else None)
            c.add(f"{op.value}_{dt.short}", node(op, a, b))
        if dt is not U8:
            c.add(f"neg_{dt.short}", node(Op.NEG, c.inp((3, 3), dt)))
    c.add("not_i1", node(Op.NOT, c.inp((8,), BOOL)))
    c.add(
        "and_or_i1",
        node(Op.AND, c.inp((8,), BOOL), c.inp((8,), BOOL)),
        node(Op.OR, c.inp((8,), BOOL), c.inp((8,), BOOL)),
    )
    c.add(
        "where_f32",
        node(Op.WHERE, c.inp((4, 5), BOOL), c.inp((4, 5), F32), c.inp((4, 5), F32)),
    )
    for src, dst in (
        (F32, I32),
        (F32, F16),
        (F64, F16),
        (I64, F32),
        (F32, BOOL),
        (BOOL, F32),
        (I32, I8),
        (F16, F64),
    ):
        c.add(f"cast_{src.short}_{dst.short}", node(Op.CAST, c.inp((10,), src), dtype=dst))
    # Integer division of negative operands (truncation); a zero divisor
    # is an error (tests/cuda/test_cuda_numerics.py).
    c.add(
        "div_i32_signs",
        node(
            Op.DIV,
            c.inp((6,), I32, [7, -7, 7, -7, 5, 0]),
            c.inp((6,), I32, [2, 2, -2, -2, 3, 3]),
        ),
    )


def leaf_cases(c: Cases) -> None:
    c.add(
        "const_array",
        node(Op.ADD, c.inp((2, 3), F32), const(np.arange(6.0).reshape(2, 3), F32, (2, 3))),
    )
    c.add("const_scalar_f64", node(Op.MUL, c.inp((), F64), const(0.1, F64)))
    c.add(
        "const_special_f32",
        node(
            Op.MAX,
            c.inp((3,), F32),
            node(Op.EXPAND, const(float("-inf"), F32), shape=(3,)),
        ),
    )
    c.add(
        "iota_i64",
        node(Op.ADD, c.inp((3, 4), I64), node(Op.IOTA, shape=(3, 4), axis=1, dtype=I64)),
    )
    key = c.inp((), I64, 12345)
    c.add("random_f32", node(Op.RANDOM, key, shape=(4, 1000)))


def reduce_cases(c: Cases) -> None:
    for dt in (F32, F64, I64, I32, F16):
        x = c.inp((6, 300), dt)
        c.add(f"sum_wide_{dt.short}", node(Op.SUM, x, axes=(1,)))
        c.add(
            f"max_small_{dt.short}",
            node(Op.REDUCE_MAX, c.inp((5, 4, 3), dt), axes=(0, 2)),
        )
    c.add("prod_f32", node(Op.PROD, c.inp((4, 5), F32), axes=(1,)))
    c.add(
        "prod_i64_wide",
        node(Op.PROD, c.inp((2, 100), I64, np.ones((2, 100))), axes=(1,)),
    )
    c.add("max_bool", node(Op.REDUCE_MAX, c.inp((3, 70), BOOL), axes=(1,)))
    c.add("sum_all_f32", node(Op.SUM, c.inp((33, 17), F32), axes=(0, 1)))
    nan_row = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 5.0, 5.0, 1.0]], np.float32)
    c.add("argmax_nan_f32", node(Op.ARGMAX, c.inp((2, 4), F32, nan_row), axis=1))
    c.add("argmax_wide_f32", node(Op.ARGMAX, c.inp((3, 500), F32), axis=1))
    c.add("argmax_i32_axis0", node(Op.ARGMAX, c.inp((7, 3), I32), axis=0))
    c.add("argmax_f16", node(Op.ARGMAX, c.inp((2, 90), F16), axis=1))


def movement_cases(c: Cases) -> None:
    x = c.inp((2, 3, 4), F32)
    c.add(
        "reshape_permute",
        node(Op.PERMUTE, node(Op.RESHAPE, x, shape=(6, 4)), perm=(1, 0)),
    )
    c.add("expand", node(Op.EXPAND, c.inp((3, 1), F64), shape=(2, 3, 5)))
    c.add(
        "slice",
        node(Op.SLICE, c.inp((7, 8), I32), starts=(1, 0), stops=(7, 8), steps=(2, 3)),
    )
    c.add("pad", node(Op.PAD, c.inp((3, 4), F32), pads=((1, 2), (0, 3)), value=-1.5))
    c.add(
        "concat",
        node(
            Op.CONCAT,
            c.inp((2, 3), I64),
            c.inp((2, 5), I64),
            c.inp((2, 1), I64),
            axis=1,
        ),
    )


def contraction_cases(c: Cases) -> None:
    for dt in (F32, F64, I32, F16):
        c.add(f"dot_{dt.short}", node(Op.DOT, c.inp((70, 33), dt), c.inp((33, 90), dt)))
    a, b = c.inp((3, 17, 8), F32), c.inp((3, 5, 8), F32)
    c.add("dot_batched_transposed", node(Op.DOT, a, node(Op.PERMUTE, b, perm=(0, 2, 1))))
    bias = c.inp((90,), F32)
    h = node(Op.DOT, c.inp((64, 40), F32), c.inp((40, 90), F32))
    relu = node(
        Op.MAX,
        node(Op.ADD, h, node(Op.EXPAND, bias, shape=(64, 90))),
        node(Op.EXPAND, const(0.0, F32), shape=(64, 90)),
    )
    c.add("dot_bias_relu", relu)
    # ATTENTION has no CUDA kernel: it renders as its unfused formula.
    q, k, v = c.inp((2, 9, 8), F32), c.inp((2, 11, 8), F32), c.inp((2, 11, 4), F32)
    c.add("attention_causal", node(Op.ATTENTION, q, k, v, scale=0.35, causal=True))
    q, k, v, m = c.inp((2, 9, 8), F32), c.inp((2, 11, 8), F32), c.inp((2, 11, 4), F32), c.inp((2, 9, 11), BOOL)
    c.add("attention_bool_mask", node(Op.ATTENTION, q, k, v, m, scale=0.35, causal=False))
    win = {"kernel": (3, 2), "stride": (2, 1), "padding": (1, 0), "dilation": (1, 2)}
    c.add("unfold", node(Op.UNFOLD, c.inp((2, 3, 9, 8), F32), **win))
    c.add("fold", node(Op.FOLD, c.inp((2, 18, 30), F32), output_size=(9, 8), **win))


def indexing_cases(c: Cases) -> None:
    idx = c.rng.integers(0, 6, size=(4, 3))
    c.add("gather", node(Op.GATHER, c.inp((6, 3), F32), c.inp((4, 3), I64, idx), axis=0))
    for dt in (F32, F64, I64, I32, F16, I8):
        sidx = c.rng.integers(0, 5, size=(8, 3))
        c.add(
            f"scatter_add_{dt.short}",
            node(
                Op.SCATTER_ADD,
                c.inp((8, 3), dt),
                c.inp((8, 3), I64, sidx),
                axis=0,
                shape=(5, 3),
            ),
        )
    ties = c.rng.integers(-2, 3, size=(5, 7)).astype(np.float32)
    ties[1, 2] = ties[3, 0] = np.nan
    for descending in (False, True):
        c.add(f"argsort_{descending}", node(Op.ARGSORT, c.inp((5, 7), F32, ties), axis=0, descending=descending))


def mlp_training_step(batch: int = 16, n_in: int = 20, hidden: int = 32, classes: int = 10, seed: int = 0):
    """(name, Graph, inputs): a 2-layer MLP, a softmax cross-entropy loss
    and its gradients w.r.t. all four parameters (passes/autodiff.grad)."""
    from graphc.passes import autodiff

    rng = np.random.default_rng(seed)
    x = input_node("x", (batch, n_in), F32)
    onehot = input_node("onehot", (batch, classes), F32)
    w1, b1 = input_node("w1", (n_in, hidden), F32), input_node("b1", (hidden,), F32)
    w2, b2 = input_node("w2", (hidden, classes), F32), input_node("b2", (classes,), F32)

    def bcast(v, shape):
        return node(Op.EXPAND, v, shape=shape)

    h = node(Op.ADD, node(Op.DOT, x, w1), bcast(b1, (batch, hidden)))
    h = node(Op.MAX, h, bcast(const(0.0, F32), (batch, hidden)))
    logits = node(Op.ADD, node(Op.DOT, h, w2), bcast(b2, (batch, classes)))
    m = node(Op.RESHAPE, node(Op.REDUCE_MAX, logits, axes=(1,)), shape=(batch, 1))
    shifted = node(Op.SUB, logits, bcast(m, (batch, classes)))
    lse = node(
        Op.RESHAPE,
        node(Op.LOG, node(Op.SUM, node(Op.EXP, shifted), axes=(1,))),
        shape=(batch, 1),
    )
    logp = node(Op.SUB, shifted, bcast(lse, (batch, classes)))
    total = node(Op.SUM, node(Op.MUL, logp, onehot), axes=(0, 1))
    loss = node(Op.MUL, total, const(-1.0 / batch, F32))
    graph = autodiff.grad(
        Graph([x, onehot, w1, b1, w2, b2], [loss], name="mlp_step"),
        wrt=["w1", "b1", "w2", "b2"],
    )
    labels = rng.integers(0, classes, size=batch)
    values = [
        rng.standard_normal((batch, n_in)).astype(np.float32),
        np.eye(classes, dtype=np.float32)[labels],
        (rng.standard_normal((n_in, hidden)) * 0.3).astype(np.float32),
        np.zeros(hidden, np.float32),
        (rng.standard_normal((hidden, classes)) * 0.3).astype(np.float32),
        np.zeros(classes, np.float32),
    ]
    return "mlp_step", graph, values


def all_cases(seed: int = 0) -> list[tuple[str, Graph, list[np.ndarray]]]:
    c = Cases(seed)
    for build in (
        elementwise_cases,
        leaf_cases,
        reduce_cases,
        movement_cases,
        contraction_cases,
        indexing_cases,
    ):
        build(c)
    return c.items + [mlp_training_step(seed=seed)]


def ops_covered(cases) -> set[Op]:
    """Every primitive that appears in the cases' graphs."""
    return {n.op for _, g, _ in cases for n in g.nodes}
