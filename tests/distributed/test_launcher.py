"""`graphc run` builds the mpiexec command; `graphc.distributed` without a
process group says so; what the package reports without MPI."""

import sys

import pytest

import graphc.distributed as dist
from graphc.cli import main
from graphc.distributed import _mpi, launch


def test_command_runs_the_bootstrap_with_this_python(tmp_path):
    cmd = launch.build_command(3, "train.py", ["--lr", "0.1"], mpiexec="/opt/mpi/bin/mpiexec")
    assert cmd[0] == "/opt/mpi/bin/mpiexec"
    i = cmd.index("-n")
    assert cmd[i : i + 5] == ["-n", "3", sys.executable, "-m", "graphc.distributed._bootstrap"]
    assert cmd[-3:] == ["train.py", "--lr", "0.1"]


def test_open_mpi_flags_and_hostfile(monkeypatch):
    monkeypatch.setattr(_mpi, "mpiexec_flavor", lambda path: "openmpi")
    monkeypatch.setattr(launch.os, "geteuid", lambda: 0)
    cmd = launch.build_command(2, "s.py", hostfile="hosts.txt", mpiexec="mpiexec", mpi_args="--mca btl tcp,self")
    assert "--oversubscribe" in cmd and "--allow-run-as-root" in cmd
    assert cmd[cmd.index("--hostfile") + 1] == "hosts.txt"
    assert cmd[cmd.index("--mca") : cmd.index("--mca") + 3] == ["--mca", "btl", "tcp,self"]
    monkeypatch.setattr(_mpi, "mpiexec_flavor", lambda path: "mpich")
    cmd = launch.build_command(2, "s.py", mpiexec="mpiexec")
    assert "--oversubscribe" not in cmd and "--allow-run-as-root" not in cmd


def test_dry_run_prints_the_command(tmp_path, capsys):
    script = tmp_path / "s.py"
    script.write_text("print('hi')\n")
    assert main(["run", "-n", "2", "--mpiexec", "/x/mpiexec", "--dry-run", str(script), "a"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("/x/mpiexec ") and out.rstrip().endswith(f"{script} a")


def test_bad_arguments():
    with pytest.raises(SystemExit, match="at least 1"):
        launch.build_command(0, "s.py", mpiexec="mpiexec")
    with pytest.raises(SystemExit, match="no such script"):
        main(["run", "-n", "2", "/nonexistent/script.py"])


def test_mpiexec_beside_python_comes_first(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_MPIEXEC", "/custom/mpiexec")
    assert _mpi.find_mpiexec() == "/custom/mpiexec"


def test_no_process_group_errors():
    assert not dist.is_initialized()
    for fn in (dist.get_rank, dist.get_world_size, dist.barrier, dist.destroy_process_group):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            fn()
    with pytest.raises(ValueError, match="init_process_group"):
        import graphc

        dist.all_reduce(graphc.ones(2))
    with pytest.raises(ValueError, match="unknown backend 'ucc'"):
        dist.init_process_group("ucc")
    assert [op.name for op in dist.ReduceOp] == ["SUM", "AVG", "PRODUCT", "MIN", "MAX"]


def _run_single(env: dict):
    import os
    import subprocess

    from mpi_testutil import ROOT, SCRIPTS, require_mpi

    require_mpi()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI", "PMIX_"))}
    clean.update(env, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / "single.py")], capture_output=True, text=True, timeout=60, env=clean
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_plain_python_is_a_world_of_one():
    assert "rank 0 of 1, local rank 0" in _run_single({"RANK": "0", "WORLD_SIZE": "1"})


def test_torchrun_style_variables_without_mpiexec_are_refused():
    out = _run_single({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert "WORLD_SIZE=2 but MPI sees 1 process" in out and "graphc run -n 2" in out
