"""DataLoader: ordering, shuffling, drop_last, collation, worker processes."""

import collections

import numpy as np
import pytest

import graphc
from graphc.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
    default_collate,
    get_worker_info,
)


class Squares(Dataset):
    """Sample i: (float32 array [i, i*i], int label i % 3)."""

    def __init__(self, n=23):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.array([i, i * i], dtype=np.float32), i % 3


class Failing(Squares):
    def __getitem__(self, i):
        if i == 7:
            raise KeyError("sample 7 is broken")
        return super().__getitem__(i)


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


def _as_lists(loader):
    return [[x.numpy().tolist() if isinstance(x, graphc.Tensor) else x for x in batch] for batch in loader]


def test_sequential_batches_and_len():
    loader = DataLoader(Squares(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    x, y = batches[0]
    assert x.shape == (4, 2) and x.dtype == graphc.float32
    assert y.dtype == graphc.int64 and y.tolist() == [0, 1, 2, 0]
    assert batches[2][0].numpy()[:, 0].tolist() == [8.0, 9.0]


def test_drop_last():
    loader = DataLoader(Squares(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [b[0].shape[0] for b in loader] == [4, 4]


def test_shuffle_is_a_permutation_reproducible_with_seed():
    ds = TensorDataset(graphc.arange(50))

    def order(loader):
        return [int(v) for batch in loader for v in batch[0].numpy()]

    g1 = graphc.Generator().manual_seed(123)
    g2 = graphc.Generator().manual_seed(123)
    first = order(DataLoader(ds, batch_size=8, shuffle=True, generator=g1))
    assert sorted(first) == list(range(50)) and first != list(range(50))
    assert first == order(DataLoader(ds, batch_size=8, shuffle=True, generator=g2))
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=graphc.Generator().manual_seed(123))
    assert order(loader) == first and order(loader) != first, "each epoch draws a new order"

    graphc.manual_seed(7)
    global_a = order(DataLoader(ds, batch_size=8, shuffle=True))
    graphc.manual_seed(7)
    assert order(DataLoader(ds, batch_size=8, shuffle=True)) == global_a


def test_default_collate_nested_structures():
    Point = collections.namedtuple("Point", "x y")
    samples = [
        {
            "img": graphc.full((2, 2), float(i)),
            "meta": (i, 0.5 * i, f"s{i}", True),
            "arr": np.arange(3, dtype=np.int16) + i,
            "pt": Point(i, np.float32(i)),
        }
        for i in range(3)
    ]
    out = default_collate(samples)
    assert out["img"].shape == (3, 2, 2) and out["img"].numpy()[2, 0, 0] == 2.0
    ints, floats, strings, flags = out["meta"]
    assert ints.dtype == graphc.int64 and ints.tolist() == [0, 1, 2]
    assert floats.dtype == graphc.float64 and floats.tolist() == [0.0, 0.5, 1.0]
    assert strings == ["s0", "s1", "s2"]
    assert flags.dtype == graphc.bool and flags.tolist() == [True, True, True]
    assert out["arr"].dtype == graphc.int16 and out["arr"].shape == (3, 3)
    assert isinstance(out["pt"], Point) and out["pt"].y.dtype == graphc.float32


def test_default_collate_rejects_ragged_and_unknown():
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([graphc.zeros(2), graphc.zeros(3)])
    with pytest.raises(TypeError, match="object"):
        default_collate([object(), object()])


def test_custom_collate_and_no_batching():
    loader = DataLoader(Squares(5), batch_size=2, collate_fn=lambda batch: len(batch))
    assert list(loader) == [2, 2, 1]
    unbatched = list(DataLoader(Squares(3), batch_size=None))
    assert len(unbatched) == 3 and isinstance(unbatched[1][0], graphc.Tensor)
    assert unbatched[1][0].tolist() == [1.0, 1.0]


def test_samplers():
    ds = Squares(7)
    assert list(SequentialSampler(ds)) == list(range(7))
    assert list(BatchSampler(SequentialSampler(ds), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(BatchSampler(SequentialSampler(ds), 3, drop_last=True)) == 2
    drawn = list(RandomSampler(ds, replacement=True, num_samples=20, generator=graphc.Generator().manual_seed(0)))
    assert len(drawn) == 20 and all(0 <= i < 7 for i in drawn)
    loader = DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(ds), 4, False))
    assert [b[1].tolist() for b in loader] == [[0, 1, 2, 0], [1, 2, 0]]


def test_argument_conflicts_raise():
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(Squares(), sampler=SequentialSampler(Squares()), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler"):
        DataLoader(Squares(), batch_size=4, batch_sampler=BatchSampler(SequentialSampler(Squares()), 2, False))
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(Squares(), num_workers=-1)


def test_pin_memory_is_accepted():
    assert len(list(DataLoader(Squares(4), batch_size=2, pin_memory=True))) == 2


def test_workers_give_the_same_batches_in_order():
    ds = Squares(37)
    serial = _as_lists(DataLoader(ds, batch_size=5))
    parallel = _as_lists(DataLoader(ds, batch_size=5, num_workers=2))
    assert parallel == serial
    g = graphc.Generator().manual_seed(3)
    shuffled_serial = _as_lists(DataLoader(ds, batch_size=4, shuffle=True, generator=g))
    g = graphc.Generator().manual_seed(3)
    shuffled_parallel = _as_lists(
        DataLoader(ds, batch_size=4, shuffle=True, generator=g, num_workers=2, prefetch_factor=1)
    )
    assert shuffled_parallel == shuffled_serial


def test_workers_with_tensor_dataset_and_early_break():
    ds = TensorDataset(graphc.arange(40).float().reshape(20, 2), graphc.arange(20))
    loader = DataLoader(ds, batch_size=3, num_workers=2)
    batches = list(loader)
    assert len(batches) == len(loader) == 7
    assert batches[-1][1].tolist() == [18, 19]
    np.testing.assert_array_equal(batches[1][0].numpy(), [[6, 7], [8, 9], [10, 11]])
    for i, _ in enumerate(loader):  # abandoning an epoch must not hang or leak
        if i == 1:
            break


def test_worker_exception_is_reported():
    loader = DataLoader(Failing(12), batch_size=2, num_workers=2)
    with pytest.raises(KeyError, match="sample 7 is broken"):
        list(loader)


def test_iterable_dataset_single_and_multi_process():
    assert [b.tolist() for b in DataLoader(Stream(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(list(DataLoader(Stream(7), batch_size=3, drop_last=True))) == 2
    parallel = [v for b in DataLoader(Stream(9), batch_size=2, num_workers=2) for v in b.tolist()]
    assert sorted(parallel) == list(range(9))
