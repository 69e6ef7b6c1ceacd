"""The reference MNIST CNN trained with a compiled training step on real
MNIST (the checkout's 10,000-image test set: first 8,000 train, last 2,000
evaluate) reaches at least 97% accuracy on the held-out images."""

from __future__ import annotations

import time

import pytest

import graphc
import graphc.nn.functional as F
import graphc.optim as optim
from graphc.utils.data import DataLoader, Subset
from graphc.vision import datasets, models, transforms


@pytest.mark.slow
def test_compiled_mnist_cnn_reaches_97_percent(mnist_dir):
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    test = datasets.MNIST(mnist_dir, train=False, transform=tf)
    assert len(test) == 10000
    train_set, eval_set = Subset(test, range(8000)), Subset(test, range(8000, 10000))

    graphc.manual_seed(0)
    model = models.Net()
    optimizer = optim.Adam(model.parameters(), lr=3e-3)
    scheduler = optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)

    @graphc.compile
    def train_step(x, y):
        optimizer.zero_grad()
        loss = F.nll_loss(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    loader = DataLoader(train_set, batch_size=64, shuffle=True, drop_last=True)
    seen, losses, data_time = 0, [], 0.0
    start = time.perf_counter()
    for _ in range(3):
        t = time.perf_counter()
        for x, y in loader:
            data_time += time.perf_counter() - t
            losses.append(train_step(x, y).item())
            seen += len(y)
            t = time.perf_counter()
        scheduler.step()
    elapsed = time.perf_counter() - start
    assert len(train_step._cache) == 1  # one compiled program served every step after the first

    model.eval()
    forward = graphc.compile(model)
    correct = 0
    with graphc.no_grad():
        for x, y in DataLoader(eval_set, batch_size=500):
            correct += int((forward(x).argmax(dim=1) == y).sum().item())
    accuracy = correct / len(eval_set)
    print(
        f"\nMNIST CNN, compiled, 3 epochs on 8,000 images: eval accuracy {accuracy * 100:.2f}% on 2,000; "
        f"{seen / elapsed:.0f} training images/s ({elapsed:.1f} s, compile and data loading "
        f"({data_time:.1f} s) included)"
    )
    assert sum(losses[-20:]) / 20 < 0.25 * sum(losses[:20]) / 20
    assert accuracy >= 0.97
