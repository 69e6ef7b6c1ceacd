"""sort, argsort, msort, topk, kthvalue, median, nanmedian, mode,
searchsorted, bucketize and unique against PyTorch: values, indices,
gradients, errors, and the same results from compiled code."""

from __future__ import annotations

import numpy as np
import pytest
from sorting_helpers import compiled, distinct, same, torch_of

import graphc
from graphc.errors import TraceError

torch = pytest.importorskip("torch")

NAN = np.nan


def _ties_and_nans(shape, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(-3, 4, size=shape).astype(np.float32)
    a[rng.random(shape) < 0.2] = NAN
    return a


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_sort_and_argsort_match_torch_stable_with_ties_and_nan(dim, descending):
    a = _ties_and_nans((5, 8))
    want = torch.sort(torch_of(a), dim=dim, descending=descending, stable=True)
    got = graphc.sort(graphc.tensor(a), dim=dim, descending=descending, stable=True)
    same(got, want)
    assert type(got).__name__ == "sort" and got.values is got[0]
    same(graphc.argsort(graphc.tensor(a), dim, descending), want.indices)
    same(graphc.tensor(a).sort(dim, descending=descending).values, want.values)


@pytest.mark.parametrize("arr", [np.array([3, -1, 3, 0, 7], np.int64), np.array([True, False, True, False])])
def test_sort_integers_and_bools(arr):
    for descending in (False, True):
        same(
            graphc.sort(graphc.tensor(arr), descending=descending),
            torch.sort(torch_of(arr), descending=descending, stable=True),
        )


def test_msort_and_scalar_sort():
    a = _ties_and_nans((4, 3), seed=1)
    same(graphc.msort(graphc.tensor(a)), torch.msort(torch_of(a)))
    same(graphc.sort(graphc.tensor(2.5)), torch.sort(torch.tensor(2.5)))
    same(graphc.topk(graphc.tensor(2.5), 1), torch.topk(torch.tensor(2.5), 1))


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("k", [0, 1, 3, 6])
def test_topk_matches_torch(k, largest):
    a = distinct((4, 6))
    for dim in (1, 0) if k <= 4 else (1,):
        same(
            graphc.topk(graphc.tensor(a), k, dim=dim, largest=largest),
            torch.topk(torch_of(a), k, dim=dim, largest=largest),
        )


def test_topk_puts_nan_first_like_torch():
    a = np.array([1.0, NAN, 3.0, -2.0], np.float32)
    same(graphc.topk(graphc.tensor(a), 2), torch.topk(torch_of(a), 2))
    same(graphc.topk(graphc.tensor(a), 2, largest=False), torch.topk(torch_of(a), 2, largest=False))


@pytest.mark.parametrize("keepdim", [False, True])
def test_kthvalue_matches_torch(keepdim):
    a = distinct((3, 5), seed=2)
    for k in (1, 3, 5):
        same(graphc.kthvalue(graphc.tensor(a), k, 1, keepdim), torch.kthvalue(torch_of(a), k, 1, keepdim))
    same(graphc.kthvalue(graphc.tensor(a), 2, 0, keepdim), torch.kthvalue(torch_of(a), 2, 0, keepdim))


def test_median_global_dim_and_nan():
    a = distinct((4, 6), seed=3)
    same(graphc.median(graphc.tensor(a)), torch.median(torch_of(a)))
    for dim in (0, 1):
        for keepdim in (False, True):
            same(graphc.median(graphc.tensor(a), dim, keepdim), torch.median(torch_of(a), dim, keepdim))
    b = a.copy()
    b[1, 2] = b[1, 4] = b[3, 0] = NAN
    same(graphc.median(graphc.tensor(b)), torch.median(torch_of(b)))
    same(graphc.median(graphc.tensor(b), 1), torch.median(torch_of(b), 1))
    ints = np.array([[5, 1, 4, 2], [0, 9, 3, 7]], np.int64)
    same(graphc.median(graphc.tensor(ints), 1), torch.median(torch_of(ints), 1))
    same(graphc.median(graphc.tensor(ints)), torch.median(torch_of(ints)))


def test_nanmedian_ignores_nan():
    a = distinct((4, 5), seed=4)
    a[0, 1] = a[0, 3] = a[2, 2] = NAN
    for dim in (0, 1):
        same(graphc.nanmedian(graphc.tensor(a), dim), torch.nanmedian(torch_of(a), dim))
    same(graphc.nanmedian(graphc.tensor(a)), torch.nanmedian(torch_of(a)))
    same(graphc.tensor(a).nanmedian(1, keepdim=True), torch_of(a).nanmedian(1, keepdim=True))
    # A row of NaN only has median NaN (torch leaves which index unspecified).
    a[3, :] = NAN
    got = graphc.nanmedian(graphc.tensor(a), 1)
    same(got.values, torch.nanmedian(torch_of(a), 1).values)
    assert np.isnan(a[3, got.indices.numpy()[3]])


def test_mode_matches_torch():
    a = np.array([[3, 1, 1, 3, 2, 2], [4, 4, 0, 4, 0, 5], [7, 6, 5, 4, 3, 2]], np.int64)
    same(graphc.mode(graphc.tensor(a), 1), torch.mode(torch_of(a), 1))
    same(graphc.mode(graphc.tensor(a.T.copy()), 0, keepdim=True), torch.mode(torch_of(a.T.copy()), 0, keepdim=True))
    f = a.astype(np.float32)
    same(graphc.tensor(f).mode(), torch_of(f).mode())


def test_gradients_flow_to_the_picked_elements_like_torch():
    a = distinct((3, 5), seed=5).astype(np.float64)
    w = np.random.default_rng(0).standard_normal((3, 5))
    cases = [
        lambda m, x: m.sort(x, 1, descending=True).values * torch_or_graphc(m, w),
        lambda m, x: m.topk(x, 2, dim=0).values,
        lambda m, x: m.median(x, 1).values,
        lambda m, x: m.median(x).reshape(1),
        lambda m, x: m.nanmedian(x, 0).values,
        lambda m, x: m.kthvalue(x, 4, 1).values,
        lambda m, x: m.msort(x) * torch_or_graphc(m, w),
    ]
    for i, fn in enumerate(cases):
        g = graphc.tensor(a, requires_grad=True)
        t = torch_of(a, requires_grad=True)
        fn(graphc, g).sum().backward()
        fn(torch, t).sum().backward()
        same(g.grad, t.grad, what=f"case {i}")


def torch_or_graphc(m, arr):
    return m.tensor(arr)


def test_searchsorted_and_bucketize_match_torch():
    seq = np.array([1.0, 2.0, 2.0, 4.0, 7.0], np.float32)
    vals = np.array([[0.5, 2.0, 3.0], [7.0, 8.0, 2.0]], np.float32)
    for right in (False, True):
        same(
            graphc.searchsorted(graphc.tensor(seq), graphc.tensor(vals), right=right),
            torch.searchsorted(torch_of(seq), torch_of(vals), right=right),
        )
        same(
            graphc.bucketize(graphc.tensor(vals), graphc.tensor(seq), right=right),
            torch.bucketize(torch_of(vals), torch_of(seq), right=right),
        )
    same(
        graphc.searchsorted(graphc.tensor(seq), graphc.tensor(vals), side="right", out_int32=True),
        torch.searchsorted(torch_of(seq), torch_of(vals), side="right", out_int32=True),
    )
    rows = np.sort(distinct((2, 6), seed=6), axis=1)
    same(
        graphc.searchsorted(graphc.tensor(rows), graphc.tensor(vals)),
        torch.searchsorted(torch_of(rows), torch_of(vals)),
    )
    perm = np.array([3, 0, 4, 1, 2])
    shuffled = seq[np.argsort(perm)]
    order = np.argsort(shuffled, kind="stable")
    same(
        graphc.searchsorted(graphc.tensor(shuffled), graphc.tensor(vals), sorter=graphc.tensor(order)),
        torch.searchsorted(torch_of(shuffled), torch_of(vals), sorter=torch_of(order)),
    )


def test_searchsorted_scalars_and_mixed_dtypes():
    seq = np.array([1, 2, 3], np.int64)
    for value, right in ((1.5, False), (2, True), (0, False)):
        same(
            graphc.searchsorted(graphc.tensor(seq), value, right=right),
            torch.searchsorted(torch_of(seq), value, right=right),
        )
    vals = np.array([2.5, 0.0, 3.0])
    same(
        graphc.searchsorted(graphc.tensor(seq), graphc.tensor(vals)), torch.searchsorted(torch_of(seq), torch_of(vals))
    )


def test_unique_eager_and_refused_when_compiled():
    a = np.array([[3, 1, 1], [2, 3, 0]], np.int64)
    got = graphc.unique(graphc.tensor(a), return_inverse=True, return_counts=True)
    same(got, torch.unique(torch_of(a), return_inverse=True, return_counts=True))
    same(graphc.tensor(a).unique(), torch_of(a).unique())
    with pytest.raises(TraceError, match="unique.*depends on the data"):
        compiled(lambda x: graphc.unique(x), graphc.tensor(a))


def test_errors_match_torch():
    x = graphc.tensor(distinct((2, 3)))
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        graphc.topk(x, 4)
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        graphc.topk(x, -1)
    with pytest.raises(RuntimeError, match=r"kthvalue\(\): selected number k out of range for dimension 1"):
        graphc.kthvalue(x, 0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        graphc.sort(x, 2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        graphc.median(x, -3)
    with pytest.raises(IndexError, match="Dimension out of range"):
        graphc.topk(x, 1, dim=5)


def test_compiled_results_equal_eager():
    a = _ties_and_nans((4, 7), seed=7)
    d = distinct((4, 7), seed=8)

    def fn(x, y):
        return (
            graphc.sort(x, 1, descending=True),
            graphc.argsort(x, 0),
            graphc.topk(y, 3),
            graphc.kthvalue(y, 2, 0),
            graphc.median(x, 1),
            graphc.nanmedian(x, 0),
            graphc.median(y),
            graphc.mode(graphc.round(y / 4), 1),
            graphc.searchsorted(graphc.sort(y, 1).values, y + 0.5),
        )

    eager = fn(graphc.tensor(a), graphc.tensor(d))
    got = compiled(fn, graphc.tensor(a), graphc.tensor(d))
    for i, (g, e) in enumerate(zip(got, eager)):
        for gg, ee in zip(g if isinstance(g, tuple) else (g,), e if isinstance(e, tuple) else (e,)):
            np.testing.assert_array_equal(gg.numpy(), ee.numpy(), err_msg=f"result {i}")


def test_compiled_gradient_of_sorted_values():
    a = distinct((3, 6), seed=9)
    w = graphc.tensor(np.arange(18, dtype=np.float32).reshape(3, 6))

    def step(x):
        x = x.detach().requires_grad_()
        (graphc.sort(x, 1).values * w).sum().backward()
        return x.grad

    t = torch_of(a, requires_grad=True)
    (torch.sort(t, 1).values * torch_of(w.numpy())).sum().backward()
    same(compiled(step, graphc.tensor(a)), t.grad)


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros((3, 0), np.float32),
        np.zeros((0, 3), np.float32),
        np.array([True, False, True, False]),
        np.array([5, -1, 3, -1], np.int8),
        np.array([5, 200, 3, 200], np.uint8),
    ],
    ids=["empty-rows", "no-rows", "bool", "int8", "uint8"],
)
def test_compiled_sort_of_empty_and_small_integer_tensors(arr):
    fn = lambda x: graphc.sort(x, -1, descending=True)  # noqa: E731
    got = compiled(fn, graphc.tensor(arr))
    same(got, torch.sort(torch_of(arr), dim=-1, descending=True, stable=True))
