"""Data-parallel training of the demo's MNIST CNN on several processes.

    graphc run -n 2 examples/ddp_mnist_cnn.py [--root DIR] [--epochs N] [--limit N]

(`make demo-ddp`). Each rank reads its share of the data through a
DistributedSampler, computes gradients with a compiled forward+backward
step, and DistributedDataParallel averages them across ranks before the
(separately compiled) Adam step, so all ranks keep the same model. Data, model, optimizer
and schedule are the ones of `graphc demo` (graphc/demo.py), with the
global batch (64) split over the ranks. Rank 0 evaluates and saves.
"""

import argparse
import sys
import time
from pathlib import Path

import graphc
import graphc.distributed as dist
import graphc.nn.functional as F
import graphc.optim as optim
from graphc.demo import DEFAULT_ROOT, evaluate, load_data
from graphc.nn.parallel import DistributedDataParallel as DDP
from graphc.utils.data import DataLoader, DistributedSampler, Subset


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="MNIST folder (default ~/.cache/graphc/data)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch, split over the ranks")
    parser.add_argument("--limit", type=int, default=None, help="train on at most this many images")
    parser.add_argument("--backend", choices=("llvm", "interp", "eager"), default="llvm")
    parser.add_argument("--out", default="~/.cache/graphc/mnist_cnn_ddp.safetensors")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    say = print if rank == 0 else (lambda *a, **k: None)
    root = Path(args.root).expanduser() if args.root else DEFAULT_ROOT
    train_set, eval_set, what = load_data(root, args.limit)
    if args.limit:
        train_set = Subset(train_set, range(min(args.limit, len(train_set))))
    say(f"data: {what}")

    graphc.manual_seed(0)
    model = graphc.vision.models.Net()
    ddp = DDP(model)  # rank 0's initial weights go to every rank
    optimizer = optim.Adam(ddp.parameters(), lr=3e-3)
    scheduler = optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    sampler = DistributedSampler(train_set, shuffle=True, seed=0, drop_last=True)
    per_rank = max(1, args.batch_size // world)
    loader = DataLoader(train_set, batch_size=per_rank, sampler=sampler, drop_last=True)

    def grad_step(x, y):
        optimizer.zero_grad()
        loss = F.nll_loss(ddp(x), y)
        loss.backward()
        return loss

    # Forward+backward and the optimizer step compile as two programs; DDP
    # averages the gradients between them (before the step's call).
    if args.backend == "eager":
        step, opt_step = grad_step, optimizer.step
    else:
        step = graphc.compile(grad_step, backend=args.backend)
        opt_step = graphc.compile(optimizer.step, backend=args.backend)
    say(f"ranks: {world}, batch {per_rank} per rank, {len(loader)} steps per epoch, backend {args.backend}")
    seen, start = 0, time.perf_counter()
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        for i, (x, y) in enumerate(loader):
            loss = step(x, y)
            opt_step()
            seen += len(y) * world
            if rank == 0 and i % 25 == 0:
                print(f"epoch {epoch + 1}/{args.epochs} step {i}/{len(loader)} loss {loss.item():.4f}", flush=True)
        scheduler.step()
    elapsed = time.perf_counter() - start

    if rank == 0:
        accuracy = evaluate(model, DataLoader(eval_set, batch_size=500), args.backend)
        out = Path(args.out).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        graphc.save(model.state_dict(), str(out))
        print(f"test accuracy: {accuracy * 100:.2f}% on {len(eval_set)} images")
        print(f"training speed: {seen / elapsed:.0f} images/s over {world} ranks ({seen} images in {elapsed:.1f} s)")
        print(f"checkpoint saved to {out}")
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
