"""SGEMM: graphc's generated matmul vs PyTorch (MKL) and numpy, medians.

Run: .venv/bin/python bench/bench_sgemm.py [sizes...]
"""

from __future__ import annotations

import sys
import time

import numpy as np


def median_time(fn, repeat=7, min_time=0.05) -> float:
    fn()
    times = []
    for _ in range(repeat):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            if time.perf_counter() - t0 >= min_time:
                break
        times.append((time.perf_counter() - t0) / n)
    return float(np.median(times))


def main(sizes) -> None:
    import torch

    import runtime.cpu as cpu
    from graphc.ir import dtypes as dt
    from graphc.ir.graph import Graph, input_node, node
    from graphc.ir.ops import Op

    print(f"{'n':>6} {'threads':>7} {'graphc GF/s':>12} {'torch GF/s':>11} {'numpy GF/s':>11} {'graphc/torch':>13}")
    for threads in (1, cpu.get_num_threads()):
        cpu.set_num_threads(threads)
        torch.set_num_threads(threads)
        for n in sizes:
            a, b = input_node("a", (n, n), dt.float32), input_node("b", (n, n), dt.float32)
            exe = cpu.compile_cpu(Graph([a, b], [node(Op.DOT, a, b)]))
            x, y = np.random.rand(n, n).astype(np.float32), np.random.rand(n, n).astype(np.float32)
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)
            flops = 2 * n**3
            g = flops / median_time(lambda exe=exe, x=x, y=y: exe([x, y])) / 1e9
            t = flops / median_time(lambda tx=tx, ty=ty: torch.mm(tx, ty)) / 1e9
            npy = flops / median_time(lambda x=x, y=y: x @ y) / 1e9
            print(f"{n:>6} {threads:>7} {g:>12.1f} {t:>11.1f} {npy:>11.1f} {g / t:>13.2f}")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [256, 512, 1024])
