"""Collectives of graphc.distributed on 2 ranks against numpy (the checks
run inside scripts/collectives.py, which aborts the job on a mismatch)."""

from mpi_testutil import check_ok, launch


def test_collectives_match_numpy_on_two_ranks():
    result = launch(2, "collectives.py")
    check_ok(result)
    assert "collectives ok" in result.stdout
