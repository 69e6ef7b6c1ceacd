"""A fast seeded slice of the differential fuzzer (the long run is
`python -m tests.fuzz.run --programs 10000`): random programs of
elementwise ops, reductions, movement, matmul, joins, softmax, sorts and
scans, values and gradients in float32 and float64, graphc eager and
compiled, must agree with PyTorch."""

from __future__ import annotations

import warnings

from .check import check, small_thresholds
from .programs import OPS, Program, Step, generate

# Seeds of the slice (about 40 s of CPU): the first 120 (the long run starts
# at 0 too), and 30 more compiled with the GEMM and threading thresholds at 1.
SEEDS = range(120)
SMALL_THRESHOLD_SEEDS = range(120, 150)


def test_slice_matches_torch():
    reports = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's warnings on degenerate reductions
        for seed in SEEDS:
            reports += [m.report() for m in check(generate(seed))]
    assert not reports, f"{len(reports)} mismatches:\n\n" + "\n\n".join(reports[:5])


def test_slice_with_small_thresholds_matches_torch():
    reports = []
    with warnings.catch_warnings(), small_thresholds():
        warnings.simplefilter("ignore")
        for seed in SMALL_THRESHOLD_SEEDS:
            reports += [m.report() for m in check(generate(seed), modes=("compiled",))]
    assert not reports, f"{len(reports)} mismatches:\n\n" + "\n\n".join(reports[:5])


def test_slice_covers_every_op():
    used = {step.op for seed in SEEDS for step in generate(seed).steps}
    assert used == set(OPS)


def test_programs_are_reproducible_and_listed():
    a, b = generate(12345), generate(12345)
    assert a.listing() == b.listing()
    assert a.listing().startswith("# seed 12345") and a.listing().endswith(f"return {a.output}")
    assert [x.tolist() for x in a.arrays()] == [x.tolist() for x in b.arrays()]


def test_a_wrong_result_is_reported_with_the_seed_and_program(monkeypatch):
    # Break graphc's sin: the checker must name the seed, the mode and the
    # program that shows it.
    import graphc

    program = Program(7, inputs=[("x0", (3,))], steps=[Step("v0", "sin", ("x0",), (), (3,))], output="v0")
    monkeypatch.setattr(graphc, "sin", lambda x: graphc.cos(x))
    found = check(program, dtypes=("float64",), modes=("eager",))
    assert found and found[0].seed == program.seed and found[0].mode == "eager"
    assert "sin(" in found[0].report() and f"seed={program.seed}" in found[0].report()
