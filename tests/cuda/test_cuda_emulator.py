"""The host CUDA emulator (cuda_emu.py) itself: it must run CUDA C the way
a GPU does, or the emulated half of the differential suite proves nothing.
Checked here: float16 conversions bit for bit against numpy, warp
shuffles, barriers (a missing one shows as wrong data, a divergent one as
an error), out-of-bounds writes and copies caught, out-of-memory."""

from __future__ import annotations

import numpy as np
import pytest
from cuda_emu import EmulatedDriver, LaunchError, compiler, host_compile

from graphc.ir import dtypes
from graphc.ir.graph import Graph, input_node, node
from graphc.ir.ops import Op
from graphc.runtime import backends

pytestmark = pytest.mark.skipif(compiler() is None, reason="no host C++ compiler (g++) for the CUDA emulator")

KERNELS = r"""
extern "C" __global__ void block_sum(const float* __restrict__ x, float* __restrict__ out, int* __restrict__ n_ptr) {
  __shared__ float partial[8];
  float v = x[blockIdx.x * blockDim.x + threadIdx.x];
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0;
    for (int w = 0; w < (int)(blockDim.x / 32); ++w) s += partial[w];
    out[blockIdx.x] = s;
  }
}

extern "C" __global__ void shift_down(const int* __restrict__ x, int* __restrict__ out, int* __restrict__ unused) {
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, x[threadIdx.x], 3);
}

// Reads a neighbour's shared value; `sync` says whether the barrier the
// hardware needs is there.
extern "C" __global__ void neighbour(const int* __restrict__ sync, int* __restrict__ out, int* __restrict__ unused) {
  __shared__ int s[64];
  s[threadIdx.x] = (int)threadIdx.x + 100;
  if (*sync) __syncthreads();
  out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

// Threads past `n` return early; the others still meet at the barrier.
extern "C" __global__ void early_exit(const int* __restrict__ n, int* __restrict__ out, int* __restrict__ unused) {
  __shared__ int s[64];
  if ((int)threadIdx.x >= *n) return;
  s[threadIdx.x] = (int)threadIdx.x;
  __syncthreads();
  out[threadIdx.x] = s[*n - 1 - (int)threadIdx.x];
}

extern "C" __global__ void divergent(const int* __restrict__ a, int* __restrict__ out, int* __restrict__ unused) {
  // Half a warp waits in a shuffle for lanes that wait at __syncthreads.
  if (threadIdx.x < 16) out[0] = __shfl_xor_sync(0xffffffffu, 1, 1);
  else __syncthreads();
}

extern "C" __global__ void overflow(const int* __restrict__ a, int* __restrict__ out, int* __restrict__ unused) {
  out[threadIdx.x] = 1;  // out has room for fewer threads
}
"""


@pytest.fixture(scope="module")
def module():
    driver = EmulatedDriver(capacity=1 << 24)
    return driver, driver.module_from_buffer(host_compile(KERNELS, "sm_00"))


def _launch(module, name, block, arrays, grid=1):
    """Run kernel `name` over int32/float32 host arrays; returns them after."""
    driver, mod = module
    fn = mod.get_function(name)
    fn.prepare("P" * len(arrays))
    allocs = [driver.mem_alloc(max(a.nbytes, 4)) for a in arrays]
    try:
        for alloc, a in zip(allocs, arrays):
            driver.memcpy_htod(int(alloc), a)
        fn.prepared_async_call((grid, 1, 1), (block, 1, 1), None, *[int(a) for a in allocs])
        out = [np.empty_like(a) for a in arrays]
        for o, alloc in zip(out, allocs):
            driver.memcpy_dtoh(o, int(alloc))
        return out
    finally:
        for alloc in allocs:
            alloc.free()


def test_warp_shuffles_and_shared_memory_sum_a_block(module):
    x = np.arange(512, dtype=np.float32)
    _, out, _ = _launch(module, "block_sum", 256, [x, np.zeros(2, np.float32), np.zeros(1, np.int32)], grid=2)
    np.testing.assert_array_equal(out, [x[:256].sum(), x[256:].sum()])


def test_shfl_down_keeps_its_own_value_past_the_warp_end(module):
    x = np.arange(64, dtype=np.int32) * 10
    _, out, _ = _launch(module, "shift_down", 64, [x, np.zeros(64, np.int32), np.zeros(1, np.int32)])
    lane = np.arange(64) % 32
    want = np.where(lane + 3 < 32, x + 30, x)
    np.testing.assert_array_equal(out, want)


def test_a_missing_barrier_shows_as_stale_shared_data(module):
    garbage = np.full(64, -1, np.int32)
    _, synced, _ = _launch(module, "neighbour", 64, [np.array([1], np.int32), garbage, np.zeros(1, np.int32)])
    np.testing.assert_array_equal(synced, (np.arange(64) + 1) % 64 + 100)
    _, racy, _ = _launch(module, "neighbour", 64, [np.array([0], np.int32), garbage, np.zeros(1, np.int32)])
    assert (racy != synced).any()


def test_threads_that_returned_do_not_block_the_barrier(module):
    n = np.array([40], np.int32)
    _, out, _ = _launch(module, "early_exit", 64, [n, np.full(64, -1, np.int32), np.zeros(1, np.int32)])
    np.testing.assert_array_equal(out[:40], 39 - np.arange(40))
    assert (out[40:] == -1).all()


def test_a_divergent_barrier_is_an_error_not_a_hang(module):
    with pytest.raises(LaunchError, match="divergent barrier"):
        _launch(module, "divergent", 32, [np.zeros(1, np.int32)] * 3)


def test_writes_past_an_allocation_fail_the_launch(module):
    driver, _ = module
    with pytest.raises(LaunchError, match="wrote outside the allocation"):
        # 32 threads write 128 bytes into 64: the overrun lands in the guard bytes
        _launch(module, "overflow", 32, [np.zeros(1, np.int32), np.zeros(16, np.int32), np.zeros(1, np.int32)])
    assert driver.used == 0  # _launch freed everything


def test_copies_outside_allocations_and_too_much_memory_are_errors():
    driver = EmulatedDriver(capacity=1024)
    alloc = driver.mem_alloc(256)
    with pytest.raises(LaunchError, match="outside every live allocation"):
        driver.memcpy_htod(int(alloc) + 128, np.zeros(200, np.uint8))
    with pytest.raises(MemoryError):
        driver.mem_alloc(1024)
    alloc.free()
    assert driver.mem_get_info() == (1024, 1024)


def _cast(cuda_device, values: np.ndarray, to: dtypes.DType) -> np.ndarray:
    x = input_node("x", values.shape, dtypes.from_numpy(values.dtype))
    return backends.compile_graph(Graph([x], [node(Op.CAST, x, dtype=to)]), "cuda")([values])[0]


@pytest.fixture
def emulated(monkeypatch):
    import cuda_emu

    return cuda_emu.install(monkeypatch)


def test_every_float16_converts_to_float32_exactly(emulated):
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    got = _cast(emulated, halves, dtypes.float32)
    want = halves.astype(np.float32)
    assert got.view(np.uint32).tolist() == want.view(np.uint32).tolist()


@pytest.mark.parametrize("source", [np.float32, np.float64])
def test_float_to_float16_rounds_to_nearest_even(emulated, source):
    rng = np.random.default_rng(0)
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    finite = halves[np.isfinite(halves)].astype(np.float64)
    ordered = np.unique(finite)
    ties = (ordered[:-1] + ordered[1:]) / 2  # exactly halfway: ties to even
    near = np.concatenate([ties * (1 + 1e-7), ties * (1 - 1e-7)])
    special = np.array([0.0, -0.0, np.inf, -np.inf, 65504.0, 65519.99, 65520.0, 1e6, 2.0**-25, 2.0**-26, 1e-30])
    values = np.concatenate([ties, near, special, rng.standard_normal(10000) * 10.0 ** rng.integers(-8, 6, 10000)])
    values = values.astype(source)
    got = _cast(emulated, values, dtypes.float16)
    with np.errstate(over="ignore"):
        want = values.astype(np.float16)
    assert got.view(np.uint16).tolist() == want.view(np.uint16).tolist()
    nan = _cast(emulated, np.array([np.nan], source), dtypes.float16)
    assert np.isnan(nan).all()


def test_the_gpu_benchmark_runs_end_to_end(emulated):
    """bench/bench_cuda.py at toy sizes: its code paths, not its timings."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "bench" / "bench_cuda.py"
    spec = importlib.util.spec_from_file_location("bench_cuda", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.peak_bandwidth() == 16.0  # 2 x 1 GHz x 64 bits
    assert bench.copy_bandwidth(1 << 16, 2) > 0
    gbs, seconds = bench.bench_elementwise(3000, 2)
    assert gbs > 0 and seconds > 0
    ours, _ = bench.bench_matmul(48, 2)
    assert ours > 0
