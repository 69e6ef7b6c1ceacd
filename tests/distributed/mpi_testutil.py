"""Run a script of tests/distributed/scripts under `graphc run -n N` in a
subprocess with a timeout; skip when no MPI can be found."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphc.distributed import _mpi

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"


def require_mpi() -> None:
    """Skip the test, saying why, when mpi4py or mpiexec is missing."""
    if not _mpi.has_mpi4py_installed():
        pytest.skip(f"mpi4py is not installed: {_mpi.INSTALL_HINT}")
    if _mpi.find_mpiexec() is None:
        pytest.skip(f"no mpiexec beside {sys.executable} or on PATH: {_mpi.INSTALL_HINT}")


def launch(nproc: int, script: str, *args, timeout: float = 60, env: dict | None = None):
    """`graphc run -n nproc scripts/script args` with this checkout first on
    the path; the CompletedProcess (stdout and stderr as text)."""
    require_mpi()
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [full_env.get("PYTHONPATH")])])
    full_env.update(env or {})
    cmd = [sys.executable, "-m", "graphc.cli", "run", "-n", str(nproc), "--timeout", str(timeout)]
    cmd += [str(SCRIPTS / script), *map(str, args)]
    # The launcher's own --timeout ends the job; this one is a last resort.
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30, env=full_env, cwd=ROOT)


def check_ok(result) -> None:
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stdout}\n{result.stderr[-4000:]}"
