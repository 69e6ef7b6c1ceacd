"""index_add, index_copy, index_fill, scatter(reduce=...) and
scatter_reduce against PyTorch: values, gradients, in-place forms, compiled
code and errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc

torch = pytest.importorskip("torch")

REDUCTIONS = ["sum", "prod", "mean", "amax", "amin"]


def _same(g, t, rtol=1e-10, what=""):
    got, want = g.detach().numpy(), t.detach().numpy()
    assert got.shape == want.shape and got.dtype == want.dtype, what
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12, err_msg=what)


def _both(arr, grad=False):
    return graphc.tensor(arr, requires_grad=grad), torch.tensor(arr, requires_grad=grad)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.permutation(20).reshape(4, 5).astype(np.float64) - 7  # distinct: no max ties
    src = rng.permutation(18).reshape(3, 6).astype(np.float64) / 3 - 2
    index = rng.integers(0, 4, size=(3, 4))  # smaller than src, and than x outside dim 0
    return x, src, index


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_scatter_reduce_values(reduce, include_self, dtype):
    x, src, index = _data()
    for dim, idx in ((0, index), (1, index % 5)):
        gx, tx = _both(x.astype(dtype))
        gs, ts = _both(src.astype(dtype) if dtype == np.float64 else (src * 3).astype(dtype))
        got = graphc.scatter_reduce(gx, dim, graphc.tensor(idx), gs, reduce, include_self=include_self)
        want = torch.scatter_reduce(tx, dim, torch.tensor(idx), ts, reduce, include_self=include_self)
        _same(got, want, what=f"dim {dim}")


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_scatter_reduce_gradients_match_torch(reduce, include_self):
    x, src, index = _data(1)
    gx, tx = _both(x, grad=True)
    # torch's backward needs src of the index's shape.
    gs, ts = _both(src[:, :4].copy(), grad=True)
    w = np.random.default_rng(2).standard_normal(x.shape)
    out_g = graphc.scatter_reduce(gx, 0, graphc.tensor(index), gs, reduce, include_self=include_self)
    out_t = torch.scatter_reduce(tx, 0, torch.tensor(index), ts, reduce, include_self=include_self)
    (out_g * graphc.tensor(w)).sum().backward()
    (out_t * torch.tensor(w)).sum().backward()
    _same(gx.grad, tx.grad, rtol=1e-8, what="self")
    _same(gs.grad, ts.grad, rtol=1e-8, what="src")


def test_scatter_with_reduce_add_and_multiply():
    x, src, index = _data(3)
    for reduce in ("add", "multiply"):
        gx, tx = _both(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            want = tx.scatter(0, torch.tensor(index), torch.tensor(src), reduce=reduce)
        _same(gx.scatter(0, graphc.tensor(index), graphc.tensor(src), reduce=reduce), want)
        _same(
            graphc.scatter(gx, 1, graphc.tensor(index), value=2.5, reduce=reduce),
            torch.scatter(tx, 1, torch.tensor(index), value=2.5, reduce=reduce),
        )
    with pytest.raises(RuntimeError, match="reduce argument must be either add or multiply"):
        graphc.tensor(x).scatter(0, graphc.tensor(index), graphc.tensor(src), reduce="max")


def test_index_add_copy_fill_values_and_gradients():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 5))
    src = rng.standard_normal((4, 3))
    idx = np.array([4, 0, 2])
    dup = np.array([1, 1, 3])
    for name, args in (
        ("index_add", (1, idx, src)),
        ("index_add", (1, dup, src)),
        ("index_copy", (1, idx, src)),
        ("index_fill", (1, idx, -1.5)),
        ("index_fill", (0, np.array([3, -1]), 7.0)),
    ):
        gx, tx = _both(x, grad=True)
        dim, index, val = args
        gv, tv = _both(val, grad=True) if isinstance(val, np.ndarray) else (val, val)
        got = getattr(graphc, name)(gx, dim, graphc.tensor(index), gv)
        want = getattr(torch, name)(tx, dim, torch.tensor(index), tv)
        _same(got, want, what=name)
        w = rng.standard_normal(x.shape)
        (got * graphc.tensor(w)).sum().backward()
        (want * torch.tensor(w)).sum().backward()
        _same(gx.grad, tx.grad, what=f"{name} grad self")
        if isinstance(val, np.ndarray):
            _same(gv.grad, tv.grad, what=f"{name} grad source")
    gx, tx = _both(x)
    _same(
        gx.index_add(0, graphc.tensor([2, 0]), graphc.ones(2, 5, dtype=graphc.float64), alpha=3),
        tx.index_add(0, torch.tensor([2, 0]), torch.ones(2, 5, dtype=torch.float64), alpha=3),
    )


def test_in_place_forms():
    x = np.arange(12.0).reshape(3, 4)
    for name, args_g, args_t in (
        (
            "index_add_",
            (0, graphc.tensor([2]), graphc.ones(1, 4, dtype=graphc.float64)),
            (0, torch.tensor([2]), torch.ones(1, 4, dtype=torch.float64)),
        ),
        (
            "index_copy_",
            (1, graphc.tensor([0]), graphc.zeros(3, 1, dtype=graphc.float64)),
            (1, torch.tensor([0]), torch.zeros(3, 1, dtype=torch.float64)),
        ),
        ("index_fill_", (1, graphc.tensor([1, 3]), 9.0), (1, torch.tensor([1, 3]), 9.0)),
        (
            "scatter_reduce_",
            (0, graphc.tensor([[0, 0, 2, 1]]), graphc.ones(1, 4, dtype=graphc.float64), "amin"),
            (0, torch.tensor([[0, 0, 2, 1]]), torch.ones(1, 4, dtype=torch.float64), "amin"),
        ),
    ):
        gx, tx = _both(x.copy())
        assert getattr(gx, name)(*args_g) is gx
        getattr(tx, name)(*args_t)
        _same(gx, tx, what=name)


def test_compiled_equals_eager():
    x, src, index = _data(5)

    def fn(x, s, i):
        return (
            graphc.scatter_reduce(x, 0, i, s, "amax", include_self=False),
            graphc.scatter_reduce(x, 0, i, s, "prod"),
            graphc.scatter_reduce(x, 0, i, s, "mean"),
            x.index_add(1, graphc.tensor([4, 0]), x[:, :2]),
            x.index_fill(0, graphc.tensor([1]), 0.5),
            x.index_copy(0, graphc.tensor([3, 0]), x[:2]),
        )

    args = (graphc.tensor(x), graphc.tensor(src), graphc.tensor(index))
    c = graphc.compile(fn)
    c(*args)
    for i, (got, want) in enumerate(zip(c(*args), fn(*args))):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, err_msg=f"result {i}")


def test_errors_match_torch():
    x = graphc.zeros(2, 3)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 1 with size 3"):
        x.index_add(1, graphc.tensor([0, 5]), graphc.ones(2, 2))
    with pytest.raises(RuntimeError, match=r"Number of indices \(2\) should be equal to source.size\(dim\): \(3\)"):
        x.index_add(1, graphc.tensor([0, 1]), graphc.ones(2, 3))
    with pytest.raises(IndexError, match="Index is supposed to be a vector"):
        x.index_add(1, graphc.tensor([[0, 1]]), graphc.ones(2, 2))
    with pytest.raises(RuntimeError, match="reduce argument must be either sum, prod, mean, amax or amin"):
        x.scatter_reduce(0, graphc.zeros(1, 3, dtype=graphc.int64), graphc.ones(1, 3), "max")
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.index_fill(2, graphc.tensor([0]), 1.0)
