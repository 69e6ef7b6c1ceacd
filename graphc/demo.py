"""`graphc demo`: train the reference MNIST CNN, compiled, and report.

Data, in order of preference:
1. MNIST's train and test sets already under --root;
2. only MNIST's test set under --root (as in a checkout's ../shared/data/mnist):
   its first 8,000 images train, the last 2,000 evaluate;
3. MNIST's train and test sets downloaded into --root (when online);
4. a procedurally generated digits dataset, so the demo always runs offline.
The demo says which one it used.

Training: Adam (lr 3e-3, halved after every epoch), batch 64; the whole
training step (forward, loss, backward, optimizer step) is one compiled
call. Three epochs on the 8,000-image split reach about 98% accuracy on the
2,000 held-out images.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import graphc
import graphc.nn.functional as F
import graphc.optim as optim
from graphc.utils.data import DataLoader, Subset
from graphc.vision import datasets, transforms

DEFAULT_ROOT = Path("~/.cache/graphc/data").expanduser()
DEFAULT_OUT = Path("~/.cache/graphc/mnist_cnn.safetensors").expanduser()
DEFAULT_EPOCHS = 3
SPLIT_TRAIN, SPLIT_EVAL = 8000, 2000


def _transform():
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])


def load_data(root: Path, limit: int | None = None):
    """Return (train_set, eval_set, description); see the module doc."""
    tf = _transform()
    try:
        train = datasets.MNIST(root, train=True, transform=tf)
        test = datasets.MNIST(root, train=False, transform=tf)
        return train, test, f"MNIST from {root} ({len(train)} train, {len(test)} test)"
    except (RuntimeError, OSError):
        pass
    try:
        test = datasets.MNIST(root, train=False, transform=tf)
        n = len(test)
        split = n * 4 // 5
        return (
            Subset(test, range(split)),
            Subset(test, range(split, n)),
            f"MNIST test set from {root}: first {split} images train, last {n - split} evaluate",
        )
    except (RuntimeError, OSError):
        pass
    try:
        train = datasets.MNIST(root, train=True, download=True, transform=tf)
        test = datasets.MNIST(root, train=False, download=True, transform=tf)
        return train, test, f"MNIST downloaded to {root} ({len(train)} train, {len(test)} test)"
    except (RuntimeError, OSError) as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        error = lines[1] if len(lines) > 1 and lines[0].endswith("Tried:") else lines[0]
    print(
        f"note: no MNIST data under {root} and the download failed ({error}); using generated digits instead",
        file=sys.stderr,
    )
    n_train = min(limit, SPLIT_TRAIN) if limit else SPLIT_TRAIN
    train = datasets.SyntheticDigits(n_train, seed=0, transform=tf)
    test = datasets.SyntheticDigits(SPLIT_EVAL, seed=1, transform=tf)
    return train, test, f"generated digits ({n_train} train, {SPLIT_EVAL} test): no MNIST files and no network"


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
    epochs = DEFAULT_EPOCHS if getattr(args, "epochs", None) is None else args.epochs
    train_set, eval_set, what = load_data(root, args.limit)
    if args.limit:
        train_set = Subset(train_set, range(min(args.limit, len(train_set))))
    print(f"data: {what}")

    graphc.manual_seed(0)
    model = graphc.vision.models.Net()
    optimizer = optim.Adam(model.parameters(), lr=3e-3)
    scheduler = optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    step = make_step(model, optimizer, args.backend)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)
    eval_loader = DataLoader(eval_set, batch_size=500)

    n_params = sum(p.numel() for p in model.parameters())
    plural = "" if epochs == 1 else "s"
    print(f"model: reference MNIST CNN, {n_params} parameters, Adam, {epochs} epoch{plural}, backend {args.backend}")
    seen = calls = 0
    warmup_time = warmup_seen = 0.0
    start = time.perf_counter()
    for epoch in range(epochs):
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", file=sys.stdout)
        for x, y in bar:
            loss = step(x, y).item()
            seen += len(y)
            calls += 1
            if calls == 2:  # the first call runs eagerly, the second traces and compiles
                warmup_time, warmup_seen = time.perf_counter() - start, seen
            bar.set_postfix(loss=f"{loss:.4f}")
        bar.close()
        scheduler.step()
    elapsed = time.perf_counter() - start

    accuracy = evaluate(model, eval_loader, args.backend)
    out.parent.mkdir(parents=True, exist_ok=True)
    graphc.save(model.state_dict(), str(out))
    print(f"test accuracy: {accuracy * 100:.2f}% on {len(eval_set)} images")
    steady = (seen - warmup_seen) / max(elapsed - warmup_time, 1e-9) if seen > warmup_seen else seen / elapsed
    warmup = (
        "" if args.backend == "eager" else f"; the first two steps, eager and trace + compile, took {warmup_time:.1f} s"
    )
    print(f"training speed: {steady:.0f} images/s ({seen} images in {elapsed:.1f} s{warmup})")
    print(f"checkpoint saved to {out}")
    return 0
