"""DistributedDataParallel's errors and attributes, for test_ddp.py (2 ranks)."""

import graphc
import graphc.distributed as dist
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.errors import DistributedError
from graphc.nn.parallel import DistributedDataParallel as DDP


def main() -> None:
    try:
        DDP(nn.Linear(2, 2))
    except ValueError as e:
        assert "init_process_group" in str(e), e
    else:
        raise AssertionError("DDP before init_process_group did not raise")
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()

    # the wrap broadcasts rank 0's parameters; keys carry "module."
    graphc.manual_seed(rank)
    model = nn.Linear(3, 2)
    ddp = DDP(model)
    assert ddp.module is model
    assert sorted(ddp.state_dict()) == ["module.bias", "module.weight"], sorted(ddp.state_dict())
    gathered = [graphc.zeros(2, 3) for _ in range(world)]
    dist.all_gather(gathered, model.weight.detach())
    assert all(bool((g == gathered[0]).all()) for g in gathered), "parameters differ after the wrap"

    # a whole compiled step (backward and optimizer.step together) has no
    # place for the all-reduce: a clear error at trace time
    opt = graphc.optim.SGD(ddp.parameters(), lr=0.1)

    @graphc.compile
    def whole_step(x, y):
        opt.zero_grad()
        F.mse_loss(ddp(x), y).backward()
        opt.step()

    x, y = graphc.randn(4, 3), graphc.randn(4, 2)
    try:
        for _ in range(2):
            whole_step(x, y)
    except DistributedError as e:
        assert f"on rank {rank} of {world}" in str(e) and "optimizer.step() outside" in str(e), e
    else:
        raise AssertionError("a compiled whole step with DDP did not raise")

    # every rank must build the same model
    try:
        DDP(nn.Linear(3 + rank, 2))
    except DistributedError as e:
        assert f"on rank {rank} of {world}" in str(e) and "same model" in str(e), e
    else:
        raise AssertionError("different models on the ranks did not raise")
    try:
        DDP(nn.Linear(2, 2), bucket_cap_mb=0)
    except ValueError as e:
        assert "bucket_cap_mb" in str(e)
    else:
        raise AssertionError("bucket_cap_mb=0 did not raise")
    # overlap: with small buckets, the first all-reduce starts while backward
    # has not yet produced the first layer's gradients
    deep = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    ddp_deep = DDP(deep, bucket_cap_mb=300 / 2**20)  # about one layer per bucket
    assert len(ddp_deep._buckets) >= 3, len(ddp_deep._buckets)
    launches = []
    real_launch = ddp_deep._launch

    def spy(bucket, mpi):
        launches.append(sum(p.grad is None for p in deep.parameters()))
        real_launch(bucket, mpi)

    object.__setattr__(ddp_deep, "_launch", spy)
    ddp_deep(graphc.randn(4, 8)).sum().backward()
    assert len(launches) == len(ddp_deep._buckets) and launches[0] > 0, launches
    assert all(p.grad is not None for p in deep.parameters())

    try:
        DDP(nn.Linear(2, 2), bucket_cap=1)
    except TypeError as e:
        assert "unexpected keyword argument 'bucket_cap'" in str(e), e
    else:
        raise AssertionError("an unknown keyword did not raise")
    dist.destroy_process_group()
    if rank == 0:
        print("ddp errors ok")


if __name__ == "__main__":
    main()
