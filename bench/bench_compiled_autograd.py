"""Forward + backward (`model(x)` then `loss.backward()`), batch 64: eager
graphc, graphc.compile(model) (compiled forward and backward programs) and
PyTorch eager, for the MLP 784-128-64-10 and the reference MNIST CNN.

Each case first checks that the three compute the same parameter gradients
from the same weights, then prints median times per forward+backward and
ratios (below 1: graphc.compile is faster).

Run: .venv/bin/python bench/bench_compiled_autograd.py [batch]
"""

from __future__ import annotations

import platform
import sys

import numpy as np
from bench_sgemm import median_time
from workloads import graphc_copy, graphc_mlp, torch_mlp


def _torch_cnn():
    import torch

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


def _cases(batch: int):
    import torch

    from graphc.vision.models import Net

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    sizes = (784, 128, 64, 10)
    t_mlp = torch_mlp(sizes)
    yield f"MLP 784-128-64-10, batch {batch}", t_mlp, graphc_copy(t_mlp, graphc_mlp(sizes)), (batch, 784), rng
    t_cnn = _torch_cnn()
    yield f"MNIST CNN, batch {batch}", t_cnn, graphc_copy(t_cnn, Net()), (batch, 1, 28, 28), rng


def _step(model, x, y, nll):
    """One forward+backward with gradients set to None first."""
    for p in model.parameters():
        p.grad = None
    loss = nll(model(x).log_softmax(1), y)
    loss.backward()
    return loss


def _check(t_model, g_model, g_compiled, steps) -> None:
    for p in g_model.parameters():
        p.grad = None
    steps["torch"]()
    want = [p.grad.numpy().copy() for p in t_model.parameters()]
    for name in ("graphc eager", "graphc.compile"):
        for _ in range(3):  # the compiled one: eager call, trace, compiled call
            steps[name]()
        got = [p.grad.numpy() for p in g_model.parameters()]
        for a, b in zip(got, want):
            if not np.allclose(a, b, rtol=1e-3, atol=1e-5):
                raise AssertionError(f"{name}: gradients differ from torch by {np.abs(a - b).max():.3g}")
    entry = next(iter(g_compiled._ready.values()))[0]
    if type(entry).__name__ != "AutogradEntry":
        raise AssertionError(f"graphc.compile ran {type(entry).__name__}, not the compiled forward+backward")


def main(batch: int) -> None:
    import torch

    import graphc
    import graphc.nn.functional as F

    print(f"CPU: {_cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    header = ("workload", "graphc eager", "graphc.compile", "torch", "compile/eager", "compile/torch")
    print(f"{header[0]:<28}" + "".join(f"{h:>16}" for h in header[1:]))
    for name, t_model, g_model, shape, rng in _cases(batch):
        x_np = rng.standard_normal(shape).astype(np.float32)
        y_np = rng.integers(0, 10, batch).astype(np.int64)
        gx, gy = graphc.from_numpy(x_np), graphc.from_numpy(y_np)
        tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)
        g_compiled = graphc.compile(g_model)
        steps = {
            "graphc eager": lambda m=g_model, x=gx, y=gy: _step(m, x, y, F.nll_loss),
            "graphc.compile": lambda m=g_compiled, x=gx, y=gy: _step(m, x, y, F.nll_loss),
            "torch": lambda m=t_model, x=tx, y=ty: _step(m, x, y, torch.nn.functional.nll_loss),
        }
        _check(t_model, g_model, g_compiled, steps)
        times = {k: median_time(fn) for k, fn in steps.items()}
        eager, compiled, peer = times["graphc eager"], times["graphc.compile"], times["torch"]
        cells = [f"{eager * 1e3:.3f} ms", f"{compiled * 1e3:.3f} ms", f"{peer * 1e3:.3f} ms"]
        cells += [f"{compiled / eager:.2f}x", f"{compiled / peer:.2f}x"]
        print(f"{name:<28}" + "".join(f"{c:>16}" for c in cells))


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    here = __file__.rsplit("/", 1)[0]
    sys.path[:0] = [here, here + "/.."]
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 64)
