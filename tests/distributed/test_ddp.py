"""DistributedDataParallel: 2 ranks with batch B each end with the same
parameters as 1 rank with batch 2B, eager, compiled and with no_sync
gradient accumulation; its errors and attributes."""

import numpy as np
import pytest
from mpi_testutil import check_ok, launch

GLOBAL_BATCH, STEPS = 8, 4  # step 1 eager, 2 traces and compiles, 3-4 run compiled


# The interpreter backend runs the same compiled-program machinery (trace,
# captured state, .grad write-back) without LLVM's compile time; the LLVM
# run is the slow variant.
@pytest.mark.parametrize("backend", ["interp", pytest.param("llvm", marks=pytest.mark.slow)])
def test_two_ranks_equal_one_rank_with_twice_the_batch(tmp_path, backend):
    runs = {}
    for n in (1, 2):
        out = tmp_path / f"world{n}.npz"
        check_ok(launch(n, "ddp_train.py", out, GLOBAL_BATCH, STEPS, backend, timeout=150))
        runs[n] = dict(np.load(out))
    one, two = runs[1], runs[2]
    assert sorted(one) == sorted(two)
    modes = {key.split(".")[0] for key in one}
    assert modes == {"eager", "compiled_step", "compiled_step_and_opt", "compiled_model", "compiled_ddp", "no_sync"}
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)
    # and training moved the parameters (the comparison is not vacuous):
    # with different seeds per rank, only rank 0's broadcast weights agree
    assert not np.allclose(one["eager.module.fc1.weight"], 0)
    # compiled and eager training agree too
    for key in one:
        if key.startswith("eager."):
            name = key[len("eager.") :]
            for mode in ("compiled_step", "compiled_step_and_opt", "compiled_model", "compiled_ddp"):
                np.testing.assert_allclose(one[f"{mode}.{name}"], one[key], rtol=1e-5, atol=1e-6)


def test_ddp_errors_and_attributes():
    result = launch(2, "ddp_errors.py")
    check_ok(result)
    assert "ddp errors ok" in result.stdout
