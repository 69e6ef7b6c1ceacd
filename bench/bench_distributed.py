"""Data-parallel training over MPI: scaling from 1 to 2 ranks, and
all-reduce bandwidth of graphc.distributed against mpi4py's own.

Run: .venv/bin/python bench/bench_distributed.py [--quick]

It launches itself under `graphc run -n 1` and `-n 2` (`--worker`) and
prints markdown tables:

1. Training the MNIST CNN (graphc.vision.models.Net) on synthetic data,
   batch 32 per rank (weak scaling: 2 ranks train twice the images per
   step), Adam: images per second over all ranks, for an eager step and for
   a compiled forward+backward with the optimizer step outside it (the way
   DistributedDataParallel runs under graphc.compile), and the scaling
   efficiency, throughput(2 ranks) / (2 x throughput(1 rank)). The ranks
   split the machine's cores (`graphc run` gives each cores / ranks threads).
2. all_reduce (SUM) of float32 buffers from 4 KiB to 32 MiB: median time
   and bandwidth (bytes / time) of `graphc.distributed.all_reduce` on a
   Tensor and of mpi4py's `Allreduce(IN_PLACE, ...)` on a numpy array.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _train_throughput(mode: str, steps: int, batch: int) -> float:
    import graphc
    import graphc.distributed as dist
    import graphc.nn.functional as F
    from graphc.nn.parallel import DistributedDataParallel as DDP

    world = dist.get_world_size()
    graphc.manual_seed(0)
    ddp = DDP(graphc.vision.models.Net())
    opt = graphc.optim.Adam(ddp.parameters(), lr=1e-3)

    def grad_step(x, y):
        opt.zero_grad()
        loss = F.nll_loss(ddp(x), y)
        loss.backward()
        return loss

    step = grad_step if mode == "eager" else graphc.compile(grad_step)
    opt_step = graphc.compile(opt.step) if mode == "compiled_opt" else opt.step
    x = graphc.randn(batch, 1, 28, 28)
    y = graphc.randint(0, 10, (batch,))
    for _ in range(3):  # eager, trace + compile, first compiled call
        step(x, y)
        opt_step()
    dist.barrier()
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
        opt_step()
    dist.barrier()
    return steps * batch * world / (time.perf_counter() - start)


def _median_time(fn, repeat: int) -> float:
    import graphc.distributed as dist

    times = []
    for _ in range(repeat):
        dist.barrier()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _allreduce_times(sizes, repeat: int) -> list:
    from mpi4py import MPI

    import graphc
    import graphc.distributed as dist

    rows = []
    for nbytes in sizes:
        n = nbytes // 4
        tensor = graphc.ones(n)
        array = np.ones(n, np.float32)
        ours = _median_time(lambda t=tensor: dist.all_reduce(t), repeat)
        theirs = _median_time(lambda a=array: MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, a, MPI.SUM), repeat)
        rows.append((nbytes, ours, theirs))
    return rows


def worker(quick: bool) -> None:
    import graphc.distributed as dist

    dist.init_process_group("mpi")
    steps = 10 if quick else 40
    result = {
        "world": dist.get_world_size(),
        "eager": _train_throughput("eager", steps // 2, 32),
        "compiled": _train_throughput("compiled", steps, 32),
        "compiled_opt": _train_throughput("compiled_opt", steps, 32),
    }
    if dist.get_world_size() > 1:
        sizes = [4 << 10, 256 << 10, 4 << 20] + ([] if quick else [32 << 20])
        result["allreduce"] = _allreduce_times(sizes, 5 if quick else 15)
    if dist.get_rank() == 0:
        print("RESULT " + json.dumps(result), flush=True)
    dist.destroy_process_group()


def launch(nproc: int, quick: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "graphc.cli", "run", "-n", str(nproc), "--timeout", "900", os.path.abspath(__file__)]
    cmd += ["--worker"] + (["--quick"] if quick else [])
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise SystemExit(f"bench_distributed: the {nproc}-rank run failed:\n{out.stdout}\n{out.stderr[-3000:]}")


def _size(nbytes: int) -> str:
    return f"{nbytes >> 20} MiB" if nbytes >= 1 << 20 else f"{nbytes >> 10} KiB"


def main(argv) -> int:
    quick = "--quick" in argv
    if "--worker" in argv:
        worker(quick)
        return 0
    sys.path.insert(0, HERE)
    from workloads import cpu_name

    one, two = launch(1, quick), launch(2, quick)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores\n")
    print("| MNIST CNN, batch 32 per rank | 1 rank (img/s) | 2 ranks (img/s) | scaling efficiency |")
    print("| --- | --- | --- | --- |")
    modes = (
        ("eager", "eager step"),
        ("compiled", "compiled fwd+bwd, eager Adam"),
        ("compiled_opt", "compiled fwd+bwd, compiled Adam"),
    )
    for mode, label in modes:
        eff = two[mode] / (2 * one[mode])
        print(f"| {label} | {one[mode]:.0f} | {two[mode]:.0f} | {eff:.2f} |")
    print(
        "\n| all_reduce, 2 ranks | graphc (ms) | graphc (GB/s) | mpi4py (ms) | mpi4py (GB/s) | graphc / mpi4py time |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for nbytes, ours, theirs in two["allreduce"]:
        print(
            f"| {_size(nbytes)} | {ours * 1e3:.3f} | {nbytes / ours / 1e9:.2f} | {theirs * 1e3:.3f} | "
            f"{nbytes / theirs / 1e9:.2f} | {ours / theirs:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
