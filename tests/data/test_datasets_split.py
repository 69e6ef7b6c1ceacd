"""TensorDataset, Subset, ConcatDataset, random_split."""

import pytest

import graphc
from graphc.utils.data import ConcatDataset, Subset, TensorDataset, random_split


def test_tensor_dataset():
    ds = TensorDataset(graphc.arange(6).reshape(3, 2), graphc.tensor([5, 6, 7]))
    assert len(ds) == 3
    x, y = ds[1]
    assert x.tolist() == [2, 3] and int(y) == 6
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(graphc.zeros(3), graphc.zeros(4))


def test_subset_and_concat():
    base = list(range(10))
    sub = Subset(base, [9, 0, 4])
    assert len(sub) == 3 and [sub[i] for i in range(3)] == [9, 0, 4]
    cat = ConcatDataset([base, sub])
    assert len(cat) == 13 and cat[10] == 9 and cat[12] == 4 and cat[-1] == 4
    with pytest.raises(IndexError):
        cat[13]


@pytest.mark.parametrize(
    "lengths,expected", [([7, 3], [7, 3]), ([0.8, 0.2], [8, 2]), ([0.34, 0.33, 0.33], [4, 3, 3]), ([10, 0], [10, 0])]
)
def test_random_split_sizes_and_disjointness(lengths, expected):
    parts = random_split(range(10), lengths, generator=graphc.Generator().manual_seed(0))
    assert [len(p) for p in parts] == expected
    seen = [x for p in parts for x in (p[i] for i in range(len(p)))]
    assert sorted(seen) == list(range(10))


def test_random_split_reproducible_and_validated():
    a = random_split(range(20), [15, 5], generator=graphc.Generator().manual_seed(4))
    b = random_split(range(20), [15, 5], generator=graphc.Generator().manual_seed(4))
    c = random_split(range(20), [15, 5], generator=graphc.Generator().manual_seed(5))
    assert a[1].indices == b[1].indices and a[0].indices != c[0].indices
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(range(10), [3, 3])
