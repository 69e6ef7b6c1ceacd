"""The dot kernel: tiled shared-memory matmul with register blocking.

Each block computes a 64x64 tile of C = A @ B for one batch element; k
advances 16 at a time through shared memory; each of the 256 threads
accumulates a 4x4 block of C in registers (rows ty + 16*i, columns
tx + 16*j, so shared-memory reads are conflict-free and the epilogue's
stores coalesce). A and B are affine views (kernel-form `Operand`), so a
transposed operand costs nothing: the tile loader picks, per operand, the
thread-to-element mapping that makes global reads consecutive. The fused
epilogue (the kernel's stores, reading `acc`) runs on each accumulator.
"""

from __future__ import annotations

from graphc.codegen import kernel as kf
from graphc.codegen.cuda.kernels import (
    MAX_BLOCKS,
    REG,
    THREADS,
    TILE_K,
    TILE_M,
    TILE_N,
    CudaKernel,
    KernelEnv,
    _head,
    _prod,
    _ranges,
    _signature,
    _split,
)
from graphc.ir import dtypes
from graphc.ir.dtypes import DType


def _acc_type(dtype: DType) -> str:
    """Accumulator register type: floats in f32/f64; integers in unsigned
    arithmetic (wraps like numpy, never undefined behaviour)."""
    if dtype.is_float:
        return "double" if dtype is dtypes.float64 else "float"
    return "unsigned long long" if dtype.itemsize == 8 else "unsigned int"


def _operand_base(op: kf.Operand, batch_vars: list[str], name: str) -> str:
    terms = [f"{op.offset}LL"] + [f"{s}LL * {v}" for s, v in zip(op.batch_strides, batch_vars) if s]
    return f"    const long long {name} = {' + '.join(terms)};"


def _tile_loader(op: kf.Operand, env: KernelEnv, side: str, rows: int, cols: int, ctype: str) -> list[str]:
    """Copy one (rows x cols) tile of an operand into shared memory, zero
    outside the matrix. For A the tile is (m x k), for B (k x n); both are
    stored k-major: gc_as[k][m], gc_bs[k][n]."""
    ident = env.idents[op.buffer]
    is_half = env.buffer_dtypes[op.buffer] is dtypes.float16
    # Consecutive threads take consecutive elements along the operand's
    # unit-stride dimension (rows of the tile if row_stride == 1).
    if op.col_stride == 1 or op.row_stride != 1:
        r, c = f"(gc_l / {cols})", f"(gc_l % {cols})"
    else:
        r, c = f"(gc_l % {rows})", f"(gc_l / {rows})"
    if side == "a":
        row0, col0, limits, dst = (
            "gc_m0",
            "gc_k0",
            ("gc_M", "gc_K"),
            "gc_as[gc_c][gc_r]",
        )
    else:
        row0, col0, limits, dst = (
            "gc_k0",
            "gc_n0",
            ("gc_K", "gc_N"),
            "gc_bs[gc_r][gc_c]",
        )
    load = f"{ident}[gc_{side}base + gc_gr * {op.row_stride}LL + gc_gc * {op.col_stride}LL]"
    if is_half:
        load = f"__half2float({load})"
    return [
        f"      for (int gc_l = threadIdx.x; gc_l < {rows * cols}; gc_l += {THREADS}) {{",
        f"        const int gc_r = {r}, gc_c = {c};",
        f"        const long long gc_gr = {row0} + gc_r, gc_gc = {col0} + gc_c;",
        f"        {dst} = (gc_gr < {limits[0]} && gc_gc < {limits[1]}) ? ({ctype}){load} : ({ctype})0;",
        "      }",
    ]


def render_dot(kernel: kf.Kernel, env: KernelEnv) -> list[CudaKernel]:
    *batch, m_size, n_size = kernel.shape
    nbatch = _prod(batch)
    in_dtype = env.buffer_dtypes[kernel.a.buffer]
    ctype = _acc_type(in_dtype)
    names, params = _signature(kernel, env)
    loops = kernel.loop_vars()
    batch_vars = [name for name, _ in loops[:-2]]
    w = env.writer(acc="gc_acc", indent="          ", prefix="e")
    with _ranges(kernel):
        for s in kernel.stores:
            w.store(s)
    lines = [
        _head(kernel.name, params),
        f"  __shared__ {ctype} gc_as[{TILE_K}][{TILE_M} + 1];",
        f"  __shared__ {ctype} gc_bs[{TILE_K}][{TILE_N} + 1];",
        f"  const long long gc_M = {m_size}LL, gc_N = {n_size}LL, gc_K = {kernel.k}LL;",
        "  const int gc_tx = threadIdx.x % 16, gc_ty = threadIdx.x / 16;",
        f"  const long long gc_m0 = (long long)blockIdx.y * {TILE_M}, gc_n0 = (long long)blockIdx.x * {TILE_N};",
        f"  for (long long gc_batch = blockIdx.z; gc_batch < {nbatch}LL; gc_batch += gridDim.z) {{",
    ]
    lines += _split("gc_batch", loops[:-2], "    ")
    lines += [
        _operand_base(kernel.a, batch_vars, "gc_abase"),
        _operand_base(kernel.b, batch_vars, "gc_bbase"),
        f"    {ctype} gc_c4[{REG}][{REG}];",
        "    #pragma unroll",
        f"    for (int gc_i = 0; gc_i < {REG}; ++gc_i)",
        "      #pragma unroll",
        f"      for (int gc_j = 0; gc_j < {REG}; ++gc_j) gc_c4[gc_i][gc_j] = ({ctype})0;",
        f"    for (long long gc_k0 = 0; gc_k0 < gc_K; gc_k0 += {TILE_K}) {{",
    ]
    lines += _tile_loader(kernel.a, env, "a", TILE_M, TILE_K, ctype)
    lines += _tile_loader(kernel.b, env, "b", TILE_K, TILE_N, ctype)
    lines += _inner_product(ctype)
    lines += _epilogue(m_size, n_size, ctype, w.lines, kernel)
    lines += ["  }", "}"]
    grid = (-(-n_size // TILE_N), -(-m_size // TILE_M), max(1, min(nbatch, MAX_BLOCKS)))
    if 0 in (m_size, n_size, nbatch):
        grid = (0, 0, 0)
    return [CudaKernel(kernel.name, "\n".join(lines), names, grid, (THREADS, 1, 1), w.uses_err)]


def _inner_product(ctype: str) -> list[str]:
    return [
        "      __syncthreads();",
        "      #pragma unroll",
        f"      for (int gc_kk = 0; gc_kk < {TILE_K}; ++gc_kk) {{",
        f"        {ctype} gc_a[{REG}], gc_b[{REG}];",
        "        #pragma unroll",
        f"        for (int gc_i = 0; gc_i < {REG}; ++gc_i) gc_a[gc_i] = gc_as[gc_kk][gc_ty + 16 * gc_i];",
        "        #pragma unroll",
        f"        for (int gc_j = 0; gc_j < {REG}; ++gc_j) gc_b[gc_j] = gc_bs[gc_kk][gc_tx + 16 * gc_j];",
        "        #pragma unroll",
        f"        for (int gc_i = 0; gc_i < {REG}; ++gc_i)",
        "          #pragma unroll",
        f"          for (int gc_j = 0; gc_j < {REG}; ++gc_j) gc_c4[gc_i][gc_j] += gc_a[gc_i] * gc_b[gc_j];",
        "      }",
        "      __syncthreads();  // the tiles are overwritten by the next k step",
        "    }",
    ]


def _epilogue(m_size: int, n_size: int, ctype: str, store_lines: list[str], kernel: kf.Kernel) -> list[str]:
    return (
        [
            "    #pragma unroll",
            f"    for (int gc_i = 0; gc_i < {REG}; ++gc_i) {{",
            "      #pragma unroll",
            f"      for (int gc_j = 0; gc_j < {REG}; ++gc_j) {{",
            "        const long long m = gc_m0 + gc_ty + 16 * gc_i, n = gc_n0 + gc_tx + 16 * gc_j;",
            f"        if (m < {m_size}LL && n < {n_size}LL) {{",
            f"          const {ctype} gc_acc = gc_c4[gc_i][gc_j];",
        ]
        + store_lines
        + ["        }", "      }", "    }"]
    )
