"""einsum against torch.einsum: matrix products, batches, ellipsis
(with broadcasting), traces and diagonals, implicit outputs, gradients,
compiled code, and torch's error messages."""

from __future__ import annotations

import numpy as np
import pytest

import graphc

torch = pytest.importorskip("torch")

_rng = np.random.default_rng(0)


def _r(*shape):
    return _rng.standard_normal(shape)


CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("ii", [(4, 4)]),
    ("ii->i", [(4, 4)]),
    ("iij->j", [(3, 3, 2)]),
    ("iji->j", [(3, 2, 3)]),
    ("ij->ji", [(2, 3)]),
    ("ji", [(2, 3)]),
    ("i->", [(3,)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk", [(2, 3, 4), (4, 5)]),
    ("...i,...i->...", [(2, 1, 3), (4, 3)]),
    ("a...,a->...", [(3, 2, 2), (3,)]),
    ("...", [(2, 3)]),
    ("i,i", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij,ij->", [(3, 4), (3, 4)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    ("ijk,jil->kl", [(2, 3, 4), (3, 2, 5)]),
    ("i,i,i->", [(4,), (4,), (4,)]),
    ("ab,cd->", [(2, 3), (4, 5)]),
    ("ij,j->i", [(3, 1), (4,)]),
    ("b h i d, b h j d -> b h i j", [(2, 2, 3, 4), (2, 2, 5, 4)]),
]


@pytest.mark.parametrize("equation,shapes", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients_match_torch(equation, shapes):
    arrays = [_r(*s) for s in shapes]
    gs = [graphc.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    got, want = graphc.einsum(equation, *gs), torch.einsum(equation, *ts)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = _r(*want.shape)
    (got * graphc.tensor(w)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    for i, (g, t) in enumerate(zip(gs, ts)):
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"operand {i}")


def test_operands_as_a_list_and_float32():
    a, b = _r(3, 4).astype(np.float32), _r(4, 2).astype(np.float32)
    got = graphc.einsum("ij,jk->ik", [graphc.tensor(a), graphc.tensor(b)])
    assert got.dtype is graphc.float32
    np.testing.assert_allclose(got.numpy(), a @ b, rtol=1e-5)


def test_compiled_equals_eager():
    a, b, c = (graphc.tensor(_r(*s).astype(np.float32)) for s in [(2, 3, 3), (2, 3, 4), (4,)])

    def fn(x, y, z):
        return graphc.einsum("bii->b", x), graphc.einsum("bij,bjk,k->bi", x, y, z), graphc.einsum("...jk->...kj", y)

    c_fn = graphc.compile(fn)
    c_fn(a, b, c)
    for got, want in zip(c_fn(a, b, c), fn(a, b, c)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "equation,shapes,message",
    [
        ("ij,jk", [(2, 3)], "fewer operands were provided than specified in the equation"),
        ("ij", [(2, 3), (3, 2)], "more operands were provided than specified in the equation"),
        (
            "ijk",
            [(2, 3)],
            r"the number of subscripts in the equation \(3\) does not match the number of dimensions \(2\)",
        ),
        ("ij->ii", [(2, 3)], "output subscript i appears more than once in the output"),
        ("ij->k", [(2, 3)], "output subscript k does not appear in the equation for any input operand"),
        ("i1", [(2, 3)], "invalid subscript given at index 1 in the equation string"),
        (
            "ij,jk",
            [(2, 3), (4, 5)],
            "subscript j has size 4 for operand 1 which does not broadcast with previously seen size 3",
        ),
        ("ii", [(2, 3)], "subscript i is repeated for operand 0 but the sizes don't match, 3 != 2"),
    ],
)
def test_errors_match_torch(equation, shapes, message):
    for lib in (graphc, torch):
        with pytest.raises(RuntimeError, match=message):
            lib.einsum(equation, *[lib.tensor(_r(*s)) for s in shapes])
