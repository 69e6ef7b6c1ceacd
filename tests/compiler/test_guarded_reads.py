"""Guarded reads (pad borders, fold windows) clamp each coordinate into its
extent instead of selecting 0 (codegen/kernel.py `clamp`), so the
coordinates keep bounds and the reshapes they pass through lose their
div/mod. Max-pool's backward, a fold of a one-hot built on a reshaped
argmax, was a reduce whose every tap split a flat index by 147456, 2304
and 256 before."""

import numpy as np
import pytest

import graphc
import graphc.nn.functional as F
from graphc.codegen import kernel as K
from graphc.codegen.kernel import KOp
from graphc.passes.autodiff import grad
from tests.compiler.compiler_util import assert_matches


def _divisors(kern) -> set[int]:
    roots = [s.index for s in kern.stores] + [s.value for s in kern.stores]
    if kern.value is not None:
        roots.append(kern.value)
    return {e.arg for e in K.walk(*roots) if e.op in (KOp.FLOORDIV, KOp.MOD)}


@pytest.mark.parametrize(("size", "kernel", "stride", "padding"), [(32, 3, 2, 1), (15, 3, 2, 1), (12, 2, 2, 0)])
def test_max_pool_backward_splits_no_flat_index(size, kernel, stride, padding):
    def loss(x):
        y = F.max_pool2d(x, kernel, stride, padding)
        return (y * y).sum()

    x = graphc.randn(2, 3, size, size)
    g = grad(graphc.trace(loss, x))
    exe = assert_matches(g, [np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)])
    folds = [k for k in exe.program.kernels if "fold" in k.primitives]
    assert folds
    for k in folds:
        # Only the window's own steps (the stride, the kernel's width) divide.
        assert _divisors(k) <= {stride, kernel}, (k.name, _divisors(k))


def test_clamp_keeps_bounds_and_drops_when_proved():
    with K.loop_ranges({"i": 10}):
        i = K.var("i")
        assert K.clamp(i, 0, 9) is i
        c = K.clamp(i + (-3), 0, 4)
        assert K.bounds(c) == (0, 4)
        # a reshape's split of a clamped coordinate simplifies away
        assert K.floordiv(K.var("i") * 5 + c, 5) == K.var("i")
        assert K.mod(K.var("i") * 5 + c, 5) == c
