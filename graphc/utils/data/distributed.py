"""`DistributedSampler`: each rank of a data-parallel job reads its own
share of a dataset, in torch.utils.data.DistributedSampler's exact order.

With shuffle=True the order is the permutation torch draws from a CPU
`torch.Generator` seeded with `seed + epoch`: that generator is an mt19937
(32-bit seeding, as `numpy.random.MT19937`'s legacy seeding), and torch's
CPU randperm (for n below 2**32 / 20) starts from 0..n-1 and swaps entry i
with entry i + (draw_i mod (n - i)). The same draws and swaps here give the
same indices, so a job's data order does not change when it moves between
graphc and PyTorch.
"""

from __future__ import annotations

import math

import numpy as np

from graphc.utils.data.sampler import Sampler

# torch's randperm switches to a different algorithm from this size on.
_SMALL_RANDPERM = (2**32 - 1) // 20


def torch_randperm(n: int, seed: int) -> np.ndarray:
    """The permutation `torch.randperm(n, generator=torch.Generator().manual_seed(seed))`
    gives on the CPU (int64)."""
    if n >= _SMALL_RANDPERM:
        raise NotImplementedError(f"torch_randperm: n={n} is past the size whose order graphc reproduces")
    bits = np.random.MT19937(0)
    # The legacy seeding is init_genrand(seed), mt19937's reference seeding,
    # which torch's CPU generator uses with the seed's low 32 bits.
    bits._legacy_seeding(int(seed) & 0xFFFFFFFF)
    draws = bits.random_raw(max(n - 1, 0)) if n > 1 else np.empty(0, np.uint64)
    offsets = (draws % np.arange(n, 1, -1, dtype=np.uint64)).astype(np.int64)
    perm = np.arange(n, dtype=np.int64)
    for i, z in enumerate(offsets.tolist()):  # the swaps depend on each other: a loop
        j = i + z
        perm[i], perm[j] = perm[j], perm[i]
    return perm


class DistributedSampler(Sampler):
    """The indices of `dataset` that rank `rank` of `num_replicas` reads.

    Every rank gets `num_samples` indices: the (shuffled, when `shuffle`)
    index list is padded by repeating its start (or, with `drop_last`,
    cut) to a multiple of `num_replicas`, and rank r takes every
    num_replicas-th index from position r. Call `set_epoch(epoch)` before
    each epoch for a new order. `num_replicas` and `rank` default to the
    process group's world size and rank.

    >>> from graphc.utils.data import DistributedSampler
    >>> list(DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False))
    [1, 3, 0]
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle: bool = True, seed: int = 0, drop_last=False):
        if num_replicas is None or rank is None:
            import graphc.distributed as dist

            if not dist.is_initialized():
                raise RuntimeError(
                    "DistributedSampler: pass num_replicas and rank, or call "
                    "graphc.distributed.init_process_group() first"
                )
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be at least 1, got {num_replicas}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            # Drop the tail so every rank gets the same number of indices.
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = torch_randperm(n, self.seed + self.epoch).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[: self.total_size]
        assert len(indices) == self.total_size
        indices = indices[self.rank : self.total_size : self.num_replicas]
        return iter(indices)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use the order of `epoch` (every rank must set the same epoch)."""
        self.epoch = epoch


__all__ = ["DistributedSampler", "torch_randperm"]
