"""Cold and warm-cache compile time of compiled training steps.

    python bench/bench_compile.py [--runs 3] [--only mlp,cnn,resnet18] [--profile NAME]

For each workload (the MLP Adam step 784-128-10 batch 64, the MNIST CNN step
batch 64 with SGD momentum, ResNet-18 on 32x32 inputs batch 32 with SGD
momentum) it times the compiling call of the `graphc.compile`d step in a fresh
process:

- cold: an empty compile cache (a fresh GRAPHC_CACHE_DIR): tracing, passes,
  fusion, memory planning, LLVM IR generation, LLVM optimisation and code
  emission, loading;
- warm: a second fresh process with the same cache folder (a disk-cache hit);
- program: a fresh process whose cache folder holds only the code that is
  the same for every program (the GEMM library and the thread pool's
  routines, built once per machine and graphc version, then cached): the
  cold compile of the program alone, what a user meets with every new model
  after the first.

A compiled step's first call runs eagerly (it creates the optimizer state);
the second call traces and compiles, and that is the call timed. Figures are
medians over `--runs` fresh processes. jax.jit's first call of the same MLP
and CNN steps is measured when jax is installed. `--profile NAME` runs one cold
compile of NAME under cProfile and prints the top functions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = ("mlp", "cnn", "resnet18")


def _training_step(model, opt, loss_fn):
    """The tutorial training step: zero_grad, loss, backward, optimizer step."""

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def _mlp_step():
    import graphc
    import graphc.nn as nn
    import graphc.nn.functional as F
    import graphc.optim as optim

    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x, y = graphc.randn(64, 784), graphc.randint(0, 10, (64,))

    return _training_step(model, opt, F.cross_entropy), (x, y)


def _cnn_step():
    import graphc
    import graphc.nn.functional as F
    import graphc.optim as optim
    from graphc.vision.models import Net

    graphc.manual_seed(0)
    model = Net()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = graphc.randn(64, 1, 28, 28), graphc.randint(0, 10, (64,))

    return _training_step(model, opt, F.nll_loss), (x, y)


def _resnet18_step():
    import graphc
    import graphc.nn.functional as F
    import graphc.optim as optim
    from graphc.vision.models import resnet18

    graphc.manual_seed(0)
    model = resnet18(num_classes=10)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = graphc.randn(32, 3, 32, 32), graphc.randint(0, 10, (32,))

    return _training_step(model, opt, F.cross_entropy), (x, y)


STEPS = {"mlp": _mlp_step, "cnn": _cnn_step, "resnet18": _resnet18_step}


def _child(name: str, profile: bool) -> None:
    """In a fresh process: time the compiling call of workload `name`."""
    sys.path.insert(0, ROOT)
    import graphc

    step, args = STEPS[name]()
    compiled = graphc.compile(step)
    compiled(*args)  # eager: creates the optimizer state
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        start = time.perf_counter()
        prof.runcall(compiled, *args)
        elapsed = time.perf_counter() - start
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    else:
        start = time.perf_counter()
        compiled(*args)
        elapsed = time.perf_counter() - start
    # A later call must not compile again (the step is really compiled).
    start = time.perf_counter()
    compiled(*args)
    step_s = time.perf_counter() - start
    print(json.dumps({"first_call_s": elapsed, "next_call_s": step_s}))


def _run_child(name: str, cache_dir: str, profile: bool = False) -> dict:
    env = dict(os.environ, GRAPHC_CACHE_DIR=cache_dir, PYTHONPATH=ROOT)
    # Byte-compiled modules, as an installed graphc has: otherwise every
    # fresh process spends a quarter second compiling graphc's sources.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name]
    if profile:
        cmd.append("--profile-child")
    out = subprocess.run(cmd, env=env, check=True, capture_output=not profile, text=True, cwd=ROOT)
    if profile:
        return {}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _library_child() -> None:
    """In a fresh process: build the program-independent code (the GEMM
    library, the thread pool's routines) into the cache folder."""
    sys.path.insert(0, ROOT)
    from graphc.runtime import native

    native._load_gemm_libs(["f32"])
    native._pool_fns()


def _jax_child() -> None:
    """jax.jit's first call of the MLP Adam step (784-128-10, batch 64)."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    params = [
        (jnp.asarray(rng.standard_normal((784, 128), np.float32) * 0.03), jnp.zeros(128)),
        (jnp.asarray(rng.standard_normal((128, 10), np.float32) * 0.03), jnp.zeros(10)),
    ]
    x = jnp.asarray(rng.standard_normal((64, 784)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 10, 64))

    def loss_fn(params, x, y):
        for i, (w, b) in enumerate(params):
            x = x @ w + b
            if i < len(params) - 1:
                x = jnp.maximum(x, 0)
        logp = x - jax.scipy.special.logsumexp(x, axis=1, keepdims=True)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def step(params, m, v, t, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
        lr_t = 1e-3 * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        params = jax.tree_util.tree_map(lambda p, m, v: p - lr_t * m / (jnp.sqrt(v) + 1e-8), params, m, v)
        return params, m, v, t, loss

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    start = time.perf_counter()
    step(params, zeros, zeros, jnp.float32(0), x, y)[-1].block_until_ready()
    print(json.dumps({"first_call_s": time.perf_counter() - start}))


def _jax_cnn_child() -> None:
    """jax.jit's first call of the MNIST CNN step (graphc.vision.models.Net:
    5x5 convolutions 1-10-20 with 2x2 max pooling, linear 320-50-10,
    log-softmax, NLL; SGD momentum 0.9; batch 64)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    rng = np.random.default_rng(0)

    def rand(*shape):
        return jnp.asarray(rng.standard_normal(shape).astype(np.float32) * 0.1)

    params = {
        "c1": (rand(10, 1, 5, 5), jnp.zeros(10)),
        "c2": (rand(20, 10, 5, 5), jnp.zeros(20)),
        "f1": (rand(320, 50), jnp.zeros(50)),
        "f2": (rand(50, 10), jnp.zeros(10)),
    }
    x = jnp.asarray(rng.standard_normal((64, 1, 28, 28)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 10, 64))

    def conv_pool_relu(x, wb):
        w, b = wb
        x = lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))
        x = x + b[None, :, None, None]
        x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        return jnp.maximum(x, 0)

    def loss_fn(p, x, y):
        x = conv_pool_relu(conv_pool_relu(x, p["c1"]), p["c2"]).reshape(-1, 320)
        x = jnp.maximum(x @ p["f1"][0] + p["f1"][1], 0)
        logp = jax.nn.log_softmax(x @ p["f2"][0] + p["f2"][1], axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def step(p, buf, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        buf = jax.tree_util.tree_map(lambda b, g: 0.9 * b + g, buf, g)
        p = jax.tree_util.tree_map(lambda p, b: p - 0.01 * b, p, buf)
        return p, buf, loss

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    start = time.perf_counter()
    step(params, zeros, x, y)[-1].block_until_ready()
    print(json.dumps({"first_call_s": time.perf_counter() - start}))


def _jax_first_call(runs: int, child: str = "--jax-child") -> str | float:
    try:
        import jax  # noqa: F401
    except ImportError as e:
        return f"skipped: jax is not installed ({e})"
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), child], check=True, capture_output=True, text=True
        )
        times.append(json.loads(out.stdout.strip().splitlines()[-1])["first_call_s"])
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--profile", choices=WORKLOADS)
    ap.add_argument("--child", choices=WORKLOADS, help=argparse.SUPPRESS)
    ap.add_argument("--profile-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--jax-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--jax-cnn-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--library-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return _child(a.child, a.profile_child)
    if a.jax_child:
        return _jax_child()
    if a.jax_cnn_child:
        return _jax_cnn_child()
    if a.library_child:
        return _library_child()
    if a.profile:
        with tempfile.TemporaryDirectory(prefix="graphc-cold-") as d:
            _run_child(a.profile, d, profile=True)
        return None
    print(
        f"{'workload':10} {'cold (s)':>10} {'program (s)':>12} {'warm (ms)':>10} {'step (ms)':>10}  "
        "cold runs; program runs"
    )
    for name in a.only.split(","):
        cold, program, warm, step = [], [], [], []
        for _ in range(a.runs):
            with tempfile.TemporaryDirectory(prefix="graphc-cold-") as d:
                r = _run_child(name, d)
                cold.append(r["first_call_s"])
                step.append(r["next_call_s"])
                warm.append(_run_child(name, d)["first_call_s"])
            with tempfile.TemporaryDirectory(prefix="graphc-cold-") as d:
                env = dict(os.environ, GRAPHC_CACHE_DIR=d, PYTHONPATH=ROOT)
                subprocess.run([sys.executable, os.path.abspath(__file__), "--library-child"], env=env, check=True)
                program.append(_run_child(name, d)["first_call_s"])
        print(
            f"{name:10} {statistics.median(cold):10.3f} {statistics.median(program):12.3f} "
            f"{statistics.median(warm) * 1e3:10.1f} {statistics.median(step) * 1e3:10.2f}  "
            f"{', '.join(f'{c:.3f}' for c in cold)}; {', '.join(f'{c:.3f}' for c in program)}",
            flush=True,
        )
    for name, child in (("mlp", "--jax-child"), ("cnn", "--jax-cnn-child")):
        if name in a.only:
            jx = _jax_first_call(a.runs, child)
            print(f"jax.jit first call, {name.upper()}: {jx if isinstance(jx, str) else f'{jx:.3f} s'}")
    return None


if __name__ == "__main__":
    main()
