"""The workloads of the benchmark suite (bench/suite.py).

Each workload fills a Row with median seconds per call for graphc and its
peers, after checking that they compute the same numbers from the same
starting weights.
"""

from __future__ import annotations

import platform
import time

import numpy as np

STEPS_CHECKED = 3


def _optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def cpu_name() -> str:
    """The CPU's model name, which every quoted figure names."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


torch = _optional("torch")
jax = _optional("jax")


# ---------------------------------------------------------------------------
# models, built identically in each framework


def torch_mlp(sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def torch_cnn():
    """The reference MNIST CNN (graphc.vision.models.Net) in PyTorch."""

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, 10, kernel_size=5)
            self.conv2 = torch.nn.Conv2d(10, 20, kernel_size=5)
            self.fc1 = torch.nn.Linear(320, 50)
            self.fc2 = torch.nn.Linear(50, 10)

        def forward(self, x):
            tf = torch.nn.functional
            x = tf.relu(tf.max_pool2d(self.conv1(x), 2))
            x = tf.relu(tf.max_pool2d(self.conv2(x), 2))
            x = tf.relu(self.fc1(x.view(-1, 320)))
            return tf.log_softmax(self.fc2(x), dim=1)

    return TorchNet()


def graphc_copy(torch_model, graphc_model):
    """Load a torch model's weights into the same-named graphc model."""
    import graphc

    state = {k: graphc.tensor(v.detach().numpy().copy()) for k, v in torch_model.state_dict().items()}
    graphc_model.load_state_dict(state)
    return graphc_model


def graphc_mlp(sizes):
    import graphc.nn as nn

    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _loss_fns(kind):
    import graphc.nn.functional as F

    if kind == "ce":
        return F.cross_entropy, torch.nn.functional.cross_entropy
    return F.mse_loss, torch.nn.functional.mse_loss


def _optimizers(kind, g_params, t_params):
    import graphc.optim as optim

    if kind == "adam":
        return optim.Adam(g_params, lr=1e-3), torch.optim.Adam(t_params, lr=1e-3)
    return optim.SGD(g_params, lr=0.01), torch.optim.SGD(t_params, lr=0.01)


def make_steps(t_model, g_model, loss_kind, opt_kind):
    """Training-step callables for graphc (compiled), torch eager and torch.compile."""
    import copy

    import graphc

    g_loss, t_loss = _loss_fns(loss_kind)
    g_opt, t_opt = _optimizers(opt_kind, g_model.parameters(), t_model.parameters())

    def g_step(x, y):
        g_opt.zero_grad()
        loss = g_loss(g_model(x), y)
        loss.backward()
        g_opt.step()
        return loss

    def t_step(x, y):
        t_opt.zero_grad()
        loss = t_loss(t_model(x), y)
        loss.backward()
        t_opt.step()
        return loss

    # torch.compile peer: the model compiled, backward and optimizer eager.
    # (Compiling the whole step including optimizer.step() measured ~100x
    # slower per step on torch 2.13 CPU, so this is the fair setting.)
    tc_model = copy.deepcopy(t_model)
    tc_forward = torch.compile(tc_model)
    tc_opt = type(t_opt)(tc_model.parameters(), lr=t_opt.defaults["lr"])

    def tc_step(x, y):
        tc_opt.zero_grad()
        loss = t_loss(tc_forward(x), y)
        loss.backward()
        tc_opt.step()
        return loss

    return graphc.compile(g_step), t_step, tc_step


def bench_training_step(row, timer, sizes, batch, loss_kind, opt_kind, with_jax=True, repeats=30):
    import graphc

    torch.manual_seed(0)
    t_model = torch_mlp(sizes)
    g_model = graphc_copy(t_model, graphc_mlp(sizes))
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    if loss_kind == "ce":
        y_np = rng.integers(0, sizes[-1], batch).astype(np.int64)
    else:
        y_np = rng.standard_normal((batch, sizes[-1])).astype(np.float32)
    gx, gy = graphc.from_numpy(x_np), graphc.from_numpy(y_np)
    tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)
    g_step, t_step, tc_step = make_steps(t_model, g_model, loss_kind, opt_kind)

    for _ in range(STEPS_CHECKED):
        g_loss, t_loss = g_step(gx, gy).item(), t_step(tx, ty).item()
        if not np.isclose(g_loss, t_loss, rtol=1e-3, atol=1e-4):
            raise AssertionError(f"losses differ: graphc {g_loss} vs torch {t_loss}")
    row.times["graphc"] = timer(lambda: g_step(gx, gy), repeats)
    row.times["torch"] = timer(lambda: t_step(tx, ty), repeats)
    try:
        row.times["torch.compile"] = timer(lambda: tc_step(tx, ty), repeats, warmup=5)
    except Exception as e:  # inductor needs a working C++ toolchain
        row.note = f"torch.compile failed: {type(e).__name__}"
    if with_jax and jax is not None:
        j_step = jax_mlp_step(t_model, sizes, loss_kind, opt_kind, x_np, y_np)
        row.times["jax.jit"] = timer(j_step, repeats)


def jax_mlp_step(t_model, sizes, loss_kind, opt_kind, x_np, y_np):
    import jax.numpy as jnp

    params = [
        (jnp.asarray(m.weight.detach().numpy().T), jnp.asarray(m.bias.detach().numpy()))
        for m in t_model
        if isinstance(m, torch.nn.Linear)
    ]

    def forward(params, x):
        for i, (w, b) in enumerate(params):
            x = x @ w + b
            if i < len(params) - 1:
                x = jnp.maximum(x, 0)
        return x

    def loss_fn(params, x, y):
        out = forward(params, x)
        if loss_kind == "ce":
            logp = out - jax.scipy.special.logsumexp(out, axis=1, keepdims=True)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
        return jnp.mean((out - y) ** 2)

    @jax.jit
    def step(params, m, v, t, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        if opt_kind == "sgd":
            params = jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)
            return params, m, v, t, loss
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
        lr_t = 1e-3 * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        params = jax.tree_util.tree_map(
            lambda p, m, v: p - lr_t * m / (jnp.sqrt(v) + 1e-8 * jnp.sqrt(1 - 0.999**t)), params, m, v
        )
        return params, m, v, t, loss

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = [params, zeros, zeros, jnp.float32(0)]
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)

    def run():
        p, m, v, t, loss = step(*state, x, y)
        state[:] = [p, m, v, t]
        loss.block_until_ready()

    return run


# ---------------------------------------------------------------------------
# kernels


def bench_sgemm(row, timer, n, threads, repeats=10):
    import graphc

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    graphc.set_num_threads(threads)
    torch.set_num_threads(threads)
    mm = graphc.compile(lambda x, y: x @ y)
    ga, gb = graphc.from_numpy(a), graphc.from_numpy(b)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    got = mm(ga, gb).numpy()
    np.testing.assert_allclose(got, a @ b, rtol=1e-3, atol=1e-2 * np.sqrt(n))
    row.times["graphc"] = timer(lambda: mm(ga, gb), repeats)
    row.times["torch"] = timer(lambda: torch.mm(ta, tb), repeats)
    row.times["numpy"] = timer(lambda: a @ b, repeats)
    import os

    graphc.set_num_threads(os.cpu_count())
    torch.set_num_threads(os.cpu_count())


def bench_fused_elementwise(row, timer, n=16 * 1024 * 1024, repeats=10):
    import graphc

    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    out = np.empty(n, dtype=np.float32)
    ga, gb, gc, gout = (graphc.from_numpy(v) for v in (a, b, c, out))

    @graphc.compile
    def fused(a, b, c, out):
        out.copy_(graphc.relu(a * b + c))

    fused(ga, gb, gc, gout)
    np.testing.assert_allclose(out, np.maximum(a * b + c, 0), rtol=1e-6)
    row.times["graphc"] = timer(lambda: fused(ga, gb, gc, gout), repeats)
    ta, tb, tc, tout = (torch.from_numpy(v) for v in (a, b, c, out))
    row.times["torch"] = timer(lambda: tout.copy_(torch.relu(ta * tb + tc)), repeats)

    def t_fused(a, b, c, out):
        out.copy_(torch.relu(a * b + c))

    tcomp = torch.compile(t_fused)
    row.times["torch.compile"] = timer(lambda: tcomp(ta, tb, tc, tout), repeats, warmup=3)
    row.times["numpy"] = timer(lambda: np.maximum(np.add(a * b, c, out=out), 0, out=out), repeats)


def bench_call_overhead(row, timer):
    import graphc

    x = graphc.ones(4)
    f = graphc.compile(lambda x: x + 1)
    f(x)
    row.times["graphc"] = timer(lambda: f(x), 2000, inner=50)
    tx = torch.ones(4)
    row.times["torch"] = timer(lambda: tx + 1, 2000, inner=50)


def bench_cold_compile(row, timer, sizes=(784, 128, 64, 10)):
    """First call of the compiled MLP training step with an empty cache, and
    with a warm disk cache in a fresh process-level memory cache."""
    import os
    import tempfile

    import graphc

    old = os.environ.get("GRAPHC_CACHE_DIR")
    os.environ["GRAPHC_CACHE_DIR"] = tempfile.mkdtemp(prefix="graphc-bench-")
    try:
        torch.manual_seed(0)
        t_model = torch_mlp(list(sizes))
        x = graphc.randn(64, sizes[0])
        y = graphc.randint(0, sizes[-1], (64,))

        def first_call():
            g_model = graphc_copy(t_model, graphc_mlp(list(sizes)))
            g_step, _, _ = make_steps(t_model, g_model, "ce", "adam")
            start = time.perf_counter()
            g_step(x, y)
            g_step(x, y)  # the first call runs eagerly to create state; the second compiles
            return time.perf_counter() - start

        import graphc.runtime.cpu

        # Other workloads may have compiled the same program in this process.
        graphc.runtime.cpu._MEMORY_CACHE.clear()
        row.times["graphc"] = first_call()
        graphc.runtime.cpu._MEMORY_CACHE.clear()  # keep only the disk cache
        row.note = f"graphc with a warm disk cache: {first_call() * 1e3:.0f} ms"
        if jax is not None:
            rng = np.random.default_rng(0)
            x_np = rng.standard_normal((64, sizes[0])).astype(np.float32)
            y_np = rng.integers(0, sizes[-1], 64).astype(np.int64)
            j_step = jax_mlp_step(t_model, list(sizes), "ce", "adam", x_np, y_np)
            start = time.perf_counter()
            j_step()  # traces and compiles
            row.times["jax.jit"] = time.perf_counter() - start
    finally:
        if old is None:
            os.environ.pop("GRAPHC_CACHE_DIR", None)
        else:
            os.environ["GRAPHC_CACHE_DIR"] = old


def all_workloads(quick: bool):
    import os

    mlp = [784, 128, 64, 10]
    batches = (64,) if quick else (1, 64, 512)
    work = []
    for b in batches:
        work.append(
            (f"MLP 784-128-64-10 CE Adam, batch {b}", lambda r, t, b=b: bench_training_step(r, t, mlp, b, "ce", "adam"))
        )
    work.append(
        ("MLP 10-20-1 MSE SGD, batch 64", lambda r, t: bench_training_step(r, t, [10, 20, 1], 64, "mse", "sgd"))
    )
    work.append(("MNIST CNN training step, batch 64", bench_cnn_step))
    for n in (256,) if quick else (256, 512, 1024, 2048):
        for threads in sorted({1, os.cpu_count()}):
            work.append((f"SGEMM {n}, {threads} thread(s)", lambda r, t, n=n, th=threads: bench_sgemm(r, t, n, th)))
    work.append(("fused relu(a*b+c), 16M floats", bench_fused_elementwise))
    work.append(("call overhead, tiny input", bench_call_overhead))
    work.append(("cold compile, MLP training step", bench_cold_compile))
    import model_workloads  # bench/model_workloads.py: ResNet-18, GPT, LSTM

    work.extend(model_workloads.workloads(quick))
    return work


def bench_cnn_step(row, timer, batch=64, repeats=10):
    import graphc
    import graphc.nn.functional as F
    import graphc.optim as optim
    from graphc.vision.models import Net

    torch.manual_seed(0)
    t_model = torch_cnn()
    g_model = graphc_copy(t_model, Net())
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y_np = rng.integers(0, 10, batch).astype(np.int64)
    g_opt = optim.SGD(g_model.parameters(), lr=0.01, momentum=0.9)
    t_opt = torch.optim.SGD(t_model.parameters(), lr=0.01, momentum=0.9)

    @graphc.compile
    def g_step(x, y):
        g_opt.zero_grad()
        loss = F.nll_loss(g_model(x), y)
        loss.backward()
        g_opt.step()
        return loss

    def t_step(x, y):
        t_opt.zero_grad()
        loss = torch.nn.functional.nll_loss(t_model(x), y)
        loss.backward()
        t_opt.step()
        return loss

    gx, gy, tx, ty = graphc.from_numpy(x_np), graphc.from_numpy(y_np), torch.from_numpy(x_np), torch.from_numpy(y_np)
    for _ in range(STEPS_CHECKED):
        g_loss, t_loss = g_step(gx, gy).item(), t_step(tx, ty).item()
        if not np.isclose(g_loss, t_loss, rtol=1e-3, atol=1e-4):
            raise AssertionError(f"losses differ: graphc {g_loss} vs torch {t_loss}")
    row.times["graphc"] = timer(lambda: g_step(gx, gy), repeats)
    row.times["torch"] = timer(lambda: t_step(tx, ty), repeats)

    # torch.compile peer, set up as for the MLPs: the model compiled.
    import copy

    tc_model = copy.deepcopy(t_model)
    tc_forward = torch.compile(tc_model)
    tc_opt = torch.optim.SGD(tc_model.parameters(), lr=0.01, momentum=0.9)

    def tc_step(x, y):
        tc_opt.zero_grad()
        loss = torch.nn.functional.nll_loss(tc_forward(x), y)
        loss.backward()
        tc_opt.step()
        return loss

    try:
        row.times["torch.compile"] = timer(lambda: tc_step(tx, ty), repeats, warmup=5)
    except Exception as e:  # inductor needs a working C++ toolchain
        row.note = f"torch.compile failed: {type(e).__name__}"
