"""`out=` on the common functions (written in place, shape and dtype
checked, refused under autograd, also in compiled code) and the in-place
shape methods (unsqueeze_, squeeze_, t_, transpose_, swapdims_,
swapaxes_, resize_) against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.errors import DTypeError, ShapeError

torch = pytest.importorskip("torch")


def test_out_writes_into_the_given_tensor_like_torch():
    a = np.arange(6.0).reshape(2, 3)
    b = np.arange(6.0).reshape(3, 2) - 2
    cases = [
        ("add", (a, 2.0), {}),
        ("mul", (a, a), {}),
        ("matmul", (a, b), {}),
        ("sum", (a,), {"dim": 1}),
        ("mean", (a,), {"dim": 0}),
        ("exp", (a,), {}),
        ("cumsum", (a,), {"dim": 1}),
        ("cumprod", (a,), {"dim": 1}),
        ("clamp", (a,), {"min": 1.0, "max": 4.0}),
    ]
    for name, args, kwargs in cases:
        want = getattr(torch, name)(*[torch.tensor(x) if isinstance(x, np.ndarray) else x for x in args], **kwargs)
        out = graphc.zeros(*want.shape, dtype=graphc.float64)
        got = getattr(graphc, name)(
            *[graphc.tensor(x) if isinstance(x, np.ndarray) else x for x in args], **kwargs, out=out
        )
        assert got is out, name
        np.testing.assert_allclose(out.numpy(), want.numpy(), err_msg=name)


def test_out_for_cat_and_tuple_results():
    out = graphc.zeros(4, dtype=graphc.int64)
    graphc.cat([graphc.tensor([1, 2]), graphc.tensor([3, 4])], out=out)
    assert out.tolist() == [1, 2, 3, 4]
    x = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    values, indices = graphc.zeros(2, 3, dtype=graphc.float64), graphc.zeros(2, 3, dtype=graphc.int64)
    res = graphc.sort(graphc.tensor(x), 1, out=(values, indices))
    assert res.values is values and res.indices is indices
    want = torch.sort(torch.tensor(x), 1)
    np.testing.assert_array_equal(values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(indices.numpy(), want.indices.numpy())
    v, i = graphc.zeros(2, dtype=graphc.float64), graphc.zeros(2, dtype=graphc.int64)
    graphc.max(graphc.tensor(x), 1, out=(v, i))
    assert v.tolist() == [3.0, 5.0] and i.tolist() == [0, 1]


def test_out_resizes_an_empty_tensor_and_casts_up():
    out = graphc.tensor([])
    graphc.add(graphc.ones(2, 2), 1, out=out)
    assert out.shape == (2, 2) and out.tolist() == [[2.0, 2.0], [2.0, 2.0]]
    out = graphc.zeros(3, dtype=graphc.float64)
    graphc.add(graphc.tensor([1, 2, 3]), 1, out=out)
    assert out.dtype is graphc.float64 and out.tolist() == [2.0, 3.0, 4.0]


def test_out_errors():
    with pytest.raises(ShapeError, match=r"output with shape \[3\] doesn't match the broadcast shape \[2, 3\]"):
        graphc.add(graphc.ones(2, 3), 2, out=graphc.zeros(3))
    with pytest.raises(DTypeError, match="can't be cast to the desired output type"):
        graphc.add(graphc.ones(2), 0.5, out=graphc.zeros(2, dtype=graphc.int64))
    with pytest.raises(RuntimeError, match="out=... arguments don't support automatic differentiation"):
        graphc.mul(graphc.ones(2, requires_grad=True), 2, out=graphc.zeros(2))
    with pytest.raises(TypeError, match="out must be a tuple of 2 tensors"):
        graphc.sort(graphc.ones(3), out=graphc.zeros(3))
    with torch.no_grad():
        torch.mul(torch.ones(2, requires_grad=True), 2, out=torch.zeros(2))  # allowed without grad, as here
    with graphc.no_grad():
        graphc.mul(graphc.ones(2, requires_grad=True), 2, out=graphc.zeros(2))


def test_out_in_compiled_code():
    f = graphc.compile(lambda x, o: graphc.matmul(x, x, out=o))
    x, o = graphc.tensor(np.arange(4.0).reshape(2, 2)), graphc.zeros(2, 2, dtype=graphc.float64)
    f(x, o)
    o.zero_()
    f(x, o)
    np.testing.assert_array_equal(o.numpy(), np.arange(4.0).reshape(2, 2) @ np.arange(4.0).reshape(2, 2))


@pytest.mark.parametrize(
    "name,args",
    [
        ("unsqueeze_", (0,)),
        ("unsqueeze_", (-1,)),
        ("squeeze_", ()),
        ("squeeze_", (0,)),
        ("t_", ()),
        ("transpose_", (0, 1)),
        ("swapdims_", (1, 0)),
        ("swapaxes_", (0, 1)),
        ("resize_", (3, 2)),
        ("resize_", (4,)),
    ],
)
def test_inplace_shape_methods_match_torch(name, args):
    a = np.arange(6.0).reshape(2, 3) if name not in ("squeeze_",) else np.arange(6.0).reshape(1, 2, 3)
    g, t = graphc.tensor(a), torch.tensor(a)
    assert getattr(g, name)(*args) is g
    getattr(t, name)(*args)
    assert tuple(g.shape) == tuple(t.shape)
    np.testing.assert_array_equal(g.numpy(), t.numpy())


def test_inplace_shape_change_under_autograd_and_compile():
    a = graphc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        a.unsqueeze_(0)
    b = a * 2
    b.unsqueeze_(1)
    assert b.shape == (3, 1)
    (b * graphc.tensor([[1.0], [2.0], [3.0]])).sum().backward()
    assert a.grad.tolist() == [2.0, 4.0, 6.0]

    def f(x):
        y = x + 1
        y.t_()
        y.unsqueeze_(0)
        return y

    c = graphc.compile(f)
    x = graphc.tensor(np.arange(6.0).reshape(2, 3))
    c(x)
    np.testing.assert_array_equal(c(x).numpy(), (np.arange(6.0).reshape(2, 3) + 1).T[None])
    with pytest.raises(IndexError, match="Dimension out of range"):
        graphc.ones(2, 3).unsqueeze_(3)
