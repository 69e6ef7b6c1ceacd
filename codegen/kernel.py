"""The kernel form: what fusion produces and every backend renders.

A compiled graph is a `Program`: an ordered list of `Kernel`s over named
`Buffer`s. Everything is plain, immutable data (no callables), so a program
hashes, prints and caches. Backends (codegen/llvm, codegen/cuda) render each
kernel kind once; they never see IR nodes.

Buffers
    Every buffer is a flat, contiguous (row-major) array of one dtype. Kernels
    read buffers only through `load` expressions with a flat element index and
    write them only through `Store`s. Movement ops (EXPAND, PERMUTE, RESHAPE,
    SLICE, PAD, CONCAT, UNFOLD) never copy: fusion turns them into index
    arithmetic inside the loads.

Expressions (`Expr`)
    A small scalar expression language for kernel bodies. Each Expr has an
    `op`, `args` (Exprs), a `dtype` and an `arg` (the op's attribute). The
    op is an `Op` (graphc/ir/ops.py) for every elementwise IR op and a
    `KOp` for the nodes only kernels have; each prints as its lowercase
    `.value`. Ops:

    leaves      KOp.VAR (arg = loop variable name, int64), KOp.CONST (arg =
                Python scalar), KOp.ACC (the running/finished reduction
                result of the enclosing reduce or dot kernel), KOp.LOAD
                (arg = buffer name, args = (flat index,)), KOp.RANDOM (args
                = (key i64, counter i64), f32: the splitmix64 function in
                graphc/ir/rules.py)
    index math  Op.ADD, Op.MUL, KOp.FLOORDIV, KOp.MOD (int64, floor
                semantics like Python; `bounds()` tells when operands are
                non-negative), KOp.CHECK (args = (index,), arg = size: the
                index if 0 <= index < size, else 0 and the kernel raises the
                program's error flag; used for GATHER / SCATTER_ADD indices
                so nothing reads out of bounds). Index add/mul are the IR's
                ADD/MUL on int64 (both wrap, as the IR's do); a backend tells
                them from value arithmetic by the INDEX dtype only where it
                wants plainer code. Op.MAX/Op.MIN on int64 clamp a
                guarded read's index (`clamp`).
    scalar      every elementwise IR op (`ops.ELEMENTWISE`): NEG, RECIP,
                EXP, LOG, SQRT, SIN, COS, TANH, ERF, FLOOR, NOT, CAST (arg =
                target DType, the result dtype), ADD, SUB, MUL, DIV, POW,
                ATAN2, MAX, MIN, CMPLT, CMPEQ, AND, OR, WHERE (args = cond,
                a, b). Semantics are exactly graphc/ir/rules.py: integer DIV
                truncates toward zero; a zero integer divisor raises the
                program's error flag (ERROR_ZERO_DIVISION) and never reaches
                the hardware divide.

    IR leaves (CONST, RANDOM, IOTA, INPUT) are not kernel ops: fusion turns
    them into KOp.CONST, KOp.RANDOM, a cast loop variable and KOp.LOAD. A
    backend has one lowering per op in each of its tables (UNARY, BINARY,
    TERNARY keyed by Op, NODES keyed by KOp); tests/compiler/
    test_op_tables.py fails when one is missing.

    A guarded read (PAD, CONCAT, UNFOLD borders, FOLD windows) is
    `where(cond, load(buf, idx'), fill)` where each coordinate of idx' is
    clamped into its extent (`clamp`: Op.MIN/Op.MAX on int64), so a
    backend may evaluate both sides of a `where` (select) and still never
    reads out of bounds, and the clamped coordinates keep bounds the
    simplifier uses to drop a reshape's div/mod.
    Fusion never emits a load from an empty buffer.

Error flag
    A program has one error word. On the CPU, `check` failures set the bit
    ERROR_INDEX and integer divisions by zero ERROR_ZERO_DIVISION; the CUDA
    backend records the first failure with its kernel (docs/cuda.md). The
    runtime raises IndexError or DivisionByZeroError after the call.

Kernel kinds (`Kernel.kind`) and their loop structure. Loop variables are
named `i0, i1, ...` (elementwise/scatter), `o0.. / r0..` (reduce: output
dims / reduced dims), `b0.., m, n` (dot: batch dims, rows, columns). All
loops run from 0 to extent-1. Loops named in `Kernel.parallel` may be split
across threads (their iterations are independent).

    elementwise  for i in shape: for each store: buf[index] = value.
    reduce       for o in out_shape:
                     acc = init(reducer)
                     for r in red_shape: acc = combine(acc, value)
                     stores (over o, may read `acc`)
                     for r in red_shape: row_stores (over o and r, may read acc)
                 reducer: sum | max | prod | argmax. argmax has one reduced
                 dim; acc is the int64 position r0 of the first maximum
                 (NaN counts as the maximum; max propagates NaN). A sum
                 of float32 (or float16) values accumulates in float64.
    dot          for b, m, n: acc = sum_k A[a_index(b,m,k)] * B[b_index(b,k,n)]
                 A/B are read as affine views (`Operand`: offset + strides
                 per (batch..., row, col)), then the stores (over b, m, n,
                 may read `acc`) are the fused epilogue.
    scatter      out (zeroed first, `out` names it) += value at
                 check(target); loops over the source shape, sequential.
    attention    out[b, m, n] = sum_j softmax_j(scale * q[b,m,:].k[b,j,:]
                 (+ mask[b,m,j]), causal: j <= m) v[b, j, n]: graphc/ir/
                 rules.py's ATTENTION, a query whose keys are all masked
                 gives zeros. `attention` holds the views of q, k, v and
                 the mask (`Operand`s over (batch..., row, col)); the
                 store writes `acc` row-major (no epilogue). A backend
                 computes it blockwise with an online softmax and never
                 stores the [L, S] scores; it chooses its own blocking and
                 thread split.

UNFOLD and FOLD need no kind of their own: unfold is an elementwise kernel
with guarded loads, fold a reduce over the kernel window.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from graphc.ir import dtypes
from graphc.ir.dtypes import DType
from graphc.ir.ops import COMPARISON, Op

if TYPE_CHECKING:  # memory.py imports this module
    from graphc.codegen.memory import MemoryPlan

INDEX = dtypes.int64

# Bits of the program's error word (see "Error flag" above).
ERROR_INDEX = 1
ERROR_ZERO_DIVISION = 2

# ---------------------------------------------------------------------------
# expressions


class KOp(enum.Enum):
    """Expression nodes that only kernels have (see the module docstring);
    every other node's op is the elementwise `Op` it computes."""

    VAR = "var"
    CONST = "const"
    ACC = "acc"
    LOAD = "load"
    RANDOM = "random"
    CHECK = "check"
    FLOORDIV = "floordiv"
    MOD = "mod"


@dataclass(frozen=True)
class Expr:
    """One node of a kernel-body expression (see the module docstring)."""

    op: Op | KOp
    args: tuple[Expr, ...] = ()
    dtype: DType = INDEX
    arg: Any = None
    _h: Any = field(default=None, compare=False, repr=False)

    def __hash__(self) -> int:
        # Cached: kernel bodies are deep trees hashed often (CSE in codegen).
        if self._h is None:
            object.__setattr__(self, "_h", hash((self.op, self.args, self.dtype.name, repr(self.arg))))
        return self._h

    def __eq__(self, other) -> bool:
        # repr(arg) tells 0.0 from -0.0 so CSE never merges them.
        if self is other:
            return True
        if not (
            isinstance(other, Expr)
            and hash(self) == hash(other)
            and self.op == other.op
            and self.dtype is other.dtype
            and repr(self.arg) == repr(other.arg)
            and self.args == other.args
        ):
            return False
        # Equal trees share their children from now on, so comparing them
        # again stops at `is`: without this, comparing two copies of a DAG
        # with shared subexpressions takes time exponential in its depth.
        object.__setattr__(self, "args", other.args)
        return True

    def __repr__(self) -> str:
        return format_expr(self)

    # Index arithmetic sugar; simplifies as it builds.
    def __add__(self, other):
        return add(self, as_expr(other))

    __radd__ = __add__

    def __mul__(self, other):
        return mul(self, as_expr(other))

    __rmul__ = __mul__

    def __floordiv__(self, other):
        return floordiv(self, int(other))

    def __mod__(self, other):
        return mod(self, int(other))


def as_expr(value) -> Expr:
    return value if isinstance(value, Expr) else const(int(value))


def var(name: str) -> Expr:
    return Expr(KOp.VAR, arg=name)


def const(value, dtype: DType = INDEX) -> Expr:
    if dtype.is_float:
        value = float(value)
    elif dtype.is_bool:
        value = bool(value)
    else:
        value = int(value)
    return Expr(KOp.CONST, dtype=dtype, arg=value)


def load(buffer: str, index: Expr, dtype: DType) -> Expr:
    return Expr(KOp.LOAD, (index,), dtype, buffer)


def acc(dtype: DType) -> Expr:
    return Expr(KOp.ACC, dtype=dtype)


def scalar(op: Op, *args: Expr, dtype: DType | None = None, arg: Any = None) -> Expr:
    """An elementwise op node; the result dtype defaults to the operands'."""
    if dtype is None:
        dtype = dtypes.bool_ if op in COMPARISON else args[-1].dtype
    return Expr(op, tuple(args), dtype, arg)


def where(cond: Expr, a: Expr, b: Expr) -> Expr:
    if cond.op is KOp.CONST:
        return a if cond.arg else b
    return Expr(Op.WHERE, (cond, a, b), a.dtype)


def clamp(index: Expr, lo: int, hi: int) -> Expr:
    """index moved into [lo, hi] (inclusive), as min(max(index, lo), hi);
    index itself where its bounds already lie there. A guarded read clamps
    its index rather than selecting 0, so the index keeps known bounds and
    the reshapes it passes through still simplify their div/mod."""
    b = bounds(index)
    if b is not None and lo <= b[0] and b[1] <= hi:
        return index
    if b is None or b[0] < lo:
        index = Expr(Op.MAX, (index, const(lo)), INDEX)
    if b is None or b[1] > hi:
        index = Expr(Op.MIN, (index, const(hi)), INDEX)
    return index


def check(index: Expr, size: int) -> Expr:
    return Expr(KOp.CHECK, (index,), INDEX, int(size))


def is_const(e: Expr, value=None) -> bool:
    return e.op is KOp.CONST and (value is None or e.arg == value)


# --- index arithmetic with a light simplifier ------------------------------
# Bounds let the simplifier drop `floordiv`/`mod` that reshapes of
# contiguous views introduce (x // n == 0 when 0 <= x < n), which is what
# keeps inner loops affine and vectorizable.

VarRanges = dict  # loop variable name -> extent


_RANGES: dict[str, int] = {}


@dataclass
class _RangeScope:
    """Context manager that declares loop extents for the simplifier."""

    ranges: dict

    def __enter__(self):
        self.saved = dict(_RANGES)
        _RANGES.update(self.ranges)
        return self

    def __exit__(self, *exc):
        _RANGES.clear()
        _RANGES.update(self.saved)


def loop_ranges(ranges: dict[str, int]) -> _RangeScope:
    """`with loop_ranges({'i0': 4}):` builds index expressions knowing i0 < 4."""
    return _RangeScope(ranges)


def bounds(e: Expr) -> tuple[int, int] | None:
    """Inclusive (lo, hi) of an int64 index expression, or None if unknown."""
    if e.op is KOp.CONST and e.dtype.is_int:
        return (e.arg, e.arg)
    if e.op is KOp.VAR:
        n = _RANGES.get(e.arg)
        return None if n is None else (0, max(n - 1, 0))
    if e.op in (Op.ADD, Op.MUL) and e.dtype is INDEX:
        a, b = bounds(e.args[0]), bounds(e.args[1])
        if a is None or b is None:
            return None
        if e.op is Op.ADD:
            return (a[0] + b[0], a[1] + b[1])
        prods = [x * y for x in a for y in b]
        return (min(prods), max(prods))
    if e.op is KOp.FLOORDIV:
        a = bounds(e.args[0])
        return None if a is None else (a[0] // e.arg, a[1] // e.arg)
    if e.op is KOp.MOD:
        return (0, e.arg - 1)
    if e.op is KOp.CHECK:
        return (0, max(e.arg - 1, 0))
    if e.op in (Op.MAX, Op.MIN) and e.dtype is INDEX:  # clamp()
        a, b = bounds(e.args[0]), bounds(e.args[1])
        if b is None:
            return None
        pick = max if e.op is Op.MAX else min
        if a is not None:
            return (pick(a[0], b[0]), pick(a[1], b[1]))
        inner = e.args[0]  # min(max(x, lo), hi) with x unbounded
        if e.op is Op.MIN and inner.op is Op.MAX and is_const(inner.args[1]):
            return (inner.args[1].arg, b[1])
        return None
    return None


def _terms(e: Expr) -> list[Expr]:
    if e.op is Op.ADD and e.dtype is INDEX:
        return _terms(e.args[0]) + _terms(e.args[1])
    return [e]


def _coef(term: Expr) -> tuple[int, Expr | None]:
    """term == coef * rest (rest None for a constant term)."""
    if term.op is KOp.CONST:
        return term.arg, None
    if term.op is Op.MUL and term.args[1].op is KOp.CONST:
        return term.args[1].arg, term.args[0]
    return 1, term


def _sum(terms: Iterable[Expr]) -> Expr:
    total = None
    for t in terms:
        total = t if total is None else add(total, t)
    return total if total is not None else const(0)


def add(a: Expr, b: Expr) -> Expr:
    if a.dtype is not INDEX or b.dtype is not INDEX:
        return scalar(Op.ADD, a, b)
    if is_const(a) and is_const(b):
        return const(a.arg + b.arg)
    if is_const(a, 0):
        return b
    if is_const(b, 0):
        return a
    if is_const(a):
        a, b = b, a
    # Keep constants on the right and fold c1 + c2.
    if b.op is KOp.CONST and a.op is Op.ADD and is_const(a.args[1]):
        return add(a.args[0], const(a.args[1].arg + b.arg))
    return Expr(Op.ADD, (a, b))


def mul(a: Expr, b: Expr) -> Expr:
    if a.dtype is not INDEX or b.dtype is not INDEX:
        return scalar(Op.MUL, a, b)
    if is_const(a):
        a, b = b, a
    if is_const(b):
        if is_const(a):
            return const(a.arg * b.arg)
        if b.arg == 0:
            return const(0)
        if b.arg == 1:
            return a
        if a.op is Op.ADD:  # distribute so terms stay affine
            return add(mul(a.args[0], b), mul(a.args[1], b))
        if a.op is Op.MUL and is_const(a.args[1]):
            return mul(a.args[0], const(a.args[1].arg * b.arg))
    return Expr(Op.MUL, (a, b))


def _split(e: Expr, d: int) -> tuple[Expr, Expr] | None:
    """Write e = d * q + r, q from the terms whose coefficient d divides
    (exact for integers, so floor(e / d) = q + floor(r / d)); None if no
    term is divisible."""
    big, small = [], []
    for t in _terms(e):
        c, rest = _coef(t)
        if rest is None:  # split a constant into its multiple of d and the rest
            if c // d:
                big.append(const(c // d))
            small.append(const(c % d))
        elif c % d == 0:
            big.append(mul(rest, const(c // d)))
        else:
            small.append(t)
    if not big:
        return None
    return _sum(big), _sum(small)


def _in_range(a: Expr, d: int) -> bool:
    b = bounds(a)
    return b is not None and 0 <= b[0] and b[1] < d


def _factor(a: Expr, d: int) -> tuple[int, Expr, Expr] | None:
    """a = c * q + r with c | d, c > 1 and 0 <= r < c (r from the terms whose
    coefficient c does not divide), e.g. 4*i0 + i1 with i1 < 4."""
    for t in _terms(a):
        c, rest = _coef(t)
        if rest is None or c <= 1 or d % c or c == d:
            continue
        q, r = [], []
        for u in _terms(a):
            cu, ru = _coef(u)
            if ru is not None and cu % c == 0:
                q.append(mul(ru, const(cu // c)))
            else:
                r.append(u)
        rem = _sum(r)
        if _in_range(rem, c) and all((bounds(x) or (-1, 0))[0] >= 0 for x in q):
            return c, _sum(q), rem
    return None


def floordiv(a: Expr, d: int) -> Expr:
    if d == 1:
        return a
    if is_const(a):
        return const(a.arg // d)
    if _in_range(a, d):
        return const(0)
    split = _split(a, d)
    if split is not None:
        return add(split[0], floordiv(split[1], d))
    fac = _factor(a, d)
    if fac is not None:
        return floordiv(fac[1], d // fac[0])
    if a.op is KOp.FLOORDIV:
        return floordiv(a.args[0], a.arg * d)
    return Expr(KOp.FLOORDIV, (a,), INDEX, d)


def mod(a: Expr, d: int) -> Expr:
    if d == 1:
        return const(0)
    if is_const(a):
        return const(a.arg % d)
    if _in_range(a, d):
        return a
    split = _split(a, d)
    if split is not None:
        return mod(split[1], d)
    fac = _factor(a, d)
    if fac is not None:
        return add(mul(mod(fac[1], d // fac[0]), const(fac[0])), fac[2])
    return Expr(KOp.MOD, (a,), INDEX, d)


def affine(e: Expr) -> tuple[dict[str, int], int] | None:
    """e as {var: coef} + const when it is affine in loop variables. Terms
    `c*d*(x // d) + c*(x % d)` count as `c*x` (x = d*(x//d) + x%d): a
    reshape that splits an index, then a layout that merges it back (a
    transposed view of a [B, T, C] value read as [B*T, C])."""
    coefs: dict[str, int] = {}
    offset = 0
    split: dict[tuple[Expr, int], list[int]] = {}  # (x, d) -> [coef of x // d, coef of x % d]
    for t in _terms(e):
        c, rest = _coef(t)
        if rest is None:
            offset += c
        elif rest.op is KOp.VAR:
            coefs[rest.arg] = coefs.get(rest.arg, 0) + c
        elif rest.op in (KOp.FLOORDIV, KOp.MOD):
            split.setdefault((rest.args[0], rest.arg), [0, 0])[rest.op is KOp.MOD] += c
        else:
            return None
    for (x, d), (c_div, c_mod) in split.items():
        inner = affine(x) if c_div == c_mod * d else None
        if inner is None:
            return None
        for v, c in inner[0].items():
            coefs[v] = coefs.get(v, 0) + c_mod * c
        offset += c_mod * inner[1]
    return coefs, offset


def step(e: Expr, var: str) -> int | None:
    """c when e is c*var plus terms that do not read var (e steps by c per
    step of var), else None."""
    c = 0
    for t in _terms(e):
        coef, rest = _coef(t)
        if rest is not None and rest.op is KOp.VAR and rest.arg == var:
            c += coef
        elif rest is not None and any(x.op is KOp.VAR and x.arg == var for x in walk(rest)):
            return None
    return c


def substitute(e: Expr, mapping: dict[str, Expr]) -> Expr:
    """Replace loop variables by expressions, re-simplifying index math.
    Each distinct node is rebuilt once, so a shared sub-expression stays
    shared (fused bodies are DAGs whose trees can be exponentially large)."""
    memo: dict[int, Expr] = {}
    for x in walk(e):
        if x.op is KOp.VAR:
            memo[id(x)] = mapping.get(x.arg, x)
        elif not x.args:
            memo[id(x)] = x
        else:
            memo[id(x)] = rebuild(x, tuple(memo[id(a)] for a in x.args))
    return memo[id(e)]


def rebuild(e: Expr, args: tuple[Expr, ...]) -> Expr:
    """e with new operands, through the simplifying constructors."""
    if e.dtype is INDEX and e.op in (Op.ADD, Op.MUL):
        return add(*args) if e.op is Op.ADD else mul(*args)
    if e.op is KOp.FLOORDIV:
        return floordiv(args[0], e.arg)
    if e.op is KOp.MOD:
        return mod(args[0], e.arg)
    if e.op is Op.WHERE:
        return where(*args)
    if all(a is b for a, b in zip(args, e.args)):
        return e  # keeps the node shared with other users
    return Expr(e.op, args, e.dtype, e.arg)


def walk(*roots: Expr) -> list[Expr]:
    """Every distinct sub-expression of the roots once, operands before
    users. Distinct means by identity: a body built by fusion shares
    sub-expressions, and a tree walk would visit them once per path."""
    order: list[Expr] = []
    seen: set[int] = set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            x, expanded = stack.pop()
            if expanded:
                order.append(x)
                continue
            if id(x) in seen:
                continue
            seen.add(id(x))
            stack.append((x, True))
            stack.extend((a, False) for a in reversed(x.args) if id(a) not in seen)
    return order


def loads_of(e: Expr) -> set[str]:
    return {x.arg for x in walk(e) if x.op is KOp.LOAD}


# A sub-expression used more than once whose tree has more than this many
# nodes prints once, as a `%N = ...` line: a printout (and the compile-cache
# key made from it) stays linear in the distinct nodes of a fused body.
_LET_SIZE = 12


class _Printer:
    """Formats expressions, naming large shared sub-expressions (`lets`)."""

    def __init__(self, roots: Iterable[Expr]):
        roots = [r for r in roots if r is not None]
        sizes: dict[int, int] = {}
        uses: dict[int, int] = {}
        for x in walk(*roots):
            sizes[id(x)] = 1 + sum(sizes[id(a)] for a in x.args)
            for a in x.args:
                uses[id(a)] = uses.get(id(a), 0) + 1
        self.named = {i for i, n in uses.items() if n > 1 and sizes[i] > _LET_SIZE}
        self.texts: dict[int, str] = {}
        self.lets: list[str] = []

    def text(self, e: Expr) -> str:
        for x in walk(e):
            if id(x) not in self.texts:
                body = self._format(x)
                if id(x) in self.named:
                    name = f"%{len(self.lets)}"
                    self.lets.append(f"{name} = {body}")
                    body = name
                self.texts[id(x)] = body
        return self.texts[id(e)]

    def _format(self, e: Expr) -> str:
        args = [self.texts[id(a)] for a in e.args]
        if e.op is KOp.VAR:
            return e.arg
        if e.op is KOp.CONST:
            return repr(e.arg)
        if e.op is KOp.ACC:
            return "acc"
        if e.op is KOp.LOAD:
            return f"{e.arg}[{args[0]}]"
        if e.op in (Op.ADD, Op.MUL) and e.dtype is INDEX:
            sym = " + " if e.op is Op.ADD else "*"
            return f"({args[0]}{sym}{args[1]})"
        if e.op in (KOp.FLOORDIV, KOp.MOD):
            sym = "//" if e.op is KOp.FLOORDIV else "%"
            return f"({args[0]}{sym}{e.arg})"
        inner = ", ".join(args)
        if e.op is Op.CAST:
            return f"cast<{e.dtype.short}>({inner})"
        if e.op is KOp.CHECK:
            return f"check({inner}, {e.arg})"
        return f"{e.op.value}({inner})"


def format_expr(e: Expr) -> str:
    """e as text, e.g. `exp(sub(in0[i0], t1[0]))`; large shared
    sub-expressions come first as `%N = ...; ` bindings."""
    printer = _Printer([e])
    body = printer.text(e)
    return "; ".join(printer.lets + [body])


# ---------------------------------------------------------------------------
# kernels and programs


@dataclass(frozen=True)
class Buffer:
    """A flat array. kind: input | output | temp | const."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    kind: str = "temp"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


@dataclass(frozen=True)
class Store:
    """buffer[index] = value (index: int64 Expr over the kernel's loop vars)."""

    buffer: str
    index: Expr
    value: Expr


@dataclass(frozen=True)
class Operand:
    """An affine view of a buffer read by a dot kernel: element (b.., r, c)
    is at offset + sum(batch_strides * b) + row_stride * r + col_stride * c."""

    buffer: str
    offset: int
    batch_strides: tuple[int, ...]
    row_stride: int
    col_stride: int


@dataclass(frozen=True)
class Attention:
    """What an attention kernel computes: q [.., L, E], k [.., S, E],
    v [.., S, Ev] and the optional mask [.., L, S] as views over the
    output's batch dims; mask_kind "" (none), "bool" (True takes part) or
    "float" (added to the scores)."""

    q: Operand
    k: Operand
    v: Operand
    mask: Operand | None
    mask_kind: str
    L: int
    S: int
    E: int
    Ev: int
    scale: float
    causal: bool

    def buffers(self) -> set[str]:
        names = {self.q.buffer, self.k.buffer, self.v.buffer}
        return names | ({self.mask.buffer} if self.mask is not None else set())


@dataclass(frozen=True)
class Kernel:
    """One loop nest. Fields a kind does not use keep their defaults."""

    name: str
    kind: str  # elementwise | reduce | dot | scatter | attention
    shape: tuple[int, ...]  # loop extents: elementwise/scatter shape, reduce out_shape, dot (batch..., M, N)
    stores: tuple[Store, ...] = ()
    # reduce
    red_shape: tuple[int, ...] = ()
    reducer: str = ""
    value: Expr | None = None  # reduce: the reduced value; scatter: the added value
    row_stores: tuple[Store, ...] = ()
    # dot
    a: Operand | None = None
    b: Operand | None = None
    k: int = 0
    # scatter
    target: Expr | None = None  # flat index into `out`, wrapped in check()
    out: str = ""
    # attention
    attention: Attention | None = None
    # bookkeeping for printing and the cost model
    primitives: tuple[str, ...] = ()
    acc_dtype: DType | None = None

    @cached_property
    def inputs(self) -> tuple[str, ...]:
        # Cached: fusion asks every kernel for its inputs after each merge,
        # and a kernel (frozen) never changes.
        names = {x.arg for x in walk(*self._exprs()) if x.op is KOp.LOAD}
        if self.a is not None:
            names |= {self.a.buffer, self.b.buffer}
        if self.attention is not None:
            names |= self.attention.buffers()
        return tuple(sorted(names))

    @property
    def outputs(self) -> tuple[str, ...]:
        names = [s.buffer for s in self.stores + self.row_stores]
        if self.out:
            names.append(self.out)
        return tuple(dict.fromkeys(names))

    def _exprs(self) -> list[Expr]:
        out = []
        for s in self.stores + self.row_stores:
            out += [s.index, s.value]
        out += [e for e in (self.value, self.target) if e is not None]
        return out

    def loop_vars(self) -> list[tuple[str, int]]:
        """(name, extent) of the kernel's outer loops (not reduce/k loops)."""
        if self.kind == "reduce":
            return [(f"o{d}", n) for d, n in enumerate(self.shape)]
        if self.kind in ("dot", "attention"):
            nb = len(self.shape) - 2
            names = [f"b{d}" for d in range(nb)] + ["m", "n"]
            return list(zip(names, self.shape))
        return [(f"i{d}", n) for d, n in enumerate(self.shape)]

    def red_vars(self) -> list[tuple[str, int]]:
        return [(f"r{d}", n) for d, n in enumerate(self.red_shape)]

    @property
    def flops(self) -> int:
        """Rough work estimate (multiply-adds or element updates)."""
        n = 1
        for d in self.shape:
            n *= d
        if self.kind == "reduce":
            for d in self.red_shape:
                n *= d
        if self.kind == "dot":
            n *= max(self.k, 1)
        if self.attention is not None:
            at = self.attention
            n = n // max(at.Ev, 1) * at.S * (at.E + at.Ev)
        return n


@dataclass
class Program:
    """Ordered kernels over buffers, the graph's inputs/outputs by buffer
    name, constant arrays, and (after codegen/memory.py) the memory plan."""

    name: str
    buffers: dict[str, Buffer]
    kernels: list[Kernel]
    inputs: list[str]
    outputs: list[str]
    constants: dict[str, Any] = field(default_factory=dict)  # name -> numpy array
    aliases: dict[int, int] = field(default_factory=dict)  # output index -> input index
    plan: MemoryPlan | None = None  # set by codegen.memory.plan_memory


def format_kernel(k: Kernel) -> str:
    """A readable multi-line rendering of one kernel. Large sub-expressions
    shared within the kernel print once, as `%N = ...` lines under the
    `fused:` line."""
    printer = _Printer(k._exprs())
    head = f"kernel {k.name} [{k.kind}] loops {list(k.shape)}"
    if k.kind == "reduce":
        head += f" {k.reducer} over {list(k.red_shape)}: {printer.text(k.value)}"
    if k.kind == "dot":
        head += f" k={k.k} a={k.a} b={k.b}"
    if k.kind == "attention":
        at = k.attention
        mask = f" mask({at.mask_kind})={at.mask}" if at.mask is not None else ""
        causal = " causal" if at.causal else ""
        head += f" L={at.L} S={at.S} E={at.E} scale={at.scale!r}{causal} q={at.q} k={at.k} v={at.v}{mask}"
    if k.kind == "scatter":
        head += f" {k.out}[{printer.text(k.target)}] += {printer.text(k.value)}"
    body = []
    for s in k.stores:
        body.append(f"  {s.buffer}[{printer.text(s.index)}] = {printer.text(s.value)}")
    for s in k.row_stores:
        body.append(f"  row {s.buffer}[{printer.text(s.index)}] = {printer.text(s.value)}")
    lets = [f"  {line}" for line in printer.lets]
    return "\n".join([head, f"  fused: {', '.join(k.primitives)}"] + lets + body)


def format_program(p: Program) -> str:
    lines = [f"program @{p.name}: inputs {p.inputs} outputs {p.outputs}"]
    for b in p.buffers.values():
        lines.append(f"  buffer {b.name}: {b.dtype.short}{list(b.shape)} {b.kind}")
    for k in p.kernels:
        lines.append(format_kernel(k))
    return "\n".join(lines)
