"""A job where one rank goes wrong, for test_failures.py.

Usage: graphc run -n 2 fail.py raise|timeout
raise: rank 1 raises while rank 0 waits in all_reduce; the job must abort.
timeout: rank 1 never joins the all_reduce (and does not exit); rank 0's
collective must time out with an error naming the op and the rank.
"""

import os
import sys
import time

import graphc
import graphc.distributed as dist


def main() -> None:
    mode = sys.argv[1]
    dist.init_process_group("mpi", timeout=2 if mode == "timeout" else 600)
    rank = dist.get_rank()
    print(f"rank {rank} env RANK={os.environ['RANK']} WORLD_SIZE={os.environ['WORLD_SIZE']}", flush=True)
    if rank == 1:
        if mode == "raise":
            raise RuntimeError("rank one fails on purpose")
        time.sleep(60)  # neither joins nor exits: only rank 0's timeout ends the job
    dist.all_reduce(graphc.ones(4))
    print("unreachable: all_reduce returned", flush=True)


if __name__ == "__main__":
    main()
