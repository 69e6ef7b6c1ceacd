"""margin_ranking, hinge_embedding, cosine_embedding, triplet_margin,
poisson_nll and gaussian_nll losses against torch: every reduction, values in
float32 and float64, float64 gradients, the compiled path, modules, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nn_testutil import compare_precise, randn

import graphc
import graphc.nn.functional as F
from graphc import nn

REDUCTIONS = ["mean", "sum", "none"]
SIGNS = np.array([1.0, -1.0, -1.0, 1.0, 1.0, -1.0], dtype=np.float32)


def _with(fn, *args, **kwargs):
    return lambda *xs: fn(*xs, *args, **kwargs)


def _both(name, **kwargs):
    return _with(getattr(F, name), **kwargs), _with(getattr(TF, name), **kwargs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_margin_ranking_loss(reduction, margin):
    x1, x2 = randn(6, seed=1), randn(6, seed=2)
    compare_precise(*_both("margin_ranking_loss", margin=margin, reduction=reduction), x1, x2, SIGNS)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_hinge_embedding_loss(reduction, margin):
    x = randn(2, 6, seed=3)
    target = np.stack([SIGNS, -SIGNS])
    compare_precise(*_both("hinge_embedding_loss", margin=margin, reduction=reduction), x, target, grad_inputs=(0,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, -0.2, 0.3])
def test_cosine_embedding_loss(reduction, margin):
    x1, x2 = randn(6, 4, seed=4), randn(6, 4, seed=5)
    g, t = _both("cosine_embedding_loss", margin=margin, reduction=reduction)
    compare_precise(g, t, x1, x2, SIGNS, grad_inputs=(0, 1))


def test_cosine_embedding_loss_unbatched_and_zero_vector():
    g, t = _both("cosine_embedding_loss")
    compare_precise(g, t, randn(4, seed=6), randn(4, seed=7), np.array(-1.0, dtype=np.float32), grad_inputs=(0, 1))
    zero = np.zeros((2, 3), dtype=np.float32)
    compare_precise(g, t, zero, randn(2, 3, seed=8), np.array([1.0, -1.0], dtype=np.float32), grad_inputs=(1,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p,swap", [(2.0, False), (1.0, True), (3.0, False), (2.0, True)])
def test_triplet_margin_loss(reduction, p, swap):
    a, pos, neg = randn(5, 4, seed=9), randn(5, 4, seed=10), randn(5, 4, seed=11)
    kwargs = dict(margin=1.5, p=p, swap=swap, reduction=reduction)
    compare_precise(*_both("triplet_margin_loss", **kwargs), a, pos, neg)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
def test_poisson_nll_loss(reduction, log_input, full):
    x = randn(3, 4, seed=12)
    if not log_input:
        x = np.abs(x) + 0.1
    target = np.random.default_rng(13).poisson(2.0, size=(3, 4)).astype(np.float32)
    kwargs = dict(log_input=log_input, full=full, reduction=reduction)
    # With `full`, torch's target gradient is NaN at a zero target (its
    # Stirling term is masked after the fact); only the input's is compared.
    compare_precise(*_both("poisson_nll_loss", **kwargs), x, target, grad_inputs=(0,) if full else None)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("var_shape", [(4, 3), (4,), (4, 1)])
def test_gaussian_nll_loss(reduction, full, var_shape):
    x, target = randn(4, 3, seed=14), randn(4, 3, seed=15)
    var = np.abs(randn(*var_shape, seed=16)) + 0.05
    var.flat[0] = 1e-8  # below eps: clamped, its gradient untouched as in torch
    compare_precise(*_both("gaussian_nll_loss", full=full, reduction=reduction), x, target, var)


def test_loss_modules_match_torch():
    x1, x2, x3 = randn(6, 4, seed=17), randn(6, 4, seed=18), randn(6, 4, seed=19)
    var = np.abs(randn(6, 4, seed=20)) + 0.1
    cases = [
        ("MarginRankingLoss", dict(margin=0.2, reduction="sum"), (x1[:, 0], x2[:, 0], SIGNS), None),
        ("HingeEmbeddingLoss", dict(margin=0.5), (x1[:, 0], SIGNS), (0,)),
        ("CosineEmbeddingLoss", dict(margin=0.1, reduction="none"), (x1, x2, SIGNS), (0, 1)),
        ("TripletMarginLoss", dict(margin=0.7, p=1.0, swap=True), (x1, x2, x3), None),
        ("PoissonNLLLoss", dict(full=True), (x1, np.abs(x2) * 3), None),
        ("GaussianNLLLoss", dict(full=True, eps=1e-3), (x1, x2, var), None),
    ]
    for name, kwargs, arrays, grad_inputs in cases:
        g, t = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
        assert repr(g) == repr(t) == f"{name}()"
        compare_precise(g, t, *arrays, grad_inputs=grad_inputs)


@pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated")
def test_legacy_reduction_flags():
    x1, x2 = randn(6, seed=21), randn(6, seed=22)
    compare_precise(
        _with(F.margin_ranking_loss, reduce=False), _with(TF.margin_ranking_loss, reduce=False), x1, x2, SIGNS
    )
    assert nn.TripletMarginLoss(size_average=False).reduction == "sum"


def test_errors_like_torch():
    ones = graphc.ones(4, 3)
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        F.hinge_embedding_loss(ones, ones, reduction="avg")
    with pytest.raises(ValueError, match="var is of incorrect size"):
        F.gaussian_nll_loss(ones, ones, graphc.ones(3))
    with pytest.raises(ValueError, match="var has negative entry"):
        F.gaussian_nll_loss(ones, ones, -ones)
    with pytest.raises(ValueError, match="avg is not valid"):
        F.gaussian_nll_loss(ones, ones, ones, reduction="avg")
    with pytest.raises(ValueError, match="expected margin to be greater than 0"):
        nn.TripletMarginLoss(margin=0.0)
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        F.triplet_margin_loss(ones, ones, graphc.ones(3))
    with pytest.raises(RuntimeError, match="same dimension"):
        F.margin_ranking_loss(ones, ones, graphc.ones(3))
    with pytest.raises(RuntimeError, match="0D or 1D target tensor expected"):
        F.cosine_embedding_loss(ones, ones, graphc.ones(4, 1))
    with pytest.raises(RuntimeError, match=r"1D target tensor expects 2D input tensors, .* sizes \[4\] and \[4\]"):
        F.cosine_embedding_loss(graphc.ones(4), graphc.ones(4), graphc.ones(4))


def test_triplet_margin_loss_unbatched():
    compare_precise(F.triplet_margin_loss, TF.triplet_margin_loss, randn(4, seed=30), randn(4, seed=31), randn(4))
