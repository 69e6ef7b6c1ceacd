"""Collectives on graphc Tensors over MPI, with torch.distributed's names.

Each collective posts MPI's non-blocking form (Iallreduce, Ibcast, ...) on
the tensor's numpy data and either returns a `Work` (async_op=True) or
waits for it with the group's timeout. Results are written into the given
tensors in place. CUDA tensors go through host memory. float16 reduces in
float32 and bool as uint8 (SUM is logical or, as in torch).
"""

from __future__ import annotations

import enum

import numpy as np

from graphc.distributed import _mpi
from graphc.distributed.process_group import ProcessGroup, default_group, wait_for
from graphc.errors import DistributedError


class ReduceOp(enum.Enum):
    """How all_reduce and reduce_scatter combine the ranks' values."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"

    def __repr__(self) -> str:
        return f"ReduceOp.{self.name}"


def _mpi_op(op: ReduceOp, dtype: np.dtype, pg: ProcessGroup, where: str):
    mpi = _mpi.mpi4py_module()
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{pg.where(where)}: op must be a graphc.distributed.ReduceOp, got {op!r}")
    if op is ReduceOp.AVG and dtype.kind not in "fc":
        raise DistributedError(f"{pg.where(where)}: ReduceOp.AVG needs a floating-point tensor, got {dtype.name}")
    if dtype == np.bool_:  # reduced as uint8: or / and
        return {ReduceOp.SUM: mpi.MAX, ReduceOp.MAX: mpi.MAX, ReduceOp.PRODUCT: mpi.MIN, ReduceOp.MIN: mpi.MIN}[op]
    return {
        ReduceOp.SUM: mpi.SUM,
        ReduceOp.AVG: mpi.SUM,
        ReduceOp.PRODUCT: mpi.PROD,
        ReduceOp.MIN: mpi.MIN,
        ReduceOp.MAX: mpi.MAX,
    }[op]


def _wire_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype sent over MPI (MPI has no float16 reductions or bool sums)."""
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype == np.bool_:
        return np.dtype(np.uint8)
    return dtype


class Work:
    """A collective in flight (torch's Work): `wait()` finishes it and writes
    the result into the tensors; `is_completed()` polls without blocking."""

    def __init__(self, request, pg: ProcessGroup, op: str, finish=None):
        self._request = request
        self._pg = pg
        self._op = op
        self._finish = finish
        self._done = False

    def is_completed(self) -> bool:
        """True once the collective has finished (its result is written)."""
        if not self._done and self._request.Test():
            self._complete()
        return self._done

    def wait(self, timeout=None) -> bool:
        """Block until done (DistributedError after the group's timeout, or
        `timeout`, a timedelta or seconds); returns True."""
        if not self._done:
            if timeout is not None and hasattr(timeout, "total_seconds"):
                timeout = timeout.total_seconds()
            wait_for(self._request, self._pg, self._op, timeout)
            self._complete()
        return True

    def _complete(self) -> None:
        self._done = True
        if self._finish is not None:
            finish, self._finish = self._finish, None
            finish()

    def __repr__(self) -> str:
        return f"Work({self._op}, completed={self._done})"


def _check_tensor(t, pg: ProcessGroup, op: str, what: str = "tensor"):
    from graphc._tensor import Tensor

    if not isinstance(t, Tensor):
        raise TypeError(f"{pg.where(op)}: {what} must be a graphc Tensor, got {type(t).__name__}")
    if t.is_symbolic:
        raise DistributedError(
            f"{pg.where(op)}: {what} is symbolic: collectives cannot run inside graphc.compile; compile the "
            "forward and backward, and run the collective (or DistributedDataParallel's gradient sync) outside"
        )


class _Buffer:
    """A tensor's data as a C-contiguous numpy array MPI can read and write,
    and the write-back into the tensor."""

    def __init__(self, t):
        self.tensor = t
        value = t._value
        self.host = type(value) is np.ndarray
        data = value if self.host else t.detach().cpu().numpy()
        self.dtype = data.dtype  # the tensor's own dtype (the wire's may differ)
        wire = _wire_dtype(data.dtype)
        direct = self.host and wire == data.dtype and data.flags.c_contiguous and data.flags.writeable
        self.array = data if direct else np.ascontiguousarray(data, dtype=wire)
        self.direct = direct

    def store(self, opname: str, result: np.ndarray | None = None) -> None:
        """Write `result` (default: the buffer) into the tensor in place."""
        from graphc import _device_storage as ds

        t = self.tensor
        src = self.array if result is None else result
        if not self.direct or result is not None:
            value = t._value
            if not self.host:
                ds.write(value, src)
            elif value.flags.writeable:
                np.copyto(value, src, casting="unsafe")
            else:  # a read-only (broadcast) view: the tensor gets its own data
                t._value = np.array(src, dtype=value.dtype).reshape(value.shape)
        t._bump_version(opname)


def _post(pg: ProcessGroup, op: str, start, finish, async_op: bool):
    """Start a collective (`start()` returns the MPI request); wait unless async."""
    mpi = _mpi.mpi4py_module()
    try:
        request = start()
    except mpi.Exception as e:
        raise DistributedError(f"{pg.where(op)}: MPI error: {e}") from e
    work = Work(request, pg, op, finish)
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Combine `tensor` across all ranks with `op`; every rank gets the result
    in `tensor` (in place). With async_op=True returns a Work to wait on."""
    pg = default_group(group)
    _check_tensor(tensor, pg, "all_reduce")
    buf = _Buffer(tensor)
    mpi_op = _mpi_op(op, buf.dtype, pg, "all_reduce")
    mpi = _mpi.mpi4py_module()

    def finish():
        if op is ReduceOp.AVG:
            buf.array /= pg.size
        buf.store("all_reduce")

    return _post(pg, "all_reduce", lambda: pg.comm.Iallreduce(mpi.IN_PLACE, buf.array, mpi_op), finish, async_op)


def broadcast(tensor, src: int, group=None, async_op: bool = False, group_src=None):
    """Copy `tensor` from rank `src` into `tensor` on every other rank."""
    pg = default_group(group)
    src = src if group_src is None else group_src
    _check_tensor(tensor, pg, "broadcast")
    if not isinstance(src, int) or not 0 <= src < pg.size:
        raise ValueError(f"{pg.where('broadcast')}: src must be a rank in [0, {pg.size - 1}], got {src!r}")
    buf = _Buffer(tensor)
    return _post(pg, "broadcast", lambda: pg.comm.Ibcast(buf.array, root=src), lambda: buf.store("broadcast"), async_op)


def _same_layout(tensors, ref, pg: ProcessGroup, op: str, what: str) -> None:
    for i, t in enumerate(tensors):
        _check_tensor(t, pg, op, f"{what}[{i}]")
        if tuple(t.shape) != tuple(ref.shape) or t.dtype != ref.dtype:
            raise ValueError(
                f"{pg.where(op)}: {what}[{i}] is {t.dtype.name}{list(t.shape)} but the tensor is "
                f"{ref.dtype.name}{list(ref.shape)}: every entry must have its shape and dtype"
            )


def all_gather(tensor_list, tensor, group=None, async_op: bool = False):
    """Gather `tensor` from every rank: `tensor_list[r]` gets rank r's tensor."""
    pg = default_group(group)
    _check_tensor(tensor, pg, "all_gather")
    if not isinstance(tensor_list, (list, tuple)) or len(tensor_list) != pg.size:
        got = len(tensor_list) if isinstance(tensor_list, (list, tuple)) else type(tensor_list).__name__
        raise ValueError(f"{pg.where('all_gather')}: tensor_list must hold world_size={pg.size} tensors, got {got}")
    _same_layout(tensor_list, tensor, pg, "all_gather", "tensor_list")
    send = _Buffer(tensor).array
    recv = np.empty((pg.size, *send.shape), send.dtype)

    def finish():
        for r, t in enumerate(tensor_list):
            _Buffer(t).store("all_gather", recv[r])

    return _post(pg, "all_gather", lambda: pg.comm.Iallgather(send, recv), finish, async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """Gather `input_tensor` from every rank into `output_tensor`, rank r's
    part at rows r*n .. (r+1)*n of dim 0 (or stacked along a new dim 0)."""
    pg = default_group(group)
    _check_tensor(input_tensor, pg, "all_gather_into_tensor", "input_tensor")
    _check_tensor(output_tensor, pg, "all_gather_into_tensor", "output_tensor")
    if output_tensor.numel() != input_tensor.numel() * pg.size or output_tensor.dtype != input_tensor.dtype:
        raise ValueError(
            f"{pg.where('all_gather_into_tensor')}: output_tensor must have world_size ({pg.size}) times the "
            f"input's {input_tensor.numel()} elements and its dtype, got {output_tensor.dtype.name}"
            f"{list(output_tensor.shape)}"
        )
    send = _Buffer(input_tensor).array
    out = _Buffer(output_tensor)
    return _post(
        pg,
        "all_gather_into_tensor",
        lambda: pg.comm.Iallgather(send, out.array),
        lambda: out.store("all_gather_into_tensor"),
        async_op,
    )


def reduce_scatter(output, input_list, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce `input_list[r]` over all ranks with `op` and give the result
    to rank r in `output`."""
    pg = default_group(group)
    _check_tensor(output, pg, "reduce_scatter", "output")
    if not isinstance(input_list, (list, tuple)) or len(input_list) != pg.size:
        got = len(input_list) if isinstance(input_list, (list, tuple)) else type(input_list).__name__
        raise ValueError(f"{pg.where('reduce_scatter')}: input_list must hold world_size={pg.size} tensors, got {got}")
    _same_layout(input_list, output, pg, "reduce_scatter", "input_list")
    send = np.stack([_Buffer(t).array for t in input_list])
    return _reduce_scatter(pg, "reduce_scatter", output, send, op, async_op)


def reduce_scatter_tensor(output, input, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """reduce_scatter with the ranks' inputs concatenated in one tensor."""
    pg = default_group(group)
    _check_tensor(output, pg, "reduce_scatter_tensor", "output")
    _check_tensor(input, pg, "reduce_scatter_tensor", "input")
    if input.numel() != output.numel() * pg.size or input.dtype != output.dtype:
        raise ValueError(
            f"{pg.where('reduce_scatter_tensor')}: input must have world_size ({pg.size}) times the output's "
            f"{output.numel()} elements and its dtype, got {input.dtype.name}{list(input.shape)}"
        )
    return _reduce_scatter(pg, "reduce_scatter_tensor", output, _Buffer(input).array, op, async_op)


def _reduce_scatter(pg, opname: str, output, send: np.ndarray, op: ReduceOp, async_op: bool):
    out = _Buffer(output)
    mpi_op = _mpi_op(op, out.dtype, pg, opname)
    send = np.ascontiguousarray(send, dtype=out.array.dtype)

    def finish():
        if op is ReduceOp.AVG:
            out.array /= pg.size
        out.store(opname)

    return _post(pg, opname, lambda: pg.comm.Ireduce_scatter_block(send, out.array, mpi_op), finish, async_op)


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Wait until every rank has reached the barrier."""
    pg = default_group(group)
    return _post(pg, "barrier", pg.comm.Ibarrier, None, async_op)


def all_gather_object(object_list: list, obj, group=None) -> None:
    """Gather a picklable `obj` from every rank: `object_list[r]` becomes
    rank r's object (`object_list` must have world_size entries). Blocking,
    without the group's timeout; only for trusted peers (pickle)."""
    pg = default_group(group)
    if not isinstance(object_list, list) or len(object_list) != pg.size:
        raise ValueError(f"{pg.where('all_gather_object')}: object_list must be a list of world_size={pg.size} entries")
    object_list[:] = pg.comm.allgather(obj)


def broadcast_object_list(object_list: list, src: int = 0, group=None, device=None) -> None:
    """Replace the entries of `object_list` on every rank with rank `src`'s
    (picklable objects; blocking, without the group's timeout)."""
    pg = default_group(group)
    if not isinstance(src, int) or not 0 <= src < pg.size:
        raise ValueError(f"{pg.where('broadcast_object_list')}: src must be a rank in [0, {pg.size - 1}], got {src!r}")
    received = pg.comm.bcast(list(object_list) if pg.rank == src else None, root=src)
    if len(received) != len(object_list):
        raise ValueError(
            f"{pg.where('broadcast_object_list')}: object_list has {len(object_list)} entries but rank {src}'s has "
            f"{len(received)}"
        )
    object_list[:] = received
