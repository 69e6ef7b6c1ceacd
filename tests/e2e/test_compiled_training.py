"""Compiled training steps of the reference models match eager training.

Each case builds a model and an optimizer from the same seed twice, runs the
same batches through an eager training step and through the same step under
`graphc.compile`, and compares every loss and, at the end, every entry of
the state dict (parameters and buffers such as BatchNorm's running
statistics).

Tolerance: float32, rtol=5e-5 and atol=5e-6 (losses and parameters). The
compiled program computes the same operations in float32 as the eager numpy
reference, but not always in the same order: matrix products are blocked,
reductions are split and fused into kernels and partial sums are added in a
different order, so single results differ from eager in the last bits
(relative ~1e-7..1e-6). Over a handful of steps those differences feed back
through the parameters and grow, most for Adam, whose update g / sqrt(v)
magnifies tiny gradients. Measured after 5 steps: at most 7e-7 absolute on
losses and 2.4e-7 on parameters, so the tolerance leaves a 10-20x margin
for codegen changes (blocking, threads). A real bug (a wrong gradient, a missed state
update, a stale learning rate, an RNG stream out of step) moves losses and
parameters by far more than this, typically at the 1e-2 level.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
import graphc.optim as optim
from graphc.utils.data import DataLoader, TensorDataset
from graphc.vision import models

RTOL, ATOL = 5e-5, 5e-6
STEPS = 5


# --- the reference models -------------------------------------------------


class Regression(nn.Module):
    """Reference program 1: Linear(10, 20) -> ReLU -> Linear(20, 1)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 20)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(20, 1)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


class RandomMLP(nn.Module):
    """Reference program 3: 784-128-10 with torch.relu."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(graphc.relu(self.fc1(x)))


class MnistMLP(nn.Module):
    """Reference program 4: 784-128-64-10, input flattened with view."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x):
        x = x.view(-1, 784)
        x = graphc.relu(self.fc1(x))
        x = graphc.relu(self.fc2(x))
        return self.fc3(x)


class Logistic(nn.Module):
    """Reference program 8, logistic case: sigmoid(wx + b)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x):
        return graphc.sigmoid(self.linear(x))


class DropoutBatchNorm(nn.Module):
    """Conv -> BatchNorm2d -> ReLU -> pool -> Linear -> BatchNorm1d -> ReLU
    -> Dropout -> Linear: random masks and running statistics in train mode."""

    def __init__(self):
        super().__init__()
        # no bias before a BatchNorm: its true gradient is 0, and Adam would
        # turn the rounding noise in it into full-size steps
        self.conv = nn.Conv2d(1, 4, 3, bias=False)
        self.bn2d = nn.BatchNorm2d(4)
        self.fc1 = nn.Linear(4 * 3 * 3, 16, bias=False)
        self.bn1d = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn2d(self.conv(x))), 2)
        x = graphc.flatten(x, 1)
        x = self.drop(F.relu(self.bn1d(self.fc1(x))))
        return self.fc2(x)


# --- data -------------------------------------------------------------------


def _rng(seed):
    return np.random.default_rng(seed)


def regression_data(n, seed=0):
    r = _rng(seed)
    x = r.standard_normal((n, 10)).astype(np.float32)
    y = (x.sum(1, keepdims=True) * 0.5 + 1.0).astype(np.float32)
    return graphc.tensor(x), graphc.tensor(y)


def class_data(shape, classes):
    def make(n, seed=0):
        r = _rng(seed)
        x = r.standard_normal((n, *shape)).astype(np.float32)
        y = r.integers(0, classes, n).astype(np.int64)
        return graphc.tensor(x), graphc.tensor(y)

    return make


def linear_data(n, seed=0):
    r = _rng(seed)
    x = r.standard_normal((n, 1)).astype(np.float32)
    y = (3.0 * x + 2.0 + 0.01 * r.standard_normal((n, 1))).astype(np.float32)
    return graphc.tensor(x), graphc.tensor(y)


def logistic_data(n, seed=0):
    r = _rng(seed)
    x = r.standard_normal((n, 2)).astype(np.float32)
    y = ((x[:, 0] + x[:, 1]) > 0).astype(np.float32)[:, None]
    return graphc.tensor(x), graphc.tensor(y)


# name: (model factory, optimizer factory, loss(output, target), data(n, seed), batch)
CASES = {
    "regression_mse_sgd": (Regression, lambda p: optim.SGD(p, lr=0.01), nn.MSELoss(), regression_data, 32),
    "mlp784_128_10_ce_sgd": (
        RandomMLP,
        lambda p: optim.SGD(p, lr=0.01),
        nn.CrossEntropyLoss(),
        class_data((784,), 10),
        100,
    ),
    "mnist_mlp_adam": (
        MnistMLP,
        lambda p: optim.Adam(p, lr=1e-3),
        nn.CrossEntropyLoss(),
        class_data((1, 28, 28), 10),
        32,
    ),
    "mnist_mlp_sgd_momentum": (
        MnistMLP,
        lambda p: optim.SGD(p, lr=0.01, momentum=0.9),
        nn.CrossEntropyLoss(),
        class_data((1, 28, 28), 10),
        32,
    ),
    "mnist_cnn_nll": (
        models.Net,
        lambda p: optim.SGD(p, lr=0.01, momentum=0.5),
        F.nll_loss,
        class_data((1, 28, 28), 10),
        16,
    ),
    "cifar_cnn": (
        models.CifarNet,
        lambda p: optim.SGD(p, lr=0.001, momentum=0.9),
        nn.CrossEntropyLoss(),
        class_data((3, 32, 32), 10),
        8,
    ),
    "linear_regression": (lambda: nn.Linear(1, 1), lambda p: optim.SGD(p, lr=0.1), nn.MSELoss(), linear_data, 100),
    "logistic_regression": (Logistic, lambda p: optim.SGD(p, lr=0.5), nn.BCELoss(), logistic_data, 100),
    "dropout_batchnorm_adam": (
        DropoutBatchNorm,
        lambda p: optim.Adam(p, lr=1e-2),
        nn.CrossEntropyLoss(),
        class_data((1, 8, 8), 3),
        16,
    ),
}


# --- the harness --------------------------------------------------------------


def snapshot(model) -> dict:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def train(case, backend, batches, seed=0):
    """Train a fresh model of `case` over `batches`; backend None is eager.
    Returns (losses, state dict snapshot, the step function)."""
    make_model, make_opt, criterion, _, _ = CASES[case]
    graphc.manual_seed(seed)
    model = make_model()
    model.train()
    optimizer = make_opt(model.parameters())

    def train_step(x, y):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    step = train_step if backend is None else graphc.compile(train_step, backend=backend)
    losses = [float(step(x, y).item()) for x, y in batches]
    return losses, snapshot(model), step


def batches_for(case, steps=STEPS, n=None):
    _, _, _, data, batch = CASES[case]
    return [data(n or batch, seed=i) for i in range(steps)]


def assert_same_training(case, backend, steps=STEPS):
    batches = batches_for(case, steps)
    eager_losses, eager_state, _ = train(case, None, batches)
    losses, state, step = train(case, backend, batches)
    # the first call runs eagerly, the second traces: the rest ran compiled
    assert len(step._cache) == 1 and len(next(iter(step._cache.values()))) == 1
    np.testing.assert_allclose(losses, eager_losses, rtol=RTOL, atol=ATOL, err_msg=f"{case}: losses")
    assert state.keys() == eager_state.keys()
    for k in state:
        np.testing.assert_allclose(state[k], eager_state[k], rtol=RTOL, atol=ATOL, err_msg=f"{case}: {k}")
    # and training did something: the parameters moved
    graphc.manual_seed(0)
    initial = snapshot(CASES[case][0]())
    assert any(not np.array_equal(initial[k], state[k]) for k in state if initial[k].dtype.kind == "f")
    return losses


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_llvm_training_matches_eager(case):
    assert_same_training(case, "llvm")


@pytest.mark.parametrize("case", ["regression_mse_sgd", "dropout_batchnorm_adam"])
def test_compiled_interp_training_matches_eager(case):
    assert_same_training(case, "interp", steps=4)


def test_dropout_batchnorm_state_is_updated_by_the_compiled_step():
    """The compiled step advances the RNG (new dropout masks each call) and
    the running statistics, exactly as the eager step does."""
    batches = batches_for("dropout_batchnorm_adam", steps=4)
    batches = [batches[0]] * 4  # same input: only the dropout mask changes the loss
    eager, eager_state, _ = train("dropout_batchnorm_adam", None, batches)
    compiled, state, _ = train("dropout_batchnorm_adam", "llvm", batches)
    np.testing.assert_allclose(compiled, eager, rtol=RTOL, atol=ATOL)
    assert int(state["bn1d.num_batches_tracked"]) == 4
    assert not np.allclose(state["bn1d.running_mean"], 0.0)
    assert len(set(np.round(compiled, 6))) == 4


# --- inference ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_model, shape",
    [
        (models.Net, (1, 28, 28)),
        (models.CifarNet, (3, 32, 32)),
        (MnistMLP, (1, 28, 28)),
        (DropoutBatchNorm, (1, 8, 8)),
    ],
    ids=["mnist_cnn", "cifar_cnn", "mnist_mlp", "dropout_batchnorm"],
)
def test_compiled_eval_inference_matches_eager(make_model, shape):
    graphc.manual_seed(0)
    model = make_model()
    if isinstance(model, DropoutBatchNorm):
        # non-trivial running statistics, from a few eager train-mode batches
        with graphc.no_grad():
            for i in range(3):
                model(graphc.randn(16, *shape) * (i + 1) + i)
        assert not np.allclose(model.bn2d.running_var.numpy(), 1.0)
    model.eval()
    compiled = graphc.compile(model)
    xs = [graphc.randn(20, *shape) for _ in range(4)]
    with graphc.no_grad():
        eager = [model(x).numpy().copy() for x in xs]
        out = [compiled(x).numpy().copy() for x in xs]
    for a, b in zip(out, eager):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    assert len(compiled._cache) == 1  # calls 2.. ran one compiled program
    # eval mode is deterministic: the same input gives the same output
    with graphc.no_grad():
        np.testing.assert_array_equal(compiled(xs[-1]).numpy(), out[-1])


# --- recompilation ------------------------------------------------------------


def _tensor_shapes(key) -> list:
    """The tensor shapes in a compiled function's cache key (its arguments'
    part), in order."""
    if isinstance(key, tuple) and key[:1] == ("T",):
        return [key[1]]
    if isinstance(key, tuple):
        return [s for k in key for s in _tensor_shapes(k)]
    return []


def test_last_partial_batch_recompiles_and_matches_eager(monkeypatch, capsys):
    """100 samples in batches of 32: the last batch (4) is a new signature.
    Over three epochs it runs eagerly once, then compiles; every loss and
    the final parameters match eager training."""
    monkeypatch.setenv("GRAPHC_DEBUG", "1")
    x, y = regression_data(100)

    def run(backend):
        graphc.manual_seed(0)
        loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
        model = Regression()
        opt = optim.SGD(model.parameters(), lr=0.01)

        def train_step(xb, yb):
            opt.zero_grad()
            loss = F.mse_loss(model(xb), yb)
            loss.backward()
            opt.step()
            return loss

        step = train_step if backend is None else graphc.compile(train_step, backend=backend)
        losses, sizes = [], []
        for _ in range(3):
            for xb, yb in loader:
                losses.append(step(xb, yb).item())
                sizes.append(len(xb))
        return losses, sizes, snapshot(model), step

    eager_losses, sizes, eager_state, _ = run(None)
    capsys.readouterr()
    losses, sizes2, state, step = run("llvm")
    err = capsys.readouterr().err
    assert sizes == sizes2 == [32, 32, 32, 4] * 3
    np.testing.assert_allclose(losses, eager_losses, rtol=RTOL, atol=ATOL)
    for k in state:
        np.testing.assert_allclose(state[k], eager_state[k], rtol=RTOL, atol=ATOL)
    batch_sizes = sorted(_tensor_shapes(key[0])[0][0] for key in step._cache)
    assert batch_sizes == [4, 32]
    assert err.count("compile train_step: new signature: tracing") == 2, err


def test_train_eval_switch_recompiles(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_DEBUG", "1")
    graphc.manual_seed(0)
    model = DropoutBatchNorm()
    compiled = graphc.compile(model)
    x = graphc.randn(8, 1, 8, 8)
    with graphc.no_grad():
        model.train()
        for _ in range(3):
            train_out = compiled(x)
        model.eval()
        eval_outs = [compiled(x).numpy().copy() for _ in range(3)]
        eager_eval = model(x).numpy()
        model.train()
        train_again = compiled(x)
    err = capsys.readouterr().err
    assert len(compiled._cache) == 2
    modes = sorted(key[4][0] for key in compiled._cache)
    assert modes == sorted([(True,) * 7, (False,) * 7])
    assert err.count("compile DropoutBatchNorm: new signature: tracing") == 2, err
    for out in eval_outs:
        np.testing.assert_allclose(out, eager_eval, rtol=RTOL, atol=ATOL)
    # train mode draws new dropout masks each call; eval mode does not
    assert not np.allclose(train_out.numpy(), train_again.numpy())
    assert not np.allclose(train_out.numpy(), eval_outs[0])
