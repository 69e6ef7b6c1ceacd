"""`DataLoader`: batches of samples from a dataset, optionally shuffled and
loaded by worker processes (PyTorch's `torch.utils.data.DataLoader`)."""

from __future__ import annotations

import multiprocessing
import queue

import numpy as np

import graphc
import graphc.random
from graphc.utils.data import worker as _worker
from graphc.utils.data.collate import default_collate, default_convert
from graphc.utils.data.dataset import IterableDataset
from graphc.utils.data.sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader"]

# How often (seconds) the main process wakes while waiting for a batch, to
# notice workers that died without answering.
_POLL_INTERVAL = 1.0


class _InfiniteNone:
    # Stands in for a sampler over an IterableDataset: worker tasks carry no indices.
    def __iter__(self):
        while True:
            yield None


class DataLoader:
    """Iterate over `dataset` in batches.

    Arguments follow PyTorch: `batch_size` (None disables batching),
    `shuffle` (a new random order each epoch, drawn from `generator` or the
    global generator seeded by `graphc.manual_seed`), `sampler` /
    `batch_sampler` (custom orders), `drop_last`, `collate_fn` (default:
    `default_collate`), `num_workers` (> 0 loads batches in that many worker
    processes, delivering them in order), `worker_init_fn`, `timeout`,
    `multiprocessing_context`, `prefetch_factor`. `pin_memory` is accepted
    and has no effect (eager tensors live in host memory).

    >>> from graphc.utils.data import TensorDataset
    >>> loader = DataLoader(TensorDataset(graphc.arange(10)), batch_size=4)
    >>> [b[0].tolist() for b in loader]
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    """

    def __init__(
        self,
        dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler=None,
        batch_sampler=None,
        num_workers: int = 0,
        collate_fn=None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn=None,
        multiprocessing_context=None,
        generator=None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ):
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing. Let num_workers > 0 "
                "to enable multiprocessing, otherwise set prefetch_factor to None."
            )
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = 2 if prefetch_factor is None else prefetch_factor
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.persistent_workers = persistent_workers
        self.generator = generator
        self._worker_epochs = 0
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle:
                raise ValueError(
                    f"DataLoader with IterableDataset: expected unspecified shuffle option, but got shuffle={shuffle}"
                )
            if sampler is not None or batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler/batch_sampler")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last"
                )
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if sampler is None:
            if self._iterable:
                sampler = _InfiniteNone()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.collate_fn = collate_fn or (default_collate if self._auto_collation else default_convert)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self) -> int:
        if self._iterable:
            length = len(self.dataset)
            if self.batch_size is None:
                return length
            if self.drop_last:
                return length // self.batch_size
            return (length + self.batch_size - 1) // self.batch_size
        return len(self._index_sampler)

    def _next_worker_seed(self) -> int:
        # Derived from the generator's initial seed and an epoch counter
        # rather than drawn from the generator, so using workers never
        # changes the sampler's random stream (the batches equal those of
        # num_workers=0) while each epoch still seeds workers differently.
        generator = self.generator if self.generator is not None else graphc.random.default_generator
        self._worker_epochs += 1
        sequence = np.random.SeedSequence([generator.initial_seed() % 2**63, self._worker_epochs])
        return int(sequence.generate_state(1, np.uint64)[0] % 2**62)

    def __iter__(self):
        if self.num_workers == 0:
            return self._single_process_iter()
        return _MultiProcessIter(self)

    def _single_process_iter(self):
        if self._iterable:
            iterator = iter(self.dataset)
            while True:
                try:
                    yield _worker.fetch(
                        self.dataset,
                        None,
                        iterator,
                        self.batch_size,
                        self.collate_fn,
                        self._auto_collation,
                        self.drop_last,
                    )
                except StopIteration:
                    return
        for indices in self._index_sampler:
            if self._auto_collation:
                yield self.collate_fn([self.dataset[i] for i in indices])
            else:
                yield self.collate_fn(self.dataset[indices])


class _MultiProcessIter:
    """One epoch over a DataLoader with worker processes.

    Tasks go round-robin to the workers' own queues, at most
    `prefetch_factor` outstanding per worker; results are reordered so
    batches come out in sampler order. Workers are shut down when the epoch
    ends, on error, and when the iterator is garbage collected."""

    def __init__(self, loader: DataLoader):
        self._shut = False
        self._workers, self._index_queues, self._result_queue = [], [], None
        self._loader = loader
        context = loader.multiprocessing_context
        if context is None or isinstance(context, str):
            context = multiprocessing.get_context(context)
        self._tasks = iter(loader._index_sampler)
        self._result_queue = context.Queue()
        self._index_queues = []
        self._workers = []
        self._active = []
        base_seed = loader._next_worker_seed()
        for worker_id in range(loader.num_workers):
            index_queue = context.Queue()
            process = context.Process(
                target=_worker.worker_loop,
                daemon=True,
                args=(
                    loader.dataset,
                    index_queue,
                    self._result_queue,
                    loader.collate_fn,
                    worker_id,
                    loader.num_workers,
                    base_seed + worker_id,
                    loader.worker_init_fn,
                    loader._auto_collation,
                    loader.batch_size,
                    loader.drop_last,
                    loader._iterable,
                ),
            )
            process.start()
            self._index_queues.append(index_queue)
            self._workers.append(process)
            self._active.append(True)
        self._next_task = 0  # index of the next task to send
        self._next_yield = 0  # index of the next batch to return
        self._owner = {}  # task index -> worker id
        self._buffer = {}  # results that arrived early
        self._next_worker = 0
        self._sampler_done = False
        for _ in range(loader.prefetch_factor * loader.num_workers):
            self._send_task()

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def _send_task(self) -> None:
        if self._sampler_done or not any(self._active):
            return
        try:
            indices = next(self._tasks)
        except StopIteration:
            self._sampler_done = True
            return
        while not self._active[self._next_worker]:
            self._next_worker = (self._next_worker + 1) % len(self._workers)
        worker_id = self._next_worker
        self._next_worker = (self._next_worker + 1) % len(self._workers)
        self._index_queues[worker_id].put((self._next_task, indices))
        self._owner[self._next_task] = worker_id
        self._next_task += 1

    def __next__(self):
        while True:
            if self._next_yield >= self._next_task:
                self._shutdown()
                raise StopIteration
            payload = self._take(self._next_yield)
            self._next_yield += 1
            if isinstance(payload, _worker._Exhausted):
                # An iterable dataset's worker ran dry: stop giving it work.
                self._active[self._owner[self._next_yield - 1]] = False
                self._send_task()
                continue
            self._send_task()
            return _worker.from_transport(payload)

    def _take(self, task_index: int):
        waited = 0.0
        while task_index not in self._buffer:
            try:
                index, payload, error = self._result_queue.get(timeout=_POLL_INTERVAL)
            except queue.Empty:
                waited += _POLL_INTERVAL
                self._check_workers(waited)
                continue
            if error is not None:
                self._shutdown()
                error.reraise()
            self._buffer[index] = payload
        return self._buffer.pop(task_index)

    def _check_workers(self, waited: float) -> None:
        dead = [str(w.pid) for w in self._workers if not w.is_alive()]
        if dead:
            self._shutdown()
            raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(dead)}) exited unexpectedly")
        timeout = self._loader.timeout
        if timeout and waited >= timeout:
            self._shutdown()
            raise RuntimeError(f"DataLoader timed out after {timeout} seconds")

    def _shutdown(self) -> None:
        if self._shut:
            return
        self._shut = True
        for index_queue in self._index_queues:
            try:
                index_queue.put(None)
            except (OSError, ValueError):
                pass
        for process in self._workers:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=1)
        for q in [*self._index_queues, self._result_queue]:
            if q is None:
                continue
            q.cancel_join_thread()
            q.close()

    def __del__(self):
        self._shutdown()
