"""One LLVM function per kernel: the loop nests of each kernel kind.

Every kernel function has the signature
    void kN(T0* p0, T1* p1, ..., i64 lo, i64 hi, i32* error)
with one pointer per buffer it touches (noalias unless the memory plan puts
two of them in the same storage) and [lo, hi) the part of its outermost
parallel loop this thread runs. Loops count up by one; inner loops are plain
affine loops LLVM's loop vectorizer handles. The only fast-math flags used
are `reassoc`/`contract` on floating-point sum and dot accumulators, so
that reductions vectorize; this reorders sums (results stay within float
tolerance) and never touches elementwise math. float32 sums accumulate in
float64 (see `_wide_sum`); reduces over a strided axis run a tile of output
columns at once (see `_column_tiled`).
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import NamedTuple

from llvmlite import ir

from graphc.codegen.collapse import collapse_loops
from graphc.codegen.kernel import INDEX, Expr, Kernel, KOp, affine, is_const, rebuild, step, walk
from graphc.codegen.llvm import attention, gemm, target
from graphc.codegen.llvm.expr import (
    F32,
    F64,
    I1,
    I8,
    I32,
    I64,
    ExprEmitter,
    int_max,
    int_min,
    intrinsic,
    mem_type,
    reg_type,
    splat,
)
from graphc.ir import dtypes
from graphc.ir.ops import Op

REDUCE_FLAGS = ("reassoc", "contract", "nsz")
# Dots with at most this many output columns accumulate a whole row at once
# (in a stack array), which keeps the inner loop contiguous.
ROW_DOT_MAX_N = 8192
# Reduces over a strided axis accumulate this many output columns at once
# (4 KiB of float32 per input row: every row's run is a whole page, and the
# accumulators, 8 KiB of float64, stay in L1). With 64 columns each sweep
# touched 256 bytes of every row: a bias gradient over [1024, 512] took
# 148 us, over [700, 10000] 1.1 ms; now 73 us and 0.67 ms.
COLUMN_TILE = 1024
# Windowed sums (stride-1 folds) over at most this many output columns
# keep a row of sums in vector registers (`_reduce_window_vectors`).
WINDOW_COLUMNS = 64
# Elementwise kernels whose loads run along another loop than the innermost
# (a transposing copy, a sum of transposed gradients) walk that loop
# innermost in strips of this many elements (a 64-byte line of float32).
TRANSPOSE_TILE = 16


@contextmanager
def for_range(b: ir.IRBuilder, lo: ir.Value, hi: ir.Value, name: str, step: int = 1):
    """`for (i = lo; i < hi; i += step)`; yields the induction variable."""
    pre = b.block
    head = b.append_basic_block(f"{name}.head")
    body = b.append_basic_block(f"{name}.body")
    done = b.append_basic_block(f"{name}.done")
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64, name=name)
    i.add_incoming(lo, pre)
    b.cbranch(b.icmp_signed("<", i, hi), body, done)
    b.position_at_end(body)
    yield i
    nxt = b.add(i, ir.Constant(I64, step), name=f"{name}.next", flags=("nsw",))
    i.add_incoming(nxt, b.block)
    b.branch(head)
    b.position_at_end(done)


@contextmanager
def loop_nest(b: ir.IRBuilder, dims: list[tuple[str, int]], env: dict, first=None):
    """Nested loops over dims (outer first); the first loop may get a
    [lo, hi) range instead of [0, extent)."""
    if not dims:
        yield
        return
    (name, extent), rest = dims[0], dims[1:]
    lo, hi = first if first is not None else (ir.Constant(I64, 0), ir.Constant(I64, extent))
    with for_range(b, lo, hi, name) as i:
        env[name] = i
        with loop_nest(b, rest, env):
            yield


def _wide_enough(kern: Kernel) -> bool:
    """Whether a kernel's loops are long enough for the widest vectors
    (target.wide_vector_attribute): its innermost loop (a reduce kernel's
    last reduced axis, else its last axis) and its total work."""
    dims = kern.red_shape if kern.kind == "reduce" and kern.red_shape else kern.shape
    inner = dims[-1] if dims else 1
    return inner >= target.WIDE_MIN_INNER and kern.flops >= target.WIDE_MIN_WORK


class KernelBuilder:
    """Builds the LLVM function of one kernel into `module`."""

    def __init__(self, module: ir.Module, kern: Kernel, buffers: dict, shared: set[str], partners: dict | None = None):
        kern = collapse_loops(kern)  # same first loop: the threads' split is unchanged
        self.kern = kern
        dtypes = {n: buf.dtype for n, buf in buffers.items()}
        self.numels = {n: buf.numel for n, buf in buffers.items()}
        self.names = list(kern.inputs) + [o for o in kern.outputs if o not in kern.inputs]
        ptr_types = [mem_type(dtypes[n]).as_pointer() for n in self.names]
        # GEMM dots take (thread, nthreads) instead of (lo, hi), their
        # thread's scratch, the program's barrier and the distance between
        # threads' scratch slices (see gemm.py).
        self.gemm = gemm.uses_gemm(kern)
        extra = [I8.as_pointer(), I64.as_pointer(), I64] if self.gemm else []
        fnty = ir.FunctionType(ir.VoidType(), ptr_types + [I64, I64, I32.as_pointer()] + extra)
        self.fn = ir.Function(module, fnty, kern.name)
        self.fn.linkage = "internal"
        self.fn.attributes.add("nounwind")
        # Each kernel stays a function of its own: inlined, the kernels of
        # a large program (ResNet-18's training step: 365) made one entry
        # function of megabytes of IR, and LLVM's function passes, which
        # grow faster than linearly with a function's size, took 14 of the
        # 20 s of its cold compile (3 s as separate functions). A call per
        # kernel costs nanoseconds.
        self.fn.attributes.add("noinline")
        wide = target.wide_vector_attribute()
        if wide is not None and _wide_enough(kern):
            # A string attribute: llvmlite's `attributes.add` accepts only
            # enum attributes, but prints every member of the set verbatim
            # in the function's definition, where LLVM parses this one.
            set.add(self.fn.attributes, wide)
        rep = _storage_representatives(self.names, dtypes, partners)
        for arg, n in zip(self.fn.args, self.names):
            arg.name = n
            if n not in shared or (n in rep and rep[n] == n):
                arg.add_attribute("noalias")
        self.workspace, self.barrier, self.ws_stride = self.fn.args[-3:] if self.gemm else (None, None, None)
        n_ptr = len(self.names)
        self.lo, self.hi, self.err = self.fn.args[n_ptr : n_ptr + 3]
        self.buffers = dict(zip(self.names, self.fn.args))
        # Buffers in one storage are all accessed through one pointer (their
        # addresses are equal): LLVM then sees an in-place update as a load
        # and store of the same element and vectorizes it without runtime
        # alias checks, and that pointer is noalias against the others.
        for n, r in rep.items():
            self.buffers[n] = self.buffers[r]
        self.b = ir.IRBuilder(self.fn.append_basic_block("entry"))
        self.dtypes = dtypes
        self.shared = shared
        # buffer -> buffers it may share storage with (None: unknown, use `shared`)
        self.partners = partners
        self.hoisted: dict = {}

    def _hoist_invariants(self) -> None:
        """Emit loop-invariant subexpressions that read memory (e.g. Adam's
        bias correction from a step-count buffer) once, at function entry.
        LLVM cannot hoist those loads itself when a written buffer may alias
        the one read, and then recomputes exp/pow per element. Only buffers
        the kernel never writes and that share no storage qualify, so the
        value cannot change during the kernel: neither it nor a buffer
        sharing its storage is written."""
        k = self.kern
        if self.partners is None:
            frozen = set(k.inputs) - set(k.outputs) - self.shared
        else:
            written = set(k.outputs)
            frozen = {n for n in k.inputs if n not in written and not (self.partners.get(n, set()) & written)}
        exprs = [e for e in k._exprs() if e is not None]
        # One pass over the distinct nodes (bodies are DAGs): a node is
        # hoisted when it is invariant and reads memory.
        invariant: dict[int, bool] = {}
        reads: dict[int, bool] = {}
        for x in walk(*exprs):
            varies = x.op in (KOp.VAR, KOp.ACC, KOp.CHECK) or (x.op is KOp.LOAD and x.arg not in frozen)
            invariant[id(x)] = not varies and all(invariant[id(a)] for a in x.args)
            reads[id(x)] = x.op is KOp.LOAD or any(reads[id(a)] for a in x.args)
        if not any(invariant[i] and reads[i] for i in invariant):
            return
        # Emit every largest invariant subtree that reads memory.
        em = ExprEmitter(self.b, {}, self.buffers, self.err)
        stack, seen = list(reversed(exprs)), set()
        while stack:
            x = stack.pop()
            if id(x) in seen:
                continue
            seen.add(id(x))
            if invariant[id(x)] and reads[id(x)]:
                em.emit(x)
            else:
                stack.extend(reversed(x.args))
        self.hoisted = em.memo

    def emitter(self, env, acc=None) -> ExprEmitter:
        em = ExprEmitter(self.b, env, self.buffers, self.err, acc)
        em.memo.update(self.hoisted)
        return em

    def build(self) -> ir.Function:
        if self.kern.kind in ("elementwise", "reduce"):
            self._hoist_invariants()
        KINDS[self.kern.kind](self)
        self.b.ret_void()
        return self.fn

    def _stores(self, stores, env, acc=None) -> None:
        em = self.emitter(env, acc)
        for s in stores:
            em.store(s.buffer, em.emit(s.index), em.emit(s.value), self.dtypes[s.buffer])

    def _elementwise(self) -> None:
        k, env = self.kern, {}
        dims = k.loop_vars()
        unit = transposed_dim(k)
        window = _stored_window(k) if unit is None else None
        if window is not None and len(dims) > 1:
            return self._elementwise_window(window)
        if unit is None:
            with loop_nest(self.b, dims, env, (self.lo, self.hi)):
                self._stores(k.stores, env)
            return
        # The loop `unit` (along which most accessed bytes are contiguous)
        # moves innermost, in strips of TRANSPOSE_TILE: every line a load
        # brings in is used whole, and the strided stores touch only
        # TRANSPOSE_TILE lines, which stay in L1 across the other loops.
        b = self.b
        with ExitStack() as stack:
            for d, (name, extent) in enumerate(dims):
                lo, hi = (self.lo, self.hi) if d == 0 else (ir.Constant(I64, 0), ir.Constant(I64, extent))
                if d == unit:
                    strip = stack.enter_context(for_range(b, lo, hi, f"{name}.strip", TRANSPOSE_TILE))
                    strip_end = b.add(strip, ir.Constant(I64, TRANSPOSE_TILE), flags=("nsw",))
                    strip_end = b.select(b.icmp_signed("<", strip_end, hi), strip_end, hi)
                else:
                    env[name] = stack.enter_context(for_range(b, lo, hi, name))
            env[dims[unit][0]] = stack.enter_context(for_range(b, strip, strip_end, dims[unit][0]))
            self._stores(k.stores, env)

    def _elementwise_window(self, window: Window) -> None:
        """An elementwise kernel whose store is where(guard, x, c): each
        innermost row stores c before and after the columns where the guard
        holds and x (unclamped) between them: a short row as vectors
        (`_elementwise_window_vectors`), else in three plain loops."""
        lanes = _row_lanes(self.kern, window)
        if lanes is not None:
            return self._elementwise_window_vectors(window, lanes)
        k, b, env = self.kern, self.b, {}
        (col, extent), outer = k.loop_vars()[-1], k.loop_vars()[:-1]
        store = k.stores[0]
        zero = ir.Constant(I64, 0)
        with loop_nest(b, outer, env, (self.lo, self.hi)):
            end = ir.Constant(I64, extent)
            j_lo, j_hi = self._window_columns(window, col, extent, env)
            j_lo = int_min(b, j_lo, end)
            j_hi = int_max(b, j_hi, j_lo)
            outside = store.value.args[2]
            for lo, hi, value in ((zero, j_lo, outside), (j_lo, j_hi, window.value), (j_hi, end, outside)):
                with for_range(b, lo, hi, col) as j:
                    env[col] = j
                    self._stores((replace(store, value=value),), env)

    def _elementwise_window_vectors(self, window: Window, lanes: int) -> None:
        """Each row of a windowed elementwise kernel (a padded im2col over a
        small image: rows of 2-16 columns, where the three loops cost more
        than the copy) as vectors: x for the lanes inside the window
        (`_RowEmitter`), the outside constant for the rest, one vector store
        per `lanes` columns (masked past the row's end)."""
        k, b, env = self.kern, self.b, {}
        (col, n), outer = k.loop_vars()[-1], k.loop_vars()[:-1]
        varying = _readers_of(window.value, col)
        store = k.stores[0]
        dt = self.dtypes[store.buffer]
        zero = ir.Constant(I64, 0)
        with loop_nest(b, outer, env, (self.lo, self.hi)):
            j_lo, j_hi = self._window_columns(window, col, n, env)
            env[col] = zero
            scalar = self.emitter(env)
            first = scalar.emit(store.index)
            fill = splat(b, scalar.emit(store.value.args[2]), lanes)
            chunks = range(-(-n // lanes))

            def write(c, v):
                if dt.is_bool:
                    v = b.zext(v, ir.VectorType(I8, lanes))
                at = b.add(first, ir.Constant(I64, c * lanes))
                tail = None if (c + 1) * lanes <= n else _lanes_in(b, c * lanes, lanes, zero, ir.Constant(I64, n))
                _vector_store(b, self.buffers[store.buffer], at, v, tail)

            with b.if_else(b.icmp_signed("<", j_lo, j_hi)) as (then, otherwise):
                with then:
                    for c in chunks:
                        inside = _lanes_in(b, c * lanes, lanes, j_lo, j_hi)
                        v = _RowEmitter(self, env, col, c * lanes, lanes, inside, varying).emit(window.value)
                        write(c, b.select(inside, v, fill))
                with otherwise:  # no column inside: x's loads may be out of range
                    for c in chunks:
                        write(c, fill)

    def _attention(self) -> None:
        attention.build(self.b, self.kern, self.buffers, self.lo, self.hi)

    def _scatter(self) -> None:
        k, b, env = self.kern, self.b, {}
        out_t = self.dtypes[k.out]
        # Zero the output; the entry runs scatter kernels on one thread.
        size = self.numels[k.out]
        with for_range(b, ir.Constant(I64, 0), ir.Constant(I64, size), "z") as i:
            b.store(ir.Constant(mem_type(out_t), 0), b.gep(self.buffers[k.out], [i], inbounds=True))
        with loop_nest(b, k.loop_vars(), env, (self.lo, self.hi)):
            em = self.emitter(env)
            target = em.emit(k.target)
            value = em.emit(k.value)
            old = em.load(k.out, target, out_t)
            new = b.fadd(old, value) if out_t.is_float else b.add(old, value)
            em.store(k.out, target, new, out_t)

    def _reduce(self) -> None:
        window = _summed_window(self.kern)
        lanes = _row_lanes(self.kern, window) if window is not None else None
        if lanes is not None:
            return self._reduce_window_vectors(window, lanes)
        if _column_tiled(self.kern):
            return self._reduce_columns()
        k, b, env = self.kern, self.b, {}
        wide = _wide_sum(k)
        acc_t = F64 if wide else reg_type(k.acc_dtype)
        with loop_nest(b, k.loop_vars(), env, (self.lo, self.hi)):
            acc_ptr, best_ptr = self._entry_alloca(acc_t), None
            if k.reducer == "argmax":
                best_ptr = self._entry_alloca(I64)
                b.store(ir.Constant(I64, 0), best_ptr)
            b.store(_init(k.reducer, k.acc_dtype, acc_t), acc_ptr)
            with loop_nest(b, k.red_vars(), env):
                em = self.emitter(env)
                v = em.emit(k.value)
                self._combine(acc_ptr, best_ptr, v, env)
            acc = b.load(best_ptr if best_ptr is not None else acc_ptr)
            if wide:
                acc = b.fptrunc(acc, reg_type(k.acc_dtype))
            self._stores(k.stores, env, acc)
            if k.row_stores:
                with loop_nest(b, k.red_vars(), env):
                    self._stores(k.row_stores, env, acc)

    def _reduce_columns(self) -> None:
        """A reduce over a strided axis into contiguous output columns (a
        sum over dim 0): COLUMN_TILE columns at a time, one accumulator
        each, so the innermost loop runs along contiguous memory and
        vectorizes instead of striding through memory once per column."""
        k, b, env = self.kern, self.b, {}
        wide = _wide_sum(k)
        acc_t = F64 if wide else reg_type(k.acc_dtype)
        tile = self._entry_alloca(ir.ArrayType(acc_t, COLUMN_TILE))
        zero, width = ir.Constant(I64, 0), ir.Constant(I64, COLUMN_TILE)
        dims = k.loop_vars()
        (col, extent), outer = dims[-1], dims[:-1]
        with loop_nest(b, outer, env, (self.lo, self.hi) if outer else None):
            lo, hi = (ir.Constant(I64, 0), ir.Constant(I64, extent)) if outer else (self.lo, self.hi)
            count = b.sdiv(b.add(b.sub(hi, lo), ir.Constant(I64, COLUMN_TILE - 1)), width)
            with for_range(b, zero, count, "tile") as t:
                start = b.add(lo, b.mul(t, width))
                n = b.sub(hi, start)
                n = b.select(b.icmp_signed("<", n, width), n, width)
                with for_range(b, zero, n, "init") as j:
                    b.store(_init(k.reducer, k.acc_dtype, acc_t), b.gep(tile, [zero, j], inbounds=True))
                with loop_nest(b, k.red_vars(), env):
                    with for_range(b, zero, n, "col") as j:
                        env[col] = b.add(start, j)
                        v = self.emitter(env).emit(k.value)
                        self._combine(b.gep(tile, [zero, j], inbounds=True), None, v, env)
                with for_range(b, zero, n, "out") as j:
                    env[col] = b.add(start, j)
                    acc = b.load(b.gep(tile, [zero, j], inbounds=True))
                    self._stores(k.stores, env, b.fptrunc(acc, reg_type(k.acc_dtype)) if wide else acc)

    def _reduce_window_vectors(self, window: Window, lanes: int) -> None:
        """A windowed sum over a short row (`_row_lanes`: a stride-1
        fold over a small image): each output row's sums are held in
        vectors, and every tap adds its value for the whole row at once
        (`_RowEmitter`), masked to the columns where the guard holds. As a
        scalar loop (or LLVM's vectorization of the column loop, whose
        accumulators went through the stack and stalled on overlapping
        stores) a 12-column fold ran at ~40% of memory bandwidth."""
        k, b, env = self.kern, self.b, {}
        (col, n), outer = k.loop_vars()[-1], k.loop_vars()[:-1]
        varying = _readers_of(window.value, col)
        wide = _wide_sum(k)
        elem = reg_type(k.acc_dtype)
        at = ir.VectorType(F64 if wide else elem, lanes)
        accs = [self._entry_alloca(at) for _ in range(-(-n // lanes))]
        with loop_nest(b, outer, env, (self.lo, self.hi)):
            for a in accs:
                b.store(ir.Constant(at, None), a)
            with loop_nest(b, k.red_vars(), env):
                j_lo, j_hi = self._window_columns(window, col, n, env)
                with b.if_then(b.icmp_signed("<", j_lo, j_hi)):  # else no column: loads may be out of range
                    for c, a in enumerate(accs):
                        inside = _lanes_in(b, c * lanes, lanes, j_lo, j_hi)
                        v = _RowEmitter(self, env, col, c * lanes, lanes, inside, varying).emit(window.value)
                        v = b.select(inside, v, ir.Constant(v.type, None))
                        b.store(b.fadd(b.load(a), b.fpext(v, at) if wide else v), a)
            for j in range(n):
                env[col] = ir.Constant(I64, j)
                acc = b.extract_element(b.load(accs[j // lanes]), ir.Constant(I32, j % lanes))
                self._stores(k.stores, env, b.fptrunc(acc, elem) if wide else acc)

    def _window_columns(self, window: Window, col: str, n: int, env) -> tuple[ir.Value, ir.Value]:
        """The columns [j_lo, j_hi) of [0, n) where every bound of `window`
        holds, at the current outer and reduced indices (j_lo may exceed
        j_hi: no column). Each bounded index is e0 + a*j, e0 its value at
        column 0 and a >= 0 (`_windowed`): for a > 0, lo <= e0 + a*j < hi
        is ceil((lo - e0) / a) <= j < ceil((hi - e0) / a)."""
        b = self.b
        j_lo, j_hi = ir.Constant(I64, 0), ir.Constant(I64, n)
        env[col] = ir.Constant(I64, 0)
        em = self.emitter(env)
        for e, lo, hi in window.bounds:
            a = step(e, col)
            e0 = em.emit(e)
            if a == 0:  # every column, or none
                ok = ir.Constant(ir.IntType(1), 1)
                if lo is not None:
                    ok = b.and_(ok, b.icmp_signed(">=", e0, ir.Constant(I64, lo)))
                if hi is not None:
                    ok = b.and_(ok, b.icmp_signed("<", e0, ir.Constant(I64, hi)))
                j_hi = b.select(ok, j_hi, ir.Constant(I64, 0))
                continue
            if lo is not None:
                j_lo = int_max(b, j_lo, _ceil_div(b, b.sub(ir.Constant(I64, lo), e0), a))
            if hi is not None:
                j_hi = int_min(b, j_hi, _ceil_div(b, b.sub(ir.Constant(I64, hi), e0), a))
        return j_lo, j_hi

    def _entry_alloca(self, t: ir.Type) -> ir.Value:
        # Allocas in the entry block so SROA turns them into registers.
        b = self.b
        with b.goto_entry_block():
            return b.alloca(t)

    def _combine(self, acc_ptr, best_ptr, v, env) -> None:
        k, b = self.kern, self.b
        dt = k.acc_dtype
        acc = b.load(acc_ptr)
        em = self.emitter(env)
        if k.reducer == "sum":
            if acc.type != v.type:  # a float32 sum in a float64 accumulator
                v = b.fpext(v, acc.type)
            new = b.fadd(acc, v, flags=REDUCE_FLAGS) if dt.is_float else b.add(acc, v)
        elif k.reducer == "prod":
            new = b.fmul(acc, v, flags=REDUCE_FLAGS) if dt.is_float else b.mul(acc, v)
        elif k.reducer == "max":
            new = b.or_(acc, v) if dt.is_bool else em.binary(Op.MAX, acc, v, dt)
        else:  # argmax: strictly greater, or the first NaN
            if dt.is_float:
                better = b.or_(
                    b.fcmp_ordered(">", v, acc), b.and_(b.fcmp_unordered("uno", v, v), b.fcmp_ordered("ord", acc, acc))
                )
            else:
                better = em.binary(Op.CMPLT, acc, v, dt)
            new = b.select(better, v, acc)
            b.store(b.select(better, env["r0"], b.load(best_ptr)), best_ptr)
        b.store(new, acc_ptr)

    def _dot(self) -> None:
        if self.gemm:
            return gemm.GemmEmitter(self, self.lo, self.hi, self.workspace, self.barrier, self.ws_stride).emit()
        if self.kern.shape[-1] <= ROW_DOT_MAX_N and self.kern.shape[-1] > 1:
            return self._dot_rows()
        k, b, env = self.kern, self.b, {}
        acc_t = reg_type(k.acc_dtype)
        with loop_nest(b, k.loop_vars(), env, (self.lo, self.hi)):
            acc_ptr = self._entry_alloca(acc_t)
            b.store(ir.Constant(acc_t, 0), acc_ptr)
            with for_range(b, ir.Constant(I64, 0), ir.Constant(I64, k.k), "kk") as kk:
                x = b.load(b.gep(self.buffers[k.a.buffer], [_operand_index(b, k.a, env, "m", kk)], inbounds=True))
                y = b.load(b.gep(self.buffers[k.b.buffer], [_operand_index(b, k.b, env, kk, "n")], inbounds=True))
                acc = b.load(acc_ptr)
                if k.acc_dtype.is_float:
                    new = b.fadd(acc, b.fmul(x, y, flags=REDUCE_FLAGS), flags=REDUCE_FLAGS)
                else:
                    new = b.add(acc, b.mul(x, y))
                b.store(new, acc_ptr)
            self._stores(k.stores, env, b.load(acc_ptr))

    def _dot_rows(self) -> None:
        """Row-at-a-time dot: for each output row, acc[n] += A[m,k] * B[k,n]
        over k with n innermost (contiguous in B and acc, so it vectorizes),
        then the epilogue over the row."""
        k, b, env = self.kern, self.b, {}
        acc_t = reg_type(k.acc_dtype)
        n_extent = k.shape[-1]
        row = self._entry_alloca(ir.ArrayType(acc_t, n_extent))
        zero = ir.Constant(I64, 0)
        outer = k.loop_vars()[:-1]
        with loop_nest(b, outer, env, (self.lo, self.hi)):
            with for_range(b, zero, ir.Constant(I64, n_extent), "z") as n:
                b.store(ir.Constant(acc_t, 0), b.gep(row, [zero, n], inbounds=True))
            with for_range(b, zero, ir.Constant(I64, k.k), "kk") as kk:
                x = b.load(b.gep(self.buffers[k.a.buffer], [_operand_index(b, k.a, env, "m", kk)], inbounds=True))
                with for_range(b, zero, ir.Constant(I64, n_extent), "n") as n:
                    env["n"] = n
                    y = b.load(b.gep(self.buffers[k.b.buffer], [_operand_index(b, k.b, env, kk, "n")], inbounds=True))
                    ptr = b.gep(row, [zero, n], inbounds=True)
                    if k.acc_dtype.is_float:
                        new = b.fadd(b.load(ptr), b.fmul(x, y, flags=REDUCE_FLAGS), flags=REDUCE_FLAGS)
                    else:
                        new = b.add(b.load(ptr), b.mul(x, y))
                    b.store(new, ptr)
            with for_range(b, zero, ir.Constant(I64, n_extent), "n") as n:
                env["n"] = n
                self._stores(k.stores, env, b.load(b.gep(row, [zero, n], inbounds=True)))


# The loop nest of each kernel kind (codegen/kernel.py), by builder method.
KINDS = {
    "elementwise": KernelBuilder._elementwise,
    "reduce": KernelBuilder._reduce,
    "dot": KernelBuilder._dot,
    "scatter": KernelBuilder._scatter,
    "attention": KernelBuilder._attention,
}


def transposed_dim(k: Kernel) -> int | None:
    """For an elementwise kernel whose accesses are mostly contiguous along a
    loop other than the innermost (the loads of a transposing copy), that
    loop's position; None when the innermost loop is the contiguous one for
    at least as many accessed bytes, or an index is not affine."""
    dims = k.loop_vars()
    if k.kind != "elementwise" or len(dims) < 2:
        return None
    accesses = [(s.index, s.value.dtype.itemsize) for s in k.stores]
    for s in k.stores:
        accesses += [(x.args[0], x.dtype.itemsize) for x in walk(s.value) if x.op is KOp.LOAD]
    score = [0] * len(dims)
    for index, nbytes in accesses:
        form = affine(index)
        if form is None:
            return None
        for d, (name, _) in enumerate(dims):
            if abs(form[0].get(name, 0)) == 1:
                score[d] += nbytes
    inner = len(dims) - 1
    best = max(range(inner), key=lambda d: score[d])
    if score[best] <= score[inner] or dims[best][1] < TRANSPOSE_TILE or dims[inner][1] < 2:
        return None
    return best


class Window(NamedTuple):
    """A guarded value `where(guard, x, c)` (c a constant; 0 for a sum) as
    the bounds the guard checks, (e, lo, hi): lo <= e < hi with e an index
    that steps a fixed amount per output column (lo or hi None where
    unchecked), and `value`: x with the clamps the guard makes identities
    removed. Where the bounds hold the kernel's value is `value`, elsewhere
    c."""

    bounds: tuple[tuple[Expr, int | None, int | None], ...]
    value: Expr


def _windowed(v: Expr | None, col: str) -> Window | None:
    """A padded convolution's im2col stores, and a stride-1 fold (its data
    gradient) sums, where(in range, x[clamped index], 0) (a max-pool's
    im2col pads with -inf): the guard per element and the clamped
    (non-affine) index keep the loop over output columns `col` scalar. As
    a `Window`, the column loop narrows to where the guard holds and reads
    the plain affine index there. None for any other value, or a bound on
    an index that steps backwards along the row (none of the kernels
    fusion builds has one)."""
    if v is None or v.op is not Op.WHERE or not is_const(v.args[2]):
        return None
    lo_of: dict[Expr, int] = {}
    hi_of: dict[Expr, int] = {}
    pending = [v.args[0]]
    while pending:
        c = pending.pop()
        if c.op is Op.AND:
            pending.extend(c.args)
            continue
        negated = c.op is Op.NOT
        if negated:
            c = c.args[0]
        if c.op is not Op.CMPLT or c.args[0].dtype is not INDEX or not is_const(c.args[1]):
            return None
        a = step(c.args[0], col)
        if a is None or a < 0:
            return None
        e, bound = c.args[0], int(c.args[1].arg)
        if negated:  # not(e < bound): e >= bound
            lo_of[e] = max(lo_of.get(e, bound), bound)
        else:
            hi_of[e] = min(hi_of.get(e, bound), bound)
    bounds = tuple((e, lo_of.get(e), hi_of.get(e)) for e in {**lo_of, **hi_of})
    memo: dict[int, Expr] = {}  # by identity, as `walk` visits
    for x in walk(v.args[1]):
        args = tuple(memo[id(a)] for a in x.args)
        inner = args[0] if args else None
        if x.op is Op.MAX and is_const(args[1]) and lo_of.get(inner, args[1].arg - 1) >= args[1].arg:
            memo[id(x)] = inner  # the guard has inner >= lo
        elif x.op is Op.MIN and is_const(args[1]) and hi_of.get(inner, args[1].arg + 2) - 1 <= args[1].arg:
            memo[id(x)] = inner  # the guard has inner < hi + 1
        else:
            memo[id(x)] = rebuild(x, args) if args else x
    return Window(bounds, memo[id(v.args[1])])


def _summed_window(k: Kernel) -> Window | None:
    """The `Window` of a sum reduce's value over its last output column."""
    v = k.value
    if k.reducer != "sum" or not k.shape or v is None or v.op is not Op.WHERE or not is_const(v.args[2], 0):
        return None
    return _windowed(v, k.loop_vars()[-1][0])


# Ops `_RowEmitter` emits on vectors (their scalar lowerings are
# type-generic): float arithmetic and comparisons, bool logic, select.
_ROW_FLOAT_OPS = frozenset({Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.NEG, Op.CMPLT, Op.CMPEQ})
_ROW_OPS = _ROW_FLOAT_OPS | {Op.AND, Op.OR, Op.WHERE}


def _row_lanes(k: Kernel, window: Window) -> int | None:
    """Vector lanes for a windowed kernel's rows (the power of two from 2 up
    that covers a row, at most 16, or 8 with float64 values), or None
    where its rows do not run as vectors: rows of more than
    WINDOW_COLUMNS columns, an elementwise store that does not step along
    the row, a value `_RowEmitter` cannot emit (what reads the column:
    float, bool or int32/int64 loads stepping 1 column per column, or 2
    for floats, and `_ROW_OPS` on them; int compares only for equality),
    or a reduce with row stores."""
    col, n = k.loop_vars()[-1]
    if n > WINDOW_COLUMNS or k.row_stores:
        return None
    if k.kind == "elementwise" and step(k.stores[0].index, col) != 1:
        return None
    wide = False
    seen: set[int] = set()
    varying = _readers_of(window.value, col)
    pending = [window.value]
    while pending:  # the value's tree down to (not into) load indices
        x = pending.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if id(x) not in varying:
            continue  # one scalar for the whole row
        if x.dtype.is_float and x.dtype not in (dtypes.float32, dtypes.float64):
            return None
        if not (x.dtype.is_float or x.dtype.is_bool or x.dtype in (dtypes.int32, dtypes.int64)):
            return None
        wide = wide or x.dtype.itemsize == 8
        if x.op is KOp.LOAD:
            s = step(x.args[0], col)
            if s not in (1, 2) or (s == 2 and not x.dtype.is_float):  # spread byte masks lowered poorly
                return None
        elif x.op in _ROW_OPS:
            if x.op in _ROW_FLOAT_OPS and not x.args[0].dtype.is_float and x.op is not Op.CMPEQ:
                return None
            pending.extend(x.args)
        else:
            return None
    lanes = 2
    while lanes < n and lanes < (8 if wide else 16):  # a row of 8 in one 8-lane vector: no masked store
        lanes *= 2
    return lanes


class _RowEmitter(ExprEmitter):
    """Emits a windowed kernel's value for `lanes` consecutive columns of a
    row, from column `first`: a load that steps along the row is a masked
    vector load (lanes off `mask` touch no memory; a stride-2 read, as a
    stride-2 convolution's im2col makes, loads twice the lanes and keeps
    every other one); anything that does not read the column (a constant,
    a per-channel scale, max-pool's tap number) is one scalar splat to
    every lane; the ops in between (`_ROW_OPS`) act on the vectors."""

    def __init__(self, kb: KernelBuilder, env: dict, col: str, first: int, lanes: int, mask: ir.Value, varying):
        super().__init__(kb.b, env, kb.buffers, kb.err)
        env[col] = ir.Constant(I64, 0)
        self.scalar = kb.emitter(env)
        self.col, self.first, self.lanes, self.mask = col, first, lanes, mask
        self.varying = varying  # ids of the nodes that read `col` (`_readers_of`)

    def _emit(self, e: Expr) -> ir.Value:
        b = self.b
        if id(e) not in self.varying:
            return splat(b, self.scalar.emit(e), self.lanes)
        if e.op is KOp.LOAD:
            s, lanes = step(e.args[0], self.col), self.lanes
            at = b.add(self.scalar.emit(e.args[0]), ir.Constant(I64, self.first * s))
            if s == 1:
                v = _masked_load(b, self.buffers[e.arg], at, self.mask, lanes)
            else:  # element i of the row at position i*s of a wider load
                off = ir.Constant(ir.VectorType(I1, lanes), None)
                spread = [p // s if p % s == 0 else lanes for p in range(lanes * s)]
                mask = b.shuffle_vector(self.mask, off, ir.Constant(ir.VectorType(I32, lanes * s), spread))
                wide = _masked_load(b, self.buffers[e.arg], at, mask, lanes * s)
                keep = ir.Constant(ir.VectorType(I32, lanes), [i * s for i in range(lanes)])
                v = b.shuffle_vector(wide, ir.Constant(wide.type, ir.Undefined), keep)
            return b.trunc(v, ir.VectorType(I1, lanes)) if e.dtype.is_bool else v
        return super()._emit(e)


def _readers_of(root: Expr, name: str) -> set[int]:
    """ids of the nodes under `root` that read loop variable `name`."""
    out: set[int] = set()
    for x in walk(root):
        if (x.op is KOp.VAR and x.arg == name) or any(id(a) in out for a in x.args):
            out.add(id(x))
    return out


def _lanes_in(b: ir.IRBuilder, first: int, lanes: int, lo: ir.Value, hi: ir.Value) -> ir.Value:
    """The mask of lanes first + i (i < lanes) with lo <= first + i < hi."""
    lane = ir.Constant(ir.VectorType(I64, lanes), [first + i for i in range(lanes)])
    return b.and_(b.icmp_signed(">=", lane, splat(b, lo, lanes)), b.icmp_signed("<", lane, splat(b, hi, lanes)))


def _vector_fn(b: ir.IRBuilder, op: str, elem: ir.Type, lanes: int) -> ir.Function:
    """llvm.masked.load / llvm.masked.store for <lanes x elem>."""
    vt = ir.VectorType(elem, lanes)
    sfx = f"v{lanes}{'f32' if elem == F32 else 'f64' if elem == F64 else f'i{elem.width}'}"
    mask_t = ir.VectorType(I1, lanes)
    if op == "load":
        return intrinsic(b.module, f"llvm.masked.load.{sfx}.p0{sfx}", vt, [vt.as_pointer(), I32, mask_t, vt])
    return intrinsic(b.module, f"llvm.masked.store.{sfx}.p0{sfx}", ir.VoidType(), [vt, vt.as_pointer(), I32, mask_t])


def _element_bytes(elem: ir.Type) -> int:
    return 4 if elem == F32 else 8 if elem == F64 else elem.width // 8


def _masked_load(b: ir.IRBuilder, base: ir.Value, index: ir.Value, mask: ir.Value, lanes: int) -> ir.Value:
    """lanes elements from base[index] on, 0 in the lanes off `mask`."""
    elem = base.type.pointee
    vt = ir.VectorType(elem, lanes)
    ptr = b.bitcast(b.gep(base, [index]), vt.as_pointer())
    align = ir.Constant(I32, _element_bytes(elem))
    return b.call(_vector_fn(b, "load", elem, lanes), [ptr, align, mask, ir.Constant(vt, None)])


def _vector_store(b: ir.IRBuilder, base: ir.Value, index: ir.Value, v: ir.Value, mask: ir.Value | None) -> None:
    """v to base[index] on (only the lanes on `mask`, unless None)."""
    elem = base.type.pointee
    ptr = b.bitcast(b.gep(base, [index], inbounds=mask is None), v.type.as_pointer())
    if mask is None:
        b.store(v, ptr, align=_element_bytes(elem))
    else:
        b.call(_vector_fn(b, "store", elem, v.type.count), [v, ptr, ir.Constant(I32, _element_bytes(elem)), mask])


def _floor_div(b: ir.IRBuilder, x: ir.Value, d: int) -> ir.Value:
    """floor(x / d) for a constant d > 0."""
    if d == 1:
        return x
    dc = ir.Constant(I64, d)
    q = b.sdiv(x, dc)  # rounds toward zero: one too high for an inexact x < 0
    return b.select(b.icmp_signed(">", b.mul(q, dc), x), b.sub(q, ir.Constant(I64, 1)), q)


def _ceil_div(b: ir.IRBuilder, x: ir.Value, d: int) -> ir.Value:
    """ceil(x / d) for a constant d > 0: -floor(-x / d)."""
    return b.neg(_floor_div(b, b.neg(x), d))


def _stored_window(k: Kernel) -> Window | None:
    """The `Window` of an elementwise kernel's one store over its innermost
    loop."""
    if len(k.stores) != 1 or not k.shape or k.shape[-1] < 2:
        return None
    return _windowed(k.stores[0].value, k.loop_vars()[-1][0])


def _column_tiled(k: Kernel) -> bool:
    """Whether a reduce kernel runs `_reduce_columns`: its loads are affine,
    the last output dim steps through some of them contiguously, and the
    last reduced dim steps through none of them contiguously."""
    if k.reducer == "argmax" or k.row_stores or not k.shape or k.shape[-1] < 2:
        return False
    col, red = k.loop_vars()[-1][0], k.red_vars()[-1][0]
    contiguous = False
    for e in walk(k.value):
        if e.op is not KOp.LOAD:
            continue
        form = affine(e.args[0])
        if form is None or abs(form[0].get(red, 0)) == 1:
            return False
        contiguous = contiguous or form[0].get(col, 0) == 1
    return contiguous


def _wide_sum(k: Kernel) -> bool:
    """Whether a sum kernel accumulates float32 values in float64. Every
    float32 sum does: a float32 running sum of 2**25 ones stops at 2**24,
    and float32 partial sums of equal values err in the same direction.
    Vectorized, the widening add still keeps up with memory."""
    return k.reducer == "sum" and k.acc_dtype is dtypes.float32


def _storage_representatives(names, dtypes, partners) -> dict[str, str]:
    """buffer -> the buffer of this kernel whose pointer accesses its
    storage, for buffers that the memory plan puts in one storage (same
    address at run time; `partners` is complete, so no other argument
    touches that storage). Only groups of one dtype are merged."""
    rep: dict[str, str] = {}
    if partners is None:
        return rep
    present = set(names)
    for n in names:
        group = ({n} | partners.get(n, set())) & present
        if len(group) < 2 or len({dtypes[g] for g in group}) != 1:
            continue
        first = next(x for x in names if x in group)
        rep[n] = first
    return rep


def _operand_index(b, op, env, row, col) -> ir.Value:
    def val(v):
        return env[v] if isinstance(v, str) else v

    idx = ir.Constant(I64, op.offset)
    terms = [(env[f"b{d}"], s) for d, s in enumerate(op.batch_strides)]
    terms += [(val(row), op.row_stride), (val(col), op.col_stride)]
    for v, s in terms:
        if s:
            idx = b.add(idx, b.mul(v, ir.Constant(I64, s)))
    return idx


def _init(reducer: str, dt, t: ir.Type) -> ir.Constant:
    if reducer == "sum":
        return ir.Constant(t, 0.0 if dt.is_float else 0)
    if reducer == "prod":
        return ir.Constant(t, 1.0 if dt.is_float else 1)
    if dt.is_float:
        return ir.Constant(t, float("-inf"))
    if dt.is_bool:
        return ir.Constant(t, 0)
    if dt.np.kind == "u":
        return ir.Constant(t, 0)
    return ir.Constant(t, -(1 << (t.width - 1)))
