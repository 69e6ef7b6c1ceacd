"""Gradients at ties and kinks, against PyTorch: abs at 0 (sign(0) = 0),
clamp at its bounds (x keeps the whole gradient where min <= x <= max),
maximum/minimum between equal values (split half/half), relu/hardtanh at
their corners. Found by the fuzzer's runs on inputs rounded to halves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc
import graphc.nn.functional  # noqa: F401  (m.nn.functional for graphc)

X = np.array([-1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0])
Y = np.array([-1.0, 0.0, 0.0, 0.5, 1.0, 1.0, 3.0])
CASES = {
    "abs": lambda m, x, y: m.abs(x),
    "abs_of_difference": lambda m, x, y: m.abs(x - y),
    "clamp": lambda m, x, y: m.clamp(x, -0.5, 1.0),
    "clamp_min": lambda m, x, y: m.clamp(x, min=0.0),
    "clamp_max": lambda m, x, y: m.clamp(x, max=0.5),
    "clamp_tensors": lambda m, x, y: m.clamp(x, min=y - 0.5, max=y),
    "clamp_min_above_max": lambda m, x, y: m.clamp(x, 1.0, -1.0),
    "maximum": lambda m, x, y: m.maximum(x, y),
    "minimum": lambda m, x, y: m.minimum(x, y),
    "relu": lambda m, x, y: m.relu(x),
    "hardtanh": lambda m, x, y: m.nn.functional.hardtanh(x, -0.5, 1.0),
}


def _run(m, case, compiled=False):
    x, y = (m.tensor(a, requires_grad=True) for a in (X, Y))
    weights = np.arange(1.0, X.size + 1)

    def step(x, y):
        x.grad = None
        y.grad = None
        out = CASES[case](m, x, y)
        (out * m.tensor(weights)).sum().backward()
        return out.detach()

    if compiled:
        step = graphc.compile(step)
        step(x, y)
    out = step(x, y)
    return [out.numpy()] + [np.zeros(X.size) if t.grad is None else t.grad.numpy() for t in (x, y)]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_tie_gradient_matches_torch(case, compiled):
    got, want = _run(graphc, case, compiled), _run(torch, case)
    for name, g, w in zip(("value", "x.grad", "y.grad"), got, want):
        np.testing.assert_array_equal(g, w, err_msg=f"{case}: {name}")


def test_abs_of_negative_zero_is_positive_zero():
    out = graphc.abs(graphc.tensor([-0.0]))
    assert np.signbit(out.numpy()).tolist() == [False]
