"""ARGSORT on the CUDA backend (GPU, and the host emulator without one):
its expansion (passes/lower.py) runs the same kernels as on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
from cuda_cases import all_cases

from runtime import backends, interpreter

pytestmark = pytest.mark.usefixtures("cuda_device")


def test_argsort_cases_match_the_interpreter():
    cases = [(name, g, xs) for name, g, xs in all_cases() if name.startswith("argsort")]
    assert len(cases) == 2
    for name, graph, inputs in cases:
        got = backends.compile_graph(graph, "cuda")([x.copy() for x in inputs])[0]
        np.testing.assert_array_equal(got, interpreter.run(graph, inputs)[0], err_msg=name)
