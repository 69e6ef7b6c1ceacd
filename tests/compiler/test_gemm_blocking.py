"""The GEMM blocking derived from vector width, registers and cache sizes,
and the routine built for other targets' blockings (AVX-512: emitted for
that CPU without running it, and run here with its tile shape)."""

import ctypes
import functools

import llvmlite.binding as llvm
import numpy as np
import pytest

from graphc.codegen.llvm import gemm, target
from graphc.ir import dtypes as dt

AVX512 = "+avx512f,+avx512vl,+avx512bw,+avx512dq,+avx2,+avx,+fma,+f16c"
RNG = np.random.default_rng(3)


def test_host_cache_sizes_are_positive_and_ordered():
    l1, l2, l3 = target.cache_sizes()
    assert 0 < l1 <= l2 <= l3


@pytest.mark.parametrize("bits", [128, 256, 512])
@pytest.mark.parametrize("dtype", [dt.float32, dt.float64])
def test_blocking_fits_registers_and_caches(bits, dtype):
    caches = (32 * 1024, 1024 * 1024, 16 * 1024 * 1024)
    blk = gemm.blocking(dtype, bits, caches)
    es = dtype.itemsize
    assert blk.vw * es * 8 == bits
    # accumulators + B vectors + one broadcast fit the register file
    assert blk.mr * blk.nv + blk.nv + 1 <= gemm.vector_registers(bits)
    assert blk.kc * blk.nr * es <= caches[0] // 2
    assert blk.mc * blk.kc * es <= caches[1] // 2
    assert blk.mc % blk.mr == 0 and blk.nc % blk.nr == 0 and blk.kc % 16 == 0
    # packed buffers stay vector aligned inside the scratch
    assert (blk.mc * blk.kc * es) % 64 == 0 and (blk.kc * blk.nc * es) % 64 == 0


def test_blocking_follows_cache_sizes():
    small = gemm.blocking(dt.float32, 256, (16 * 1024, 128 * 1024, 1024 * 1024))
    big = gemm.blocking(dt.float32, 256, (64 * 1024, 2048 * 1024, 32 * 1024 * 1024))
    assert small.kc < big.kc and small.mc < big.mc and small.nc <= big.nc
    assert gemm.blocking(dt.float32, 512, (32768, 1 << 20, 1 << 24)).mr == 14
    assert gemm.blocking(dt.float32, 256, (32768, 1 << 20, 1 << 24)).mr == 6


def test_avx512_routine_emits_zmm_fmas():
    blk = gemm.blocking(dt.float32, 512, (32 * 1024, 1024 * 1024, 16 * 1024 * 1024))
    tm = target.machine_for("skylake-avx512", AVX512, "x86_64-unknown-linux-gnu")
    mod = target.optimize(gemm.library_ir("f32", blk), target.GEMM_OPT_LEVEL, tm)
    asm = tm.emit_assembly(mod)
    fmas = [line for line in asm.splitlines() if "vfmadd" in line and "zmm" in line]
    # the micro-kernel's 14 x 2 accumulators, once per k step
    assert len(fmas) >= blk.mr * blk.nv
    assert "graphc_gemm_f32:" in asm


_EPI = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, *[ctypes.c_int64] * 5)


@functools.cache
def _library(blk, suffix):
    """The library with blocking `blk`, compiled for this host (LLVM splits
    wider vectors): (engine, callable)."""
    mod = target.optimize(gemm.library_ir(suffix, blk), target.GEMM_OPT_LEVEL)
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), target.new_target_machine())
    engine.add_object_file(llvm.ObjectFileRef.from_data(target.emit_object(mod)))
    engine.finalize_object()
    addr = engine.get_function_address(gemm.gemm_symbol(gemm.gemm_elem(suffix)))
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    return engine, ctypes.CFUNCTYPE(None, ptr, i64, i64, i64, ptr, i64, i64, i64, *[i64] * 7, ptr, _EPI, ptr, ptr, i64)(
        addr
    )


def _run_library(blk, suffix, a, b, m_range, n_range, direct=False):
    """Run the library with blocking `blk` on a @ b for the given rows and
    columns, collecting the epilogue's blocks (NaN elsewhere). `direct`:
    also hand the routine the output (rows 3 elements longer than N, the
    padding returned too) to sum full tiles in."""
    elem = np.float32 if suffix == "f32" else np.float64
    fn = _library(blk, suffix)[1]
    m, k = a.shape
    n = b.shape[1]
    padded = np.full((m, n + 3), np.nan, elem)
    out = padded[:, :n]
    es = np.dtype(elem).itemsize

    def epi(_ctx, crows, ldc, ic, mc, jc, nc):
        assert ldc <= blk.ldc
        for r in range(mc):
            row = (ctypes.c_float if suffix == "f32" else ctypes.c_double) * nc
            vals = np.frombuffer(row.from_address(crows + r * ldc * es), elem)
            out[ic + r, jc : jc + nc] = vals

    cb = _EPI(epi)
    rows = m_range[1] - m_range[0]
    nbytes = blk.scratch_elems(rows) * es
    raw = np.zeros(nbytes + 128, np.uint8)
    ws = raw.ctypes.data + (-raw.ctypes.data) % 64
    # a as stored (row-major), b through its transpose's strides
    bt = np.ascontiguousarray(b.T)
    c, ldc = (padded.ctypes.data, n + 3) if direct else (None, 0)
    fn(a.ctypes.data, 0, k, 1, bt.ctypes.data, 0, 1, k, m, n, k, *m_range, *n_range, ws, cb, None, c, ldc)
    return padded if direct else out


@pytest.mark.parametrize("bits", [512, 256])
@pytest.mark.parametrize("suffix", ["f32", "f64"])
def test_other_target_blockings_compute_the_product(bits, suffix):
    # Small caches so that a small product crosses every block edge.
    dtype = dt.float32 if suffix == "f32" else dt.float64
    blk = gemm.blocking(dtype, bits, (8 * 1024, 64 * 1024, 256 * 1024))
    elem = dtype.np
    m, k, n = 2 * blk.mc + blk.mr + 3, 2 * blk.kc + 5, 2 * blk.nr + 7
    a = RNG.uniform(-1, 1, (m, k)).astype(elem)
    b = RNG.uniform(-1, 1, (k, n)).astype(elem)
    want = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-4 if suffix == "f32" else 1e-10
    got = _run_library(blk, suffix, a, b, (0, m), (0, n))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    # one thread's share: rows and columns inside the matrix
    lo, hi = blk.mr, m - 2
    got = _run_library(blk, suffix, a, b, (lo, hi), (blk.nr, n))
    np.testing.assert_allclose(got[lo:hi, blk.nr :], want[lo:hi, blk.nr :], rtol=tol, atol=tol)
    assert np.isnan(got[:lo]).all() and np.isnan(got[lo:hi, : blk.nr]).all()


@pytest.mark.parametrize("kblocks", [1, 3])
def test_direct_output_sums_full_tiles_in_place(kblocks):
    # Full tiles are summed in the output, edge tiles go through the
    # epilogue; nothing outside the thread's rows and columns (or past N,
    # in the row padding) is written.
    blk = gemm.blocking(dt.float32, 512, (8 * 1024, 64 * 1024, 256 * 1024))
    m, n = 2 * blk.mc + blk.mr + 3, 2 * blk.nr + 7
    k = blk.kc if kblocks == 1 else 2 * blk.kc + 5
    a = RNG.uniform(-1, 1, (m, k)).astype(np.float32)
    b = RNG.uniform(-1, 1, (k, n)).astype(np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64)
    got = _run_library(blk, "f32", a, b, (0, m), (0, n), direct=True)
    np.testing.assert_allclose(got[:, :n], want, rtol=1e-4, atol=1e-4)
    assert np.isnan(got[:, n:]).all()
    lo, hi = blk.mr, m - 2
    got = _run_library(blk, "f32", a, b, (lo, hi), (blk.nr, n), direct=True)
    np.testing.assert_allclose(got[lo:hi, blk.nr : n], want[lo:hi, blk.nr :], rtol=1e-4, atol=1e-4)
    assert np.isnan(got[:lo]).all() and np.isnan(got[hi:]).all() and np.isnan(got[:, : blk.nr]).all()
    assert np.isnan(got[:, n:]).all()


@pytest.mark.parametrize("bits", [512, 256])
@pytest.mark.parametrize("k_len", ["short", "whole", "two blocks"])
def test_every_partial_tile_height_runs_an_edge_micro_kernel(bits, k_len):
    # A block's last rows (1..MR-1 of them) go to the narrowest micro-kernel
    # that covers them; each remainder gets the exact product, with one K
    # block (up to `kc_whole` long) and with sums carried across two.
    blk = gemm.blocking(dt.float32, bits, (32 * 1024, 1024 * 1024, 16 * 1024 * 1024))
    assert gemm.edge_rows(blk) and max(gemm.edge_rows(blk)) < blk.mr
    k = {"short": 40, "whole": blk.kc_whole, "two blocks": blk.kc_whole + 24}[k_len]
    n = blk.nr + 5
    b = RNG.uniform(-1, 1, (k, n)).astype(np.float32)
    for rem in range(1, blk.mr):
        m = 2 * blk.mr + rem
        a = RNG.uniform(-1, 1, (m, k)).astype(np.float32)
        want = a.astype(np.float64) @ b.astype(np.float64)
        for direct in (False, True):
            got = _run_library(blk, "f32", a, b, (0, m), (0, n), direct=direct)[:, :n]
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"{rem} rows, direct={direct}")
