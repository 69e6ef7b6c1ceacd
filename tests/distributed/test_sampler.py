"""DistributedSampler gives torch.utils.data.DistributedSampler's indices."""

import numpy as np
import pytest

from graphc.utils.data import DataLoader, DistributedSampler, TensorDataset
from graphc.utils.data.distributed import torch_randperm

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("seed", [0, 7, 2**32 + 5, 123456789])
@pytest.mark.parametrize("n", [0, 1, 2, 10, 97, 1000])
def test_randperm_matches_torch_cpu_generator(n, seed):
    g = torch.Generator().manual_seed(seed)
    want = torch.randperm(n, generator=g).numpy()
    np.testing.assert_array_equal(torch_randperm(n, seed), want)


@pytest.mark.parametrize("n", [1, 5, 10, 33, 100])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("drop_last", [False, True])
def test_indices_match_torch(n, replicas, shuffle, drop_last):
    if drop_last and n < replicas:
        pytest.skip("torch gives every rank zero samples here too; nothing to compare")
    for rank in range(replicas):
        for epoch in (0, 1, 5):
            ours = DistributedSampler(range(n), replicas, rank, shuffle=shuffle, seed=3, drop_last=drop_last)
            theirs = torch.utils.data.DistributedSampler(
                range(n), replicas, rank, shuffle=shuffle, seed=3, drop_last=drop_last
            )
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs), (rank, epoch)
            assert len(ours) == len(theirs)


def test_ranks_cover_the_dataset_and_epochs_reorder():
    shares = [list(DistributedSampler(range(10), 2, r, seed=1)) for r in range(2)]
    assert sorted(shares[0] + shares[1]) == list(range(10))
    s = DistributedSampler(range(10), 2, 0, seed=1)
    s.set_epoch(1)
    assert list(s) != shares[0]


def test_with_dataloader():
    import graphc

    data = TensorDataset(graphc.arange(12))
    loader = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, 3, 1, shuffle=False))
    assert [b[0].tolist() for b in loader] == [[1, 4], [7, 10]]


def test_errors():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="Invalid rank -1"):
        DistributedSampler(range(4), num_replicas=2, rank=-1)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))
