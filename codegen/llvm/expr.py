"""Lower kernel-body expressions (codegen.kernel.Expr) to LLVM IR values.

Floating-point ops are emitted without fast-math flags, so elementwise
results are the IEEE results numpy computes (math functions come from libm
through LLVM intrinsics). Integer semantics follow graphc/ir/rules.py: DIV
truncates toward zero, a zero divisor sets the ERROR_ZERO_DIVISION bit of the
error word (and is replaced by 1, so the hardware never divides by zero),
and MIN / -1 wraps instead of trapping.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from graphc.codegen.kernel import ERROR_INDEX, ERROR_ZERO_DIVISION, INDEX, Expr, KOp, bounds
from graphc.ir.dtypes import DType
from graphc.ir.ops import Op

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()


def reg_type(dt: DType) -> ir.Type:
    """The type of a value of dtype dt in registers."""
    if dt.is_bool:
        return I1
    if dt.is_float:
        if dt.itemsize == 2:
            raise NotImplementedError("the LLVM backend does not support float16")
        return F32 if dt.itemsize == 4 else F64
    return ir.IntType(8 * dt.itemsize)


def mem_type(dt: DType) -> ir.Type:
    """The type of an element of dtype dt in memory (bool is a byte)."""
    return I8 if dt.is_bool else reg_type(dt)


def intrinsic(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, args), name)
    return fn


def int_min(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """The smaller of two signed integers."""
    return b.select(b.icmp_signed("<", x, y), x, y)


def int_max(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """The larger of two signed integers."""
    return b.select(b.icmp_signed(">", x, y), x, y)


def splat(b: ir.IRBuilder, x: ir.Value, lanes: int) -> ir.Value:
    """A vector of `lanes` copies of the scalar x."""
    vt = ir.VectorType(x.type, lanes)
    v = b.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(I32, 0))
    return b.shuffle_vector(v, ir.Constant(vt, ir.Undefined), ir.Constant(ir.VectorType(I32, lanes), [0] * lanes))


def _suffix(t: ir.Type) -> str:
    return "f32" if t == F32 else ("f64" if t == F64 else f"i{t.width}")


class ExprEmitter:
    """Emits expressions into `builder`. `env` maps loop variable names to
    i64 values, `buffers` buffer names to typed pointers, `acc` is the
    accumulator value (or None). Common subexpressions are emitted once."""

    def __init__(self, builder: ir.IRBuilder, env: dict, buffers: dict, error_ptr, acc=None):
        self.b = builder
        self.env = env
        self.buffers = buffers
        self.error_ptr = error_ptr
        self.acc = acc
        self.memo: dict[Expr, ir.Value] = {}

    @property
    def module(self) -> ir.Module:
        return self.b.module

    def emit(self, e: Expr) -> ir.Value:
        hit = self.memo.get(e)
        if hit is not None:
            return hit
        value = self._emit(e)
        self.memo[e] = value
        return value

    def _call(self, name: str, *args: ir.Value) -> ir.Value:
        t = args[0].type
        fn = intrinsic(self.module, f"llvm.{name}.{_suffix(t)}", t, [a.type for a in args])
        return self.b.call(fn, list(args))

    def _libm(self, name: str, x: ir.Value, *more: ir.Value) -> ir.Value:
        """A call of libm's `name` (double) or `namef` (float), for functions
        LLVM has no intrinsic for (codegen/llvm/target.py binds the symbol)."""
        symbol = name if x.type == F64 else f"{name}f"
        fn = self.module.globals.get(symbol)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(x.type, [x.type] * (1 + len(more))), symbol)
            # Pure: lets LLVM hoist, merge and reorder the calls.
            fn.attributes.add("nounwind")
            fn.attributes.add("readnone")
        return self.b.call(fn, [x, *more])

    def _emit(self, e: Expr) -> ir.Value:
        if isinstance(e.op, KOp):
            return _lowering(NODES, e.op)(self, e)
        args = [self.emit(a) for a in e.args]
        if len(args) == 1:
            return self.unary(e.op, args[0], e.args[0].dtype, e.dtype)
        if len(args) == 2:
            return self.binary(e.op, args[0], args[1], e.args[0].dtype)
        return _lowering(TERNARY, e.op)(self, *args)

    def unary(self, op: Op, x: ir.Value, src: DType, dst: DType) -> ir.Value:
        """op applied to x, a value of dtype src; dst: the result's dtype."""
        return _lowering(UNARY, op)(self, x, src, dst)

    def binary(self, op: Op, x: ir.Value, y: ir.Value, dt: DType) -> ir.Value:
        """op applied to x and y, values of dtype dt."""
        return _lowering(BINARY, op)(self, x, y, dt)

    # -- memory -----------------------------------------------------------
    def pointer(self, buf: str, index: ir.Value) -> ir.Value:
        return self.b.gep(self.buffers[buf], [index], inbounds=True)

    def load(self, buf: str, index: ir.Value, dt: DType) -> ir.Value:
        v = self.b.load(self.pointer(buf, index))
        return self.b.trunc(v, I1) if dt.is_bool else v

    def store(self, buf: str, index: ir.Value, value: ir.Value, dt: DType) -> None:
        if dt.is_bool:
            value = self.b.zext(value, I8)
        self.b.store(value, self.pointer(buf, index))

    # -- scalar ops ---------------------------------------------------------
    def _int_div(self, x, y, unsigned: bool) -> ir.Value:
        # A zero divisor is reported and replaced by 1; MIN / -1 wraps
        # (computed as -x) instead of trapping.
        b = self.b
        zero, one = ir.Constant(y.type, 0), ir.Constant(y.type, 1)
        is_zero = b.icmp_unsigned("==", y, zero)
        with b.if_then(is_zero, likely=False):
            self.raise_error(ERROR_ZERO_DIVISION)
        if unsigned:
            return b.udiv(x, b.select(is_zero, one, y))
        minus_one = b.icmp_signed("==", y, ir.Constant(y.type, -1))
        safe = b.select(b.or_(is_zero, minus_one), one, y)
        return b.select(minus_one, b.neg(x), b.sdiv(x, safe))

    def raise_error(self, bit: int) -> None:
        """Set `bit` of the program's error word (threads may race: atomic)."""
        self.b.atomic_rmw("or", self.error_ptr, ir.Constant(I32, bit), "monotonic")

    def _floordiv_mod(self, e: Expr) -> ir.Value:
        b = self.b
        x = self.emit(e.args[0])
        d = ir.Constant(I64, e.arg)
        lo = bounds(e.args[0])
        if lo is not None and lo[0] >= 0:
            return b.udiv(x, d) if e.op is KOp.FLOORDIV else b.urem(x, d)
        r = b.srem(x, d)
        neg = b.icmp_signed("<", r, ir.Constant(I64, 0))
        if e.op is KOp.MOD:
            return b.select(neg, b.add(r, d), r)
        q = b.sdiv(x, d)
        return b.select(neg, b.sub(q, ir.Constant(I64, 1)), q)

    def cast(self, x: ir.Value, src: DType, dst: DType) -> ir.Value:
        b = self.b
        to = reg_type(dst)
        if src is dst or x.type == to and src.is_float == dst.is_float and src.np.kind == dst.np.kind:
            return x
        if dst.is_bool:
            if src.is_float:
                return b.fcmp_unordered("!=", x, ir.Constant(x.type, 0.0))
            return b.icmp_unsigned("!=", x, ir.Constant(x.type, 0))
        if src.is_float and dst.is_float:
            return b.fpext(x, to) if to == F64 else b.fptrunc(x, to)
        if src.is_float:
            # Through i64 like numpy's conversion, then wrap to the width.
            wide = b.fptosi(x, I64)
            return wide if to == I64 else b.trunc(wide, to)
        signed = src.is_int and src.np.kind == "i"
        if dst.is_float:
            return b.sitofp(x, to) if signed else b.uitofp(x, to)
        if to.width > x.type.width:
            return b.sext(x, to) if signed else b.zext(x, to)
        if to.width < x.type.width:
            return b.trunc(x, to)
        return x

    def _check(self, index: ir.Value, size: int) -> ir.Value:
        b = self.b
        ok = b.icmp_unsigned("<", index, ir.Constant(I64, size))
        with b.if_then(b.not_(ok), likely=False):
            self.raise_error(ERROR_INDEX)
        return b.select(ok, index, ir.Constant(I64, 0))

    def _random(self, key: ir.Value, counter: ir.Value) -> ir.Value:
        # splitmix64 of key * golden + counter; top 24 bits scaled to [0, 1).
        b = self.b
        c = lambda v: ir.Constant(I64, v)  # noqa: E731
        z = b.add(b.mul(key, c(0x9E3779B97F4A7C15 - (1 << 64))), counter)
        z = b.mul(b.xor(z, b.lshr(z, c(30))), c(0xBF58476D1CE4E5B9 - (1 << 64)))
        z = b.mul(b.xor(z, b.lshr(z, c(27))), c(0x94D049BB133111EB - (1 << 64)))
        z = b.xor(z, b.lshr(z, c(31)))
        bits = b.lshr(z, c(40))
        return b.fmul(b.uitofp(bits, F32), ir.Constant(F32, 2.0**-24))


def index_type() -> ir.Type:
    return reg_type(INDEX)


# ---------------------------------------------------------------------------
# The lowering of every expression op: one entry per op and table. A new
# elementwise primitive needs its entry in UNARY, BINARY or TERNARY
# (tests/compiler/test_op_tables.py checks them against graphc/ir/ops.py).

NodeLowering = Callable[[ExprEmitter, Expr], ir.Value]
UnaryLowering = Callable[[ExprEmitter, ir.Value, DType, DType], ir.Value]
BinaryLowering = Callable[[ExprEmitter, ir.Value, ir.Value, DType], ir.Value]
TernaryLowering = Callable[[ExprEmitter, ir.Value, ir.Value, ir.Value], ir.Value]


def _lowering(table: dict, op: Op | KOp) -> Callable:
    found = table.get(op)
    if found is None:
        raise NotImplementedError(f"LLVM backend: no lowering for {op.value}")
    return found


def _load(em: ExprEmitter, e: Expr) -> ir.Value:
    return em.load(e.arg, em.emit(e.args[0]), e.dtype)


def _random(em: ExprEmitter, e: Expr) -> ir.Value:
    return em._random(em.emit(e.args[0]), em.emit(e.args[1]))


def _check(em: ExprEmitter, e: Expr) -> ir.Value:
    return em._check(em.emit(e.args[0]), e.arg)


NODES: dict[KOp, NodeLowering] = {
    KOp.VAR: lambda em, e: em.env[e.arg],
    KOp.CONST: lambda em, e: ir.Constant(reg_type(e.dtype), e.arg),
    KOp.ACC: lambda em, e: em.acc,
    KOp.LOAD: _load,
    KOp.RANDOM: _random,
    KOp.CHECK: _check,
    KOp.FLOORDIV: ExprEmitter._floordiv_mod,
    KOp.MOD: ExprEmitter._floordiv_mod,
}


def _intrinsic(name: str) -> UnaryLowering:
    """The LLVM intrinsic llvm.<name>.<type> of the operand."""
    return lambda em, x, src, dst: em._call(name, x)


# exp for float32 in operations the loop vectorizer widens (llvm.exp.f32
# becomes one scalar libm call per lane: a log-softmax over a 10000-word
# vocabulary ran at 3 GB/s). Cephes' expf: x = n ln2 + r, |r| <= ln2 / 2,
# exp(r) by a degree-7 polynomial (about 1 ulp), times 2^n built in the
# exponent bits, in two halves so that n = 128 and n = -126 stay normal.
_EXP_HI, _EXP_LO = 88.72283935546875, -87.33654022216797  # beyond: inf, 0 (FTZ)
_LN2_HI, _LN2_LO = 0.693359375, -2.12194440e-4
_EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)


def _f32(v: float) -> ir.Constant:
    return ir.Constant(F32, v)


def _horner(em: ExprEmitter, coefs, t) -> ir.Value:
    """coefs[0] + coefs[1] t + ... by fused multiply-adds."""
    p = ir.Constant(t.type, coefs[-1])
    for coef in reversed(coefs[:-1]):
        p = em._call("fma", p, t, ir.Constant(t.type, coef))
    return p


def _nan_through(em: ExprEmitter, x, y) -> ir.Value:
    """y, or x where x is NaN (the polynomial paths clamp NaN away)."""
    return em.b.select(em.b.fcmp_unordered("uno", x, x), x, y)


def _exp(em: ExprEmitter, x, src: DType, dst: DType) -> ir.Value:
    if x.type != F32:
        return em._call("exp", x)
    b, c = em.b, _f32
    xc = em._call("minnum", em._call("maxnum", x, c(_EXP_LO)), c(_EXP_HI))
    n = em._call("rint", b.fmul(xc, c(1.4426950408889634)))
    r = em._call("fma", n, c(-_LN2_HI), xc)
    r = em._call("fma", n, c(-_LN2_LO), r)
    p = em._call("fma", _horner(em, _EXP_POLY[::-1], r), b.fmul(r, r), b.fadd(r, c(1.0)))
    i32 = ir.IntType(32)
    ni = b.fptosi(n, i32)
    half = b.ashr(ni, ir.Constant(i32, 1))

    def pow2(e):
        return b.bitcast(b.shl(b.add(e, ir.Constant(i32, 127)), ir.Constant(i32, 23)), F32)

    y = b.fmul(b.fmul(p, pow2(half)), pow2(b.sub(ni, half)))
    y = b.select(b.fcmp_ordered(">", x, c(_EXP_HI)), c(float("inf")), y)
    y = b.select(b.fcmp_ordered("<", x, c(_EXP_LO)), c(0.0), y)
    return _nan_through(em, x, y)


# tanh for float32, vectorizable like _exp (llvm.tanh is a libm call per
# lane): Cephes' tanhf, an odd polynomial below |x| = 0.625 and
# 1 - 2 / (exp(2|x|) + 1) above, both computed and one selected.
_TANH_SMALL = 0.625
_TANH_POLY = (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1)


def _tanh(em: ExprEmitter, x, src: DType, dst: DType) -> ir.Value:
    if x.type != F32:
        return em._call("tanh", x)
    b, c = em.b, _f32
    ax = em._call("fabs", x)
    z = b.fmul(x, x)
    small = em._call("fma", b.fmul(_horner(em, _TANH_POLY[::-1], z), z), x, x)
    e = _exp(em, b.fmul(ax, c(2.0)), src, dst)
    large = b.fsub(c(1.0), b.fdiv(c(2.0), b.fadd(e, c(1.0))))
    # odd: the sign is x's (also for -0.0)
    y = em._call("copysign", b.select(b.fcmp_ordered("<", ax, c(_TANH_SMALL)), small, large), x)
    return _nan_through(em, x, y)


# erf for float32, vectorizable like _exp (libm's erff is a call per lane:
# GELU's kernels ran at a fifth of the memory bandwidth). Least-squares fits
# to float64 erf, made for this code: below |x| = 1, x * P(x^2) (relative
# error 4e-9); above, 1 - exp(-x^2) * R(1/|x|) with |x| clamped to 4, past
# which erf is 1 in float32 (R's relative error 1e-8).
_ERF_SMALL = (
    1.1283791660950446,
    -0.37612628733233433,
    0.11283622028436913,
    -0.026855508558446303,
    0.005191832085985016,
    -0.0008043364015302204,
    7.971016751445754e-05,
)
_ERF_LARGE = (
    2.4153163742262364e-05,
    0.5637614880547568,
    0.0025891773054704955,
    -0.28273612798864106,
    -0.07817477263683113,
    0.9209219255336543,
    -1.5587186488950853,
    1.4612675378825848,
    -0.836134244307407,
    0.27474841313287085,
    -0.03996532961759757,
)


def _erf(em: ExprEmitter, x, src: DType, dst: DType) -> ir.Value:
    if x.type != F32:
        return em._libm("erf", x)
    b, c = em.b, _f32
    ax = em._call("fabs", x)
    small = b.fmul(x, _horner(em, _ERF_SMALL, b.fmul(x, x)))
    xc = em._call("minnum", em._call("maxnum", ax, c(1.0)), c(4.0))
    tail = b.fmul(_exp(em, b.fneg(b.fmul(xc, xc)), src, dst), _horner(em, _ERF_LARGE, b.fdiv(c(1.0), xc)))
    large = em._call("copysign", b.fsub(c(1.0), tail), x)
    y = b.select(b.fcmp_ordered("<", ax, c(1.0)), small, large)
    return _nan_through(em, x, y)


def _neg(em: ExprEmitter, x, src: DType, dst: DType) -> ir.Value:
    return em.b.fneg(x) if src.is_float else em.b.neg(x)


def _recip(em: ExprEmitter, x, src: DType, dst: DType) -> ir.Value:
    return em.b.fdiv(ir.Constant(x.type, 1.0), x)


def _not(em: ExprEmitter, x, src: DType, dst: DType) -> ir.Value:
    return em.b.xor(x, ir.Constant(I1, 1))


UNARY: dict[Op, UnaryLowering] = {
    Op.NEG: _neg,
    Op.RECIP: _recip,
    Op.EXP: _exp,
    Op.LOG: _intrinsic("log"),
    Op.SQRT: _intrinsic("sqrt"),
    Op.SIN: _intrinsic("sin"),
    Op.COS: _intrinsic("cos"),
    Op.TANH: _tanh,
    Op.ERF: _erf,
    Op.FLOOR: _intrinsic("floor"),
    Op.NOT: _not,
    Op.CAST: lambda em, x, src, dst: em.cast(x, src, dst),
}


def _unsigned(dt: DType) -> bool:
    """Whether integer ops on dt are unsigned (bool and uint8 are)."""
    return not dt.is_int or dt.np.kind == "u"


def _arith(float_op: str, int_op: str) -> BinaryLowering:
    """The IRBuilder method float_op for floats, int_op otherwise."""
    return lambda em, x, y, dt: getattr(em.b, float_op if dt.is_float else int_op)(x, y)


def _float_only(name: str, lower: BinaryLowering) -> BinaryLowering:
    """lower for floats; the op is not defined on integers (graphc/ir/rules.py)."""

    def lowering(em: ExprEmitter, x, y, dt: DType) -> ir.Value:
        if not dt.is_float:
            raise NotImplementedError(f"LLVM backend: binary {name} on {dt}")
        return lower(em, x, y, dt)

    return lowering


def _div(em: ExprEmitter, x, y, dt: DType) -> ir.Value:
    return em.b.fdiv(x, y) if dt.is_float else em._int_div(x, y, _unsigned(dt))


def _extremum(float_name: str, int_name: str) -> BinaryLowering:
    """llvm.maximum/minimum for floats (NaN propagates, as numpy), else
    llvm.[us]max/[us]min."""

    def lowering(em: ExprEmitter, x, y, dt: DType) -> ir.Value:
        if dt.is_float:
            return em._call(float_name, x, y)
        return em._call(("u" if _unsigned(dt) else "s") + int_name, x, y)

    return lowering


def _cmplt(em: ExprEmitter, x, y, dt: DType) -> ir.Value:
    b = em.b
    if dt.is_float:
        return b.fcmp_ordered("<", x, y)
    return b.icmp_unsigned("<", x, y) if _unsigned(dt) else b.icmp_signed("<", x, y)


def _cmpeq(em: ExprEmitter, x, y, dt: DType) -> ir.Value:
    return em.b.fcmp_ordered("==", x, y) if dt.is_float else em.b.icmp_unsigned("==", x, y)


BINARY: dict[Op, BinaryLowering] = {
    Op.ADD: _arith("fadd", "add"),
    Op.SUB: _arith("fsub", "sub"),
    Op.MUL: _arith("fmul", "mul"),
    Op.DIV: _div,
    Op.POW: _float_only("pow", lambda em, x, y, dt: em._call("pow", x, y)),
    Op.ATAN2: _float_only("atan2", lambda em, x, y, dt: em._libm("atan2", x, y)),
    Op.MAX: _extremum("maximum", "max"),
    Op.MIN: _extremum("minimum", "min"),
    Op.CMPLT: _cmplt,
    Op.CMPEQ: _cmpeq,
    Op.AND: lambda em, x, y, dt: em.b.and_(x, y),
    Op.OR: lambda em, x, y, dt: em.b.or_(x, y),
}

TERNARY: dict[Op, TernaryLowering] = {
    Op.WHERE: lambda em, cond, a, b: em.b.select(cond, a, b),
}
