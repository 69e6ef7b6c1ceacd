"""Random well-typed graphs (tests/ir/graphgen.py) compiled and compared
with the interpreter."""

import sys
from pathlib import Path

import numpy as np
import pytest
from compiler_util import assert_matches

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ir"))
from graphgen import random_graph  # noqa: E402

from graphc.runtime import interpreter  # noqa: E402


@pytest.mark.parametrize("seed", range(40))
def test_random_graph(seed):
    case = random_graph(np.random.default_rng(seed), max_steps=8, max_numel=1024)
    try:
        interpreter.run(case.graph, [a.copy() for a in case.arrays])
    except Exception as e:  # e.g. generated index out of range: the backend must raise too
        pytest.skip(f"reference raises {type(e).__name__}")
    assert_matches(case.graph, case.arrays, rtol=2e-4, atol=1e-4)
