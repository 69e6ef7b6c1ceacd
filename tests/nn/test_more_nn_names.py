"""Adaptive max and LP pooling, LRN, channel shuffle, pdist, alpha dropout,
rrelu, gumbel_softmax, the multi-class margin losses and their modules
against torch: values in float32 and float64, float64 gradients, compiled
programs, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nn_testutil import assert_close, compare_precise, randn

import graphc
import graphc.nn.functional as F
from graphc import nn

REDUCTIONS = ["mean", "sum", "none"]


def _with(fn, *args, **kwargs):
    return lambda *xs: fn(*xs, *args, **kwargs)


def _both(name, *args, **kwargs):
    return _with(getattr(F, name), *args, **kwargs), _with(getattr(TF, name), *args, **kwargs)


# -- pooling ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(3, 4), 1, (7, 10), (2, None), (5, 3)])
def test_adaptive_max_pool2d(size):
    compare_precise(*_both("adaptive_max_pool2d", size), randn(2, 3, 7, 10, seed=1))


@pytest.mark.parametrize("size", [(3, 4), (4, 7)])
def test_adaptive_max_pool2d_indices(size):
    x = randn(2, 3, 7, 10, seed=2)
    g_out, g_idx = F.adaptive_max_pool2d(graphc.tensor(x), size, return_indices=True)
    t_out, t_idx = TF.adaptive_max_pool2d(torch.tensor(x), size, return_indices=True)
    assert_close(g_out, t_out)
    np.testing.assert_array_equal(g_idx.numpy(), t_idx.numpy())
    g_out, g_idx = F.adaptive_max_pool2d_with_indices(graphc.tensor(x[0]), size)
    np.testing.assert_array_equal(g_idx.numpy(), TF.adaptive_max_pool2d(torch.tensor(x[0]), size, True)[1].numpy())


def test_adaptive_max_pool1d_and_modules():
    x = randn(2, 3, 11, seed=3)
    compare_precise(*_both("adaptive_max_pool1d", 4), x)
    g_out, g_idx = nn.AdaptiveMaxPool1d(5, return_indices=True)(graphc.tensor(x))
    t_out, t_idx = torch.nn.AdaptiveMaxPool1d(5, return_indices=True)(torch.tensor(x))
    assert_close(g_out, t_out)
    np.testing.assert_array_equal(g_idx.numpy(), t_idx.numpy())
    assert_close(
        nn.AdaptiveMaxPool2d((2, 3))(graphc.tensor(randn(1, 2, 5, 6))),
        torch.nn.AdaptiveMaxPool2d((2, 3))(torch.tensor(randn(1, 2, 5, 6))),
    )


def test_adaptive_max_pool2d_compiled_natively():
    x = graphc.tensor(randn(2, 3, 9, 9, seed=4))
    expected = F.adaptive_max_pool2d(x, (4, 5)).numpy()
    fn = graphc.compile(lambda t: F.adaptive_max_pool2d(t, (4, 5)))
    for _ in range(2):
        np.testing.assert_array_equal(fn(x).numpy(), expected)


def test_max_pool_with_indices_names():
    x = randn(1, 2, 6, 6, seed=5)
    g_out, g_idx = F.max_pool2d_with_indices(graphc.tensor(x), 2)
    t_out, t_idx = TF.max_pool2d_with_indices(torch.tensor(x), 2)
    assert_close(g_out, t_out)
    np.testing.assert_array_equal(g_idx.numpy(), t_idx.numpy())
    g_out, g_idx = F.max_pool1d_with_indices(graphc.tensor(x[0]), 3)
    t_out, t_idx = TF.max_pool1d_with_indices(torch.tensor(x[0]), 3)
    np.testing.assert_array_equal(g_idx.numpy(), t_idx.numpy())


@pytest.mark.parametrize("p,kernel,stride", [(2, 3, 2), (1, (2, 3), None), (3.0, 2, 1)])
def test_lp_pool2d(p, kernel, stride):
    # Positive inputs: for odd p a negative window sum gives NaN in torch too.
    x = np.abs(randn(2, 3, 7, 8, seed=6)) + 0.1
    compare_precise(*_both("lp_pool2d", p, kernel, stride), x)
    module, reference = nn.LPPool2d(p, kernel, stride), torch.nn.LPPool2d(p, kernel, stride)
    assert_close(module(graphc.tensor(x)), reference(torch.tensor(x)))


def test_lp_pool1d_matches_torch_including_nan():
    x = randn(3, 9, seed=7)
    compare_precise(*_both("lp_pool1d", 2, 3), x)
    g = F.lp_pool1d(graphc.tensor(x), 3, 2).numpy()
    t = TF.lp_pool1d(torch.tensor(x), 3, 2).numpy()
    np.testing.assert_allclose(g, t, rtol=1e-5, equal_nan=True)
    assert_close(nn.LPPool1d(2, 3)(graphc.tensor(x)), torch.nn.LPPool1d(2, 3)(torch.tensor(x)))


# -- normalization, shuffles, distances ------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("shape", [(2, 6, 4), (2, 6, 3, 4), (1, 4, 2, 3, 2)])
def test_local_response_norm(size, shape):
    compare_precise(*_both("local_response_norm", size, alpha=0.1, beta=0.75, k=1.5), randn(*shape, seed=8))


def test_local_response_norm_module_and_error():
    x = randn(2, 7, 3, 3, seed=9)
    assert_close(nn.LocalResponseNorm(3)(graphc.tensor(x)), torch.nn.LocalResponseNorm(3)(torch.tensor(x)))
    with pytest.raises(ValueError, match="3D or higher"):
        F.local_response_norm(graphc.ones(2, 3), 2)


def test_channel_shuffle():
    x = randn(2, 6, 3, 2, seed=10)
    compare_precise(*_both("channel_shuffle", 3), x)
    assert_close(nn.ChannelShuffle(2)(graphc.tensor(x)), torch.nn.ChannelShuffle(2)(torch.tensor(x)))
    with pytest.raises(ValueError, match="divisible by groups"):
        F.channel_shuffle(graphc.tensor(x), 4)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.0])
def test_pdist(p):
    compare_precise(*_both("pdist", p), randn(5, 3, seed=11), grad_inputs=None if p else ())


def test_pdist_errors():
    with pytest.raises(RuntimeError, match="2D"):
        F.pdist(graphc.ones(2, 2, 2))


def test_instance_norm_3d():
    x = randn(2, 3, 4, 3, 2, seed=12)
    g, t = nn.InstanceNorm3d(3, affine=True), torch.nn.InstanceNorm3d(3, affine=True)
    assert_close(g(graphc.tensor(x)), t(torch.tensor(x)))


# -- activations and dropout --------------------------------------------------------


def test_rrelu_eval_matches_torch_and_training_slopes_are_bounded():
    x = randn(4, 50, seed=13)
    compare_precise(*_both("rrelu", 0.1, 0.3), x)
    assert_close(nn.RReLU().eval()(graphc.tensor(x)), torch.nn.RReLU().eval()(torch.tensor(x)))
    out = F.rrelu(graphc.tensor(x), 0.1, 0.3, training=True).numpy()
    neg = x < 0
    slopes = out[neg] / x[neg]
    assert slopes.min() >= 0.1 - 1e-6 and slopes.max() <= 0.3 + 1e-6
    assert slopes.std() > 0.01, "training slopes should vary per element"
    np.testing.assert_array_equal(out[~neg], x[~neg])


def test_inplace_activation_forms():
    for name, args in [("elu_", ()), ("hardtanh_", (-0.5, 0.5)), ("leaky_relu_", (0.2,))]:
        x = randn(3, 4, seed=14)
        g, t = graphc.tensor(x), torch.tensor(x)
        out = getattr(F, name)(g, *args)
        getattr(TF, name)(t, *args)
        assert out is g
        assert_close(g, t, what=name)


def test_log_sigmoid_and_softmax2d_modules():
    x = randn(2, 3, 4, 5, seed=15)
    assert_close(nn.LogSigmoid()(graphc.tensor(x)), torch.nn.LogSigmoid()(torch.tensor(x)))
    assert_close(nn.Softmax2d()(graphc.tensor(x)), torch.nn.Softmax2d()(torch.tensor(x)))
    with pytest.raises(ValueError, match="3D or 4D"):
        nn.Softmax2d()(graphc.ones(2, 3))


@pytest.mark.parametrize("feature", [False, True])
def test_alpha_dropout_keeps_selu_statistics(feature):
    graphc.manual_seed(0)
    x = graphc.randn(64, 32, 8, 8)
    fn = F.feature_alpha_dropout if feature else F.alpha_dropout
    out = fn(x, 0.2, training=True).numpy()
    # Self-normalizing: zero mean and unit variance survive the dropout
    # (feature dropout draws only 64 * 32 decisions: a looser bound).
    tol = 0.06 if feature else 0.02
    assert abs(out.mean()) < tol and abs(out.std() - 1.0) < tol
    # Dropped elements all take the same value, a * -alpha' + b.
    a = 1.0 / ((1.7580993408473766**2 * 0.2 + 1.0) * 0.8) ** 0.5
    dropped_value = -1.7580993408473766 * a + 1.7580993408473766 * a * 0.2
    dropped = np.isclose(out, dropped_value, atol=1e-6)
    assert 0.15 < dropped.mean() < 0.25
    if feature:
        per_channel = dropped.reshape(64, 32, -1)
        assert np.all(per_channel.all(-1) | ~per_channel.any(-1)), "whole channels are dropped"
    np.testing.assert_array_equal(fn(x, 0.2, training=False).numpy(), x.numpy())
    np.testing.assert_array_equal(nn.AlphaDropout(0.3).eval()(x).numpy(), x.numpy())
    assert nn.FeatureAlphaDropout(0.3)(x).shape == x.shape


def test_gumbel_softmax():
    graphc.manual_seed(1)
    logits = graphc.tensor(np.log(np.array([[0.7, 0.2, 0.1]] * 4000, dtype=np.float32)), requires_grad=True)
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(soft.sum(-1).detach().numpy(), 1.0, rtol=1e-5)
    hard = F.gumbel_softmax(logits, tau=1.0, hard=True)
    values = hard.detach().numpy()
    assert set(np.unique(values)) == {0.0, 1.0} and np.all(values.sum(-1) == 1.0)
    # Gumbel-max sampling: the hard samples follow the softmax probabilities.
    np.testing.assert_allclose(values.mean(0), [0.7, 0.2, 0.1], atol=0.03)
    (hard * graphc.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert logits.grad is not None and np.abs(logits.grad.numpy()).sum() > 0


# -- losses ---------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p,margin,weighted", [(1, 1.0, False), (2, 0.5, True), (1, 2.0, True)])
def test_multi_margin_loss(reduction, p, margin, weighted):
    x, target = randn(5, 4, seed=16), np.array([0, 3, 1, 1, 2])
    weight = np.array([0.5, 1.0, 2.0, 1.5], dtype=np.float32) if weighted else None
    if weighted:
        g = lambda a, b, w: F.multi_margin_loss(a, b, p, margin, w, reduction=reduction)  # noqa: E731
        t = lambda a, b, w: TF.multi_margin_loss(a, b, p, margin, w, reduction=reduction)  # noqa: E731
        compare_precise(g, t, x, target, weight, grad_inputs=(0,))
    else:
        compare_precise(*_both("multi_margin_loss", p, margin, reduction=reduction), x, target)


def test_multi_margin_loss_unbatched_and_module():
    x, target = randn(4, seed=17), np.array(2)
    compare_precise(*_both("multi_margin_loss"), x, target)
    xb, tb = randn(3, 4, seed=18), np.array([1, 0, 3])
    g = nn.MultiMarginLoss(p=2, margin=0.7)(graphc.tensor(xb), graphc.tensor(tb))
    assert_close(g, torch.nn.MultiMarginLoss(p=2, margin=0.7)(torch.tensor(xb), torch.tensor(tb)))
    with pytest.raises(ValueError, match="p == 1 and p == 2"):
        nn.MultiMarginLoss(p=3)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multilabel_margin_loss(reduction):
    x = randn(4, 5, seed=19)
    target = np.array([[3, 0, -1, 1, 1], [1, 2, 4, 0, -1], [-1, 2, 2, 2, 2], [0, 1, 2, 3, 4]])
    compare_precise(*_both("multilabel_margin_loss", reduction=reduction), x, target)
    g = nn.MultiLabelMarginLoss(reduction=reduction)(graphc.tensor(x), graphc.tensor(target))
    assert_close(g, torch.nn.MultiLabelMarginLoss(reduction=reduction)(torch.tensor(x), torch.tensor(target)))


def test_multilabel_margin_loss_unbatched():
    compare_precise(*_both("multilabel_margin_loss"), randn(4, seed=20), np.array([2, 1, -1, 0]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_multilabel_soft_margin_loss(reduction, weighted):
    x = randn(4, 5, seed=21)
    y = (randn(4, 5, seed=22) > 0).astype(np.float32)
    if weighted:
        w = np.linspace(0.5, 2.0, 5).astype(np.float32)
        g = lambda a, b, c: F.multilabel_soft_margin_loss(a, b, c, reduction=reduction)  # noqa: E731
        t = lambda a, b, c: TF.multilabel_soft_margin_loss(a, b, c, reduction=reduction)  # noqa: E731
        compare_precise(g, t, x, y, w, grad_inputs=(0,))
    else:
        compare_precise(*_both("multilabel_soft_margin_loss", reduction=reduction), x, y, grad_inputs=(0,))
    module = nn.MultiLabelSoftMarginLoss(reduction=reduction)
    reference = torch.nn.MultiLabelSoftMarginLoss(reduction=reduction)
    assert_close(module(graphc.tensor(x), graphc.tensor(y)), reference(torch.tensor(x), torch.tensor(y)))


@pytest.mark.parametrize("swap", [False, True])
def test_triplet_margin_with_distance_loss(swap):
    a, p, n = randn(5, 4, seed=23), randn(5, 4, seed=24), randn(5, 4, seed=25)
    compare_precise(*_both("triplet_margin_with_distance_loss", swap=swap, margin=0.5), a, p, n)

    def g_cos(x, y):
        return 1.0 - F.cosine_similarity(x, y)

    def t_cos(x, y):
        return 1.0 - TF.cosine_similarity(x, y)

    g = nn.TripletMarginWithDistanceLoss(distance_function=g_cos, swap=swap)
    t = torch.nn.TripletMarginWithDistanceLoss(distance_function=t_cos, swap=swap)
    compare_precise(g, t, a, p, n)
    with pytest.raises(ValueError, match="greater than 0"):
        nn.TripletMarginWithDistanceLoss(margin=0.0)


def test_soft_margin_and_nll2d_modules():
    x = randn(3, 4, seed=26)
    y = np.sign(randn(3, 4, seed=27)).astype(np.float32)
    assert_close(
        nn.SoftMarginLoss()(graphc.tensor(x), graphc.tensor(y)),
        torch.nn.SoftMarginLoss()(torch.tensor(x), torch.tensor(y)),
    )
    scores, labels = randn(2, 3, 4, 4, seed=28), np.random.default_rng(0).integers(0, 3, (2, 4, 4))
    g = nn.NLLLoss2d()(F.log_softmax(graphc.tensor(scores), 1), graphc.tensor(labels))
    assert_close(g, torch.nn.NLLLoss()(TF.log_softmax(torch.tensor(scores), 1), torch.tensor(labels)))
    assert isinstance(nn.NLLLoss2d(), nn.NLLLoss)
