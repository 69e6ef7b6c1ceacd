"""`default_collate`: turn a list of samples into one batch, as PyTorch's
`torch.utils.data.default_collate` does.

- tensors -> stacked along a new first dimension
- numpy arrays -> stacked into a tensor; numpy scalars -> a 1-d tensor
- Python floats -> float64 tensor, ints -> int64 tensor, bools -> bool tensor
- strings and bytes -> the list unchanged
- dicts -> a dict of collated values per key
- namedtuples -> the same namedtuple of collated fields
- tuples and lists -> a list of collated fields (PyTorch returns a list for tuples too)
"""

from __future__ import annotations

import collections.abc

import numpy as np

import graphc

__all__ = ["default_collate", "default_convert"]


def _stack_tensors(batch):
    if any(t.requires_grad or t.is_symbolic for t in batch):
        return graphc.stack(batch, 0)
    shapes = {tuple(t.shape) for t in batch}
    if len(shapes) != 1:
        raise RuntimeError(f"default_collate: stack expects each tensor to be equal size, got shapes {sorted(shapes)}")
    # Stacking the host arrays directly is much faster than an eager op.
    return graphc.from_numpy(np.stack([t.numpy() for t in batch]))


def _collate_numpy(batch):
    elem = batch[0]
    if elem.dtype.kind in "OSUV":
        raise TypeError(f"default_collate: numpy arrays of dtype {elem.dtype} cannot be batched into tensors")
    return graphc.from_numpy(np.stack([np.asarray(a) for a in batch]))


def _collate_sequence(batch):
    elem = batch[0]
    sizes = {len(item) for item in batch}
    if len(sizes) != 1:
        raise RuntimeError("each element in list of batch should be of equal size")
    fields = [default_collate(list(samples)) for samples in zip(*batch)]
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*fields)
    return fields


def default_collate(batch):
    """Collate a list of samples into a batch (see the module docstring).

    >>> out = default_collate([(graphc.zeros(2), 1), (graphc.ones(2), 0)])
    >>> out[0].shape, out[1].tolist()
    (graphc.Size([2, 2]), [1, 0])
    """
    if len(batch) == 0:
        raise ValueError("default_collate: cannot collate an empty batch")
    elem = batch[0]
    if isinstance(elem, graphc.Tensor):
        return _stack_tensors(batch)
    if isinstance(elem, np.ndarray):
        return _collate_numpy(batch)
    if isinstance(elem, np.generic):
        return graphc.from_numpy(np.array(batch))
    if isinstance(elem, bool):
        return graphc.tensor(batch, dtype=graphc.bool)
    if isinstance(elem, int):
        return graphc.tensor(batch, dtype=graphc.int64)
    if isinstance(elem, float):
        return graphc.tensor(batch, dtype=graphc.float64)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, collections.abc.Sequence):
        return _collate_sequence(batch)
    raise TypeError(
        f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem).__name__}"
    )


def default_convert(data):
    """What the DataLoader applies to each item when batching is disabled
    (batch_size=None): numpy arrays become tensors, containers are walked."""
    if isinstance(data, np.ndarray) and data.dtype.kind not in "OSUV":
        return graphc.from_numpy(data)
    if isinstance(data, collections.abc.Mapping):
        return {key: default_convert(value) for key, value in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return [default_convert(d) for d in data]
    return data
