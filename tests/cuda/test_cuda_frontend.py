"""CUDA tensors end to end on graphc's own CUDA runtime: eager ops,
autograd, the tutorial device idiom and compiled training steps of the
reference models, each compared with the same program on the CPU. Runs on
the GPU and on the host emulator (the `cuda_device` fixture)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc import nn
from graphc.nn import functional as F
from graphc.vision.models import MLP, Net

pytestmark = pytest.mark.usefixtures("cuda_device")


def _close(got, want, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy(), rtol=rtol, atol=atol)


def test_cuda_is_available_and_tensors_live_on_the_device():
    assert graphc.cuda.is_available() and graphc.cuda.device_count() >= 1
    device = graphc.device("cuda" if graphc.cuda.is_available() else "cpu")
    x = graphc.arange(6, dtype=graphc.float32).reshape(2, 3).to(device)
    assert x.is_cuda and x.device == "cuda:0"
    assert x.cpu().tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_eager_ops_on_cuda_match_the_cpu():
    graphc.manual_seed(0)
    a, b = graphc.randn(5, 7), graphc.randn(7, 3)
    idx = graphc.tensor([4, 0, 2])
    ac, bc, ic = a.cuda(), b.cuda(), idx.cuda()
    cases = [
        (lambda a, b, i: a @ b, {}),
        (lambda a, b, i: (a * 2 + 1).relu() - a.exp() / 3, {}),
        (lambda a, b, i: F.softmax(a, dim=1), {}),
        (lambda a, b, i: F.log_softmax(a, dim=0), {}),
        (lambda a, b, i: a.sum(dim=1, keepdim=True) + a.mean(), {}),
        (lambda a, b, i: a.max(dim=1).values * a.argmax(dim=1), {}),
        (lambda a, b, i: a[1:4, ::2].t(), {}),
        (lambda a, b, i: a[i], {}),
        (lambda a, b, i: graphc.cat([a, a * a], dim=0).view(-1, 35), {}),
        (lambda a, b, i: graphc.where(a > 0, a, b.sum() * a), {}),
        (lambda a, b, i: (a.abs() + 1).log().sqrt().tanh(), {}),
    ]
    for k, (fn, _) in enumerate(cases):
        got, want = fn(ac, bc, ic), fn(a, b, idx)
        assert got.device == "cuda:0", f"case {k}"
        _close(got, want)


def test_autograd_on_cuda_matches_the_cpu():
    graphc.manual_seed(1)
    w = graphc.randn(4, 3, requires_grad=True)
    x = graphc.randn(5, 4)
    wc = w.detach().cuda().requires_grad_()
    ((x @ w).tanh() ** 2).mean().backward()
    ((x.cuda() @ wc).tanh() ** 2).mean().backward()
    assert wc.grad.device == "cuda:0"
    _close(wc.grad, w.grad)


class Regression(nn.Module):
    """Reference program 1: Linear(10, 20) -> ReLU -> Linear(20, 1)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.relu, self.fc2 = nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 1)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def _reference_setup(name: str):
    """(model, loss_fn, optimizer factory, x, y) of a reference program."""
    if name == "regression":
        return Regression(), nn.MSELoss(), lambda p: graphc.optim.SGD(p, lr=0.01), (16, 10), None
    if name == "mnist_mlp":
        return MLP(), nn.CrossEntropyLoss(), lambda p: graphc.optim.Adam(p, lr=1e-3), (16, 1, 28, 28), 10
    if name == "mnist_cnn":
        return (
            Net(),
            nn.CrossEntropyLoss(),
            lambda p: graphc.optim.SGD(p, lr=0.01, momentum=0.9),
            (8, 1, 28, 28),
            10,
        )
    raise ValueError(name)


def _train(name: str, device: str, steps: int = 3):
    graphc.manual_seed(0)
    model, loss_fn, make_opt, x_shape, classes = _reference_setup(name)
    model.to(device)
    opt = make_opt(model.parameters())

    @graphc.compile
    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    x = graphc.randn(*x_shape)
    y = graphc.randn(x_shape[0], 1) if classes is None else graphc.randint(0, classes, (x_shape[0],))
    losses = [step(x.to(device), y.to(device)).item() for _ in range(steps)]
    return model, losses, step


@pytest.mark.parametrize("name", ["regression", "mnist_mlp", "mnist_cnn"])
def test_compiled_training_of_reference_models_on_cuda_matches_the_cpu(name):
    model_cpu, losses_cpu, _ = _train(name, "cpu")
    model, losses, step = _train(name, "cuda")
    assert any(e.device == "cuda:0" for es in step._cache.values() for e in es)
    np.testing.assert_allclose(losses, losses_cpu, rtol=1e-4)
    for p, q in zip(model.parameters(), model_cpu.parameters()):
        assert p.device == "cuda:0"
        _close(p, q, rtol=1e-4, atol=1e-5)


def test_tutorial_loop_with_the_device_idiom():
    """Reference program 1 as a tutorial writes it, data moved batch by batch."""
    from graphc.utils.data import DataLoader, TensorDataset

    def run(device):
        graphc.manual_seed(0)
        data = TensorDataset(graphc.randn(64, 10), graphc.randn(64, 1))
        loader = DataLoader(data, batch_size=16, shuffle=True)
        model = Regression().to(device)
        criterion = nn.MSELoss()
        optimizer = graphc.optim.SGD(model.parameters(), lr=0.01)
        losses = []
        for _epoch in range(2):
            for inputs, labels in loader:
                inputs, labels = inputs.to(device), labels.to(device)
                outputs = model(inputs)
                loss = criterion(outputs, labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
        return losses, model

    device = graphc.device("cuda" if graphc.cuda.is_available() else "cpu")
    assert device.type == "cuda"
    losses, model = run(device)
    losses_cpu, model_cpu = run("cpu")
    np.testing.assert_allclose(losses, losses_cpu, rtol=1e-5)
    for p, q in zip(model.parameters(), model_cpu.parameters()):
        _close(p, q)
