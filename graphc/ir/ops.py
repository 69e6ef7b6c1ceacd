"""The closed set of IR primitives, and the property groups passes ask about.

Everything a user calls (softmax, linear, conv2d, Adam's update ...) is
decomposed by the frontend into these. Passes never list ops inline; they ask
`node.op in ELEMENTWISE`. Adding a primitive means one entry here, one shape
rule and reference implementation in `graphc/ir/rules.py`, one VJP in
`passes/autodiff.py`, one way for fusion to compute it and one lowering per
backend (codegen/README.md, "Adding a primitive"); `tests/ir/test_registry.py`
and `tests/compiler/test_op_tables.py` fail until every table has it.

Conventions shared by all layers:
- Elementwise ops take operands of identical shape (the frontend inserts
  EXPAND for broadcasting) and, for binary arithmetic, identical dtype.
- Reductions drop the reduced axes (`axes` attr); the frontend reshapes for
  keepdim.
"""

from __future__ import annotations

import enum


class Op(enum.Enum):
    # -- leaves ---------------------------------------------------------------
    INPUT = "input"  # attrs: name
    CONST = "const"  # attrs: value (scalar or ConstArray)
    IOTA = "iota"  # attrs: shape, axis, dtype; value = index along axis
    RANDOM = "random"  # srcs: key (i64 scalar); attrs: shape; uniform f32 in [0, 1)

    # -- unary elementwise ----------------------------------------------------
    NEG = "neg"
    RECIP = "recip"
    EXP = "exp"
    LOG = "log"
    SQRT = "sqrt"
    SIN = "sin"
    COS = "cos"
    TANH = "tanh"
    ERF = "erf"
    FLOOR = "floor"
    NOT = "not"  # bool only
    CAST = "cast"  # attrs: dtype

    # -- binary elementwise ---------------------------------------------------
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"  # true division for floats, truncation for ints
    POW = "pow"
    ATAN2 = "atan2"  # atan2(a, b): the angle of the point (b, a); float only
    MAX = "maximum"
    MIN = "minimum"
    CMPLT = "cmplt"  # -> bool
    CMPEQ = "cmpeq"  # -> bool
    AND = "and"  # bool
    OR = "or"  # bool

    # -- ternary elementwise --------------------------------------------------
    WHERE = "where"  # srcs: cond (bool), a, b

    # -- reductions (attrs: axes) ---------------------------------------------
    SUM = "sum"
    REDUCE_MAX = "reduce_max"
    PROD = "prod"
    ARGMAX = "argmax"  # attrs: axis; -> i64, first index of the maximum

    # -- movement -------------------------------------------------------------
    RESHAPE = "reshape"  # attrs: shape
    PERMUTE = "permute"  # attrs: perm
    EXPAND = "expand"  # attrs: shape; numpy broadcast_to (new dims on the left, size-1 dims grow)
    SLICE = "slice"  # attrs: starts, stops, steps (one per dim, steps > 0)
    PAD = "pad"  # attrs: pads ((lo, hi) per dim, >= 0), value
    CONCAT = "concat"  # attrs: axis; any number of srcs

    # -- contractions and windows --------------------------------------------
    DOT = "dot"  # [..., M, K] x [..., K, N] -> [..., M, N], equal batch dims
    UNFOLD = "unfold"  # im2col: [N, C, H, W] -> [N, C*kh*kw, L]; attrs: kernel, stride, padding, dilation
    FOLD = "fold"  # col2im (sums overlaps): [N, C*kh*kw, L] -> [N, C, H, W]; + attrs: output_size
    # softmax(q k^T * scale + mask) v: srcs q [..., L, E], k [..., S, E], v [..., S, Ev] and an optional
    # mask [..., L, S] (bool: True takes part; float: added), equal batch dims; attrs: scale, causal.
    # A query whose keys are all masked gets zeros. -> [..., L, Ev]
    ATTENTION = "attention"

    # -- indexing -------------------------------------------------------------
    GATHER = "gather"  # srcs: x, index (i64, same rank); attrs: axis (torch.gather)
    SCATTER_ADD = "scatter_add"  # srcs: src, index; attrs: axis, shape; zeros + scattered sums
    ARGSORT = "argsort"  # attrs: axis, descending; -> i64 stable sorting permutation, NaN largest


LEAF = frozenset({Op.INPUT, Op.CONST, Op.IOTA, Op.RANDOM})
UNARY = frozenset(
    {Op.NEG, Op.RECIP, Op.EXP, Op.LOG, Op.SQRT, Op.SIN, Op.COS, Op.TANH, Op.ERF, Op.FLOOR, Op.NOT, Op.CAST}
)
BINARY = frozenset(
    {Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.POW, Op.ATAN2, Op.MAX, Op.MIN, Op.CMPLT, Op.CMPEQ, Op.AND, Op.OR}
)
TERNARY = frozenset({Op.WHERE})
ELEMENTWISE = UNARY | BINARY | TERNARY
COMPARISON = frozenset({Op.CMPLT, Op.CMPEQ})
LOGICAL = frozenset({Op.NOT, Op.AND, Op.OR})
COMMUTATIVE = frozenset({Op.ADD, Op.MUL, Op.MAX, Op.MIN, Op.CMPEQ, Op.AND, Op.OR})
REDUCE = frozenset({Op.SUM, Op.REDUCE_MAX, Op.PROD, Op.ARGMAX})
MOVEMENT = frozenset({Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.SLICE, Op.PAD, Op.CONCAT})
CONTRACTION = frozenset({Op.DOT, Op.UNFOLD, Op.FOLD, Op.ATTENTION})
INDEXING = frozenset({Op.GATHER, Op.SCATTER_ADD, Op.ARGSORT})
RANDOM_OPS = frozenset({Op.RANDOM})

# Ops whose output is never differentiable (integer or boolean results, or
# piecewise-constant functions): autodiff stops at them.
NON_DIFFERENTIABLE = frozenset(
    {Op.IOTA, Op.RANDOM, Op.FLOOR, Op.NOT, Op.CMPLT, Op.CMPEQ, Op.AND, Op.OR, Op.ARGMAX, Op.ARGSORT}
)
