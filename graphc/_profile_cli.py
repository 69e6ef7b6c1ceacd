"""`graphc profile SCRIPT_OR_WORKLOAD`: the profiler's table for a script
run under it, or for a few steps of a built-in training workload:

    cnn   the reference MNIST CNN (graphc.vision.models.Net), SGD with
          momentum, nll_loss, batch 64 (bench/workloads.py's CNN step)
    mlp   a 784-128-64-10 MLP, Adam, cross_entropy, batch 64

A workload is compiled and warmed up first (three calls: eager, compile,
the profiled build), so the table shows steady-state steps only.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

WORKLOADS = ("cnn", "mlp")


def _workload(name: str, batch: int = 64):
    """(step function, its arguments) of a built-in workload."""
    import numpy as np

    import graphc
    import graphc.nn as nn
    import graphc.nn.functional as F
    import graphc.optim as optim

    graphc.manual_seed(0)
    rng = np.random.default_rng(0)
    if name == "cnn":
        from graphc.vision.models import Net

        model = Net()
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = graphc.from_numpy(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
        loss_fn = F.nll_loss
    else:
        model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
        opt = optim.Adam(model.parameters(), lr=1e-3)
        x = graphc.from_numpy(rng.standard_normal((batch, 784)).astype(np.float32))
        loss_fn = F.cross_entropy
    y = graphc.from_numpy(rng.integers(0, 10, batch).astype(np.int64))

    @graphc.compile
    def train_step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return train_step, (x, y)


def run(args) -> int:
    from graphc.profiler import profile, record_function

    target = args.target
    if args.threads is not None:
        import graphc.runtime.cpu

        graphc.runtime.cpu.set_num_threads(args.threads)
    if target in WORKLOADS:
        step, inputs = _workload(target)
        with profile():  # warm-up: eager call, compile, the profiled build
            for _ in range(3):
                step(*inputs)
        with profile() as prof:
            for _ in range(args.steps):
                with record_function("train_step"):
                    step(*inputs)
    else:
        path = Path(target)
        if not path.is_file():
            raise SystemExit(f"graphc profile: {target!r} is neither a script nor a workload ({', '.join(WORKLOADS)})")
        old_argv = sys.argv
        sys.argv = [str(path)] + list(args.args)
        try:
            with profile() as prof:
                runpy.run_path(str(path), run_name="__main__")
        finally:
            sys.argv = old_argv
    print(prof.key_averages().table(sort_by=args.sort_by, row_limit=args.row_limit))
    if args.trace:
        prof.export_chrome_trace(args.trace)
        print(f"wrote {args.trace} (open it in chrome://tracing or ui.perfetto.dev)")
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("target", help=f"a Python script, or a built-in workload: {', '.join(WORKLOADS)}")
    parser.add_argument("args", nargs="*", help="arguments for the script")
    parser.add_argument("--steps", type=int, default=10, help="workload steps to profile (default 10)")
    parser.add_argument("--sort-by", default="self_cpu_time_total", help="table order (default self_cpu_time_total)")
    parser.add_argument("--row-limit", type=int, default=20, help="table rows (default 20)")
    parser.add_argument("--threads", type=int, help="threads for compiled programs (default: all cores)")
    parser.add_argument("--trace", metavar="OUT.json", help="also write a Chrome trace")
