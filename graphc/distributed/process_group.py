"""The default process group: one MPI communicator over every rank.

`init_process_group` duplicates MPI's COMM_WORLD (so graphc's messages
never mix with the user's own mpi4py traffic) and records this process's
rank, the world size, the rank on its machine and the collective timeout.
"""

from __future__ import annotations

import datetime
import os
import time
from dataclasses import dataclass

from graphc import config
from graphc.distributed import _mpi
from graphc.errors import DistributedError

DEFAULT_TIMEOUT_S = config.knob("GRAPHC_DIST_TIMEOUT").default  # torch's default for its CPU backends
# Backend names of code written for torch.distributed: they all run the same
# collectives, here over MPI.
_BACKENDS = ("mpi", "gloo", "nccl", "cpu:gloo,cuda:nccl")
_NOT_INITIALIZED = "Default process group has not been initialized, please make sure to call init_process_group."


@dataclass
class ProcessGroup:
    """The ranks that take part in collectives (graphc has only the world)."""

    comm: object  # an mpi4py Intracomm
    rank: int
    size: int
    local_rank: int
    local_size: int
    timeout_s: float
    backend: str = "mpi"

    def where(self, op: str) -> str:
        """`op on rank r of n`, the prefix of every error message."""
        return f"{op} on rank {self.rank} of {self.size}"

    def __repr__(self) -> str:
        return f"ProcessGroup(backend='mpi', rank={self.rank}, size={self.size})"


_GROUP: ProcessGroup | None = None


class _GroupNamespace:
    """`graphc.distributed.group.WORLD`, as in torch.distributed."""

    @property
    def WORLD(self):  # noqa: N802 (torch's name)
        return _GROUP


group = _GroupNamespace()


def is_available() -> bool:
    """True when mpi4py is installed (MPI support is optional; see docs/distributed.md)."""
    return _mpi.has_mpi4py_installed()


def is_mpi_available() -> bool:
    """True when mpi4py is installed (the only backend graphc has)."""
    return is_available()


def is_initialized() -> bool:
    """True between init_process_group and destroy_process_group."""
    return _GROUP is not None


def _timeout_seconds(timeout) -> float:
    if timeout is None:
        return config.get("GRAPHC_DIST_TIMEOUT")
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(
            f"init_process_group: timeout must be a positive timedelta or number of seconds, got {timeout!r}"
        )
    return float(timeout)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise DistributedError(f"init_process_group: environment variable {name}={value!r} is not an integer") from None


def _check_layout(rank: int, size: int, world_size: int, want_rank: int) -> None:
    """The ranks MPI assigned must agree with the arguments, the torchrun-style
    variables and the launcher's own variables."""
    if size == 1:
        launched = _mpi.launcher_env()
        if launched.get("size", 1) > 1:
            raise DistributedError(
                f"init_process_group: mpiexec started {launched['size']} processes but MPI sees only this one: "
                "mpi4py loaded a different MPI library than the mpiexec that launched it. Use the mpiexec "
                "of the same installation (`graphc run` picks the one beside this Python; GRAPHC_MPIEXEC overrides)"
            )
        env_size = _env_int("WORLD_SIZE")
        if env_size is not None and env_size > 1:
            raise DistributedError(
                f"init_process_group: WORLD_SIZE={env_size} but MPI sees 1 process: graphc's backend is MPI, so "
                f"start the script with `graphc run -n {env_size} script.py` (mpiexec), not a torchrun-style launcher"
            )
    for what, given, actual in (
        ("world_size", world_size, size),
        ("rank", want_rank, rank),
        ("WORLD_SIZE", _env_int("WORLD_SIZE"), size),
        ("RANK", _env_int("RANK"), rank),
    ):
        if given is not None and given >= 0 and given != actual:
            raise DistributedError(
                f"init_process_group on rank {rank} of {size}: {what}={given} disagrees with MPI, which "
                f"assigned rank {rank} of {size} processes (with MPI the launcher decides ranks)"
            )


def init_process_group(
    backend: str | None = None,
    init_method: str | None = None,
    timeout=None,
    world_size: int = -1,
    rank: int = -1,
    store=None,
    group_name: str = "",
    pg_options=None,
    device_id=None,
) -> None:
    """Join the default process group: every process started by
    `graphc run -n N script.py` (mpiexec) calls this once.

    `backend` is "mpi" (None, "gloo" and "nccl" are accepted for code written
    for torch.distributed and also run over MPI). Ranks come from MPI;
    `world_size`/`rank` and the torchrun variables WORLD_SIZE/RANK, when
    given, must agree with them. `timeout` (a timedelta or seconds; default
    1800 s, or $GRAPHC_DIST_TIMEOUT) bounds how long a collective waits for
    the other ranks before raising DistributedError. `init_method`, `store`,
    `group_name`, `pg_options` and `device_id` are accepted and ignored (MPI
    does the rendezvous).
    """
    global _GROUP
    if _GROUP is not None:
        raise ValueError("trying to initialize the default process group twice!")
    if backend is not None and str(backend).lower() not in _BACKENDS:
        raise ValueError(
            f"init_process_group: unknown backend {backend!r}; graphc runs collectives over MPI (backend='mpi')"
        )
    timeout_s = _timeout_seconds(timeout)
    mpi = _mpi.mpi4py_module()
    comm = mpi.COMM_WORLD.Dup()
    my_rank, size = comm.Get_rank(), comm.Get_size()
    try:
        _check_layout(my_rank, size, world_size, rank)
    except DistributedError:
        comm.Free()
        raise
    node = comm.Split_type(mpi.COMM_TYPE_SHARED, key=my_rank)
    local_rank, local_size = node.Get_rank(), node.Get_size()
    node.Free()
    _GROUP = ProcessGroup(comm, my_rank, size, local_rank, local_size, timeout_s)
    # What torchrun would have set, for code that reads the environment.
    for name, value in (("RANK", my_rank), ("WORLD_SIZE", size), ("LOCAL_RANK", local_rank)):
        os.environ.setdefault(name, str(value))


def destroy_process_group(group=None) -> None:
    """Leave the default process group (MPI itself stays up until exit)."""
    global _GROUP
    if _GROUP is None:
        raise ValueError(_NOT_INITIALIZED)
    pg, _GROUP = _GROUP, None
    pg.comm.Free()


def default_group(group=None) -> ProcessGroup:
    """The default group; `group` must be None or that group."""
    if _GROUP is None:
        raise ValueError(_NOT_INITIALIZED)
    if group is not None and group is not _GROUP:
        raise NotImplementedError("graphc.distributed has only the default group (pass group=None)")
    return _GROUP


def get_rank(group=None) -> int:
    """This process's rank in the default group (0 .. world size - 1)."""
    return default_group(group).rank


def get_world_size(group=None) -> int:
    """How many processes are in the default group."""
    return default_group(group).size


def get_node_local_rank(fallback_rank: int | None = None) -> int:
    """This process's rank among the processes on its machine (torchrun's LOCAL_RANK)."""
    if _GROUP is not None:
        return _GROUP.local_rank
    value = _env_int("LOCAL_RANK")
    if value is None:
        value = _mpi.launcher_env().get("local_rank", fallback_rank)
    if value is None:
        raise RuntimeError("LOCAL_RANK is not set and no process group is initialized")
    return value


def get_backend(group=None) -> str:
    """The backend of the default group: "mpi"."""
    return default_group(group).backend


def wait_for(request, pg: ProcessGroup, op: str, timeout_s: float | None = None) -> None:
    """Wait for an MPI request; DistributedError after the group's timeout.

    Polls rather than blocking in MPI_Wait, so a rank whose peers died or
    called a different collective raises an error naming the op instead of
    hanging. The poll spins for the first few milliseconds (a collective
    whose peers are there finishes in microseconds, and MPI's non-blocking
    collectives progress only while polled), yielding the core between
    polls, then sleeps between polls so a waiting rank leaves the CPU to
    the ranks still computing (several ranks often share few cores)."""
    if request.Test():
        return
    limit = pg.timeout_s if timeout_s is None else timeout_s
    start = time.monotonic()
    yield_after, sleep_after = start + SPIN_S, start + SPIN_S + YIELD_S
    delay = 5e-5
    while not request.Test():
        now = time.monotonic()
        if now < yield_after:
            continue
        if now - start > limit:
            raise DistributedError(
                f"{pg.where(op)}: timed out after {limit:g} s waiting for the other ranks (a rank failed, "
                "stopped, or called a different collective)"
            )
        if now < sleep_after:
            os.sched_yield()
        else:
            time.sleep(delay)
            delay = min(delay * 2, 1e-3)


# How long wait_for polls without pause, then yielding the core, before it sleeps.
SPIN_S = 5e-5
YIELD_S = 5e-3
