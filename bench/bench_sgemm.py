"""SGEMM: graphc's generated matmul vs PyTorch (MKL/oneDNN) and numpy
(OpenBLAS), at one thread count for every library, medians.

Run: .venv/bin/python bench/bench_sgemm.py [--threads T] [--rounds R] [sizes...]

Sizes are `n` (square) or `MxKxN`; a `t` suffix on an operand transposes
it as the backward pass does (`784tx64x128`: A^T with A stored [64, 784];
`64x128x784t`: B^T with B stored [784, 128]). With no sizes: n = 256, 512,
1024, 2048 and the tall-skinny training shapes.

The libraries run side by side in one process, alternating within each
round, so a busy machine slows them alike. Each figure is the median over
rounds of a round's mean call time; with one thread the CPU time of the
process is reported too (less sensitive to other processes on a shared
machine than wall time).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

SQUARE = ["256", "512", "1024", "2048"]
TALL_SKINNY = ["64x784x128", "784tx64x128", "64x128x784t", "512x9216x128", "9216tx512x128", "512x128x9216t"]


def _parse(spec: str):
    """'MxKxN' (optional t suffixes) or 'n' -> (m, k, n, a_t, b_t)."""
    parts = spec.split("x")
    if len(parts) == 1:
        n = int(parts[0])
        return n, n, n, False, False
    m, k, n = parts
    return int(m.rstrip("t")), int(k), int(n.rstrip("t")), m.endswith("t"), n.endswith("t")


def measure(fns: dict, rounds: int, min_time: float) -> dict:
    """{name: (median wall s, median cpu s)} with the fns alternating."""
    for f in fns.values():
        f()
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            n, w0, c0 = 0, time.perf_counter(), time.process_time()
            while True:
                f()
                n += 1
                if time.perf_counter() - w0 >= min_time:
                    break
            wall[name].append((time.perf_counter() - w0) / n)
            cpu[name].append((time.process_time() - c0) / n)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {k: (med(wall[k]), med(cpu[k])) for k in fns}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.05)
    ap.add_argument("sizes", nargs="*")
    args = ap.parse_args()
    # numpy's OpenBLAS reads its thread count at import.
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import torch

    import graphc.runtime.cpu as cpu
    from graphc.ir import dtypes as dt
    from graphc.ir.graph import Graph, input_node, node
    from graphc.ir.ops import Op

    cpu.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"threads={args.threads} rounds={args.rounds}")
    hdr = f"{'shape':>16} {'graphc GF/s':>11} {'torch GF/s':>10} {'numpy GF/s':>10} {'time/best':>9}"
    print(hdr + (f" {'cpu time/best':>13}" if args.threads == 1 else ""))
    for spec in args.sizes or SQUARE + TALL_SKINNY:
        m, k, n, a_t, b_t = _parse(spec)
        ashape, bshape = ((k, m) if a_t else (m, k)), ((n, k) if b_t else (k, n))
        a, b = input_node("a", ashape, dt.float32), input_node("b", bshape, dt.float32)
        lhs = node(Op.PERMUTE, a, perm=(1, 0)) if a_t else a
        rhs = node(Op.PERMUTE, b, perm=(1, 0)) if b_t else b
        exe = cpu.compile_cpu(Graph([a, b], [node(Op.DOT, lhs, rhs)]))
        x = rng.random(ashape, dtype=np.float32)
        y = rng.random(bshape, dtype=np.float32)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        tx, ty = (tx.t() if a_t else tx), (ty.t() if b_t else ty)
        nx, ny = (x.T if a_t else x), (y.T if b_t else y)
        res = measure(
            {
                "graphc": lambda exe=exe, x=x, y=y: exe([x, y]),
                "torch": lambda tx=tx, ty=ty: torch.mm(tx, ty),
                "numpy": lambda nx=nx, ny=ny: nx @ ny,
            },
            args.rounds,
            args.min_time,
        )
        flops = 2 * m * n * k
        gf = {name: flops / w / 1e9 for name, (w, _) in res.items()}
        best = min(res["torch"][0], res["numpy"][0])
        line = f"{spec:>16} {gf['graphc']:>11.1f} {gf['torch']:>10.1f} {gf['numpy']:>10.1f}"
        line += f" {res['graphc'][0] / best:>9.2f}"
        if args.threads == 1:
            line += f" {res['graphc'][1] / min(res['torch'][1], res['numpy'][1]):>13.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
