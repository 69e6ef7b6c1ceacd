"""Worker processes of the DataLoader.

Each worker owns an index queue; the main process sends it tasks
`(batch_index, indices)` and the worker answers on a shared result queue with
`(batch_index, payload, error)`. Tensors cross the process boundary as their
numpy arrays (`_TensorPayload`), which pickle cheaply and never carry
autograd state; the main process rebuilds tensors on arrival.
"""

from __future__ import annotations

import random
import traceback
from dataclasses import dataclass

import numpy as np

import graphc

_worker_info = None


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker process knows about itself (see `get_worker_info`)."""

    id: int
    num_workers: int
    seed: int
    dataset: object


def get_worker_info():
    """In a DataLoader worker process: its WorkerInfo (id, num_workers,
    seed, dataset copy). In the main process: None."""
    return _worker_info


class _TensorPayload:
    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array


class _Exhausted:
    """Sent by a worker whose IterableDataset stream has ended."""


class WorkerError:
    """An exception raised in a worker, carried back as text."""

    def __init__(self, worker_id: int, exc: BaseException):
        self.message = (
            f"Caught {type(exc).__name__} in DataLoader worker process {worker_id}.\n"
            f"Original traceback:\n{''.join(traceback.format_exception(exc))}"
        )
        self.exc_type = type(exc)

    def reraise(self):
        # Re-raise as the original type when it takes a message, so callers
        # catching e.g. IndexError still work.
        try:
            error = self.exc_type(self.message)
        except Exception:
            error = RuntimeError(self.message)
        raise error


def to_transport(obj):
    """Replace every tensor in a (nested) batch by its numpy payload."""
    if isinstance(obj, graphc.Tensor):
        return _TensorPayload(np.require(obj.detach().numpy(), requirements="C"))
    if isinstance(obj, dict):
        return {key: to_transport(value) for key, value in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_transport(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_transport(v) for v in obj)
    return obj


def from_transport(obj):
    """Inverse of `to_transport`."""
    if isinstance(obj, _TensorPayload):
        return graphc.from_numpy(obj.array)
    if isinstance(obj, dict):
        return {key: from_transport(value) for key, value in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(from_transport(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(from_transport(v) for v in obj)
    return obj


def _seed_everything(seed: int) -> None:
    # Every worker gets its own seed so random augmentations differ between
    # workers, as in PyTorch (base seed + worker id).
    graphc.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def fetch(dataset, indices, iterator, batch_size, collate_fn, auto_collation, drop_last=False):
    """One batch: by indices from a map-style dataset, or the next
    `batch_size` items of an iterable dataset's iterator (StopIteration when
    the stream is exhausted, or when only a short batch is left and
    `drop_last`)."""
    if iterator is None:
        if auto_collation:
            return collate_fn([dataset[i] for i in indices])
        return collate_fn(dataset[indices])
    if not auto_collation:
        return collate_fn(next(iterator))
    samples = []
    for _ in range(batch_size):
        try:
            samples.append(next(iterator))
        except StopIteration:
            break
    if not samples or (drop_last and len(samples) < batch_size):
        raise StopIteration
    return collate_fn(samples)


def worker_loop(
    dataset,
    index_queue,
    result_queue,
    collate_fn,
    worker_id: int,
    num_workers: int,
    seed: int,
    init_fn,
    auto_collation: bool,
    batch_size,
    drop_last: bool,
    iterable: bool,
) -> None:
    """Body of a worker process: serve tasks until a None task arrives."""
    global _worker_info
    _seed_everything(seed)
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    init_error = None
    try:
        if init_fn is not None:
            init_fn(worker_id)
        iterator = iter(dataset) if iterable else None
    except Exception as exc:  # reported with the first task
        init_error = WorkerError(worker_id, exc)
        iterator = None
    while True:
        task = index_queue.get()
        if task is None:
            break
        batch_index, indices = task
        if init_error is not None:
            result_queue.put((batch_index, None, init_error))
            continue
        try:
            batch = fetch(dataset, indices, iterator, batch_size, collate_fn, auto_collation, drop_last)
            result_queue.put((batch_index, to_transport(batch), None))
        except StopIteration:
            result_queue.put((batch_index, _Exhausted(), None))
        except Exception as exc:
            result_queue.put((batch_index, None, WorkerError(worker_id, exc)))
