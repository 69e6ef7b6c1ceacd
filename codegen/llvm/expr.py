"""Lower kernel-body expressions (codegen.kernel.Expr) to LLVM IR values.

Floating-point ops are emitted without fast-math flags, so elementwise
results are the IEEE results numpy computes (math functions come from libm
through LLVM intrinsics). Integer semantics follow graphc/ir/rules.py: DIV
truncates toward zero, a zero divisor sets the ERROR_ZERO_DIVISION bit of the
error word (and is replaced by 1, so the hardware never divides by zero),
and MIN / -1 wraps instead of trapping.
"""

from __future__ import annotations

from llvmlite import ir

from graphc.codegen.kernel import ERROR_INDEX, ERROR_ZERO_DIVISION, INDEX, Expr, bounds
from graphc.ir.dtypes import DType

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
        op = e.op
        if op == "var":
            return self.env[e.arg]
        if op == "const":
            return ir.Constant(reg_type(e.dtype), e.arg)
        if op == "acc":
            return self.acc
        if op == "load":
            return self.load(e.arg, self.emit(e.args[0]), e.dtype)
        if op == "random":
            return self._random(self.emit(e.args[0]), self.emit(e.args[1]))
        if op == "check":
            return self._check(self.emit(e.args[0]), e.arg)
        if op in ("floordiv", "mod"):
            return self._floordiv_mod(e)
        args = [self.emit(a) for a in e.args]
        if op == "where":
            return self.b.select(*args)
        if op == "cast":
            return self.cast(args[0], e.args[0].dtype, e.dtype)
        if len(args) == 1:
            return self._unary(op, args[0], e.dtype)
        return self._binary(op, args[0], args[1], e.args[0].dtype)

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
    def _unary(self, op: str, x: ir.Value, dt: DType) -> ir.Value:
        b = self.b
        if op == "neg":
            return b.fneg(x) if dt.is_float else b.neg(x)
        if op == "not":
            return b.xor(x, ir.Constant(I1, 1))
        if op == "recip":
            return b.fdiv(ir.Constant(x.type, 1.0), x)
        if op in ("exp", "log", "sin", "cos", "sqrt", "floor", "tanh"):
            return self._call(op, x)
        if op == "erf":
            return self._libm("erf", x)
        raise NotImplementedError(f"LLVM backend: unary {op}")

    def _binary(self, op: str, x: ir.Value, y: ir.Value, dt: DType) -> ir.Value:
        b = self.b
        if dt.is_float:
            simple = {"add": b.fadd, "sub": b.fsub, "mul": b.fmul, "div": b.fdiv}
            if op in simple:
                return simple[op](x, y)
            if op in ("pow",):
                return self._call("pow", x, y)
            if op == "atan2":
                return self._libm("atan2", x, y)
            if op == "maximum":
                return self._call("maximum", x, y)
            if op == "minimum":
                return self._call("minimum", x, y)
            if op == "cmplt":
                return b.fcmp_ordered("<", x, y)
            if op == "cmpeq":
                return b.fcmp_ordered("==", x, y)
        unsigned = not dt.is_int or dt.np.kind == "u"  # bool and uint8 compare unsigned
        simple = {"add": b.add, "sub": b.sub, "mul": b.mul, "and": b.and_, "or": b.or_}
        if op in simple:
            return simple[op](x, y)
        if op == "div":
            return self._int_div(x, y, unsigned)
        if op in ("maximum", "minimum"):
            name = ("u" if unsigned else "s") + ("max" if op == "maximum" else "min")
            return self._call(name, x, y)
        if op == "cmplt":
            return b.icmp_unsigned("<", x, y) if unsigned else b.icmp_signed("<", x, y)
        if op == "cmpeq":
            return b.icmp_unsigned("==", x, y)
        raise NotImplementedError(f"LLVM backend: binary {op} on {dt}")

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
            return b.udiv(x, d) if e.op == "floordiv" else b.urem(x, d)
        r = b.srem(x, d)
        neg = b.icmp_signed("<", r, ir.Constant(I64, 0))
        if e.op == "mod":
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
