"""What every rank of `graphc run` executes: set torchrun's environment
variables from the launcher's, run the user's script as `__main__`, and on
an uncaught exception print it with the rank and abort the whole MPI job
(MPI_Abort), so no other rank waits forever in a collective.

Usage (built by graphc.distributed.launch): python -m graphc.distributed._bootstrap script.py args...
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback

from graphc.distributed import _mpi


def _set_environment() -> dict:
    launched = _mpi.launcher_env()
    if launched:
        os.environ.setdefault("RANK", str(launched["rank"]))
        os.environ.setdefault("WORLD_SIZE", str(launched["size"]))
        os.environ.setdefault("LOCAL_RANK", str(launched["local_rank"]))
    local_size = os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE") or os.environ.get("MPI_LOCALNRANKS")
    if local_size:
        os.environ.setdefault("LOCAL_WORLD_SIZE", local_size)
    return launched


def _share_cores() -> None:
    """Ranks on one machine split its cores between their compiled code's
    threads (torchrun likewise sets OMP_NUM_THREADS), instead of each
    starting one thread per core."""
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if local_size > 1:
        import graphc.runtime.cpu

        graphc.runtime.cpu.set_num_threads(max(1, (os.cpu_count() or 1) // local_size))


def _abort(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        mpi.COMM_WORLD.Abort(code)
    os._exit(code)


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m graphc.distributed._bootstrap script.py [args...]")
    launched = _set_environment()
    _share_cores()
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    rank = launched.get("rank", 0)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        code = e.code
        if code is None or code == 0:
            return
        if not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        print(f"graphc run: rank {rank} exited with status {code}; aborting the job", file=sys.stderr)
        _abort(code)
    except BaseException:
        traceback.print_exc()
        print(f"graphc run: rank {rank} raised the exception above; aborting the job", file=sys.stderr)
        _abort(1)


if __name__ == "__main__":
    main()
