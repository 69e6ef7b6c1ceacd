"""Scaled dot-product attention forward: graphc's fused attention kernel vs
the unfused compiled formula (matmul, softmax, matmul: what graphc compiled
before the kernel) vs PyTorch's F.scaled_dot_product_attention, medians.

Run: .venv/bin/python bench/bench_attention.py [L...]   (B=16, H=4, E=32)
"""

from __future__ import annotations

import sys

import numpy as np
from bench_sgemm import median_time

B, H, E = 16, 4, 32


def _graphs(L: int, S: int, causal: bool):
    from graphc.ir import dtypes as dt
    from graphc.ir.graph import Graph, input_node, node
    from graphc.ir.ops import Op
    from graphc.passes.lower import expand_attention

    q = input_node("q", (B, H, L, E), dt.float32)
    k = input_node("k", (B, H, S, E), dt.float32)
    v = input_node("v", (B, H, S, E), dt.float32)
    fused = node(Op.ATTENTION, q, k, v, scale=1.0 / np.sqrt(E), causal=causal)
    return Graph([q, k, v], [fused]), Graph([q, k, v], [expand_attention(fused)])


def main(lengths) -> None:
    import torch

    import graphc.runtime.cpu as cpu

    threads = cpu.get_num_threads()
    torch.set_num_threads(threads)
    print(f"B={B} H={H} E={E} float32, {threads} threads; times in ms")
    head = ["L=S", "causal", "fused", "unfused", "torch", "unfused/fused", "torch/fused"]
    widths = [5, 6, 8, 8, 8, 14, 12]
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, widths)))
    rng = np.random.default_rng(0)
    for n in lengths:
        for causal in (False, True):
            fused_g, unfused_g = _graphs(n, n, causal)
            fused, unfused = cpu.compile_cpu(fused_g), cpu.compile_cpu(unfused_g)
            arrays = [rng.standard_normal((B, H, n, E)).astype(np.float32) for _ in range(3)]
            ts = [torch.from_numpy(a) for a in arrays]
            want = torch.nn.functional.scaled_dot_product_attention(*ts, is_causal=causal).numpy()
            np.testing.assert_allclose(fused(arrays)[0], want, rtol=1e-4, atol=1e-5)
            sdpa = torch.nn.functional.scaled_dot_product_attention
            tf = median_time(lambda f=fused, a=arrays: f(a)) * 1e3
            tu = median_time(lambda f=unfused, a=arrays: f(a)) * 1e3
            tt = median_time(lambda f=sdpa, t=ts, c=causal: f(*t, is_causal=c)) * 1e3
            print(f"{n:>5} {causal!s:>6} {tf:>8.2f} {tu:>8.2f} {tt:>8.2f} {tu / tf:>14.2f} {tt / tf:>12.2f}")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [64, 128, 256, 512])
