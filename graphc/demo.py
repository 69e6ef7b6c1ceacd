"""`graphc demo`: train the reference MNIST CNN, compiled, and report.

Data, in order of preference:
1. MNIST's train and test sets under --root (downloaded there when online);
2. only MNIST's test set under --root (as in a checkout's ../shared/data/mnist):
   its first 8,000 images train, the last 2,000 evaluate;
3. a procedurally generated digits dataset, so the demo always runs offline.
The demo says which one it used.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
import graphc.optim as optim
from graphc.utils.data import DataLoader, Subset
from graphc.vision import datasets, transforms

DEFAULT_ROOT = Path("~/.cache/graphc/data").expanduser()
DEFAULT_OUT = Path("~/.cache/graphc/mnist_cnn.safetensors").expanduser()


def load_data(root: Path):
    """Return (train_set, eval_set, description)."""
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    try:
        train = datasets.MNIST(root, train=True, download=True, transform=tf)
        test = datasets.MNIST(root, train=False, download=True, transform=tf)
        return train, test, f"MNIST from {root} ({len(train)} train, {len(test)} test)"
    except (RuntimeError, OSError) as e:
        first_error = e
    try:
        test = datasets.MNIST(root, train=False, download=False, transform=tf)
        n = len(test)
        split = n * 4 // 5
        return (
            Subset(test, range(split)),
            Subset(test, range(split, n)),
            f"MNIST test set from {root}: first {split} images train, last {n - split} evaluate",
        )
    except (RuntimeError, OSError):
        pass
    print(f"note: no MNIST data ({first_error}); using generated digits instead", file=sys.stderr)
    train = datasets.SyntheticDigits(8000, seed=0, transform=transforms.Normalize((0.1307,), (0.3081,)))
    test = datasets.SyntheticDigits(2000, seed=1, transform=transforms.Normalize((0.1307,), (0.3081,)))
    return train, test, "generated digits (8000 train, 2000 test): no MNIST files and no network"


def make_step(model, optimizer, backend: str):
    def train_step(x, y):
        optimizer.zero_grad()
        loss = F.nll_loss(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    if backend == "eager":
        return train_step
    return graphc.compile(train_step, backend=backend)


def evaluate(model, loader, backend: str) -> float:
    model.eval()
    forward = model if backend == "eager" else graphc.compile(model, backend=backend)
    correct = total = 0
    with graphc.no_grad():
        for x, y in loader:
            pred = forward(x).argmax(dim=1)
            correct += int((pred == y).sum().item())
            total += len(y)
    model.train()
    return correct / max(total, 1)


def main(args) -> int:
    from tqdm import tqdm

    root = Path(args.root).expanduser() if args.root else DEFAULT_ROOT
    out = Path(args.out).expanduser() if args.out else DEFAULT_OUT
    train_set, eval_set, what = load_data(root)
    if args.limit:
        train_set = Subset(train_set, range(min(args.limit, len(train_set))))
    print(f"data: {what}")

    graphc.manual_seed(0)
    model = graphc.vision.models.Net()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    step = make_step(model, optimizer, args.backend)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)
    eval_loader = DataLoader(eval_set, batch_size=500)

    print(f"model: reference MNIST CNN, {sum(p.numel() for p in model.parameters())} parameters, backend {args.backend}")
    seen, start = 0, time.perf_counter()
    for epoch in range(args.epochs):
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch", file=sys.stdout)
        for x, y in bar:
            loss = step(x, y)
            seen += len(y)
            bar.set_postfix(loss=f"{loss.item():.4f}")
    elapsed = time.perf_counter() - start

    accuracy = evaluate(model, eval_loader, args.backend)
    out.parent.mkdir(parents=True, exist_ok=True)
    graphc.save(model.state_dict(), str(out))
    print(f"test accuracy: {accuracy * 100:.2f}% on {len(eval_set)} images")
    print(f"training speed: {seen / elapsed:.0f} images/s ({elapsed:.1f} s, compile included)")
    print(f"checkpoint saved to {out}")
    return 0
