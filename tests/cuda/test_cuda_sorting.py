"""ARGSORT on the CUDA backend (GPU, and the host emulator without one):
both of its expansions (passes/lower.py: rank counting and the bitonic
network) run the same kernels as on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
from cuda_cases import all_cases

from graphc.runtime import backends, interpreter

pytestmark = pytest.mark.usefixtures("cuda_device")


def test_argsort_cases_match_the_interpreter():
    cases = [(name, g, xs) for name, g, xs in all_cases() if name.startswith("argsort")]
    assert len(cases) == 2
    for name, graph, inputs in cases:
        got = backends.compile_graph(graph, "cuda")([x.copy() for x in inputs])[0]
        np.testing.assert_array_equal(got, interpreter.run(graph, inputs)[0], err_msg=name)


def test_argsort_through_the_bitonic_network(monkeypatch):
    from graphc.passes import lower

    monkeypatch.setattr(lower, "RANK_SORT_MAX", 4)  # the cases' rows are 5 long
    for name, graph, inputs in all_cases():
        if name.startswith("argsort"):
            got = backends.compile_graph(graph, "cuda")([x.copy() for x in inputs])[0]
            np.testing.assert_array_equal(got, interpreter.run(graph, inputs)[0], err_msg=name)
