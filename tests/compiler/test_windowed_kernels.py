"""Convolution's memory-bound kernels: im2col with padding and the fold of
its data gradient read where(in range, x[clamped index], 0). The LLVM
backend runs them over the columns where the guard holds with a plain
index (codegen/llvm/kernels.py `Window`); a weight gradient reads the
forward im2col transposed instead of a second im2col (codegen/fusion.py
`_view_of_operand_copy`). Every case is checked against the interpreter."""

import numpy as np
import pytest
from compiler_util import assert_matches

import graphc
import graphc.nn.functional as F
from graphc.codegen.llvm import kernels
from graphc.passes.autodiff import grad

RNG = np.random.default_rng(3)


def _data(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _run(fn, *shapes, rtol=1e-4, atol=1e-5):
    arrays = [_data(*s) for s in shapes]
    g = graphc.trace(fn, *(graphc.from_numpy(a) for a in arrays))
    return assert_matches(g, arrays, rtol=rtol, atol=atol)


def _kernels(exe, primitive):
    return [k for k in exe.program.kernels if primitive in k.primitives]


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "dilation"),
    [(8, 3, 1, 1, 1), (5, 3, 1, 2, 1), (9, 3, 2, 1, 1), (7, 2, 1, 1, 2), (4, 5, 1, 2, 1), (1, 3, 1, 1, 1)],
)
def test_padded_im2col(size, kernel, stride, padding, dilation):
    # Columns before, inside and after the window; strided and dilated
    # windows step the source by more than one column; a window wider
    # than the image leaves some taps no column at all. The scaled input
    # is computed inside the im2col kernel (as a BatchNorm + ReLU is).
    exe = _run(
        lambda x, w: F.conv2d(x * 2.0, w, stride=stride, padding=padding, dilation=dilation),
        (2, 3, size, size),
        (4, 3, kernel, kernel),
    )
    windowed = any(k.kind == "elementwise" and kernels._stored_window(k) is not None for k in exe.program.kernels)
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    assert windowed == (out > 1)  # a one-column row stays a plain loop


def test_unfold_with_padding():
    _run(lambda x: F.unfold(x * 2.0, 3, 1, 1, 1) + 1.0, (2, 3, 8, 8))


@pytest.mark.parametrize(("size", "padding"), [(9, 1), (8, 0), (6, 1)])
def test_max_pool_im2col_pads_with_minus_inf(size, padding):
    x = _data(2, 3, size, size)
    x[0, 0] = -1e30  # a window of only padding and very negative values
    g = graphc.trace(lambda t: F.max_pool2d(t, 3, 2, padding) + 0.0, graphc.from_numpy(x))
    assert_matches(g, [x])


@pytest.mark.parametrize(
    ("size", "kernel", "padding", "channels"), [(8, 5, 0, 3), (16, 3, 1, 2), (4, 3, 1, 4), (70, 3, 1, 1), (6, 7, 3, 2)]
)
def test_stride_one_fold(size, kernel, padding, channels):
    # The data gradient's fold: masked vector rows up to 64 columns, the
    # scalar reduce beyond (70).
    out = size + 2 * padding - kernel + 1
    exe = _run(
        lambda cols: F.fold(cols, (size, size), kernel, padding=padding),
        (2, channels * kernel * kernel, out * out),
    )
    folds = [k for k in _kernels(exe, "fold") if k.kind == "reduce"]
    assert folds
    windows = [(k, kernels._summed_window(k)) for k in folds]
    vectorized = [w is not None and kernels._row_lanes(k, w) is not None for k, w in windows]
    assert all(vectorized) == (size <= kernels.WINDOW_COLUMNS), vectorized


def test_convolution_gradients_share_one_im2col():
    def loss(x, w):
        return (F.conv2d(x, w, padding=1) ** 2).sum()

    xs, ws = (4, 3, 10, 10), (5, 3, 3, 3)
    arrays = [_data(*xs), _data(*ws)]
    g = grad(graphc.trace(loss, *(graphc.from_numpy(a) for a in arrays)))
    exe = assert_matches(g, arrays, rtol=1e-3, atol=1e-3)
    x = exe.program.inputs[0]
    copies_of_x = [k.name for k in exe.program.kernels if k.kind == "elementwise" and x in k.inputs]
    # The forward's im2col only: the weight gradient reads it transposed.
    assert len(copies_of_x) == 1, copies_of_x


def test_convolution_data_gradient_matches_finite_differences():
    def loss(x, w, weights):
        return (F.conv2d(x, w, padding=1) * weights).sum()

    x, w = _data(1, 2, 6, 6), _data(4, 2, 3, 3)
    weights = np.linspace(-2, 2, 4 * 36, dtype=np.float32).reshape(1, 4, 6, 6)
    arrays = [x, w, weights]
    g = grad(graphc.trace(loss, *(graphc.from_numpy(a) for a in arrays)))
    got = assert_matches(g, arrays, rtol=1e-3, atol=1e-3)([a.copy() for a in arrays])[1]  # d loss / d x

    def at(x):
        return loss(*(graphc.from_numpy(a) for a in (x, w, weights))).item()

    eps = 1e-2
    for idx in [(0, 0, 0, 0), (0, 1, 5, 5), (0, 0, 2, 3), (0, 1, 0, 5)]:
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        assert got[idx] == pytest.approx((at(up) - at(down)) / (2 * eps), rel=1e-2, abs=2e-2)


def test_max_pool_output_read_by_a_convolution_is_gathered_once():
    # Max-pool's output is a gather at its argmax; a 3x3 convolution's
    # im2col reads every element 9 times and the residual add once more:
    # the gather is computed once instead of in every reader.
    def fn(x, w):
        y = F.max_pool2d(x, 3, 2, 1)
        return F.conv2d(y, w, padding=1) + y

    exe = _run(fn, (2, 4, 16, 16), (4, 4, 3, 3))
    (argmax,) = [k.outputs[0] for k in exe.program.kernels if k.reducer == "argmax"]
    gathers = [k.name for k in exe.program.kernels if argmax in k.inputs]
    assert len(gathers) == 1, gathers


@pytest.mark.parametrize(("size", "padding"), [(16, 1), (12, 0), (10, 1)])
def test_max_pool_backward_rows_run_as_vectors(size, padding):
    # The strided fold of max-pool's backward compares each tap's number
    # (the same for a whole row: one splat) with the argmax loaded along
    # the row (an int64 vector), summing the gradient where they match.
    def loss(x):
        y = F.max_pool2d(x, 3, 2, padding)
        return (y * y).sum()

    x = _data(2, 3, size, size)
    g = grad(graphc.trace(loss, graphc.from_numpy(x)))
    exe = assert_matches(g, [x], rtol=1e-5, atol=1e-5)
    folds = [k for k in _kernels(exe, "fold") if k.kind == "reduce"]
    assert folds
    for k in folds:
        window = kernels._summed_window(k)
        assert window is not None and kernels._row_lanes(k, window) == 8, k.name
