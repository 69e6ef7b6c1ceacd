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
from graphc.ir import dtypes
from graphc.ir.dtypes import DType

_F32_FUNCS = {
    "exp": "expf",
    "log": "logf",
    "sqrt": "sqrtf",
    "sin": "sinf",
    "cos": "cosf",
    "tanh": "tanhf",
    "erf": "erff",
    "floor": "floorf",
    "pow": "powf",
    "atan2": "atan2f",
}
_F64_FUNCS = {
    "exp": "exp",
    "log": "log",
    "sqrt": "sqrt",
    "sin": "sin",
    "cos": "cos",
    "tanh": "tanh",
    "erf": "erf",
    "floor": "floor",
    "pow": "pow",
    "atan2": "atan2",
}
_INFIX = {"add": "+", "sub": "-", "mul": "*"}


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
        if e.op not in ("var", "const", "acc"):
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
        op = e.op
        if op == "var":
            return e.arg
        if op == "const":
            return cdefs.literal(e.arg, e.dtype)
        if op == "acc":
            if self.acc is None:
                raise CudaRenderError("`acc` used outside a reduce or dot kernel")
            return _convert(self.acc, e.dtype)
        args = [self.value(a) for a in e.args]
        if op == "load":
            return self._load(e.arg, args[0])
        if op == "random":
            return f"gc_random({args[0]}, {args[1]})"
        if op == "check":
            self.uses_err = True
            return f"gc_check({args[0]}, {e.arg}LL, gc_err, {self.check_code()}ULL)"
        if op in ("floordiv", "mod"):
            return self._index_div(e, args[0])
        if op in ("add", "mul") and _is_index(e):
            # Index arithmetic never overflows: plain, readable C.
            return f"({args[0]} {_INFIX[op]} {args[1]})"
        if op == "where":
            return f"({args[0]} ? {args[1]} : {args[2]})"
        if op == "cast":
            return _cast(args[0], e.args[0].dtype, e.dtype)
        if op == "div" and not e.dtype.is_float:
            self.uses_err = True
            divisor = f"gc_check_div<{cdefs.register(e.dtype)}>({args[1]}, gc_err, {self.check_code()}ULL)"
            args = [args[0], self._bind(e.dtype, divisor)]
        return scalar_op(op, args, e.args[0].dtype if e.args else e.dtype)

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
            sym = "/" if e.op == "floordiv" else "%"
            return f"({a} {sym} {e.arg}LL)"
        fn = "gc_floordiv" if e.op == "floordiv" else "gc_mod"
        return f"{fn}({a}, {e.arg}LL)"


_INDEX_OPS = {"var", "const", "add", "mul", "floordiv", "mod", "check"}


def _is_index(e: kf.Expr) -> bool:
    """Whether `e` is pure index arithmetic (loop variables and constants)."""
    if e.dtype is not kf.INDEX:
        return False
    if e.op == "where":  # a guarded index: where(cond, index, 0)
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


def scalar_op(op: str, args: list[str], dtype: DType) -> str:
    """An elementwise op on operands of `dtype` (the first operand's dtype;
    for `where` the condition's, handled by the caller)."""
    if op in _INFIX:
        return _arith(op, args, dtype)
    if op == "neg":
        if dtype in cdefs.UNSIGNED:
            return f"(({cdefs.register(dtype)})((({cdefs.UNSIGNED[dtype]})0) - ({cdefs.UNSIGNED[dtype]}){args[0]}))"
        return f"(({cdefs.register(dtype)})(-{args[0]}))"
    if op == "recip":
        one = "1.0" if dtype is dtypes.float64 else "1.0f"
        return _round(dtype, f"({one} / {args[0]})")
    if op in _F32_FUNCS:
        funcs = _F64_FUNCS if dtype is dtypes.float64 else _F32_FUNCS
        return _round(dtype, f"{funcs[op]}({', '.join(args)})")
    if op == "div":
        if dtype.is_float:
            return _round(dtype, f"({args[0]} / {args[1]})")
        unsigned = cdefs.UNSIGNED.get(dtype, "unsigned int")
        return f"gc_idiv<{cdefs.register(dtype)}, {unsigned}>({args[0]}, {args[1]})"
    if op in ("maximum", "minimum"):
        fn = "gc_max" if op == "maximum" else "gc_min"
        return f"{fn}<{cdefs.register(dtype)}>({args[0]}, {args[1]})"
    if op == "cmplt":
        return f"({args[0]} < {args[1]})"
    if op == "cmpeq":
        return f"({args[0]} == {args[1]})"
    if op == "and":
        return f"({args[0]} && {args[1]})"
    if op == "or":
        return f"({args[0]} || {args[1]})"
    if op == "not":
        return f"(!{args[0]})"
    raise CudaRenderError(f"no CUDA lowering for kernel-form op {op!r}")


def _arith(op: str, args: list[str], dtype: DType) -> str:
    sym = _INFIX[op]
    a, b = args
    if dtype in cdefs.UNSIGNED:
        u = cdefs.UNSIGNED[dtype]
        return f"(({cdefs.register(dtype)})(({u}){a} {sym} ({u}){b}))"
    if dtype.is_float:
        return _round(dtype, f"({a} {sym} {b})")
    return f"(({cdefs.register(dtype)})({a} {sym} {b}))"
