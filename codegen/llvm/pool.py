"""Native hand-off for the runtime's worker threads (runtime/threads.py `_Pool`).

Waking a blocked thread (a lock release: futex wake, an inter-processor
interrupt to an idle core, ~20-40 us on a VM) and joining it through Python
locks and the GIL cost ~100 us per call: as much as a 256x256 SGEMM's
half. So after a job a worker keeps spinning (in native code, GIL released)
for `SPIN_CYCLES` on a generation counter and starts the next job within
~1 us; the caller waits for the workers by spinning on their done counters.
A worker that saw no job for that long marks itself asleep and returns to
Python to block on its lock; the caller wakes (releases the lock of) only
workers that are asleep.

State: an i64 array, one 64-byte line per field:
  line 0: gen (job generation)    line 1: [fn, ctxs] (entry_ctx address,
  address of an i64 array of per-thread ctx addresses)
  line 2 + 2t: done[t] (last generation worker t finished)
  line 3 + 2t: asleep[t] (1: blocked, or about to block, on its lock)

    void graphc_pool_worker(i64* S, i64 tid, i64 spin_cycles)
    i64  graphc_pool_post(i64* S, i64 nthreads, i64 fn, i64 ctxs)  -> mask of workers to wake
    void graphc_pool_wait(i64* S, i64 nthreads)

The sleep protocol (seq_cst): a worker stores asleep=1, then reads gen; the
caller stores gen, then exchanges asleep with 0. One of them sees the other:
either the worker sees the new job (and takes its asleep flag back with an
exchange; if the caller got it first, the caller releases its lock and the
worker runs the job after acquiring it), or the caller sees asleep=1 and
releases the lock.
"""

from __future__ import annotations

from llvmlite import ir

from graphc.codegen.llvm import target
from graphc.codegen.llvm.expr import I64, intrinsic

LINE = 8  # i64s per 64-byte line
# How long (TSC cycles, ~1 ms) an idle worker spins before it blocks.
SPIN_CYCLES = 1 << 22
# Spin rounds between sched_yield calls (lets a descheduled partner run when
# threads outnumber free cores).
YIELD_EVERY = 256


def state_words(nthreads: int) -> int:
    return LINE * (2 + 2 * max(nthreads, 1))


def _field(b, s, line: int | ir.Value, word: int = 0):
    if isinstance(line, int):
        idx = ir.Constant(I64, line * LINE + word)
    else:
        idx = b.add(b.mul(line, ir.Constant(I64, LINE)), ir.Constant(I64, word))
    return b.gep(s, [idx], inbounds=True)


def _done(b, s, t):
    return _field(b, s, b.add(ir.Constant(I64, 2), b.mul(t, ir.Constant(I64, 2))))


def _asleep(b, s, t):
    return _field(b, s, b.add(ir.Constant(I64, 3), b.mul(t, ir.Constant(I64, 2))))


def _pause(module, b):
    b.call(intrinsic(module, "llvm.x86.sse2.pause", ir.VoidType(), []), [])


def _yield(module, b):
    b.call(intrinsic(module, "sched_yield", ir.IntType(32), []), [])


def module_ir() -> str:
    triple, layout = target.triple_and_layout()
    m = ir.Module(name="graphc_pool")
    m.triple, m.data_layout = triple, layout
    p64 = I64.as_pointer()
    c = lambda v: ir.Constant(I64, v)  # noqa: E731
    rdtsc = intrinsic(m, "llvm.readcyclecounter", I64, [])
    entry_ty = ir.FunctionType(ir.VoidType(), [p64])

    # --- worker -----------------------------------------------------------
    fn = ir.Function(m, ir.FunctionType(ir.VoidType(), [p64, I64, I64]), "graphc_pool_worker")
    s, tid, spin = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    done_p, asleep_p, gen_p = _done(b, s, tid), _asleep(b, s, tid), _field(b, s, 0)
    my0 = b.load_atomic(done_p, "monotonic", 8)
    t0 = b.call(rdtsc, [])
    head = fn.append_basic_block("head")
    run = fn.append_basic_block("run")
    idle = fn.append_basic_block("idle")
    check = fn.append_basic_block("check")
    sleep = fn.append_basic_block("sleep")
    raced = fn.append_basic_block("raced")
    out = fn.append_basic_block("out")
    pre = b.block
    b.branch(head)
    b.position_at_end(head)
    my = b.phi(I64, "my")
    start = b.phi(I64, "start")
    rounds = b.phi(I64, "rounds")
    my.add_incoming(my0, pre)
    start.add_incoming(t0, pre)
    rounds.add_incoming(c(0), pre)
    g = b.load_atomic(gen_p, "acquire", 8)
    b.cbranch(b.icmp_signed("!=", g, my), run, idle)
    # run the job of generation g
    b.position_at_end(run)
    fnaddr = b.load(_field(b, s, 1, 0))
    ctxs = b.inttoptr(b.load(_field(b, s, 1, 1)), p64)
    ctx = b.load(b.gep(ctxs, [tid], inbounds=True))
    b.call(b.inttoptr(fnaddr, entry_ty.as_pointer()), [b.inttoptr(ctx, p64)])
    b.store_atomic(g, done_p, "release", 8)
    t1 = b.call(rdtsc, [])
    my.add_incoming(g, run)
    start.add_incoming(t1, run)
    rounds.add_incoming(c(0), run)
    b.branch(head)
    # spin
    b.position_at_end(idle)
    _pause(m, b)
    r1 = b.add(rounds, c(1))
    with b.if_then(b.icmp_signed("==", b.and_(r1, c(YIELD_EVERY - 1)), c(0))):
        _yield(m, b)
    elapsed = b.sub(b.call(rdtsc, []), start)
    idle_end = b.block
    b.cbranch(b.icmp_unsigned(">", elapsed, spin), check, head)
    my.add_incoming(my, idle_end)
    start.add_incoming(start, idle_end)
    rounds.add_incoming(r1, idle_end)
    # go to sleep unless a job came in meanwhile
    b.position_at_end(check)
    b.store_atomic(c(1), asleep_p, "seq_cst", 8)
    g2 = b.load_atomic(gen_p, "seq_cst", 8)
    b.cbranch(b.icmp_signed("==", g2, my), sleep, raced)
    b.position_at_end(sleep)
    b.branch(out)
    b.position_at_end(raced)
    old = b.atomic_rmw("xchg", asleep_p, c(0), "seq_cst")
    # took the flag back: run the job here; else the caller releases our
    # lock: return, acquire it, come back.
    t2 = b.call(rdtsc, [])
    raced_end = b.block
    b.cbranch(b.icmp_signed("==", old, c(1)), head, out)
    my.add_incoming(my, raced_end)
    start.add_incoming(t2, raced_end)
    rounds.add_incoming(c(0), raced_end)
    b.position_at_end(out)
    b.ret_void()

    # --- post -------------------------------------------------------------
    fn = ir.Function(m, ir.FunctionType(I64, [p64, I64, I64, I64]), "graphc_pool_post")
    s, n, fnaddr, ctxs = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.store(fnaddr, _field(b, s, 1, 0))
    b.store(ctxs, _field(b, s, 1, 1))
    gen_p = _field(b, s, 0)
    g = b.add(b.load(gen_p), c(1))
    b.store_atomic(g, gen_p, "seq_cst", 8)
    pre = b.block
    loop = fn.append_basic_block("loop")
    done = fn.append_basic_block("done")
    b.cbranch(b.icmp_signed(">", n, c(1)), loop, done)
    b.position_at_end(loop)
    t = b.phi(I64)
    mask = b.phi(I64)
    t.add_incoming(c(1), pre)
    mask.add_incoming(c(0), pre)
    old = b.atomic_rmw("xchg", _asleep(b, s, t), c(0), "seq_cst")
    bit = b.shl(b.and_(old, c(1)), t)
    mask2 = b.or_(mask, bit)
    t2 = b.add(t, c(1))
    t.add_incoming(t2, loop)
    mask.add_incoming(mask2, loop)
    b.cbranch(b.icmp_signed("<", t2, n), loop, done)
    b.position_at_end(done)
    res = b.phi(I64)
    res.add_incoming(c(0), pre)
    res.add_incoming(mask2, loop)
    b.ret(res)

    # --- wait -------------------------------------------------------------
    fn = ir.Function(m, ir.FunctionType(ir.VoidType(), [p64, I64]), "graphc_pool_wait")
    s, n = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    g = b.load(_field(b, s, 0))
    pre = b.block
    outer = fn.append_basic_block("thread")
    spin_b = fn.append_basic_block("spin")
    nxt = fn.append_basic_block("next")
    done = fn.append_basic_block("done")
    b.cbranch(b.icmp_signed(">", n, c(1)), outer, done)
    b.position_at_end(outer)
    t = b.phi(I64)
    t.add_incoming(c(1), pre)
    b.branch(spin_b)
    b.position_at_end(spin_b)
    rounds = b.phi(I64)
    rounds.add_incoming(c(0), outer)
    d = b.load_atomic(_done(b, s, t), "acquire", 8)
    is_done = b.icmp_signed("==", d, g)
    body = fn.append_basic_block("wait")
    b.cbranch(is_done, nxt, body)
    b.position_at_end(body)
    _pause(m, b)
    r1 = b.add(rounds, c(1))
    with b.if_then(b.icmp_signed("==", b.and_(r1, c(YIELD_EVERY - 1)), c(0))):
        _yield(m, b)
    rounds.add_incoming(r1, b.block)
    b.branch(spin_b)
    b.position_at_end(nxt)
    t2 = b.add(t, c(1))
    t.add_incoming(t2, nxt)
    b.cbranch(b.icmp_signed("<", t2, n), outer, done)
    b.position_at_end(done)
    b.ret_void()
    return str(m)
