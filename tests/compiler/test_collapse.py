"""Loop collapsing (codegen/collapse.py): loops every access steps through
as one become one loop; anything else keeps its loops. Each program is
also run compiled against the interpreter."""

import numpy as np
import pytest
from compiler_util import assert_matches

import graphc
import graphc.nn.functional as F
from graphc.codegen.collapse import collapse_loops
from graphc.passes.autodiff import grad

RNG = np.random.default_rng(7)


def _compiled(fn, *shapes):
    arrays = [RNG.standard_normal(s).astype(np.float32) for s in shapes]
    return assert_matches(graphc.trace(fn, *(graphc.from_numpy(a) for a in arrays)), arrays, rtol=1e-4, atol=1e-5)


def _loops(exe, kind):
    """(loops before, loops after collapsing) of each kernel of `kind`."""
    out = []
    for k in exe.program.kernels:
        if k.kind == kind:
            c = collapse_loops(k)
            out.append(((k.shape, k.red_shape), (c.shape, c.red_shape)))
    return out


def test_contiguous_update_becomes_two_loops():
    # An SGD momentum update of a conv weight: [Cout, Cin, 3, 3] -> the
    # threads' loop and one loop over the rest.
    exe = _compiled(lambda w, g, b: w - 0.1 * (b * 0.9 + g), (8, 6, 3, 3), (8, 6, 3, 3), (8, 6, 3, 3))
    assert _loops(exe, "elementwise") == [(((8, 6, 3, 3), ()), ((8, 54), ()))]


def test_per_channel_sums_reduce_over_whole_images():
    # A BatchNorm's statistics: sum over [N, H, W] per channel; H and W
    # are one run of memory, N strides over the channels.
    exe = _compiled(lambda x: x.sum(dim=(0, 2, 3)), (4, 5, 6, 7))
    assert _loops(exe, "reduce") == [(((5,), (4, 6, 7)), ((5,), (4, 42)))]


def test_batch_norm_training_gradients():
    def loss(x, w, b):
        return (F.batch_norm(x, None, None, w, b, training=True).relu() ** 2).sum()

    shapes = [(6, 4, 5, 5), (4,), (4,)]
    arrays = [RNG.standard_normal(s).astype(np.float32) for s in shapes]
    g = grad(graphc.trace(loss, *(graphc.from_numpy(a) for a in arrays)))
    exe = assert_matches(g, arrays, rtol=1e-3, atol=1e-3)
    assert any(after[1] == (6, 25) for before, after in _loops(exe, "reduce") if before[1] == (6, 5, 5))


def test_transposed_reads_keep_their_loops():
    exe = _compiled(lambda x: x.permute(0, 2, 1).contiguous() * 2.0, (3, 16, 17))
    ((before, after),) = _loops(exe, "elementwise")
    assert len(after[0]) == len(before[0])


def test_coordinates_read_as_values_keep_their_loops():
    # triu compares the row and column indices themselves.
    exe = _compiled(lambda x: graphc.triu(x * 2.0, 1), (4, 9, 9))
    ((before, after),) = _loops(exe, "elementwise")
    assert after == before


@pytest.mark.parametrize("shape", [(5, 1, 7, 1, 3), (1, 1, 4), (2, 3, 1)])
def test_unit_extents(shape):
    exe = _compiled(lambda x, y: x * y + 1.0, shape, shape)
    for before, after in _loops(exe, "elementwise"):
        assert len(after[0]) <= 2 and np.prod(after[0]) == np.prod(before[0])


def test_broadcast_operand_blocks_only_where_it_must():
    # x [4, 6, 8] + bias [6, 1]: the bias's index steps by 1 over dim 1 and
    # 0 over dim 2, so dims 1 and 2 stay apart; dim 0 is the threads' loop.
    exe = _compiled(lambda x, b: x + b, (4, 6, 8), (6, 1))
    assert _loops(exe, "elementwise") == [(((4, 6, 8), ()), ((4, 6, 8), ()))]


def test_non_affine_indices_keep_their_variables():
    # Tensor.unfold's windows read their input through div/mod of the
    # window index: those variables stay, the others may still merge.
    exe = _compiled(lambda x: x.unfold(1, 2, 1) * 2.0, (3, 4))
    assert _loops(exe, "elementwise")
