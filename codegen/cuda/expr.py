"""Kernel-form expressions (codegen/kernel.py `Expr`) -> CUDA C statements.

`ExprWriter` turns an expression tree into a sequence of `const T vN = ...;`
lines and returns the C expression of its value. Sub-expressions are
written once per writer (memoized structurally, so a value that appears
several times in the tree is computed once). Every op follows graphc/ir/rules.py exactly; see
prelude.py for the helpers the lines call.
"""

from __future__ import annotations

from collections.abc import Callable

from graphc.codegen import kernel as kf
from graphc.codegen.cuda import cdefs
from graphc.codegen.kernel import KOp
from graphc.ir import dtypes
from graphc.ir.dtypes import DType
from graphc.ir.ops import Op


class CudaRenderError(ValueError):
    """The kernel form contained something the CUDA renderer does not know
    (a new op added to codegen/kernel.py without a CUDA lowering). Fix: add
    the op to codegen/cuda/expr.py."""


class ExprWriter:
    """Writes expressions as C statements into `lines`.

    `buffers` maps kernel-form buffer names to C identifiers; `acc` is the C
    expression of the enclosing reduction or dot result (None outside);
    `check_code` returns the error code for a `check` (its position in the
    program, so the runtime can say which kernel failed)."""

    def __init__(
        self,
        buffers: dict[str, str],
        dtypes_of: dict[str, DType],
        acc: str | None,
        check_code: Callable[[], int],
        indent: str = "    ",
        prefix: str = "v",
    ):
        self.buffers = buffers
        self.dtypes_of = dtypes_of
        self.acc = acc
        self.check_code = check_code
        self.indent = indent
        self.prefix = prefix  # temporaries of nested C scopes get distinct names
        self.lines: list[str] = []
        # Structural memo: equal sub-expressions are computed once.
        self._memo: dict[kf.Expr, str] = {}
        self._count = 0
        self.uses_err = False

    # -- public -------------------------------------------------------------

    def value(self, e: kf.Expr) -> str:
        """The C expression (register type) of `e`, emitting lines as needed."""
        found = self._memo.get(e)
        if found is not None:
            return found
        text = self._render(e)
        if e.op not in _UNBOUND:
            text = self._bind(e.dtype, text)
        self._memo[e] = text
        return text

    def store(self, store: kf.Store) -> None:
        """Emit `buf[index] = value;` for a kernel-form Store."""
        index = self.value(store.index)
        value = self.value(store.value)
        buf = self.buffers[store.buffer]
        if self.dtypes_of[store.buffer] is dtypes.float16:
            value = f"__float2half_rn({value})"
        self.lines.append(f"{self.indent}{buf}[{index}] = {value};")

    def fresh(self) -> str:
        self._count += 1
        return f"{self.prefix}{self._count}"

    # -- internals ----------------------------------------------------------

    def _bind(self, dtype: DType, text: str) -> str:
        name = self.fresh()
        self.lines.append(f"{self.indent}const {cdefs.register(dtype)} {name} = {text};")
        return name

    def _render(self, e: kf.Expr) -> str:
        args = [self.value(a) for a in e.args]
        if isinstance(e.op, KOp):
            return _lowering(NODES, e.op)(self, e, args)
        if e.op in (Op.ADD, Op.MUL) and _is_index(e):
            # Index arithmetic never overflows: plain, readable C.
            return f"({args[0]} {_INFIX[e.op]} {args[1]})"
        if e.op is Op.DIV and not e.dtype.is_float:
            args = [args[0], self._checked_divisor(e.dtype, args[1])]
        return scalar_op(e.op, args, e.args[0].dtype, e.dtype)

    def _acc(self, dtype: DType) -> str:
        if self.acc is None:
            raise CudaRenderError("`acc` used outside a reduce or dot kernel")
        return _convert(self.acc, dtype)

    def _check(self, index: str, size: int) -> str:
        self.uses_err = True
        return f"gc_check({index}, {size}LL, gc_err, {self.check_code()}ULL)"

    def _checked_divisor(self, dtype: DType, divisor: str) -> str:
        """The divisor of an integer division, bound after a check that
        sets the error flag (and yields 1) when it is zero."""
        self.uses_err = True
        checked = f"gc_check_div<{cdefs.register(dtype)}>({divisor}, gc_err, {self.check_code()}ULL)"
        return self._bind(dtype, checked)

    def _load(self, name: str, index: str) -> str:
        try:
            buf = self.buffers[name]
        except KeyError:
            raise CudaRenderError(f"load from unknown buffer {name!r}") from None
        text = f"{buf}[{index}]"
        return f"__half2float({text})" if self.dtypes_of[name] is dtypes.float16 else text

    def _index_div(self, e: kf.Expr, a: str) -> str:
        # Loop variables are non-negative, so most index math can use C's
        # truncating / and %, which equal floor semantics there.
        b = kf.bounds(e.args[0])
        if b is not None and b[0] >= 0:
            sym = "/" if e.op is KOp.FLOORDIV else "%"
            return f"({a} {sym} {e.arg}LL)"
        fn = "gc_floordiv" if e.op is KOp.FLOORDIV else "gc_mod"
        return f"{fn}({a}, {e.arg}LL)"


# Nodes whose C text is used as is (a name or a literal), never bound.
_UNBOUND = frozenset({KOp.VAR, KOp.CONST, KOp.ACC})
_INDEX_OPS = frozenset({KOp.VAR, KOp.CONST, Op.ADD, Op.MUL, Op.MAX, Op.MIN, KOp.FLOORDIV, KOp.MOD, KOp.CHECK})


def _is_index(e: kf.Expr) -> bool:
    """Whether `e` is pure index arithmetic (loop variables and constants)."""
    if e.dtype is not kf.INDEX:
        return False
    if e.op is Op.WHERE:  # a guarded index: where(cond, index, 0)
        return _is_index(e.args[1]) and _is_index(e.args[2])
    return e.op in _INDEX_OPS and all(_is_index(a) for a in e.args)


def _convert(text: str, dtype: DType) -> str:
    if dtype is dtypes.float16:  # accumulators of f16 values are f32
        return f"gc_round_h((float){text})"
    return f"(({cdefs.register(dtype)}){text})"


def _round(dtype: DType, text: str) -> str:
    """Round a float computation to `dtype`'s precision (only f16 needs it)."""
    return f"gc_round_h({text})" if dtype is dtypes.float16 else text


def _cast(a: str, src: DType, dst: DType) -> str:
    if dst is src:
        return a
    if dst.is_bool:
        return f"({a} != 0)"
    if dst is dtypes.float16:
        if src is dtypes.float64:
            return f"__half2float(__double2half({a}))"
        return f"gc_round_h((float){a})"
    return f"(({cdefs.register(dst)}){a})"


def scalar_op(op: Op, args: list[str], dtype: DType, out: DType | None = None) -> str:
    """An elementwise op on operands of `dtype` (the first operand's dtype;
    for `where` the condition's, unused); `out`: the result's dtype (a
    cast's target), by default `dtype`."""
    if len(args) == 1:
        return _lowering(UNARY, op)(args[0], dtype, out or dtype)
    if len(args) == 2:
        return _lowering(BINARY, op)(args[0], args[1], dtype)
    return _lowering(TERNARY, op)(*args)


def _lowering(table: dict, op: Op | KOp) -> Callable:
    found = table.get(op)
    if found is None:
        raise CudaRenderError(f"no CUDA lowering for kernel-form op {op.value!r}")
    return found


# ---------------------------------------------------------------------------
# The lowering of every expression op: one entry per op and table. A new
# elementwise primitive needs its entry in UNARY, BINARY or TERNARY
# (tests/compiler/test_op_tables.py checks them against graphc/ir/ops.py).

NodeLowering = Callable[[ExprWriter, kf.Expr, list[str]], str]
UnaryLowering = Callable[[str, DType, DType], str]  # (operand, its dtype, result dtype)
BinaryLowering = Callable[[str, str, DType], str]  # (operands, their dtype)
TernaryLowering = Callable[[str, str, str], str]

NODES: dict[KOp, NodeLowering] = {
    KOp.VAR: lambda w, e, args: e.arg,
    KOp.CONST: lambda w, e, args: cdefs.literal(e.arg, e.dtype),
    KOp.ACC: lambda w, e, args: w._acc(e.dtype),
    KOp.LOAD: lambda w, e, args: w._load(e.arg, args[0]),
    KOp.RANDOM: lambda w, e, args: f"gc_random({args[0]}, {args[1]})",
    KOp.CHECK: lambda w, e, args: w._check(args[0], e.arg),
    KOp.FLOORDIV: lambda w, e, args: w._index_div(e, args[0]),
    KOp.MOD: lambda w, e, args: w._index_div(e, args[0]),
}


def _libm(name: str, args: list[str], dtype: DType) -> str:
    """A CUDA math function: `name` for double, `namef` otherwise (float16
    computes in float and rounds)."""
    fn = name if dtype is dtypes.float64 else f"{name}f"
    return _round(dtype, f"{fn}({', '.join(args)})")


def _math1(name: str) -> UnaryLowering:
    return lambda a, dtype, out: _libm(name, [a], dtype)


def _math2(name: str) -> BinaryLowering:
    return lambda a, b, dtype: _libm(name, [a, b], dtype)


def _neg(a: str, dtype: DType, out: DType) -> str:
    if dtype in cdefs.UNSIGNED:
        return f"(({cdefs.register(dtype)})((({cdefs.UNSIGNED[dtype]})0) - ({cdefs.UNSIGNED[dtype]}){a}))"
    return f"(({cdefs.register(dtype)})(-{a}))"


def _recip(a: str, dtype: DType, out: DType) -> str:
    one = "1.0" if dtype is dtypes.float64 else "1.0f"
    return _round(dtype, f"({one} / {a})")


UNARY: dict[Op, UnaryLowering] = {
    Op.NEG: _neg,
    Op.RECIP: _recip,
    Op.EXP: _math1("exp"),
    Op.LOG: _math1("log"),
    Op.SQRT: _math1("sqrt"),
    Op.SIN: _math1("sin"),
    Op.COS: _math1("cos"),
    Op.TANH: _math1("tanh"),
    Op.ERF: _math1("erf"),
    Op.FLOOR: _math1("floor"),
    Op.NOT: lambda a, dtype, out: f"(!{a})",
    Op.CAST: _cast,
}

_INFIX = {Op.ADD: "+", Op.SUB: "-", Op.MUL: "*"}


def _arith(op: Op) -> BinaryLowering:
    """a op b in the operands' type: unsigned types compute in their
    promoted unsigned type, float16 rounds."""
    sym = _INFIX[op]

    def lowering(a: str, b: str, dtype: DType) -> str:
        if dtype in cdefs.UNSIGNED:
            u = cdefs.UNSIGNED[dtype]
            return f"(({cdefs.register(dtype)})(({u}){a} {sym} ({u}){b}))"
        if dtype.is_float:
            return _round(dtype, f"({a} {sym} {b})")
        return f"(({cdefs.register(dtype)})({a} {sym} {b}))"

    return lowering


def _div(a: str, b: str, dtype: DType) -> str:
    if dtype.is_float:
        return _round(dtype, f"({a} / {b})")
    unsigned = cdefs.UNSIGNED.get(dtype, "unsigned int")
    return f"gc_idiv<{cdefs.register(dtype)}, {unsigned}>({a}, {b})"


def _extremum(fn: str) -> BinaryLowering:
    return lambda a, b, dtype: f"{fn}<{cdefs.register(dtype)}>({a}, {b})"


def _infix(sym: str) -> BinaryLowering:
    """a sym b with C's own typing (comparisons and logic: a bool)."""
    return lambda a, b, dtype: f"({a} {sym} {b})"


BINARY: dict[Op, BinaryLowering] = {
    Op.ADD: _arith(Op.ADD),
    Op.SUB: _arith(Op.SUB),
    Op.MUL: _arith(Op.MUL),
    Op.DIV: _div,
    Op.POW: _math2("pow"),
    Op.ATAN2: _math2("atan2"),
    Op.MAX: _extremum("gc_max"),
    Op.MIN: _extremum("gc_min"),
    Op.CMPLT: _infix("<"),
    Op.CMPEQ: _infix("=="),
    Op.AND: _infix("&&"),
    Op.OR: _infix("||"),
}

TERNARY: dict[Op, TernaryLowering] = {
    Op.WHERE: lambda c, a, b: f"({c} ? {a} : {b})",
}
