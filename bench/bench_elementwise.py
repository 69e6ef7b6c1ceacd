"""Fused relu(a*b+c) and call overhead: graphc vs PyTorch eager, torch.compile.

Run: .venv/bin/python bench/bench_elementwise.py [numel]
"""

from __future__ import annotations

import sys

import numpy as np
from bench_sgemm import median_time


def main(numel: int) -> None:
    import torch

    import graphc.runtime.cpu as cpu
    from graphc.ir import dtypes as dt
    from graphc.ir.graph import Graph, const, input_node, node
    from graphc.ir.ops import Op

    def build(n):
        a, b, c = (input_node(s, (n,), dt.float32) for s in "abc")
        zero = node(Op.EXPAND, const(0.0, dt.float32), shape=(n,))
        return cpu.compile_cpu(Graph([a, b, c], [node(Op.MAX, node(Op.ADD, node(Op.MUL, a, b), c), zero)]))

    def torch_fn(a, b, c):
        return torch.relu(a * b + c)

    rows = []
    for n in (numel, 16):
        exe = build(n)
        arrs = [np.random.randn(n).astype(np.float32) for _ in range(3)]
        ts = [torch.from_numpy(x) for x in arrs]
        compiled = torch.compile(torch_fn)
        g = median_time(lambda exe=exe, arrs=arrs: exe(arrs))
        e = median_time(lambda ts=ts: torch_fn(*ts))
        c = median_time(lambda compiled=compiled, ts=ts: compiled(*ts))
        rows.append((n, g, e, c))
    header = ("numel", "graphc us", "eager us", "compile us", "eager/graphc", "compile/graphc")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (10, 10, 10, 11, 13, 15))))
    for n, g, e, c in rows:
        print(f"{n:>10} {g * 1e6:>10.1f} {e * 1e6:>10.1f} {c * 1e6:>11.1f} {e / g:>13.2f} {c / g:>15.2f}")


if __name__ == "__main__":
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 24)
