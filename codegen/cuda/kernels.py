"""One CUDA C template per kernel kind of the kernel form.

Each `render_*` function takes a `codegen.kernel.Kernel` and a `KernelEnv`
(buffer identifiers and dtypes, the error-code counter) and returns one or
more `CudaKernel`s: the `__global__` function's text and how to launch it.

- elementwise: a grid-stride loop over the flat iteration space; the flat
  position is split into the loop variables i0, i1, ...
- reduce: one thread block per output row (shared memory + warp shuffles)
  when the reduced extent is large, one thread per row when it is small.
- dot: a 64x64 output tile per block, 16-deep k steps staged in shared
  memory, a 4x4 register block per thread; the fused epilogue runs on the
  accumulators.
- scatter: a zero-fill kernel, then atomic adds over the source elements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphc.codegen import kernel as kf
from graphc.codegen.cuda import cdefs
from graphc.codegen.cuda.expr import CudaRenderError, ExprWriter, scalar_op
from graphc.ir import dtypes
from graphc.ir.dtypes import DType
from graphc.ir.ops import Op

THREADS = 256  # threads per block of every kernel
MAX_BLOCKS = 65535  # grid cap; loops stride over the rest
SERIAL_REDUCE_MAX = 64  # reduced extents up to this use one thread per row
TILE_M, TILE_N, TILE_K, REG = 64, 64, 16, 4


@dataclass
class CudaKernel:
    """A rendered `__global__` function and its launch configuration."""

    name: str
    text: str
    params: list[str]  # kernel-form buffer names, in parameter order
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    uses_err: bool
    err_param: bool = True  # whether `gc_err` ends the parameter list


@dataclass
class KernelEnv:
    """What kernels of one program share: buffer identifiers, dtypes, and
    the table of `check` codes (code -> kernel name) the runtime reports."""

    idents: dict[str, str]
    buffer_dtypes: dict[str, DType]
    buffer_shapes: dict[str, tuple[int, ...]]
    shared: set[str] = field(default_factory=set)  # buffers that share memory with another (no __restrict__)
    check_kernels: dict[int, str] = field(default_factory=dict)
    current: str = ""

    def next_check(self) -> int:
        code = len(self.check_kernels) + 1
        self.check_kernels[code] = self.current
        return code

    def writer(self, acc: str | None = None, indent: str = "    ", prefix: str = "v") -> ExprWriter:
        return ExprWriter(self.idents, self.buffer_dtypes, acc, self.next_check, indent, prefix)


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _blocks(work: int, per_block: int = THREADS) -> int:
    return max(0, min(-(-work // per_block), MAX_BLOCKS))


def _split(flat: str, loops: list[tuple[str, int]], indent: str) -> list[str]:
    """Declare each loop variable from the flat position `flat` (row-major)."""
    lines, divisor = [], 1
    for name, extent in reversed(loops):
        if extent == 1:
            lines.append(f"{indent}const long long {name} = 0;")
            continue
        quotient = flat if divisor == 1 else f"({flat} / {divisor}LL)"
        if divisor * extent == _prod(n for _, n in loops):
            lines.append(f"{indent}const long long {name} = {quotient};")
        else:
            lines.append(f"{indent}const long long {name} = {quotient} % {extent}LL;")
        divisor *= extent
    return list(reversed(lines))


def _signature(kernel: kf.Kernel, env: KernelEnv, extra: tuple[str, ...] = ()) -> tuple[list[str], str]:
    """Parameter names (kernel-form buffers) and the C parameter list."""
    written = set(kernel.outputs) | set(extra)
    names = list(kernel.inputs) + [b for b in kernel.outputs if b not in kernel.inputs]
    names += [b for b in extra if b not in names]
    parts = []
    for b in names:
        ctype = cdefs.storage(env.buffer_dtypes[b])
        # The memory plan may run a kernel in place (output over an input):
        # such pointers alias, so they must not be declared __restrict__.
        restrict = "" if b in env.shared else " __restrict__"
        const = "" if b in written else "const "
        parts.append(f"{const}{ctype}*{restrict} {env.idents[b]}")
    parts.append("unsigned long long* __restrict__ gc_err")
    return names, ", ".join(parts)


def _head(name: str, params: str) -> str:
    return f'extern "C" __global__ void __launch_bounds__({THREADS}) {name}({params}) {{'


def _ranges(kernel: kf.Kernel) -> kf._RangeScope:
    return kf.loop_ranges(dict(kernel.loop_vars() + kernel.red_vars()))


# ---------------------------------------------------------------------------
# elementwise


def render_elementwise(kernel: kf.Kernel, env: KernelEnv) -> list[CudaKernel]:
    total = _prod(kernel.shape)
    names, params = _signature(kernel, env)
    w = env.writer(indent="    ")
    with _ranges(kernel):
        for s in kernel.stores:
            w.store(s)
    lines = [
        _head(kernel.name, params),
        f"  for (long long gc_flat = blockIdx.x * (long long){THREADS} + threadIdx.x; gc_flat < {total}LL;",
        f"       gc_flat += (long long)gridDim.x * {THREADS}) {{",
    ]
    lines += _split("gc_flat", kernel.loop_vars(), "    ")
    lines += w.lines + ["  }", "}"]
    return [
        CudaKernel(
            kernel.name,
            "\n".join(lines),
            names,
            (_blocks(total), 1, 1),
            (THREADS, 1, 1),
            w.uses_err,
        )
    ]


# ---------------------------------------------------------------------------
# reduce


@dataclass(frozen=True)
class _Reducer:
    """How one reducer accumulates: the accumulator's dtype and C pieces."""

    dtype: DType  # dtype the accumulator computes in
    init: str
    shuffle_type: str  # type passed through __shfl_xor_sync

    def combine(self, reducer: str, acc: str, other: str) -> str:
        op = {"sum": Op.ADD, "prod": Op.MUL, "max": Op.MAX}[reducer]
        return scalar_op(op, [acc, other], self.dtype)


def _reducer(kernel: kf.Kernel) -> _Reducer:
    vdt = kernel.value.dtype
    dt = dtypes.float32 if vdt is dtypes.float16 else vdt
    if kernel.reducer == "sum" and dt is dtypes.float32:
        # float16/float32 sums accumulate in double: a float32 running sum
        # of 2**25 ones stops at 2**24 (as the CPU backend does).
        dt = dtypes.float64
    if kernel.reducer == "sum":
        init = cdefs.literal(0, dt)
    elif kernel.reducer == "prod":
        init = cdefs.literal(1, dt)
    elif dt.is_float:
        init = cdefs.literal(float("-inf"), dt)
    elif dt.is_bool:
        init = "false"
    else:
        init = cdefs.literal(int(_int_min(dt)), dt)
    shuffle = cdefs.register(dt)
    if dt.is_bool or (dt.is_int and dt.itemsize < 4):
        shuffle = "int"
    return _Reducer(dt, init, shuffle)


def _int_min(dt: DType) -> int:
    return np.iinfo(dt.np).min


def render_reduce(kernel: kf.Kernel, env: KernelEnv) -> list[CudaKernel]:
    if kernel.reducer not in ("sum", "prod", "max", "argmax"):
        raise CudaRenderError(f"kernel {kernel.name}: unknown reducer {kernel.reducer!r}")
    if _prod(kernel.red_shape) <= SERIAL_REDUCE_MAX:
        return _reduce_serial(kernel, env)
    return _reduce_block(kernel, env)


def _acc_decl(kernel: kf.Kernel, red: _Reducer, indent: str) -> list[str]:
    ctype = cdefs.register(red.dtype)
    if kernel.reducer == "argmax":
        return [f"{indent}{ctype} gc_av = {red.init};", f"{indent}long long gc_ai = 0;"]
    return [f"{indent}{ctype} gc_acc = {red.init};"]


def _accumulate(kernel: kf.Kernel, red: _Reducer, value: str, position: str, indent: str) -> list[str]:
    """Fold one (value, flat reduced position) into the accumulator."""
    if kernel.reducer == "argmax":
        v = f"(({cdefs.register(red.dtype)}){value})"
        return [f"{indent}if (gc_argmax_better(gc_av, gc_ai, {v}, {position})) {{ gc_av = {v}; gc_ai = {position}; }}"]
    return [f"{indent}gc_acc = {red.combine(kernel.reducer, 'gc_acc', value)};"]


def _acc_name(kernel: kf.Kernel) -> str:
    return "gc_ai" if kernel.reducer == "argmax" else "gc_acc"


def _reduce_body(kernel: kf.Kernel, env: KernelEnv, red: _Reducer, flat: str, indent: str) -> list[str]:
    """Lines that compute the reduced value at reduced flat position `flat`."""
    w = env.writer(indent=indent)
    with _ranges(kernel):
        value = w.value(kernel.value)
    lines = _split(flat, kernel.red_vars(), indent) + w.lines
    return lines + _accumulate(kernel, red, value, flat, indent)


def _stores(kernel: kf.Kernel, env: KernelEnv, stores, indent: str, prefix: str = "e") -> list[str]:
    w = env.writer(acc=_acc_name(kernel), indent=indent, prefix=prefix)
    with _ranges(kernel):
        for s in stores:
            w.store(s)
    return w.lines


def _reduce_serial(kernel: kf.Kernel, env: KernelEnv) -> list[CudaKernel]:
    rows, width = _prod(kernel.shape), _prod(kernel.red_shape)
    red = _reducer(kernel)
    names, params = _signature(kernel, env)
    lines = [
        _head(kernel.name, params),
        f"  for (long long gc_row = blockIdx.x * (long long){THREADS} + threadIdx.x; gc_row < {rows}LL;",
        f"       gc_row += (long long)gridDim.x * {THREADS}) {{",
    ]
    lines += _split("gc_row", kernel.loop_vars(), "    ")
    lines += _acc_decl(kernel, red, "    ")
    lines.append(f"    for (long long gc_r = 0; gc_r < {width}LL; ++gc_r) {{")
    lines += _reduce_body(kernel, env, red, "gc_r", "      ") + ["    }"]
    lines += _stores(kernel, env, kernel.stores, "    ")
    if kernel.row_stores:
        lines.append(f"    for (long long gc_r = 0; gc_r < {width}LL; ++gc_r) {{")
        lines += _split("gc_r", kernel.red_vars(), "      ")
        lines += _stores(kernel, env, kernel.row_stores, "      ", "w") + ["    }"]
    lines += ["  }", "}"]
    uses_err = any("gc_check" in line for line in lines)
    return [
        CudaKernel(
            kernel.name,
            "\n".join(lines),
            names,
            (_blocks(rows), 1, 1),
            (THREADS, 1, 1),
            uses_err,
        )
    ]


def _block_combine(kernel: kf.Kernel, red: _Reducer) -> list[str]:
    """Warp butterfly, then per-warp partials through shared memory, so that
    every thread of the block ends with the row's result (in a fixed order,
    hence deterministic)."""
    st, ctype, nwarps = red.shuffle_type, cdefs.register(red.dtype), THREADS // 32
    lines = ["    for (int gc_off = 16; gc_off > 0; gc_off >>= 1) {"]
    if kernel.reducer == "argmax":
        lines += [
            f"      const {ctype} gc_ov = ({ctype})__shfl_xor_sync(GC_FULL_MASK, ({st})gc_av, gc_off);",
            "      const long long gc_oi = __shfl_xor_sync(GC_FULL_MASK, gc_ai, gc_off);",
        ]
        lines += _accumulate(kernel, red, "gc_ov", "gc_oi", "      ") + ["    }"]
        lines += [
            "    if ((threadIdx.x & 31) == 0) { gc_pv[threadIdx.x >> 5] = gc_av; gc_pi[threadIdx.x >> 5] = gc_ai; }",
            "    __syncthreads();",
            "    gc_av = gc_pv[0]; gc_ai = gc_pi[0];",
            f"    for (int gc_w = 1; gc_w < {nwarps}; ++gc_w) {{",
        ]
        lines += _accumulate(kernel, red, "gc_pv[gc_w]", "gc_pi[gc_w]", "      ") + ["    }"]
        return lines
    lines += [f"      const {ctype} gc_other = ({ctype})__shfl_xor_sync(GC_FULL_MASK, ({st})gc_acc, gc_off);"]
    lines += _accumulate(kernel, red, "gc_other", "", "      ") + ["    }"]
    lines += [
        "    if ((threadIdx.x & 31) == 0) gc_pv[threadIdx.x >> 5] = gc_acc;",
        "    __syncthreads();",
        "    gc_acc = gc_pv[0];",
        f"    for (int gc_w = 1; gc_w < {nwarps}; ++gc_w) {{",
    ]
    lines += _accumulate(kernel, red, "gc_pv[gc_w]", "", "      ") + ["    }"]
    return lines


def _reduce_block(kernel: kf.Kernel, env: KernelEnv) -> list[CudaKernel]:
    rows, width = _prod(kernel.shape), _prod(kernel.red_shape)
    red = _reducer(kernel)
    names, params = _signature(kernel, env)
    ctype, nwarps = cdefs.register(red.dtype), THREADS // 32
    lines = [_head(kernel.name, params), f"  __shared__ {ctype} gc_pv[{nwarps}];"]
    if kernel.reducer == "argmax":
        lines.append(f"  __shared__ long long gc_pi[{nwarps}];")
    lines.append(f"  for (long long gc_row = blockIdx.x; gc_row < {rows}LL; gc_row += gridDim.x) {{")
    lines += _split("gc_row", kernel.loop_vars(), "    ")
    lines += _acc_decl(kernel, red, "    ")
    lines.append(f"    for (long long gc_r = threadIdx.x; gc_r < {width}LL; gc_r += {THREADS}) {{")
    lines += _reduce_body(kernel, env, red, "gc_r", "      ") + ["    }"]
    lines += _block_combine(kernel, red)
    if kernel.stores:
        lines.append("    if (threadIdx.x == 0) {")
        lines += _stores(kernel, env, kernel.stores, "      ") + ["    }"]
    if kernel.row_stores:
        lines.append(f"    for (long long gc_r = threadIdx.x; gc_r < {width}LL; gc_r += {THREADS}) {{")
        lines += _split("gc_r", kernel.red_vars(), "      ")
        lines += _stores(kernel, env, kernel.row_stores, "      ", "w") + ["    }"]
    lines += ["    __syncthreads();  // gc_pv is reused by the next row", "  }", "}"]
    uses_err = any("gc_check" in line for line in lines)
    return [
        CudaKernel(
            kernel.name,
            "\n".join(lines),
            names,
            (min(rows, MAX_BLOCKS), 1, 1),
            (THREADS, 1, 1),
            uses_err,
        )
    ]


# ---------------------------------------------------------------------------
# scatter


def render_scatter(kernel: kf.Kernel, env: KernelEnv) -> list[CudaKernel]:
    """Zero `out`, then add every source element at its checked target."""
    out_buf = kernel.out
    out_ident = env.idents[out_buf]
    out_numel = _prod(env_shape(env, out_buf))
    zero_name = f"{kernel.name}_zero"
    zero = "\n".join(
        [
            _head(
                zero_name,
                f"{cdefs.storage(env.buffer_dtypes[out_buf])}* __restrict__ {out_ident}",
            ),
            f"  for (long long gc_flat = blockIdx.x * (long long){THREADS} + threadIdx.x; gc_flat < {out_numel}LL;",
            f"       gc_flat += (long long)gridDim.x * {THREADS}) {out_ident}[gc_flat] = 0;",
            "}",
        ]
    )
    total = _prod(kernel.shape)
    names, params = _signature(kernel, env, extra=(out_buf,))
    w = env.writer(indent="    ")
    with _ranges(kernel):
        target = w.value(kernel.target)
        value = w.value(kernel.value)
        for s in kernel.stores:
            w.store(s)
    lines = [
        _head(kernel.name, params),
        f"  for (long long gc_flat = blockIdx.x * (long long){THREADS} + threadIdx.x; gc_flat < {total}LL;",
        f"       gc_flat += (long long)gridDim.x * {THREADS}) {{",
    ]
    lines += _split("gc_flat", kernel.loop_vars(), "    ")
    lines += w.lines + [
        f"    gc_atomic_add(&{out_ident}[{target}], {value});",
        "  }",
        "}",
    ]
    return [
        CudaKernel(
            zero_name,
            zero,
            [out_buf],
            (_blocks(out_numel), 1, 1),
            (THREADS, 1, 1),
            False,
            err_param=False,
        ),
        CudaKernel(
            kernel.name,
            "\n".join(lines),
            names,
            (_blocks(total), 1, 1),
            (THREADS, 1, 1),
            True,
        ),
    ]


def env_shape(env: KernelEnv, name: str) -> tuple[int, ...]:
    return env.buffer_shapes[name]
