"""GPU benchmarks: graphc's generated CUDA kernels measured on the device.

1. Fused elementwise bandwidth: `y = tanh(a * b + c)` over n floats (one
   kernel: 3 reads + 1 write per element) in GB/s, against the GPU's
   theoretical peak (memory clock x bus width) and a device-to-device copy.
2. SGEMM: graphc's tiled matmul in GFLOP/s against torch.matmul (cuBLAS)
   on the same GPU, when a CUDA build of PyTorch is installed.

Times are medians of CUDA-event-timed launches (kernels only, no host
copies). Run: .venv/bin/python bench/bench_cuda.py [--quick]
"""

from __future__ import annotations

import sys

import numpy as np


def _event_time(fn, repeat: int) -> float:
    """Median seconds of `fn()` (queues GPU work) over `repeat` runs."""
    from graphc.runtime import cuda as rt

    drv = rt.driver()
    fn()
    drv.Context.synchronize()
    times = []
    for _ in range(repeat):
        start, end = drv.Event(), drv.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(end.time_since(start) / 1e3)
    return float(np.median(times))


def peak_bandwidth() -> float:
    """Theoretical DRAM bandwidth of device 0 in GB/s (DDR: 2 transfers per clock)."""
    from graphc.runtime import cuda as rt

    drv = rt.driver()
    dev = drv.Device(0)
    clock_khz = dev.get_attribute(drv.device_attribute.MEMORY_CLOCK_RATE)
    bus_bits = dev.get_attribute(drv.device_attribute.GLOBAL_MEMORY_BUS_WIDTH)
    return 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9


def copy_bandwidth(nbytes: int, repeat: int) -> float:
    from graphc.runtime import cuda as rt

    drv = rt.driver()
    src, dst = drv.mem_alloc(nbytes), drv.mem_alloc(nbytes)
    t = _event_time(lambda: drv.memcpy_dtod(dst, src, nbytes), repeat)
    return 2 * nbytes / t / 1e9


def bench_elementwise(n: int, repeat: int) -> tuple[float, float]:
    from graphc.ir import dtypes
    from graphc.ir.graph import Graph, input_node, node
    from graphc.ir.ops import Op
    from graphc.runtime import cuda as rt

    a, b, c = (input_node(name, (n,), dtypes.float32) for name in "abc")
    graph = Graph([a, b, c], [node(Op.TANH, node(Op.ADD, node(Op.MUL, a, b), c))])
    exe = rt.CudaExecutable(graph)
    assert len(exe.module.launches) == 1, "expected one fused kernel"
    exe.upload([np.random.default_rng(0).standard_normal(n).astype(np.float32) for _ in range(3)])
    t = _event_time(lambda: exe.launch(wait=False), repeat)
    return 4 * 4 * n / t / 1e9, t


def bench_matmul(n: int, repeat: int) -> tuple[float, float | None]:
    from graphc.ir import dtypes
    from graphc.ir.graph import Graph, input_node, node
    from graphc.ir.ops import Op
    from graphc.runtime import cuda as rt

    a, b = (
        input_node("a", (n, n), dtypes.float32),
        input_node("b", (n, n), dtypes.float32),
    )
    exe = rt.CudaExecutable(Graph([a, b], [node(Op.DOT, a, b)]))
    exe.upload([np.random.default_rng(1).standard_normal((n, n)).astype(np.float32) for _ in range(2)])
    ours = 2 * n**3 / _event_time(lambda: exe.launch(wait=False), repeat) / 1e9
    return ours, _torch_matmul(n, repeat)


def _torch_matmul(n: int, repeat: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    x, y = torch.randn(n, n, device="cuda"), torch.randn(n, n, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False  # compare like with like: fp32 FMA
    start, end = (
        torch.cuda.Event(enable_timing=True),
        torch.cuda.Event(enable_timing=True),
    )
    times = []
    torch.matmul(x, y)
    for _ in range(repeat):
        start.record()
        torch.matmul(x, y)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return 2 * n**3 / float(np.median(times)) / 1e9


def main(argv: list[str]) -> None:
    from graphc.runtime import cuda as rt

    if not rt.is_available():
        print(f"CUDA unavailable: {rt.unavailable_reason()}")
        return
    quick = "--quick" in argv
    repeat = 5 if quick else 20
    print(f"device: {rt.device_name()} ({rt.device_arch()})")
    peak = peak_bandwidth()
    n = (1 << 22) if quick else (1 << 26)
    copy = copy_bandwidth(4 * n, repeat)
    gbs, t = bench_elementwise(n, repeat)
    print(
        f"elementwise tanh(a*b+c), n={n}: {gbs:.0f} GB/s = {gbs / peak:.0%} of peak {peak:.0f} GB/s, "
        f"{gbs / copy:.0%} of dtod copy {copy:.0f} GB/s ({t * 1e6:.0f} us)"
    )
    print(f"{'n':>6} {'graphc GF/s':>12} {'cuBLAS GF/s':>12} {'graphc/cuBLAS':>14}")
    for size in (512, 1024) if quick else (512, 1024, 2048, 4096):
        ours, theirs = bench_matmul(size, repeat)
        ratio = f"{ours / theirs:14.2f}" if theirs else f"{'n/a':>14}"
        print(f"{size:>6} {ours:12.0f} {theirs or float('nan'):12.0f} {ratio}")


if __name__ == "__main__":
    main(sys.argv[1:])
