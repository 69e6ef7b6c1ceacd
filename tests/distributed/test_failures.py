"""A failing rank ends the whole job with an error instead of a hang."""

import time

from mpi_testutil import launch


def test_a_rank_that_raises_aborts_the_job():
    start = time.monotonic()
    result = launch(2, "fail.py", "raise", timeout=60)
    assert result.returncode != 0
    assert "rank one fails on purpose" in result.stderr
    assert "graphc run: rank 1 raised the exception above" in result.stderr
    assert "unreachable" not in result.stdout
    assert time.monotonic() - start < 45  # aborted, not ended by the timeout


def test_a_collective_that_never_completes_times_out_naming_op_and_rank():
    result = launch(2, "fail.py", "timeout", timeout=60)
    assert result.returncode != 0
    assert "all_reduce on rank 0 of 2: timed out after 2 s" in result.stderr
    assert "unreachable" not in result.stdout
    # the launcher set torchrun's variables for both ranks
    assert "rank 0 env RANK=0 WORLD_SIZE=2" in result.stdout
    assert "rank 1 env RANK=1 WORLD_SIZE=2" in result.stdout
