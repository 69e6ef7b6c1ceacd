"""init_process_group in a process started without mpiexec (plain python,
or a torchrun-style launcher that only sets RANK/WORLD_SIZE): prints the
rank and world size, or the error."""

import graphc.distributed as dist
from graphc.errors import DistributedError

try:
    dist.init_process_group("mpi")
except DistributedError as e:
    print(f"error: {e}")
else:
    print(f"rank {dist.get_rank()} of {dist.get_world_size()}, local rank {dist.get_node_local_rank()}")
    dist.destroy_process_group()
