"""Forward + backward (`loss = nll_loss(model(x).log_softmax(1), y)`, then
`loss.backward()`), batch 64, for the MLP 784-128-64-10 and the reference
MNIST CNN:

- graphc eager;
- compile(model): `graphc.compile(model)`, a compiled forward and backward
  program, with the loss computed eagerly on its result;
- compile(model+loss): the function computing the loss compiled, so the
  loss's forward and backward are in the two programs too;
- PyTorch eager.

Each case first checks that all compute torch's parameter gradients from
the same weights (and that the compiled variants ran the compiled
forward+backward), then prints median times per forward+backward and the
compiled variants' time over torch's (below 1: graphc is faster). The
variants are timed in alternating rounds, so a busy machine slows them
alike.

Run: .venv/bin/python bench/bench_compiled_autograd.py [batch] [threads]
(threads: for torch and graphc's compiled programs; default: each
library's own. numpy's BLAS, which eager graphc uses, reads
OPENBLAS_NUM_THREADS from the environment.)
"""

from __future__ import annotations

import functools
import sys
import time

import numpy as np
from workloads import cpu_name, graphc_copy, graphc_mlp, torch_cnn, torch_mlp


def _cases(batch: int):
    import torch

    from graphc.vision.models import Net

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    sizes = (784, 128, 64, 10)
    t_mlp = torch_mlp(sizes)
    yield f"MLP 784-128-64-10, batch {batch}", t_mlp, graphc_copy(t_mlp, graphc_mlp(sizes)), (batch, 784), rng
    t_cnn = torch_cnn()
    yield f"MNIST CNN, batch {batch}", t_cnn, graphc_copy(t_cnn, Net()), (batch, 1, 28, 28), rng


def _step(params, loss_fn, x, y):
    """One forward+backward with gradients set to None first."""
    for p in params:
        p.grad = None
    loss = loss_fn(x, y)
    loss.backward()
    return loss


def _check(steps: dict, compiled: dict, g_params, t_params) -> None:
    """Every variant computes torch's gradients; the compiled ones run a
    compiled forward+backward program (not the eager fallback)."""
    steps["torch"]()
    want = [p.grad.numpy().copy() for p in t_params]
    for name, fn in steps.items():
        if name == "torch":
            continue
        for _ in range(3):  # a compiled one: eager call, trace, compiled call
            fn()
        for a, b in zip([p.grad.numpy() for p in g_params], want):
            if not np.allclose(a, b, rtol=1e-3, atol=1e-5):
                raise AssertionError(f"{name}: gradients differ from torch by {np.abs(a - b).max():.3g}")
    for name, fn in compiled.items():
        kinds = {type(e).__name__ for entries in fn._ready.values() for e in entries}
        if kinds != {"AutogradEntry"}:
            raise AssertionError(f"{name} ran {kinds}, not a compiled forward+backward")


def interleaved_medians(fns: dict, rounds: int = 15, min_time: float = 0.05) -> dict:
    """Median seconds per call of each function, timed in alternating
    rounds so that load from other processes falls on all of them alike."""
    samples: dict = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < min_time:
                fn()
                n += 1
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: float(np.median(ts)) for name, ts in samples.items()}


def main(batch: int, threads: int | None) -> None:
    import torch

    import graphc

    if threads is not None:
        torch.set_num_threads(threads)
        graphc.set_num_threads(threads)

    print(
        f"CPU: {cpu_name()}; torch {torch.__version__}, threads: torch {torch.get_num_threads()}, "
        f"graphc {graphc.get_num_threads()}"
    )
    print(f"{'workload':<28}" + "".join(f"{h:>21}" for h in NAMES + ("compiled/torch",)))
    for name, t_model, g_model, shape, rng in _cases(batch):
        x_np = rng.standard_normal(shape).astype(np.float32)
        y_np = rng.integers(0, 10, batch).astype(np.int64)
        times = _measure(t_model, g_model, x_np, y_np)
        cells = [f"{times[k] * 1e3:.3f} ms" for k in NAMES]
        cells.append(" / ".join(f"{times[k] / times['torch']:.2f}x" for k in NAMES[1:3]))
        print(f"{name:<28}" + "".join(f"{c:>21}" for c in cells))


NAMES = ("graphc eager", "compile(model)", "compile(model+loss)", "torch")


def _measure(t_model, g_model, x_np, y_np) -> dict:
    """Median seconds per forward+backward of each variant in NAMES."""
    import torch

    import graphc
    import graphc.nn.functional as F

    def g_loss(model, x, y):
        return F.nll_loss(model(x).log_softmax(1), y)

    def t_loss(x, y):
        return torch.nn.functional.nll_loss(t_model(x).log_softmax(1), y)

    compiled = {
        "compile(model)": graphc.compile(g_model),
        "compile(model+loss)": graphc.compile(functools.partial(g_loss, g_model)),
    }
    loss_fns = {
        "graphc eager": functools.partial(g_loss, g_model),
        "compile(model)": functools.partial(g_loss, compiled["compile(model)"]),
        "compile(model+loss)": compiled["compile(model+loss)"],
    }
    g_params, t_params = list(g_model.parameters()), list(t_model.parameters())
    gx, gy = graphc.from_numpy(x_np), graphc.from_numpy(y_np)
    steps = {k: functools.partial(_step, g_params, f, gx, gy) for k, f in loss_fns.items()}
    steps["torch"] = functools.partial(_step, t_params, t_loss, torch.from_numpy(x_np), torch.from_numpy(y_np))
    _check(steps, compiled, g_params, t_params)
    return interleaved_medians(steps)


if __name__ == "__main__":
    here = __file__.rsplit("/", 1)[0]
    sys.path[:0] = [here, here + "/.."]
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 64, int(sys.argv[2]) if len(sys.argv) > 2 else None)
