"""The benchmark suite behind `graphc bench`.

Every workload is measured side by side in one process: graphc compiled,
PyTorch eager, torch.compile and jax.jit where installed, all starting from
the same weights and checked to compute the same losses. Reported numbers are
medians of repeated timings; ratios are graphc's median over the peer's
(lower is better for times).

    graphc bench [--quick] [--only NAME] [--plot out.png]
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import workloads  # bench/workloads.py


@dataclass
class Row:
    name: str
    times: dict[str, float] = field(default_factory=dict)  # seconds, median
    note: str = ""

    def ratio(self, peer: str) -> float | None:
        if "graphc" in self.times and peer in self.times and self.times[peer] > 0:
            return self.times["graphc"] / self.times[peer]
        return None


def median_time(fn, repeats: int, inner: int = 1, warmup: int = 2) -> float:
    """Median seconds per call of `fn` over `repeats` timings of `inner` calls.

    Waits a moment first: thread pools of the peer measured before (OpenMP
    in torch, OpenBLAS in numpy, graphc's own) spin for a while after their
    last job and would steal the cores from this measurement."""
    time.sleep(0.3)
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


PEERS = ("graphc", "torch", "torch.compile", "jax.jit", "numpy")


def format_table(rows: list[Row]) -> str:
    head = f"| workload | {' | '.join(PEERS)} | graphc/torch | graphc/torch.compile | graphc/jax.jit |"
    sep = "|" + "---|" * (len(PEERS) + 4)
    lines = [head, sep]
    for r in rows:
        cells = [_fmt_time(r.times.get(p)) for p in PEERS]
        ratios = [_fmt_ratio(r.ratio(p)) for p in ("torch", "torch.compile", "jax.jit")]
        lines.append(f"| {r.name} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    return "\n".join(lines)


def _fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f} us"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def _fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def machine_line() -> str:
    import llvmlite

    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}", f"llvmlite {llvmlite.__version__}"]
    for mod in ("torch", "jax"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            pass
    cpu = workloads.cpu_name()
    import os

    return f"{date.today().isoformat()}, {cpu}, {os.cpu_count()} cores; {', '.join(versions)}"


def main(args) -> int:
    quick = getattr(args, "quick", False)
    if getattr(args, "device", "cpu") == "cuda":
        import bench_cuda  # bench/bench_cuda.py

        bench_cuda.main(["--quick"] if quick else [])
        return 0
    only = getattr(args, "only", None)
    rows: list[Row] = []
    for name, bench in workloads.all_workloads(quick):
        if only and only not in name:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        row = Row(name)
        try:
            bench(row, median_time)
        except Exception as e:  # a broken peer must not hide the other results
            row.note = "; ".join(filter(None, [row.note, f"failed: {type(e).__name__}: {e}"]))
        rows.append(row)
    print(f"# graphc bench: {machine_line()}")
    print(format_table(rows))
    for r in rows:
        if r.note:
            print(f"- {r.name}: {r.note}")
    if getattr(args, "plot", None):
        _plot(rows, args.plot)
    return 0


def _plot(rows: list[Row], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise SystemExit("graphc bench --plot needs matplotlib: pip install 'graphc[plot]'") from err
    names = [r.name for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 1.5))
    for i, peer in enumerate(("torch", "torch.compile", "jax.jit")):
        vals = [r.ratio(peer) or 0 for r in rows]
        ax.barh([y + i * 0.25 for y in range(len(rows))], vals, height=0.25, label=f"graphc / {peer}")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks([y + 0.25 for y in range(len(rows))], names)
    ax.set_xlabel("time ratio (lower is better for graphc)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only")
    p.add_argument("--plot")
    sys.exit(main(p.parse_args()))
