"""Timestamps in generated code, for the profiled build of a program.

`emit_timestamp(module, builder)` returns an i64 tick count: the CPU's cycle
counter (`llvm.readcyclecounter`, rdtsc: ~20 cycles, no call) on x86-64,
elsewhere CLOCK_MONOTONIC in nanoseconds through `clock_gettime` (registered
with LLVM's symbol resolver by codegen/llvm/target.py; on other targets
readcyclecounter may read a register user code is not allowed to read).
The runtime converts ticks to seconds by calibrating this same function
against `time.perf_counter` (runtime/profiling.py), so callers never need
to know which clock it is.

`clock_module_ir()` is a one-function module, `i64 graphc_timestamp()`,
that the runtime calls from Python for that calibration.
"""

from __future__ import annotations

from llvmlite import ir

from graphc.codegen.llvm import target
from graphc.codegen.llvm.expr import I32, I64, intrinsic

# clock_gettime's clock id for CLOCK_MONOTONIC (Linux; macOS numbers it 6).
_CLOCK_MONOTONIC = {"linux": 1, "darwin": 6}


def uses_cycle_counter(triple: str) -> bool:
    return triple.startswith("x86_64")


def emit_timestamp(module: ir.Module, b: ir.IRBuilder) -> ir.Value:
    """An i64 tick count read at this point of the generated code."""
    if uses_cycle_counter(module.triple):
        return b.call(intrinsic(module, "llvm.readcyclecounter", I64, []), [])
    import sys

    clock_id = _CLOCK_MONOTONIC.get(sys.platform, 1)
    timespec = ir.LiteralStructType([I64, I64])
    fn = intrinsic(module, "clock_gettime", I32, [I32, timespec.as_pointer()])
    ts = b.alloca(timespec)
    b.call(fn, [ir.Constant(I32, clock_id), ts])
    zero = ir.Constant(I32, 0)
    sec = b.load(b.gep(ts, [zero, zero]))
    nsec = b.load(b.gep(ts, [zero, ir.Constant(I32, 1)]))
    return b.add(b.mul(sec, ir.Constant(I64, 1_000_000_000)), nsec)


def clock_module_ir() -> str:
    """`i64 graphc_timestamp()`: the generated code's clock, callable from
    Python (for calibration)."""
    triple, layout = target.triple_and_layout()
    module = ir.Module(name="graphc_clock")
    module.triple, module.data_layout = triple, layout
    fn = ir.Function(module, ir.FunctionType(I64, []), "graphc_timestamp")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.ret(emit_timestamp(module, b))
    return str(module)
