"""Samplers: which dataset indices a DataLoader visits, and in what order
(PyTorch's `torch.utils.data` samplers).

Random orders draw one 64-bit seed from a graphc generator (the given one or
the global one seeded by `graphc.manual_seed`) and permute with numpy, so a
seeded generator gives a reproducible order and each epoch a new one."""

from __future__ import annotations

import numpy as np

import graphc

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "BatchSampler", "randperm_list"]


def draw_seed(generator=None) -> int:
    """A fresh seed from `generator` (a graphc.Generator) or, when None,
    from graphc's global generator; advances that generator."""
    high = 2**62
    if generator is None:
        value = graphc.randint(0, high, (1,))
    else:
        value = graphc.randint(0, high, (1,), generator=generator)
    return int(value.numpy()[0])


def randperm_list(n: int, generator=None) -> list[int]:
    """A random permutation of range(n) as a Python list."""
    rng = np.random.default_rng(draw_seed(generator))
    return rng.permutation(n).tolist()


class Sampler:
    """Base class: an iterable of dataset indices (or of index lists)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """Indices 0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """Indices in random order: a permutation per epoch, or `num_samples`
    draws with replacement when `replacement=True`."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        rng = np.random.default_rng(draw_seed(self.generator))
        if self.replacement:
            return iter(rng.integers(0, n, size=self.num_samples).tolist())
        order: list[int] = []
        while len(order) < self.num_samples:
            order.extend(rng.permutation(n).tolist())
        return iter(order[: self.num_samples])

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices, in a random order each epoch."""

    def __init__(self, indices, generator=None):
        self.indices = list(indices)
        self.generator = generator

    def __iter__(self):
        order = randperm_list(len(self.indices), self.generator)
        return iter([self.indices[i] for i in order])

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of `batch_size`; the last,
    shorter list is dropped when `drop_last`."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
