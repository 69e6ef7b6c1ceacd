"""`DistributedDataParallel`: data-parallel training over the ranks of
`graphc.distributed`, with torch's API.

At wrap time the parameters and buffers are broadcast from rank 0, so every
rank starts from the same model. During backward each parameter's
post-accumulate-grad hook marks it ready; when every parameter of a bucket
(about `bucket_cap_mb` of gradients, filled in reverse parameter order, the
order backward produces them) is ready, the bucket's gradients are copied
into one flat buffer and a non-blocking MPI all-reduce (Iallreduce) starts,
while backward goes on with earlier layers. Buckets start in index order on
every rank, so the collectives match. When backward ends, DDP waits for the
buckets and writes the averaged gradients back into each `.grad`.

Under graphc.compile the gradients are computed inside the compiled
program, where no collective can run. Compiling only the model
(`DDP(graphc.compile(model))` or `graphc.compile(ddp_model)`) keeps
backward() eager around a compiled backward program, so the hooks run as
usual. A compiled function that calls backward() itself gets its gradients
averaged when the optimizer's step() starts (an optimizer step pre-hook);
a compiled function that also calls optimizer.step() has no place for the
all-reduce and raises, naming the fix (split the step).
"""

from __future__ import annotations

import contextlib
import weakref

import numpy as np

import graphc
from graphc import autograd
from graphc._trace import active as active_trace
from graphc.distributed import _mpi
from graphc.distributed.collectives import _Buffer
from graphc.distributed.collectives import broadcast as _broadcast
from graphc.distributed.process_group import default_group, wait_for
from graphc.errors import DistributedError
from graphc.nn.module import Module

DEFAULT_BUCKET_CAP_MB = 25.0  # torch's default
# Newer torch keywords, accepted so ported code runs; they change nothing here.
_TORCH_ONLY_OPTIONS = frozenset(
    {
        "mixed_precision",
        "device_mesh",
        "skip_all_reduce_unused_params",
        "delay_all_reduce_named_params",
        "param_to_hook_all_reduce",
    }
)

_SPLIT_HINT = (
    "compile the forward and backward only (a function that returns the loss after loss.backward()) and call "
    "optimizer.step() outside it, or compile the model (graphc.compile(model)) and keep the step eager"
)


class _Bucket:
    """Parameters whose gradients are all-reduced together in one flat buffer."""

    def __init__(self, params: list):
        self.params = params
        self.dtype = np.dtype(params[0].dtype.np)
        sizes = [p.numel() for p in params]
        self.offsets = np.cumsum([0, *sizes]).tolist()
        self.flat = np.zeros(self.offsets[-1], self.dtype)
        self.ready = 0
        self.request = None
        self.views = None  # (flat part, .grad tensor viewing it) per parameter
        self.unused: set = set()  # parameters no rank had a gradient for

    def fill(self) -> None:
        """Copy the parameters' gradients into the flat buffer (zeros where
        a parameter got none this step)."""
        for p, start, end in zip(self.params, self.offsets, self.offsets[1:]):
            grad = p.grad
            if grad is None:
                self.flat[start:end] = 0
            else:
                value = grad._value
                self.flat[start:end] = (value if type(value) is np.ndarray else grad.cpu().numpy()).reshape(-1)

    def unflatten(self, world_size: int) -> None:
        """Average the flat buffer and make it each parameter's `.grad`.

        A host parameter's `.grad` becomes a tensor viewing its part of the
        flat buffer, the same tensor object every step (torch's
        gradient_as_bucket_view): a compiled optimizer step that reads the
        gradients then finds the `.grad` it was traced with and does not
        recompile, however the gradients were produced."""
        from graphc._tensor import Tensor

        self.flat /= world_size
        if self.views is None:
            parts = [
                self.flat[a:b].reshape(tuple(p.shape)) for p, a, b in zip(self.params, self.offsets, self.offsets[1:])
            ]
            self.views = [(part, Tensor._wrap(part)) for part in parts]
        self.unused = set()
        for i, (p, (part, view)) in enumerate(zip(self.params, self.views)):
            if p.grad is None and not part.any():
                # No rank had a gradient for it: .grad stays None, so
                # optimizers skip it as they would without DDP.
                self.unused.add(i)
                continue
            if p.grad is not None and type(p.grad._value) is not np.ndarray:  # a device gradient: copy back
                _Buffer(p.grad).store("DistributedDataParallel gradient sync", part)
                continue
            if view._value is not part:  # an in-place op rebound it
                view._value = part
            view._bump_version("DistributedDataParallel gradient sync")
            if p.grad is not view:
                p.grad = view

    def synced(self) -> bool:
        """True while every parameter's `.grad` is this bucket's averaged view."""
        if self.views is None:
            return False
        for i, (p, (part, view)) in enumerate(zip(self.params, self.views)):
            if not ((p.grad is view and view._value is part) or (p.grad is None and i in self.unused)):
                return False
        return True


def _make_buckets(params: list, cap_bytes: float) -> list:
    """Group `params` (in the order given) into buckets of at most
    `cap_bytes` of one dtype each (a bigger parameter gets its own)."""
    buckets, current, size = [], [], 0
    for p in params:
        nbytes = p.numel() * np.dtype(p.dtype.np).itemsize
        if current and (size + nbytes > cap_bytes or p.dtype != current[0].dtype):
            buckets.append(_Bucket(current))
            current, size = [], 0
        current.append(p)
        size += nbytes
    if current:
        buckets.append(_Bucket(current))
    return buckets


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training: each rank runs it on its own
    batch and the gradients are averaged across ranks during backward (see
    the module doc). `.module` is the wrapped module and state_dict keys
    carry the `module.` prefix, as in torch.

    `bucket_cap_mb` sets the bucket size (default 25). `init_sync=False`
    skips the broadcast at wrap time. `broadcast_buffers`
    (default True) re-broadcasts buffers (BatchNorm statistics) from rank 0
    before each eager forward. `device_ids`, `output_device`, `dim`,
    `find_unused_parameters`, `gradient_as_bucket_view` and `static_graph` are
    accepted for torch compatibility: parameters that get no gradient on a
    rank always count as zeros.
    """

    def __init__(
        self,
        module: Module,
        device_ids=None,
        output_device=None,
        dim: int = 0,
        broadcast_buffers: bool = True,
        process_group=None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
        check_reduction: bool = False,
        gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
        init_sync: bool = True,
        **kwargs,
    ) -> None:
        unknown = sorted(set(kwargs) - _TORCH_ONLY_OPTIONS)
        if unknown:
            raise TypeError(f"DistributedDataParallel.__init__() got an unexpected keyword argument {unknown[0]!r}")
        super().__init__()
        pg = default_group(process_group)
        if bucket_cap_mb is None:
            bucket_cap_mb = DEFAULT_BUCKET_CAP_MB
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        from graphc._compile import CompiledModule

        # A compiled model is called compiled; its Module is what `.module`,
        # parameters() and state_dict() see (keys stay "module.<name>").
        object.__setattr__(self, "_call", module)
        self.module = module.fn if isinstance(module, CompiledModule) else module
        module = self.module
        self.device_ids = device_ids
        self.output_device = output_device
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.bucket_cap_mb = bucket_cap_mb
        self.require_backward_grad_sync = True
        object.__setattr__(self, "_pg", pg)
        params = [p for p in module.parameters() if p.requires_grad]
        self._check_same_model(pg, params)
        if init_sync:
            with graphc.no_grad():
                for t in [*module.parameters(), *module.buffers()]:
                    _broadcast(t, 0)
        buckets = _make_buckets(list(reversed(params)), bucket_cap_mb * 2**20)
        object.__setattr__(self, "_buckets", buckets)
        object.__setattr__(self, "_bucket_of", {id(p): b for b in buckets for p in b.params})
        object.__setattr__(self, "_syncing", False)  # inside a backward that syncs
        object.__setattr__(self, "_next_launch", 0)
        object.__setattr__(self, "_traced_backward", False)
        me = weakref.ref(self)
        handles = [p.register_post_accumulate_grad_hook(_grad_ready_hook(me)) for p in params]
        from graphc.optim import optimizer

        handles.append(optimizer.register_optimizer_step_pre_hook(_step_pre_hook(me)))
        pre_call = _pre_call_hook(me)
        optimizer._pre_call_hooks.append(pre_call)
        handles.append(_ListEntryHandle(optimizer._pre_call_hooks, pre_call))
        object.__setattr__(self, "_handles", handles)

    # -- setup ---------------------------------------------------------------

    @staticmethod
    def _check_same_model(pg, params: list) -> None:
        """Every rank must wrap the same parameter shapes (torch checks this too)."""
        mine = [(tuple(p.shape), p.dtype.name) for p in params]
        everyone = pg.comm.allgather(mine)
        for r, theirs in enumerate(everyone):
            if theirs != mine:
                raise DistributedError(
                    f"DistributedDataParallel on rank {pg.rank} of {pg.size}: rank {r} wraps a model with "
                    f"{len(theirs)} parameters of other shapes or dtypes than this rank's {len(mine)}; every "
                    "rank must build the same model"
                )

    # -- forward ---------------------------------------------------------------

    def forward(self, *inputs, **kwargs):
        if self.broadcast_buffers and graphc.is_grad_enabled() and self.training and active_trace() is None:
            buffers = list(self.module.buffers())
            if buffers:
                with graphc.no_grad():
                    for b in buffers:
                        _broadcast(b, 0)
        return self._call(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Inside this context backward() accumulates gradients locally
        without all-reducing them; the first backward after it syncs the
        accumulated sum (gradient accumulation)."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    # -- the gradient sync -------------------------------------------------------

    def _grad_ready(self, p) -> None:
        if p.grad is not None and p.grad.is_symbolic:
            # Inside graphc.compile: the sync runs at the optimizer step.
            object.__setattr__(self, "_traced_backward", True)
            return
        if not self.require_backward_grad_sync:
            return
        if not self._syncing:
            object.__setattr__(self, "_syncing", True)
            object.__setattr__(self, "_next_launch", 0)
            for b in self._buckets:
                b.ready = 0
            autograd.queue_callback(self._finish_sync)
        bucket = self._bucket_of[id(p)]
        bucket.ready += 1
        self._launch_ready()

    def _launch_ready(self) -> None:
        """Start the all-reduce of every full bucket whose predecessors have
        started (the same order on every rank); poke the ones in flight so
        MPI makes progress while backward computes."""
        mpi = _mpi.mpi4py_module()
        buckets = self._buckets
        i = self._next_launch
        while i < len(buckets) and buckets[i].ready == len(buckets[i].params):
            self._launch(buckets[i], mpi)
            i += 1
        object.__setattr__(self, "_next_launch", i)
        for b in buckets[:i]:
            if b.request is not None:
                b.request.Test()

    def _launch(self, bucket: _Bucket, mpi) -> None:
        bucket.fill()
        try:
            bucket.request = self._pg.comm.Iallreduce(mpi.IN_PLACE, bucket.flat, mpi.SUM)
        except mpi.Exception as e:
            raise DistributedError(f"{self._pg.where('DistributedDataParallel all_reduce')}: MPI error: {e}") from e

    def _finish_sync(self) -> None:
        """End of backward: start the buckets not started yet (parameters
        without a gradient count as zeros), wait, and write the averages."""
        object.__setattr__(self, "_syncing", False)
        mpi = _mpi.mpi4py_module()
        for bucket in self._buckets[self._next_launch :]:
            self._launch(bucket, mpi)
        object.__setattr__(self, "_next_launch", len(self._buckets))
        for bucket in self._buckets:
            request, bucket.request = bucket.request, None
            wait_for(request, self._pg, "DistributedDataParallel all_reduce")
            bucket.unflatten(self._pg.size)

    def sync_gradients(self) -> None:
        """Average the current `.grad` of every parameter across ranks now
        (what backward does by itself; for gradients a compiled program
        computed)."""
        if self._syncing:
            return
        for b in self._buckets:
            b.ready = 0
        object.__setattr__(self, "_next_launch", 0)
        self._finish_sync()

    def _before_step(self, optimizer) -> None:
        """Optimizer step pre-hook: average gradients a compiled backward produced."""
        if not self._traced_backward:
            return
        params = {id(p) for group in optimizer.param_groups for p in group["params"]}
        mine = [p for b in self._buckets for p in b.params]
        if not any(id(p) in params for p in mine):
            return
        if any(p.grad is not None and p.grad.is_symbolic for p in mine):
            raise DistributedError(
                f"{self._pg.where('DistributedDataParallel')}: a graphc.compile'd function calls both backward() "
                f"and optimizer.step(), so the gradient all-reduce has no place between them: {_SPLIT_HINT}"
            )
        self._sync_if_stale()

    def _sync_if_stale(self) -> None:
        """Average the gradients unless they are the ones averaged last (a
        compiled backward replaces every .grad; an averaged one is the
        bucket's view)."""
        if not self._syncing and not all(b.synced() for b in self._buckets):
            self.sync_gradients()

    def _before_compiled_call(self) -> None:
        """Runs before every call of a compiled program: a compiled
        optimizer step reads gradients a compiled backward produced, so they
        are averaged first (the optimizer's own pre-hook does not run when a
        compiled step replays)."""
        if self._traced_backward and self.require_backward_grad_sync:
            self._sync_if_stale()

    def __del__(self):
        for handle in self.__dict__.get("_handles", ()):
            handle.remove()


def _grad_ready_hook(ref):
    def hook(p):
        ddp = ref()
        if ddp is not None:
            ddp._grad_ready(p)

    return hook


def _step_pre_hook(ref):
    def hook(optimizer, args, kwargs):
        ddp = ref()
        if ddp is not None:
            ddp._before_step(optimizer)

    return hook


def _pre_call_hook(ref):
    def hook():
        ddp = ref()
        if ddp is not None:
            ddp._before_compiled_call()

    return hook


class _ListEntryHandle:
    """Removes `entry` from `entries` (a hook list) on `remove()`."""

    def __init__(self, entries: list, entry):
        self.entries = entries
        self.entry = entry

    def remove(self) -> None:
        if self.entry in self.entries:
            self.entries.remove(self.entry)
