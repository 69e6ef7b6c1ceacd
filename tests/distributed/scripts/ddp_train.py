"""Train a small CNN with DistributedDataParallel for a few steps in six
ways (eager, a compiled forward+backward step, the same with a compiled
optimizer step, a compiled model inside DDP, DDP compiled, gradient
accumulation with no_sync) and save
rank 0's parameters after each, for test_ddp.py to compare world sizes.

Usage: graphc run -n N ddp_train.py OUT.npz GLOBAL_BATCH STEPS BACKEND
Every run sees the same global batches; rank r of N trains on its slice.
"""

import sys

import numpy as np

import graphc
import graphc.distributed as dist
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.nn.parallel import DistributedDataParallel as DDP


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc1 = nn.Linear(4 * 6 * 6, 16)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv(x), 2))
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def batches(global_batch: int, steps: int):
    rng = np.random.default_rng(1)
    for _ in range(steps):
        x = rng.standard_normal((global_batch, 1, 14, 14)).astype(np.float32)
        y = rng.integers(0, 5, global_batch)
        yield x, y


def train(mode: str, global_batch: int, steps: int, backend: str) -> dict:
    rank, world = dist.get_rank(), dist.get_world_size()
    # Different seeds per rank: the broadcast at wrap time must fix that.
    graphc.manual_seed(100 + rank)
    model = SmallNet()
    if mode == "compiled_model":
        ddp = DDP(graphc.compile(model, backend=backend), bucket_cap_mb=0.002)  # several buckets
    elif mode == "compiled_ddp":
        ddp = graphc.compile(DDP(model, bucket_cap_mb=0.002), backend=backend)
    else:
        ddp = DDP(model, bucket_cap_mb=0.002)
    opt = graphc.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)

    def grad_step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(ddp(x), y)
        loss.backward()
        return loss

    step = graphc.compile(grad_step, backend=backend) if mode.startswith("compiled_step") else grad_step
    # the optimizer step compiled separately: it must not recompile per step
    opt_step = graphc.compile(opt.step, backend=backend) if mode == "compiled_step_and_opt" else opt.step
    share = global_batch // world
    for x, y in batches(global_batch, steps):
        mine = slice(rank * share, (rank + 1) * share)
        x, y = graphc.from_numpy(x[mine]), graphc.from_numpy(y[mine])
        if mode == "no_sync":
            # Gradient accumulation: the first half-batch stays local, the
            # second backward all-reduces the sum of both.
            half = share // 2
            opt.zero_grad()
            with ddp.no_sync():
                F.cross_entropy(ddp(x[:half]), y[:half]).backward()
            F.cross_entropy(ddp(x[half:]), y[half:]).backward()
        else:
            step(x, y)
        opt_step()
    if mode == "compiled_step_and_opt":
        programs = sum(len(entries) for entries in opt_step._cache.values())
        assert programs == 1, f"the compiled optimizer step compiled {programs} programs"
    return {f"{mode}.{k}": v.detach().numpy().copy() for k, v in ddp.state_dict().items()}


def main() -> None:
    out, global_batch, steps, backend = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    dist.init_process_group("mpi")
    results = {}
    for mode in ("eager", "compiled_step", "compiled_step_and_opt", "compiled_model", "compiled_ddp", "no_sync"):
        results.update(train(mode, global_batch, steps, backend))
    # Every rank must hold the same parameters.
    for key, value in results.items():
        gathered = [graphc.zeros(*value.shape) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, graphc.from_numpy(value))
        for g in gathered:
            assert np.array_equal(g.numpy(), value), f"ranks disagree on {key}"
    if dist.get_rank() == 0:
        np.savez(out, **results)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
