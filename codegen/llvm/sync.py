"""Thread synchronisation in generated code: the barrier every thread of a
multi-threaded program call meets between kernels (codegen/llvm/module.py)
and inside a GEMM whose threads split K (codegen/llvm/gemm.py)."""

from __future__ import annotations

from llvmlite import ir

from graphc.codegen.llvm.expr import I64, intrinsic

# Barrier spin rounds (~a few microseconds) before waiting threads start
# yielding their core.
SPIN_LIMIT = 2000


def barrier_fn(module: ir.Module) -> ir.Function:
    """`void graphc_barrier(i64* state, i64 nthreads)`, defined once per
    module: a sense-counting barrier over state = i64[2] (arrived,
    generation), reusable any number of times."""
    fn = module.globals.get("graphc_barrier")
    if fn is not None:
        return fn
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64]), "graphc_barrier")
    fn.linkage = "internal"
    state, n = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    count_ptr, gen_ptr = state, b.gep(state, [ir.Constant(I64, 1)])
    gen = b.load_atomic(gen_ptr, "acquire", 8)
    arrived = b.atomic_rmw("add", count_ptr, ir.Constant(I64, 1), "acq_rel")
    last = b.icmp_signed("==", arrived, b.sub(n, ir.Constant(I64, 1)))
    with b.if_else(last) as (then, otherwise):
        with then:
            b.store_atomic(ir.Constant(I64, 0), count_ptr, "monotonic", 8)
            b.atomic_rmw("add", gen_ptr, ir.Constant(I64, 1), "release")
        with otherwise:
            # Spin with `pause`; after SPIN_LIMIT rounds yield the core on
            # every round, so a descheduled partner thread (2 cores shared
            # with other work) gets to run instead of being starved.
            spin = b.append_basic_block("spin")
            out = b.append_basic_block("out")
            pre = b.block
            b.branch(spin)
            b.position_at_end(spin)
            rounds = b.phi(I64)
            rounds.add_incoming(ir.Constant(I64, 0), pre)
            b.call(intrinsic(module, "llvm.x86.sse2.pause", ir.VoidType(), []), [])
            with b.if_then(b.icmp_signed(">", rounds, ir.Constant(I64, SPIN_LIMIT)), likely=False):
                b.call(intrinsic(module, "sched_yield", ir.IntType(32), []), [])
            rounds.add_incoming(b.add(rounds, ir.Constant(I64, 1)), b.block)
            same = b.icmp_signed("==", b.load_atomic(gen_ptr, "acquire", 8), gen)
            b.cbranch(same, spin, out)
            b.position_at_end(out)
    b.ret_void()
    return fn
