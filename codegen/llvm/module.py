"""The whole program as one LLVM module with one entry point:

    void entry(i8** buffers, i64 thread, i64 nthreads, i32* error, i64* barrier)

`buffers[i]` points at buffer `buffer_order[i]` (inputs, outputs, arena
slots, constants: the runtime fills the table). When the program has GEMM
kernels, one more entry, `buffers[len(buffer_order)]`, points at a 64-byte
aligned workspace of `nthreads * workspace_bytes` bytes: thread t uses the
slice at `t * workspace_bytes` as packing scratch. Each of the `nthreads`
callers runs its share of every kernel's outermost loop, then waits at a
barrier (atomics, in generated code) before the next kernel. Kernels too
small to be worth splitting, and scatter kernels (whose updates may
collide), run on thread 0 only.

The profiled build (`build_module(prog, profile=True)`, a separate cache
entry) has one more table entry, `buffers[len(buffer_order) + 1]`: an
i64 array of `len(prog.kernels) + 1` slots. Thread 0 writes a timestamp
(codegen/llvm/timing.py) into slot 0 on entry and into slot i + 1 after
kernel i and the barrier that follows it, if any. The barriers are the
plain build's, plus one after the last kernel when it is split across
threads, so a split kernel's time covers every thread's share and a
kernel's time includes waiting at the barrier after it. The plain build
has none of this.
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from graphc.codegen.kernel import Program
from graphc.codegen.llvm import attention, gemm, split, target, timing
from graphc.codegen.llvm.expr import I8, I32, I64, intrinsic, mem_type, reg_type
from graphc.codegen.llvm.kernels import KernelBuilder
from graphc.codegen.llvm.sync import barrier_fn
from graphc.ir.ops import Op

# Primitives with a kernel kind of this backend's own (fusion keeps them;
# passes/lower.py expands them for other backends).
NATIVE_OPS = frozenset({Op.ATTENTION})

# Kernels with less work than this (element updates / multiply-adds) run on
# one thread: splitting them costs more in synchronisation than it saves.
PARALLEL_MIN_WORK = 1 << 16


@dataclass(frozen=True)
class ModuleInfo:
    ir: str
    buffer_order: tuple[str, ...]
    workspace_bytes: int = 0  # per thread; see the module docstring
    # GEMM routines the module calls but does not define ("f32"/"f64"; see
    # gemm.library_ir): the runtime loads them before the program.
    gemm_libs: tuple[str, ...] = ()
    # The other parts of a split module (build_module's `parts`), each
    # compiled to its own object and loaded with part 0's.
    part_irs: tuple[str, ...] = ()


def shared_storage(prog: Program) -> set[str]:
    """Buffers that may share memory with another buffer of the same kernel."""
    shared: set[str] = set()
    for out, src in prog.plan.in_place:
        shared |= {out, src}
    for out_i, in_i in prog.plan.direct_aliases.items():
        shared |= {prog.outputs[out_i], prog.inputs[in_i]}
    # The same buffer passed twice (an output that is also an input name).
    return shared


def storage_partners(prog: Program) -> dict[str, set[str]]:
    """buffer -> the buffers the memory plan lets share its storage (in-place
    outputs, outputs written into inputs)."""
    pairs = list(prog.plan.in_place)
    pairs += [(prog.outputs[o], prog.inputs[i]) for o, i in prog.plan.direct_aliases.items()]
    # Sharing is transitive (an in-place chain reuses one slot): group them.
    group: dict[str, set[str]] = {}
    for x, y in pairs:
        merged = group.get(x, {x}) | group.get(y, {y})
        for n in merged:
            group[n] = merged
    return {n: g - {n} for n, g in group.items()}


def build_module(prog: Program, profile: bool = False, parts: int = 1) -> ModuleInfo:
    """The program's LLVM module; `profile`: the timed build (see the module
    docstring). `parts` > 1 splits it at kernel boundaries into up to that
    many modules that compile separately (codegen/llvm/split.py): `ir` is
    the first (costliest) part's text, `part_irs` the others'; one of them
    holds the entry."""
    module, order, ws, libs = _build(prog, profile)
    texts = split.split_module(module, parts) if parts > 1 else [str(module)]
    return ModuleInfo(texts[0], order, ws, libs, tuple(texts[1:]))


def _build(prog: Program, profile: bool) -> tuple[ir.Module, tuple[str, ...], int, tuple[str, ...]]:
    triple, layout = target.triple_and_layout()
    module = ir.Module(name=prog.name)
    module.triple, module.data_layout = triple, layout
    order = tuple(prog.buffers)
    shared = shared_storage(prog)
    partners = storage_partners(prog)
    fns = [KernelBuilder(module, k, prog.buffers, shared, partners).build() for k in prog.kernels]
    ws = max([gemm.workspace_bytes(k) for k in prog.kernels if gemm.uses_gemm(k)], default=0)
    _entry(module, prog, order, fns, ws, profile)
    _entry_ctx(module)
    libs = sorted({gemm._suffix(reg_type(k.acc_dtype)) for k in prog.kernels if gemm.uses_gemm(k)})
    return module, order, ws, tuple(libs)


def _entry(module: ir.Module, prog: Program, order, fns, ws_bytes: int, profile: bool = False) -> None:
    ptr = I8.as_pointer()
    fnty = ir.FunctionType(ir.VoidType(), [ptr.as_pointer(), I64, I64, I32.as_pointer(), I64.as_pointer()])
    entry = ir.Function(module, fnty, "entry")
    bufs, tid, nthreads, err, bar = entry.args
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    barrier = barrier_fn(module)
    many = b.icmp_signed(">", nthreads, ir.Constant(I64, 1))
    restore = _flush_denormals(module, b)
    pos = {n: i for i, n in enumerate(order)}
    ws = None
    if ws_bytes:
        base = b.load(b.gep(bufs, [ir.Constant(I64, len(order))]))
        ws = b.gep(base, [b.mul(tid, ir.Constant(I64, ws_bytes))], inbounds=True)
    split = [_splits(k) for k in prog.kernels]
    stamp = _stamper(module, b, bufs, len(order), tid) if profile else None
    for i, (kern, fn) in enumerate(zip(prog.kernels, fns)):
        kb_names = list(kern.inputs) + [o for o in kern.outputs if o not in kern.inputs]
        args = []
        for n in kb_names:
            raw = b.load(b.gep(bufs, [ir.Constant(I64, pos[n])]))
            args.append(b.bitcast(raw, mem_type(prog.buffers[n].dtype).as_pointer()))
        if gemm.uses_gemm(kern):
            # The kernel splits its own work by (thread, nthreads).
            stride = ir.Constant(I64, ws_bytes)
            if kern.flops >= PARALLEL_MIN_WORK:
                b.call(fn, args + [tid, nthreads, err, ws, bar, stride])
            else:
                with b.if_then(b.icmp_signed("==", tid, ir.Constant(I64, 0))):
                    b.call(fn, args + [ir.Constant(I64, 0), ir.Constant(I64, 1), err, ws, bar, stride])
        else:
            extent = _extent(kern)
            lo, hi = _split(b, extent, tid, nthreads, _parallel(kern))
            with b.if_then(b.icmp_signed("<", lo, hi)):
                b.call(fn, args + [lo, hi, err])
        # Consecutive kernels that both run on thread 0 alone need no barrier
        # between them (program order on one thread suffices), and none is
        # needed after the last kernel: the runtime joins the threads.
        # Waiting is costly when the cores are shared and a partner thread
        # is descheduled.
        # The profiled build also waits after a split last kernel, so that
        # thread 0's stamp covers every thread's share of it.
        if (i + 1 < len(prog.kernels) and (split[i] or split[i + 1])) or (stamp is not None and split[i]):
            with b.if_then(many):
                b.call(barrier, [bar, nthreads])
        if stamp is not None:
            stamp(i + 1)
    if restore is not None:
        restore()
    b.ret_void()


def _stamper(module: ir.Module, b: ir.IRBuilder, bufs, n_order: int, tid):
    """Profiled build: writes slot 0 now and returns `stamp(slot)`, which
    makes thread 0 store a timestamp into the timing array's `slot`."""
    raw = b.load(b.gep(bufs, [ir.Constant(I64, n_order + 1)]))
    times = b.bitcast(raw, I64.as_pointer())
    is0 = b.icmp_signed("==", tid, ir.Constant(I64, 0))

    def stamp(slot: int) -> None:
        with b.if_then(is0):
            b.store(timing.emit_timestamp(module, b), b.gep(times, [ir.Constant(I64, slot)]))

    stamp(0)
    return stamp


# MXCSR flush-to-zero (results) and denormals-are-zero (operands) bits.
_MXCSR_FTZ_DAZ = 0x8040


def _flush_denormals(module: ir.Module, b: ir.IRBuilder):
    """Run the program with denormal floats flushed to zero (as XLA's CPU
    runtime does) and return a callable that restores the caller's mode.
    Arithmetic on denormals is ~100x slower on x86, and training state
    produces them routinely: Adam's first moment of a parameter whose
    gradient stays zero (a dead ReLU unit) decays geometrically into the
    denormal range. Each calling thread sets and restores its own MXCSR,
    so Python and numpy keep IEEE denormals."""
    if not module.triple.startswith("x86_64"):
        return None
    void, ptr = ir.VoidType(), I8.as_pointer()
    stmxcsr = intrinsic(module, "llvm.x86.sse.stmxcsr", void, [ptr])
    ldmxcsr = intrinsic(module, "llvm.x86.sse.ldmxcsr", void, [ptr])
    saved, flushed = b.alloca(I32), b.alloca(I32)
    b.call(stmxcsr, [b.bitcast(saved, ptr)])
    b.store(b.or_(b.load(saved), ir.Constant(I32, _MXCSR_FTZ_DAZ)), flushed)
    b.call(ldmxcsr, [b.bitcast(flushed, ptr)])
    return lambda: b.call(ldmxcsr, [b.bitcast(saved, ptr)])


def _entry_ctx(module: ir.Module) -> None:
    """`void entry_ctx(i64* ctx)`: entry(ctx[0], ..., ctx[4]). Calling through
    ctypes costs per argument, so the runtime prebuilds ctx and passes one."""
    entry = module.globals["entry"]
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer()]), "entry_ctx")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ctx = fn.args[0]
    vals = [b.load(b.gep(ctx, [ir.Constant(I64, i)])) for i in range(5)]
    types = [t for t in entry.function_type.args]
    args = [v if t == I64 else b.inttoptr(v, t) for v, t in zip(vals, types)]
    b.call(entry, args)
    b.ret_void()


def _splits(kern) -> bool:
    """Whether several threads run parts of the kernel (else thread 0 only)."""
    if gemm.uses_gemm(kern):
        return kern.flops >= PARALLEL_MIN_WORK
    return bool(_parallel(kern))


def _extent(kern) -> int:
    """The length of the loop threads split: the outermost loop, or an
    attention kernel's (batch, query block) tasks."""
    if kern.kind == "attention":
        return attention.tasks(kern)
    return kern.shape[0] if kern.shape else 1


def _parallel(kern) -> bool:
    return kern.kind != "scatter" and kern.flops >= PARALLEL_MIN_WORK and kern.shape and _extent(kern) > 1


def _split(b: ir.IRBuilder, extent: int, tid, nthreads, parallel: bool):
    n = ir.Constant(I64, extent)
    if not parallel:
        is0 = b.icmp_signed("==", tid, ir.Constant(I64, 0))
        return ir.Constant(I64, 0), b.select(is0, n, ir.Constant(I64, 0))
    lo = b.sdiv(b.mul(n, tid), nthreads)
    hi = b.sdiv(b.mul(n, b.add(tid, ir.Constant(I64, 1))), nthreads)
    return lo, hi
